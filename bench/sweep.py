"""Cost of ``egress sweep``: parallel speedup, per-task overhead and growth.

Builds a synthetic grid network (netgenerate --grid) and random routes
(randomTrips.py + duarouter) so that every task is one plain SUMO run of a
known size, then measures on this machine:

1. a 16-task sweep on a LocalCluster with 1 and with 2 workers: the speedup
   (target >= 1.7x on 2 cores);
2. the per-task overhead of the sweep over a bare ``sumo -c run.sumocfg`` of
   the same run: (1-worker sweep wall / 16) / bare wall - 1 (target <= 10%),
   and per task from the stored results (task seconds vs SUMO seconds);
3. wall time vs number of tasks (8, 16, 32; 2 workers) and vs vehicles per
   run (8 tasks; 2 workers), with a least-squares line for each.

Every sweep starts from an empty output folder; cluster start-up is included.

Usage: python bench/sweep.py [--vehicles N] [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build(work: Path, vehicles: int, horizon: int = 1800) -> Path:
    """A 7x7 grid, `vehicles` random routes over `horizon` s, and a scenario file."""
    from egress import sumo

    net = work / "grid.net.xml"
    if not net.exists():
        sumo.run(["netgenerate", "--grid", "--grid.number", "7", "--grid.length", "200",
                  "--default.lanenumber", "1", "--no-turnarounds", "true", "-o", net])
    routes = work / f"v{vehicles}.rou.xml"
    sumo.run([sumo.tool("randomTrips.py"), "-n", net, "-o", work / f"v{vehicles}.trips.xml",
              "-r", routes, "-b", "0", "-e", str(horizon), "-p", f"{horizon / vehicles:.4f}",
              "--seed", "1", "--min-distance", "600", "--validate"], cwd=work)
    scenario = work / f"v{vehicles}.toml"
    scenario.write_text(f"""name = "grid-v{vehicles}"
[network]
file = "grid.net.xml"
[simulation]
begin = 0
end = {horizon + 900}
seed = 1
edgedata_period = 300
[demand]
routes = ["{routes.name}"]
""")
    return scenario


def sweep_file(work: Path, scenario: Path, tasks: int) -> Path:
    path = work / f"sweep-{scenario.stem}-{tasks}.toml"
    path.write_text(f"""name = "bench"
replications = {tasks}
[[events]]
name = "grid"
scenario = "{scenario.name}"
""")
    return path


def timed_sweep(path: Path, out: Path, workers: int) -> tuple[float, object]:
    from egress.sweep import run_sweep

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    result = run_sweep(path, out, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    assert not result.failed, result.failed
    return wall, result


def bare_sumo(scenario: Path, work: Path, repeats: int = 3) -> float:
    """Median wall time of ``sumo -c run.sumocfg`` of the same run."""
    from egress import sumo
    from egress.simulation import simulate

    run = simulate(scenario, work / "bare", progress=False)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sumo.binary("sumo"), "-c", "run.sumocfg"], cwd=run.run_dir, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def line(x, y) -> str:
    b, a = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return f"wall ≈ {a:.2f} s + {b:.4f} s × x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=1500, help="vehicles per run")
    parser.add_argument("--quick", action="store_true", help="skip the growth measurements")
    args = parser.parse_args()

    from egress.sweep import load_results

    work = Path(tempfile.mkdtemp(prefix="egress-bench-sweep-"))
    try:
        scenario = build(work, args.vehicles)
        bare = bare_sumo(scenario, work)
        print(f"bare sumo -c, {args.vehicles} vehicles: {bare:.2f} s (median of 3)", flush=True)
        s16 = sweep_file(work, scenario, 16)
        t1, _ = timed_sweep(s16, work / "w1", 1)
        print(f"16 tasks, 1 worker:  {t1:.1f} s", flush=True)
        t2, _ = timed_sweep(s16, work / "w2", 2)
        print(f"16 tasks, 2 workers: {t2:.1f} s", flush=True)
        res = load_results(work / "w1").drop_duplicates("key")
        per_task = t1 / 16
        print(f"speedup 2 vs 1 workers: {t1 / t2:.2f}x (target >= 1.7x)")
        print(f"per-task wall in the 1-worker sweep: {per_task:.2f} s vs bare {bare:.2f} s: "
              f"overhead {100 * (per_task / bare - 1):+.1f}% (target <= 10%)")
        print(f"  from the results: task {res['task_seconds'].median():.2f} s, of which SUMO "
              f"{res['sumo_seconds'].median():.2f} s (medians)")
        if args.quick:
            return
        walls = []
        for n in (8, 16, 32):
            w, _ = timed_sweep(sweep_file(work, scenario, n), work / f"n{n}", 2)
            walls.append(w)
            print(f"{n:>3} tasks, 2 workers: {w:.1f} s ({w / n:.2f} s per task)", flush=True)
        print(f"growth with tasks: {line([8, 16, 32], walls)} (x = tasks)")
        sizes, walls = [], []
        for v in (args.vehicles // 2, args.vehicles, args.vehicles * 2):
            sc = build(work, v)
            w, _ = timed_sweep(sweep_file(work, sc, 8), work / f"v{v}", 2)
            b = bare_sumo(sc, work / f"bare{v}", repeats=1)
            sizes.append(v)
            walls.append(w)
            print(f"8 tasks of {v:>5} vehicles, 2 workers: {w:.1f} s "
                  f"(bare sumo {b:.2f} s per run)", flush=True)
        print(f"growth with vehicles per run: {line(sizes, walls)} (x = vehicles, 8 tasks)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
