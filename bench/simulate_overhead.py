"""Overhead of ``egress simulate`` over a bare ``sumo -c`` of the same run.

Runs the whole ``egress simulate`` command (Python start-up, validation,
configuration, SUMO, parsing, tables) and the bare ``sumo -c run.sumocfg``
that it wrote, alternating, several times, and prints the medians and their
ratio. The machine is shared and noisy, so only the ratio of the same run
measured side by side means anything. Target: ratio <= 1.15.

Usage: python bench/simulate_overhead.py [SCENARIO] [--repeats N] [--meso]
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
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios/sodo-demo.toml"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--meso", action="store_true")
    args = parser.parse_args()

    from egress import sumo

    work = Path(tempfile.mkdtemp(prefix="egress-bench-"))
    egress_cmd = [sys.executable, "-m", "egress.cli", "-q", "simulate", args.scenario,
                  "--out", str(work / "run")] + (["--meso"] if args.meso else [])
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
    print(f"scenario: {args.scenario} ({'meso' if args.meso else 'micro'})")
    print(f"median egress simulate: {me:.2f} s")
    print(f"median bare sumo -c:    {mb:.2f} s")
    print(f"ratio: {me / mb:.3f} (target <= 1.15)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
