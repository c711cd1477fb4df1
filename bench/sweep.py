"""Cost of ``egress sweep``: parallel speedup, per-task overhead and growth.

Every task is a realistic SUMO run: the bundled small event
(``scenarios/sodo-small-event.toml``: 20,000 at T-Mobile Park on a normal
evening, mesoscopic, 21:30-24:00), with its demand built once beforehand so
that a task is one simulation and its reading. On this machine it measures:

1. a 16-task sweep (16 seeds of the baseline) on a LocalCluster with 1 and
   with 2 workers: the speedup (target >= 1.7x on 2 cores), next to the
   speedup of bare SUMO runs two at a time over one at a time (what this
   shared machine gives at that moment);
2. the per-task overhead of the sweep over a bare ``sumo -c run.sumocfg`` of
   the same run (the config a task writes, without the edgeData output a
   task does not read): (1-worker sweep wall / 16) / (bare wall per run) -
   1 (target <= 10%), cluster start-up included. This shared machine
   drifts by tens of percent within minutes, so the measurement runs in
   several blocks (3; 2 with ``--quick``) of: 4 bare runs, the 1-worker
   sweep, 4 bare runs, the 2-worker sweep, 4 bare runs two at a time. The
   overhead of a block compares its 1-worker sweep with the bare runs
   just before and after it, its speedup the 1- and 2-worker sweeps next
   to each other; the figures are the blocks' medians. Also per task from
   the stored results (task seconds vs SUMO seconds), and the cluster's
   start-up alone;
3. wall time vs number of tasks (8, 16, 32; 2 workers) and vs vehicles per
   run (8 tasks of the event at 10,000 / 20,000 / 40,000 attendance; 2
   workers), with a least-squares line for each.

Every sweep starts from an empty output folder.

Usage: python bench/sweep.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "sodo-small-event.toml"


def build(work: Path, attendance: int) -> tuple[Path, int]:
    """The small event at `attendance` with prebuilt routes; (scenario file, vehicles)."""
    from egress.config.scenario import load_scenario
    from egress.demand import build_demand
    from egress.sweep import apply_overrides

    scen = apply_overrides(load_scenario(SCENARIO), {"demand.event.attendance": attendance})
    built = build_demand(scen, work / f"demand-{attendance}")
    sim = scen.simulation
    path = work / f"small-{attendance}.toml"
    path.write_text(f"""name = "small-{attendance}"
[network]
file = "{scen.network}"
venues = "{scen.venues.path}"
[simulation]
begin = {sim.begin}
end = {sim.end}
seed = {sim.seed}
mode = "{sim.mode}"
time_to_teleport = {sim.time_to_teleport}
edgedata_period = {sim.edgedata_period}
[demand]
routes = ["{built.routes[0]}"]
""")
    return path, sum(built.vehicles.values())


def sweep_file(work: Path, scenario: Path, tasks: int) -> Path:
    path = work / f"sweep-{scenario.stem}-{tasks}.toml"
    path.write_text(f"""name = "bench"
seeds = {list(range(1, tasks + 1))}
[[events]]
name = "small"
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


def cluster_startup() -> float:
    """Wall time to start a 1-worker LocalCluster, run one empty task and close it."""
    from egress.sweep import _connect

    t0 = time.perf_counter()
    with _connect(None, 1, 1) as client:
        client.submit(int, 1).result()
    return time.perf_counter() - t0


