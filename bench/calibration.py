"""Benchmark: OD calibration on the SODO large-event synthetic case.

Calibrates the shipped synthetic set (``scenarios/observations/sodo-large-event``:
truth simulated with seed 1, prior = truth perturbed by 30-50 %) with both
optimizers, and prints method × budget × seed -> objective, speed RMSE,
RMSE / noise floor, GEH share, simulations, wall time and the share of time
spent outside SUMO (model fitting and optimisation / SUMO time).

The noise floor of a seed is the speed RMSE of the *true* OD simulated with
that seed's random numbers against the observations: what a perfect OD
achieves. The metamodel is deterministic and its budget only stops it, so a
smaller budget's figures are read from the prefix of the largest budget's
run; SPSA's gains depend on the budget, so it runs once per budget.

Usage::

    python bench/calibration.py                       # 3 seeds, budgets 15 and 30
    python bench/calibration.py --seeds 11 --budgets 15   # reduced
    # one process per seed, side by side, then the combined table:
    python bench/calibration.py --seeds 11 --out runs/bc11 &   (12, 13 likewise)
    python bench/calibration.py --table runs/bc11 runs/bc12 runs/bc13
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from egress.calibration import calibrate, calibration_problem, evaluate, read_prior
from egress.calibration.driver import REPLICATE

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "scenarios" / "observations" / "sodo-large-event"
SCENARIO = ROOT / "scenarios" / "sodo-large-event.toml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13])
    ap.add_argument("--budgets", type=int, nargs="+", default=[15, 30])
    ap.add_argument("--methods", nargs="+", default=["metamodel", "spsa"])
    ap.add_argument("--micro", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-calibration"))
    ap.add_argument("--table", nargs="+", metavar="DIR",
                    help="only print the combined table of earlier runs' --out folders "
                         "(e.g. one process per seed, run side by side)")
    args = ap.parse_args()
    if args.table:
        report(pd.concat([pd.read_csv(Path(d) / "bench.csv") for d in args.table],
                         ignore_index=True))
        return
    out = Path(args.out)
    rows = []
    for seed in args.seeds:
        problem = calibration_problem(SCENARIO, DATA / "observations.csv",
                                      prior=DATA / "prior.od.csv",
                                      mode="micro" if args.micro else "meso", seed=seed)
        truth = read_prior(DATA / "truth.od.csv", problem.zones)
        key = ["kind", "origin", "destination", "begin", "end"]
        xt = problem.prior[key].merge(truth, on=key, how="left")["trips"].fillna(0).to_numpy()
        t0 = time.perf_counter()
        floor = evaluate(problem, xt, out / f"truth-seed{seed}")
        print(f"seed {seed}: noise floor RMSE {floor.metrics['rmse_kmh']:.2f} km/h, objective "
              f"{floor.objective:.3g} ({time.perf_counter() - t0:.0f} s)", flush=True)
        for method in args.methods:
            budgets = [max(args.budgets)] if method == "metamodel" else sorted(args.budgets)
            for budget in budgets:
                t0 = time.perf_counter()
                res = calibrate(problem, out / f"{method}-b{budget}-s{seed}", method=method,
                                budget=budget, seed=seed, progress=False, figures=True)
                h = res.history
                # the floor scored with the objective of this run (its model noise)
                floor_objective = res.targets.objective(floor.sim(), xt)
                for b in sorted(args.budgets) if method == "metamodel" else [budget]:
                    hb = h.iloc[:b]
                    cand = hb.loc[hb["tag"] != REPLICATE]
                    best = cand.loc[cand["objective"].idxmin()]
                    rows.append({
                        "method": method, "budget": b, "seed": seed,
                        "objective": best["objective"], "rmse_kmh": best["rmse_kmh"],
                        "rmse/floor": best["rmse_kmh"] / floor.metrics["rmse_kmh"],
                        "geh_share": best["geh_share"], "sims": len(hb),
                        "wall_s": float(hb["wall_s"].iloc[-1]),
                        "model/sumo": float(hb["model_s"].sum() / hb["sumo_s"].sum()),
                        "prior_objective": h["objective"].iloc[0],
                        "prior_rmse": h["rmse_kmh"].iloc[0],
                        "floor_objective": floor_objective,
                        "floor_rmse": floor.metrics["rmse_kmh"]})
                print(f"  {method} budget {budget}: {time.perf_counter() - t0:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "bench.csv", index=False)
    report(table)


def report(table: pd.DataFrame) -> None:
    """Print the table, the means over seeds and metamodel / SPSA at equal budgets."""
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        agg = table.groupby(["method", "budget"])[["objective", "rmse_kmh", "rmse/floor",
                                                   "geh_share", "model/sumo"]].mean()
        print("\nmeans over seeds")
        print(agg.to_string(float_format=lambda v: f"{v:.3g}"))
    if {"metamodel", "spsa"} <= set(table["method"]):
        piv = table.pivot_table(index=["budget", "seed"], columns="method", values="objective")
        ratio = (piv["metamodel"] / piv["spsa"]).to_numpy()
        print(f"\nmetamodel / spsa objective at equal budget: {np.round(ratio, 3).tolist()}")


if __name__ == "__main__":
    main()
