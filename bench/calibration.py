"""Benchmark: robustness of OD calibration to the prior, metamodel vs SPSA.

Problems
    ``corridor``: a hand-made freeway corridor with five loop detectors,
    counts only (:mod:`corridor`, built at bench time from
    ``bench/data/corridor/``); ``sodo-normal-evening`` and
    ``sodo-large-event``: the synthetic SODO sets shipped in
    ``scenarios/observations/`` (speeds, counts, travel times), full windows.
Priors
    ``half`` (truth × 0.5), ``double`` (truth × 2) and ``uniform`` (each
    kind's true total spread evenly over every row of that kind in the
    prior's support: every OD pair and interval); ``shipped`` (the shipped
    perturbed prior, SODO only) on request.
Methods
    ``metamodel`` and ``spsa``, each with the same budget per problem, with
    the defaults a user gets (the model noise estimated from the start's
    replicate and again at the incumbent's first redraw, λ and the prior on
    totals as in :class:`egress.calibration.Problem`).

One score for all priors
    Each calibration's own objective holds its model-noise estimate and its
    prior terms (the pull towards *its* prior), so its figures cannot be
    compared across priors. Every calibrated OD (the best evaluation of the
    run) is therefore scored by the *data term* of one fixed objective per
    problem: the problem's targets with the model noise measured from the
    truth simulated with the calibration seed and with seed + 1
    (:func:`egress.calibration.metamodel.estimate_model_noise`).

    The score is the mean over :data:`HELD_OUT_SEEDS`, simulations of the
    calibrated OD with seeds no calibration used (``objective``). The best
    evaluation's own simulation (``in_run``) is the minimum over a run's
    noisy draws and so flatters it: on the corridor one draw of the same OD
    spreads over ±30 %, and a run that happened to draw low there looked
    better than the truth itself. The truth's mean score over the same
    seeds is the noise floor (about 1: a perfect OD). With several
    calibration ``--seeds``, the checks use each prior's mean over them.
    ``J`` is the run's own objective.

Checks (printed with PASS/FAIL)
    1. From every prior the metamodel's final objective is within 1.2× of
       the best found for that problem (any method, any prior, same budget).
    2. The metamodel's objective is at most 0.5× SPSA's, per problem and prior.
    3. Time outside SUMO is under 20 % of SUMO time per calibration:
       ``model/sumo`` = the search's own time (``model_s``) over the
       evaluations' SUMO time (``sumo_s``: routing, the SUMO process, reading
       its outputs); ``outside/sumo`` = everything else in the wall time
       (sampling trips, aggregating for the metamodel, writing) over SUMO
       time, for the record.

A bare ``sumo -c`` of the truth's run configuration is timed once per
problem and printed next to the same run's ``simulate_s`` through egress
(compare the two; absolute times depend on the machine). ``bench.csv`` also
holds ``simulate/bare``, the calibration's mean over that bare run: a
calibration through a gridlocked OD simulates much longer than the truth.

Run time per calibration (each adds three held-out simulations), measured
with two or three calibrations sharing two cores: the corridor under a
minute, the normal evening 30-80 s, the large event 4-7 minutes (budget 30)
and SPSA from its doubled prior 23 minutes (it stays in the gridlock of its
start: 2,000 teleports, simulations of 16-24 s). Run one problem per process
and combine the tables.

Usage::

    python bench/calibration.py                           # everything (see below)
    python bench/calibration.py --problems corridor --budget 10   # reduced
    # one problem per process, then the combined table:
    python bench/calibration.py --problems corridor --out runs/bc-corridor
    python bench/calibration.py --problems sodo-normal-evening --out runs/bc-normal
    python bench/calibration.py --table runs/bc-corridor runs/bc-normal
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corridor  # noqa: E402

from egress import sumo  # noqa: E402
from egress.calibration import (  # noqa: E402
    calibrate,
    calibration_problem,
    evaluate,
    read_prior,
)
from egress.calibration.metamodel import estimate_model_noise  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = ("corridor", "sodo-normal-evening", "sodo-large-event")
#: Simulations per calibration, by problem (the same for every prior and method):
#: a corridor simulation takes under a second, a normal-evening one about 2 s and a
#: large-event one about 5 (more from a doubled prior, which gridlocks). From half
#: the true demand a budget of 15 stopped the large event's metamodel search while it
#: was still descending (seed 3: 10 of its 11 proposals accepted, the objective from
#: 12.3 to 3.37, the trust region at its largest), so its budget is 30, the corridor's.
BUDGETS = {"corridor": 30, "sodo-normal-evening": 20, "sodo-large-event": 30}
PRIORS = ("half", "double", "uniform")
#: Seed of every calibration's simulations (the truths were simulated with another).
SEED = 3
#: Seeds of the simulations that score each calibrated OD and the truth: no
#: calibration draws from them (calibrations use their seed and seed + 1).
HELD_OUT_SEEDS = (1001, 1002, 1003)
KEY = ["kind", "origin", "destination", "begin", "end"]


def make_prior(truth: pd.DataFrame, which: str) -> pd.DataFrame:
    """A prior OD from the true one (same rows): ``half``, ``double`` or ``uniform``."""
    trips = truth["trips"].to_numpy(dtype=float)
    if which == "half":
        return truth.assign(trips=0.5 * trips)
    if which == "double":
        return truth.assign(trips=2.0 * trips)
    if which == "uniform":
        total = truth.groupby("kind")["trips"].transform("sum")
        rows = truth.groupby("kind")["trips"].transform("size")
        return truth.assign(trips=(total / rows).to_numpy(dtype=float))
    raise ValueError(f"unknown prior {which!r}")


class Case:
    """One benchmark problem: how to build its calibration problem from a prior."""

    def __init__(self, name: str, out: Path):
        self.name, self.out = name, out
        if name == "corridor":
            self.files = corridor.build(out / "corridor")
            self.truth = pd.read_csv(self.files["truth"]).assign(kind="background")
        else:
            data = ROOT / "scenarios" / "observations" / name
            # the scenario the synthetic set was made from, kept beside it
            self.scenario = ROOT / "scenarios" / "observations" / f"{name}.toml"
            self.data = data
            self.truth = read_prior(data / "truth.od.csv")
        self.shipped = None if name == "corridor" else \
            read_prior(ROOT / "scenarios" / "observations" / name / "prior.od.csv")

    def problem(self, prior: pd.DataFrame, tag: str, seed: int = SEED):
        if self.name == "corridor":
            path = self.out / "priors" / f"{tag}.od.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            prior.drop(columns=["kind"]).to_csv(path, index=False)
            return corridor.problem(self.files, path, seed=seed)
        return calibration_problem(self.scenario, self.data / "observations.csv", prior=prior,
                                   mode="meso", seed=seed)

    def prior(self, which: str) -> pd.DataFrame:
        if which == "shipped":
            if self.shipped is None:
                raise ValueError("the corridor has no shipped prior")
            return self.shipped
        return make_prior(self.truth, which)


def count_nrmse(obs_table: pd.DataFrame, values: pd.DataFrame) -> float:
    """sqrt(n Σ (obs - sim)²) / Σ obs over the observed counts (NaN without counts)."""
    o = obs_table["count"].to_numpy(dtype=float)
    s = values["count"].to_numpy(dtype=float)
    ok = np.isfinite(o) & np.isfinite(s)
    if not ok.any():
        return float("nan")
    return float(np.sqrt(ok.sum() * np.sum((o[ok] - s[ok]) ** 2)) / np.sum(o[ok]))


def bare_sumo(run_dir: Path) -> float:
    """Seconds of a bare ``sumo -c`` of an evaluation's kept configuration."""
    cfg = run_dir / "run.sumocfg"
    t0 = time.perf_counter()
    subprocess.run([sumo.binary("sumo"), "-c", str(cfg), "--no-step-log", "true"],
                   cwd=run_dir, check=True, capture_output=True)
    return time.perf_counter() - t0


