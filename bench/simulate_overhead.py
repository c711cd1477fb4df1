"""Overhead of ``egress simulate`` over a bare ``sumo -c`` of the same run.

Runs the whole ``egress simulate`` command (Python start-up, validation,
configuration, SUMO, parsing, tables) and the bare ``sumo -c run.sumocfg``
that it wrote, alternating, several times, and prints the medians and their
ratio. The machine is shared and noisy, so only the ratio of the same run
measured side by side means anything. Target: ratio <= 1.15.

The demand of a scenario built from OD tables is built once beforehand
(``bench/demand_build.py`` measures that step) and handed to ``egress simulate``
as route files, the way a scenario with ``demand.routes`` runs.

Usage: python bench/simulate_overhead.py [SCENARIO] [--repeats N] [--meso|--micro]
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

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?",
                        default=str(ROOT / "scenarios/sodo-large-event.toml"))
    parser.add_argument("--repeats", type=int, default=5)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--meso", action="store_true", help="force mesoscopic")
    mode.add_argument("--micro", action="store_true", help="force microscopic")
    args = parser.parse_args()

    from egress import sumo
    from egress.config.scenario import load_scenario
    from egress.demand import build_demand

    work = Path(tempfile.mkdtemp(prefix="egress-bench-"))
    scenario = load_scenario(args.scenario)
    routes = list(scenario.routes) or build_demand(scenario, work / "demand",
                                                    seed=scenario.simulation.seed).routes
    sim = scenario.simulation
    mode_ = "meso" if args.meso else "micro" if args.micro else sim.mode
    bench_scenario = work / "scenario.toml"
    bench_scenario.write_text(f"""name = "{scenario.name}-bench"
[network]
file = "{scenario.network}"
[simulation]
begin = {sim.begin}
end = {sim.end}
step_length = {sim.step_length}
seed = {sim.seed}
mode = "{mode_}"
time_to_teleport = {sim.time_to_teleport}
edgedata_period = {sim.edgedata_period}
[demand]
routes = [{", ".join(f'"{r}"' for r in routes)}]
""")
    egress_cmd = [sys.executable, "-m", "egress.cli", "-q", "simulate", str(bench_scenario),
                  "--out", str(work / "run")]
    # warm-up: builds demand if the scenario needs it, fills file caches
    subprocess.run(egress_cmd, check=True, stdout=subprocess.DEVNULL)
    bare_cmd = [sumo.binary("sumo"), "-c", "run.sumocfg"]
    t_egress, t_bare = [], []
    for i in range(args.repeats):
        t_egress.append(timed(egress_cmd))
        t_bare.append(timed(bare_cmd, cwd=work / "run"))
        print(f"repeat {i + 1}: egress simulate {t_egress[-1]:.2f} s, "
              f"bare sumo -c {t_bare[-1]:.2f} s", flush=True)
    me, mb = statistics.median(t_egress), statistics.median(t_bare)
    print(f"scenario: {args.scenario} ({mode_})")
    print(f"median egress simulate: {me:.2f} s")
    print(f"median bare sumo -c:    {mb:.2f} s")
    print(f"ratio: {me / mb:.3f} (target <= 1.15)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
