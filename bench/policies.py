"""The full policy table on SODO: wall time and per-run overhead over a bare ``sumo -c``.

Runs ``evaluate_policy`` for the four single policies (Cherry St NB diversion, S Spokane St
SB diversion, the alternate route, the HOV opening) plus the combined Cherry St + Spokane St
diversion, at compliance 0.1/0.3/0.5, on the large and the small event, with R
replications; then re-runs a sample of the written run folders with a bare ``sumo -c
run.sumocfg`` and through egress's own run function (SUMO run +
reading its outputs), each run alone and alternating, a few times. Prints the total wall
time, the overhead ratio (target <= 1.15) and the combined diversion at 30% on the large
event with its 95% CI.

Usage: python bench/policies.py [--replications 5] [--meso] [--workers 2] [--sample 4]
       [--repeats 3] [--out DIR] [--policies NAME,...] [--fractions 0.1,0.3,0.5]
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--meso", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=4, help="runs re-timed with bare sumo")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each sampled run")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from egress import sumo
    from egress.evaluation import evaluate_policy, execute, format_table

    out = Path(args.out or tempfile.mkdtemp(prefix="egress-bench-policies-"))
    scenarios = [ROOT / "scenarios" / f"sodo-{e}-event.toml" for e in ("large", "small")]
    fractions = [float(f) for f in args.fractions.split(",")]
    started = time.perf_counter()
    result = evaluate_policy(scenarios, args.policies, fractions, args.replications,
                             policy_file=ROOT / "scenarios" / "sodo-policies.toml", out=out,
                             meso=args.meso, workers=args.workers, progress=True)
    total = time.perf_counter() - started
    print(format_table(result.table))
    runs = result.runs[result.runs["group"] == "event"]
    n_runs = len(runs) + len(scenarios) * args.replications
    print(f"\nmode: {'meso' if args.meso else 'micro'}; {n_runs} SUMO runs on {args.workers} "
          f"worker(s); total wall time {total:.0f} s ({total / 60:.1f} min)")

    # Per-run overhead: a sample of the written run folders, each run alone (nothing
    # else running), alternately through egress (SUMO + reading its outputs, as in the
    # table) and as a bare `sumo -c run.sumocfg`.
    folders = _sample(out, args.sample)
    inside_total = bare_total = 0.0
    for folder in folders:
        run = _run_of(folder, scenarios)
        inside, bare = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            execute(run)
            inside.append(time.perf_counter() - t0)
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
              f"median of {args.repeats}): {inside_total / bare_total:.3f} (target <= 1.15)")
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
    """The evaluation's Run of a written run folder (same config, seed, demand)."""
    import xml.etree.ElementTree as ET

    from egress.evaluation import Run, study_area_edges
    from egress.policies import read_demand
    from egress.scenario import load_scenario

    base = folder.parent if folder.parent.name == "baseline" else folder.parent.parent
    scen = load_scenario(next(s for s in scenarios if s.stem == base.parent.name))
    cfg = ET.parse(folder / "run.sumocfg").getroot()
    seed = int(cfg.find("random_number/seed").get("value"))
    routes = [(folder / r).resolve()
              for r in cfg.find("input/route-files").get("value").split(",")]
    vehicles, _ = read_demand(routes)
    demand = {vid: (v.type, v.depart) for vid, v in vehicles.items()}
    scen = scen.with_simulation(seed=seed)
    return Run(scen, (scen.name, folder.parent.name, None), 0, folder, folder / "run.sumocfg",
               study_area_edges(scen), demand, {})


if __name__ == "__main__":
    sys.exit(main())
