"""The full policy table on SODO: wall time and per-run overhead over a bare ``sumo -c``.

Runs ``evaluate_policy`` for the four single policies (Cherry St NB diversion, S Spokane St
SB diversion, the alternate route, the HOV opening) plus the combined Cherry St + Spokane St
diversion, at compliance 0.1/0.3/0.5, on the large and the small event, with R
replications (or until a target half-width); then re-runs a sample of the written run
folders with a bare ``sumo -c run.sumocfg`` and through the run engine (SUMO run, reading
its outputs into the vehicle table, the invariants), each run alone and alternating, a few
times. Prints the table, what the pairs compared, the total wall time, the per-run
overhead ratio (target <= 1.10) and the combined diversion at 30% on the large event with
its 95% CI.

Usage: python bench/policies.py [--replications 5] [--mode meso] [--workers 2] [--sample 4]
       [--repeats 3] [--out DIR] [--policies NAME,...] [--fractions 0.1,0.3,0.5]
       [--events large,small] [--target-halfwidth MIN]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICIES = "cherry_st_nb,spokane_st_sb,wsb_via_1st_ave,i5_hov_open,deployed_pair"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=5)
    parser.add_argument("--fractions", default="0.1,0.3,0.5")
    parser.add_argument("--policies", default=POLICIES)
    parser.add_argument("--mode", choices=["micro", "meso"], default=None,
                        help="default: each scenario's own")
    parser.add_argument("--events", default="large,small")
    parser.add_argument("--target-halfwidth", type=float, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=4, help="runs re-timed with bare sumo")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each sampled run")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from egress.evaluation import evaluate_policy, format_table, headline

    from egress import engine, sumo

    out = Path(args.out or tempfile.mkdtemp(prefix="egress-bench-policies-"))
    scenarios = [ROOT / "scenarios" / f"sodo-{e}-event.toml" for e in args.events.split(",")]
    fractions = [float(f) for f in args.fractions.split(",")]
    started = time.perf_counter()
    result = evaluate_policy(scenarios, args.policies, fractions, args.replications,
                             policy_file=ROOT / "scenarios" / "sodo-policies.toml", out=out,
                             mode=args.mode, workers=args.workers, progress=True,
                             target_halfwidth=args.target_halfwidth)
    total = time.perf_counter() - started
    print(format_table(result.table))
    for i in range(len(result.table)):
        print(headline(result.table.iloc[[i]]))
    runs = result.runs[result.runs["group"] == "event"]
    n_base = sum(len(list((out / s.stem).glob("baseline/r*"))) for s in scenarios)
    mode = json.loads((out / "evaluation.json").read_text())["mode"]
    print(f"\n{len(runs) + n_base} SUMO runs on {args.workers} worker(s); mode SUMO ran: "
          f"{mode}; total wall time {total:.0f} s ({total / 60:.1f} min)")
    print("\nwhat the pairs compared (event vehicles, mean per replication):")
    cols = ["vehicles", "dropped", "teleported_baseline", "teleported_policy",
            "inside_at_end_baseline", "inside_at_end_policy", "not_inserted_baseline",
            "not_inserted_policy", "teleports_baseline", "teleports_policy"]
    print(runs.groupby(["scenario", "policy", "fraction"], dropna=False)[cols].mean()
          .round(1).to_string())
    print(f"invalid runs: {len(result.invalid)}")

    # Per-run overhead: a sample of the written run folders, each run alone (nothing
    # else running), alternately through egress (SUMO + reading its outputs, as in the
    # table) and as a bare `sumo -c run.sumocfg`.
    folders = _sample(out, args.sample)
    inside_total = bare_total = 0.0
    for folder in folders:
        config, departures, inside_edges = _run_of(folder, scenarios)
        inside, bare = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = engine.run(config, departures=departures, inside=inside_edges)
            inside.append(time.perf_counter() - t0)
            assert res.valid, res.problems
            t0 = time.perf_counter()
            subprocess.run([sumo.binary("sumo"), "-c", "run.sumocfg"], cwd=folder, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            bare.append(time.perf_counter() - t0)
        mi, mb = statistics.median(inside), statistics.median(bare)
        inside_total += mi
        bare_total += mb
        print(f"{'/'.join(folder.parts[-4:])}: in egress {mi:.2f} s, bare sumo -c {mb:.2f} s, "
              f"ratio {mi / mb:.3f}", flush=True)
    if folders:
        print(f"per-run wall time egress / bare sumo -c over {len(folders)} runs (each alone, "
              f"median of {args.repeats}): {inside_total / bare_total:.3f} (target <= 1.10)")
    t = result.table
    pair = t[(t["policy"] == "deployed_pair") & (t["scenario"] == "sodo-large-event")
             & ((t["fraction"] - 0.3).abs() < 1e-9)]
    if len(pair):
        r = pair.iloc[0]
        print(f"\ncombined Cherry St + Spokane St diversion, 30%, large event: "
              f"{r['event_saving_min']:+.2f} min per event vehicle "
              f"[95% CI {r['event_ci_low']:+.2f}, {r['event_ci_high']:+.2f}], compliers "
              f"{r['compliers_saving_min']:+.2f}, background {r['background_saving_min']:+.2f}; "
              f"realised compliance {r['realised_compliance']:.1%}")
    print(f"results: {out}")


def _sample(out: Path, n: int) -> list[Path]:
    """Up to n replication-0 run folders, spread over scenarios and policies."""
    folders = sorted(out.glob("*/*/*/r0")) + sorted(out.glob("*/baseline/r0"))
    step = max(1, len(folders) // max(n, 1))
    return folders[::step][:n]


def _run_of(folder: Path, scenarios: list[Path]):
    """The run engine's configuration, departures and study area of a written run folder
    (same network, routes, additional files, seed and mode)."""
    import xml.etree.ElementTree as ET

    from egress import engine
    from egress.config.scenario import load_scenario
    from egress.network import study_area_edges

    scen_dir = folder.parent.parent if folder.parent.name == "baseline" else \
        folder.parent.parent.parent
    scen = load_scenario(next(s for s in scenarios if s.stem == scen_dir.name))
    cfg = {el.tag: el.get("value") for el in ET.parse(folder / "run.sumocfg").getroot()}

    def files(key: str) -> tuple[Path, ...]:
        return tuple((folder / r).resolve() for r in cfg.get(key, "").split(",") if r
                     and r != "edgedata.add.xml")

    config = engine.RunConfig.from_scenario(
        scen, folder, files("route-files"), network=(folder / cfg["net-file"]).resolve(),
        additional=files("additional-files"), seed=int(cfg["seed"]),
        mode="meso" if cfg["mesosim"] == "true" else "micro")
    departures = engine.read_departures(config.routes)
    return config, departures, study_area_edges(scen.network, scen.venues)


if __name__ == "__main__":
    sys.exit(main())