def held_out_score(ref, fixed, od: pd.DataFrame, theta, out: Path) -> float:
    """Mean data term of `fixed` over :data:`HELD_OUT_SEEDS` simulations of `od`."""
    x = ref.prior[KEY].merge(od[KEY + ["trips"]], on=KEY, how="left")["trips"].fillna(0)
    scores = [fixed.misfit(evaluate(ref, x.to_numpy(dtype=float), out / f"seed-{s}", seed=s,
                                    theta=theta).sim())
              for s in HELD_OUT_SEEDS]
    return float(np.mean(scores))


def bench_problem(name: str, priors: list[str], methods: list[str], budget: int,
                  out: Path, resume: bool = False, done: list[dict] | None = None,
                  seeds: tuple[int, ...] = (SEED,)) -> pd.DataFrame:
    """Every prior × method × calibration seed of one problem; one row per calibration.

    With `resume`, calibrations found in `out` are replayed from their
    simulations on disk and continued (see :func:`egress.calibration.calibrate`);
    the rows so far are written to ``out/../bench.csv`` after each calibration.
    """
    t0 = time.perf_counter()
    case = Case(name, out)
    ref = case.problem(case.truth, "truth")
    xt = ref.prior[KEY].merge(case.truth, on=KEY, how="left")["trips"].fillna(0).to_numpy()
    # the fixed objective of this problem: model noise from two seeds of the truth
    floor = evaluate(ref, xt, out / "truth" / "run", keep_runs=True)
    rep = evaluate(ref, xt, out / "truth-replicate" / "run", seed=SEED + 1)
    noise = estimate_model_noise(floor.sim(), rep.sim(), ref.targets.idx)
    fixed = ref.targets_with(noise)
    floor_obj = held_out_score(ref, fixed, case.truth, None, out / "truth-held-out")
    bare = bare_sumo(out / "truth" / "run") if (out / "truth" / "run" / "run.sumocfg").is_file() \
        else float("nan")
    print(f"{name}: {len(ref.prior)} OD rows, {ref.obs.n_values} observed values; model noise "
          f"speed {noise.speed:.2f} km/h, counts {100 * noise.count:.1f} %, travel times "
          f"{noise.travel_time:.3f}; truth objective (noise floor, {len(HELD_OUT_SEEDS)} "
          f"held-out seeds) {floor_obj:.3g}; truth run "
          f"simulate_s {floor.info['simulate_s']:.2f} s vs bare sumo {bare:.2f} s "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = []
    for which, seed, method in itertools.product(priors, seeds, methods):
        problem = case.problem(case.prior(which), which, seed)
        folder = out / (f"{which}-{method}" if seed == SEED else f"{which}-{method}-s{seed}")
        t1 = time.perf_counter()
        res = calibrate(problem, folder, method=method, budget=budget,
                        seed=seed, progress=False, figures=False, resume=resume)
        h = res.history
        summary = json.loads((folder / "summary.json").read_text())
        obj = held_out_score(ref, fixed, res.od, res.best.theta, folder / "held-out")
        rows.append({
            "problem": name, "prior": which, "method": method, "seed": seed,
            "budget": budget, "objective": obj, "in_run": fixed.misfit(res.best.sim()),
            "prior_objective": fixed.misfit(res.prior.sim()),
            "floor": floor_obj, "J": res.best.objective,
            "rmse_kmh": res.best.metrics.get("rmse_kmh", np.nan),
            "count_nrmse": count_nrmse(problem.obs.table, res.best.values),
            "sims": len(h), "best_sim": summary["best"]["sim"],
            "wall_s": float(h["wall_s"].iloc[-1]),
            "model/sumo": float(h["model_s"].sum() / h["sumo_s"].sum()),
            "outside/sumo": float((h["wall_s"].iloc[-1] - h["sumo_s"].sum())
                                  / h["sumo_s"].sum()),
            "simulate/bare": float(h["simulate_s"].mean() / bare),
            "stopped": summary.get("stopped", "")})
        print(f"  {which} {method} seed {seed}: objective {obj:.3g} (in run "
              f"{rows[-1]['in_run']:.3g}, prior {rows[-1]['prior_objective']:.3g}), "
              f"{len(h)} sims, {time.perf_counter() - t1:.0f} s", flush=True)
        pd.DataFrame((done or []) + rows).to_csv(out.parent / "bench.csv", index=False)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    ap.add_argument("--priors", nargs="+", default=list(PRIORS),
                    choices=[*PRIORS, "shipped"])
    ap.add_argument("--methods", nargs="+", default=["metamodel", "spsa"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[SEED],
                    help=f"calibration seeds, each prior and method once per seed (default "
                         f"{SEED}); the checks use each prior's mean over them")
    ap.add_argument("--budget", type=int, help="simulations per calibration for every problem "
                    f"(default per problem: {BUDGETS})")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-calibration"))
    ap.add_argument("--resume", action="store_true",
                    help="replay the calibrations already in --out from disk and continue them")
    ap.add_argument("--table", nargs="+", metavar="DIR",
                    help="only print the combined table and checks of earlier runs' --out "
                         "folders (e.g. one problem per process)")
    args = ap.parse_args()
    if args.table:
        report(pd.concat([pd.read_csv(Path(d) / "bench.csv") for d in args.table],
                         ignore_index=True))
        return
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tables = []
    for name in args.problems:
        done = pd.concat(tables).to_dict("records") if tables else []
        tables.append(bench_problem(name, args.priors, args.methods,
                                    args.budget or BUDGETS[name], out / name, args.resume, done,
                                    tuple(args.seeds)))
        pd.concat(tables, ignore_index=True).to_csv(out / "bench.csv", index=False)
    print(f"bench wall time {time.perf_counter() - t0:.0f} s")
    report(pd.concat(tables, ignore_index=True))


def report(table: pd.DataFrame) -> None:
    """Print the table and the three checks with their figures."""
    if "seed" not in table:  # tables written before calibration seeds were a column
        table = table.assign(seed=SEED, in_run=np.nan)
    cols = ["problem", "prior", "method", "seed", "budget", "objective", "in_run",
            "prior_objective", "floor", "J", "rmse_kmh", "count_nrmse", "sims", "best_sim",
            "wall_s", "model/sumo", "outside/sumo"]
    with pd.option_context("display.width", 240, "display.max_columns", 30):
        print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print("\nwhy each stopped:")
        for _, r in table.iterrows():
            print(f"  {r['problem']} {r['prior']} {r['method']} seed {r['seed']}: {r['stopped']}")
    print()
    # the checks compare each prior's mean over the calibration seeds
    mean = table.groupby(["problem", "prior", "method"], sort=False, as_index=False).agg(
        objective=("objective", "mean"), seeds=("seed", "size"),
        low=("objective", "min"), high=("objective", "max"))
    for _, r in mean.iterrows():
        if r["seeds"] > 1:
            print(f"{r['problem']} {r['prior']} {r['method']}: mean objective {r['objective']:.3g} "
                  f"over {r['seeds']} seeds ({r['low']:.3g}-{r['high']:.3g})")
    runs, table = table, mean
    # 1. every prior within 1.2x of the best found for the problem (metamodel)
    best = table.groupby("problem")["objective"].min()
    meta = table.loc[table["method"] == "metamodel"]
    for problem, grp in meta.groupby("problem", sort=False):
        ratios = grp["objective"] / best[problem]
        figures = ", ".join(f"{p} {r:.2f}" for p, r in zip(grp["prior"], ratios, strict=True))
        print(f"check 1 {problem}: metamodel objective / best found ({best[problem]:.3g}): "
              f"{figures} -> {'PASS' if (ratios <= 1.2).all() else 'FAIL'}")
    # 2. metamodel <= 0.5x SPSA per problem and prior
    if {"metamodel", "spsa"} <= set(table["method"]):
        piv = table.pivot_table(index=["problem", "prior"], columns="method",
                                values="objective", sort=False)
        for (problem, prior), r in piv.iterrows():
            if not np.isfinite(r["metamodel"] / r["spsa"]):
                print(f"check 2 {problem} {prior}: a calibration is missing -> n/a")
                continue
            ratio = r["metamodel"] / r["spsa"]
            print(f"check 2 {problem} {prior}: metamodel / spsa {r['metamodel']:.3g} / "
                  f"{r['spsa']:.3g} = {ratio:.2f} -> {'PASS' if ratio <= 0.5 else 'FAIL'}")
    # 3. time outside SUMO < 20 % of SUMO time per calibration
    for _, r in runs.iterrows():
        ok = r["model/sumo"] < 0.2
        print(f"check 3 {r['problem']} {r['prior']} {r['method']} seed {r['seed']}: model/sumo "
              f"{100 * r['model/sumo']:.1f} % (all outside/sumo {100 * r['outside/sumo']:.1f} %)"
              f" -> {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
