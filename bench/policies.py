"""The full policy table on SODO: wall time and per-run overhead over a bare ``sumo -c``.

Runs ``evaluate_policy`` for the four single policies (Cherry St NB diversion, S Spokane St
SB diversion, the alternate route, the HOV opening) plus the combined Cherry St + Spokane St
diversion, at compliance 0.1/0.3/0.5, on the large and the small event, with R
replications; then re-runs a sample of the written run folders with a bare ``sumo -c
run.sumocfg`` and compares each with the same run's wall time inside egress (SUMO run +
parsing its outputs). Prints the total wall time, the overhead ratio (target <= 1.15) and
the combined diversion at 30% on the large event with its 95% CI.

Usage: python bench/policies.py [--replications 5] [--meso] [--workers 2] [--sample 4]
       [--out DIR] [--policies NAME,...] [--fractions 0.1,0.3,0.5]
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
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from egress import sumo
    from egress.evaluation import evaluate_policy, format_table

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

    # per-run overhead: the same run folders, bare sumo -c, one at a time
    folders = sorted(out.glob("*/*/*/r0"))[: args.sample]
    ratios = []
    for folder in folders:

        t0 = time.perf_counter()
        subprocess.run([sumo.binary("sumo"), "-c", "run.sumocfg"], cwd=folder, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bare = time.perf_counter() - t0
        key = folder.parts[-3:-1]
        row = runs[(runs["policy"] == key[0]) & (runs["replication"] == 0)]
        frac = None if key[1] == "all" else float(key[1][1:])
        row = row[row["fraction"].isna()] if frac is None else row[
            (row["fraction"] - frac).abs() < 1e-9]
        row = row[row["scenario"] == folder.parts[-4]]
        if len(row):
            inside = float(row["wall_policy"].iloc[0] + row["parse_wall_policy"].iloc[0])
            ratios.append(inside / bare)
            print(f"{'/'.join(folder.parts[-4:])}: in egress {inside:.1f} s, bare sumo -c "
                  f"{bare:.1f} s, ratio {inside / bare:.2f}")
    if ratios:
        print(f"median per-run ratio egress/bare: {statistics.median(ratios):.2f} "
              "(target <= 1.15; runs inside egress shared 2 cores with a parallel run)")
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


if __name__ == "__main__":
    sys.exit(main())
