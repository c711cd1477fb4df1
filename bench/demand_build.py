"""Time to build the demand of a scenario relative to the simulation that follows.

Builds the demand of the large event (OD tables -> trips -> routes, with
``egress.demand.build_demand``) and then runs SUMO on it through
``egress simulate`` with the prebuilt routes, alternating, several times; prints
the medians of both and the share of building in the simulation's wall time.
Target: building takes at most 25% of the simulation's wall time.

Usage: python bench/demand_build.py [SCENARIO] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?",
                        default=str(ROOT / "scenarios" / "sodo-large-event.toml"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from dataclasses import replace

    from egress.simulation import simulate

    from egress.config.scenario import load_scenario
    from egress.demand import build_demand

    scenario = load_scenario(args.scenario)
    work = Path(tempfile.mkdtemp(prefix="egress-bench-demand-"))
    t_build, t_sim, steps = [], [], []
    for i in range(args.repeats):
        start = time.perf_counter()
        built = build_demand(scenario, work / f"demand{i}", seed=scenario.simulation.seed)
        t_build.append(time.perf_counter() - start)
        steps.append(built.seconds)
        prebuilt = replace(scenario, routes=list(built.routes))
        start = time.perf_counter()
        run = simulate(prebuilt, work / f"run{i}", progress=False)
        t_sim.append(time.perf_counter() - start)
        print(f"repeat {i + 1}: build {t_build[-1]:.2f} s "
              f"({', '.join(f'{k} {v:.2f}' for k, v in built.seconds.items())}), "
              f"simulate {t_sim[-1]:.2f} s ({run.summary['inserted']} vehicles, "
              f"{scenario.simulation.mode})", flush=True)
    mb, ms = statistics.median(t_build), statistics.median(t_sim)
    print(f"scenario: {args.scenario}")
    print(f"vehicles: {built.vehicles}")
    print(f"median build (OD -> trips -> routes): {mb:.2f} s")
    print(f"median simulation: {ms:.2f} s")
    print(f"build / simulation: {100 * mb / ms:.1f}% (target <= 25%)")


if __name__ == "__main__":
    main()