def bare_sumo(scenario: Path, work: Path, runs: int = 3, parallel: int = 1) -> float:
    """Wall time of `runs` bare ``sumo -c run.sumocfg`` of the config a task writes,
    `parallel` at a time (each in its own folder)."""
    from egress import engine, sumo
    from egress.config.scenario import load_scenario

    scen = load_scenario(scenario).with_simulation(seed=1)
    folders = []
    for i in range(parallel):
        run_dir = work / f"bare-{scenario.stem}-{i}"
        engine.write_config(engine.RunConfig.from_scenario(scen, run_dir, scen.routes,
                                                           edgedata_period=None))
        folders.append(run_dir)
    t0 = time.perf_counter()
    for _ in range(runs // parallel):
        procs = [subprocess.Popen([sumo.binary("sumo"), "-c", "run.sumocfg"], cwd=f,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for f in folders]
        for proc in procs:
            if proc.wait() != 0:
                raise RuntimeError(f"sumo failed in {folders}")
    return time.perf_counter() - t0


def line(x, y) -> str:
    b, a = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return f"wall ≈ {a:.2f} s + {b:.4f} s × x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the growth measurements")
    args = parser.parse_args()

    from egress.sweep import load_results

    work = Path(tempfile.mkdtemp(prefix="egress-bench-sweep-"))
    try:
        scenario, vehicles = build(work, 20000)
        print(f"task: {SCENARIO.name} with prebuilt routes, {vehicles} vehicles", flush=True)
        print(f"cluster start-up and shut-down (1 worker): {cluster_startup():.2f} s", flush=True)
        s16 = sweep_file(work, scenario, 16)
        blocks = 2 if args.quick else 3
        bare_runs = [bare_sumo(scenario, work, runs=4) / 4]
        overheads, speedups, t1s, t2s, pairs = [], [], [], [], []
        for b in range(blocks):
            t1, _ = timed_sweep(s16, work / f"w1-{b}", 1)
            bare_runs.append(bare_sumo(scenario, work, runs=4) / 4)
            bare = (bare_runs[-2] + bare_runs[-1]) / 2
            t2, _ = timed_sweep(s16, work / f"w2-{b}", 2)
            pair = bare_sumo(scenario, work, runs=4, parallel=2) / 4
            t1s.append(t1)
            t2s.append(t2)
            pairs.append(bare_runs[-1] / pair)
            overheads.append(t1 / 16 / bare - 1)
            speedups.append(t1 / t2)
            print(f"block {b + 1}: bare sumo -c {bare_runs[-2]:.2f} s per run before, "
                  f"{bare_runs[-1]:.2f} s after the 1-worker sweep (16 tasks: {t1:.1f} s = "
                  f"{t1 / 16:.2f} s per task: overhead {100 * overheads[-1]:+.1f}%); "
                  f"2 workers: {t2:.1f} s: speedup {speedups[-1]:.2f}x; bare sumo two at a "
                  f"time just after: {pairs[-1]:.2f}x as fast as one", flush=True)
            if b + 1 < blocks:
                bare_runs.append(bare_sumo(scenario, work, runs=4) / 4)
        res = load_results(work / "w1-0").drop_duplicates("key")
        print(f"speedup 2 vs 1 workers: median {float(np.median(speedups)):.2f}x over {blocks} "
              f"blocks ({', '.join(f'{x:.2f}x' for x in speedups)}; target >= 1.7x; bare SUMO "
              f"two at a time: {', '.join(f'{x:.2f}x' for x in pairs)})")
        print(f"per-task overhead of the 1-worker sweep vs bare sumo -c: median "
              f"{100 * float(np.median(overheads)):+.1f}% over {blocks} blocks "
              f"({', '.join(f'{100 * o:+.1f}%' for o in overheads)}; target <= 10%; "
              "cluster start-up included)")
        print(f"  from the results: task {res['task_seconds'].median():.2f} s, of which SUMO "
              f"{res['sumo_seconds'].median():.2f} s (medians): "
              f"{100 * (res['task_seconds'] / res['sumo_seconds'] - 1).median():+.1f}% inside "
              "the task")
        if args.quick:
            return
        walls = []
        for n in (8, 16, 32):
            w, _ = timed_sweep(sweep_file(work, scenario, n), work / f"n{n}", 2)
            walls.append(w)
            print(f"{n:>3} tasks, 2 workers: {w:.1f} s ({w / n:.2f} s per task)", flush=True)
        print(f"growth with tasks: {line([8, 16, 32], walls)} (x = tasks)")
        sizes, walls = [], []
        for attendance in (10000, 20000, 40000):
            sc, v = build(work, attendance)
            w, _ = timed_sweep(sweep_file(work, sc, 8), work / f"a{attendance}", 2)
            b = bare_sumo(sc, work, runs=1)
            sizes.append(v)
            walls.append(w)
            print(f"8 tasks of {v:>5} vehicles (attendance {attendance}), 2 workers: {w:.1f} s "
                  f"(bare sumo {b:.2f} s per run)", flush=True)
        print(f"growth with vehicles per run: {line(sizes, walls)} (x = vehicles, 8 tasks)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
