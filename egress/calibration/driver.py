"""Calibrating OD demand to observed segment speeds, counts and travel times.

``egress calibrate`` adjusts an OD table so that the simulation reproduces
the observations (:mod:`egress.calibration.observations`), in as few simulations as
possible.

The decision vector
    Every row (kind, origin, destination, interval) of the prior OD table;
    ``x`` holds its trips (>= 0). One *evaluation* turns ``x`` into trips
    with :func:`egress.demand.sampling.sample_trips`, routes them with
    :func:`egress.demand.routing.route_vehicles` and runs SUMO (meso by default, micro
    with ``mode="micro"``) with edgeData and vehroutes (exit times). The
    sampling, routing and SUMO seeds are the same for every evaluation
    (common random numbers), so two ODs differ in their results only
    through the OD. Each evaluation counts one against the budget.
The objective
    ``J`` of :class:`egress.calibration.metamodel.Targets`: weighted squared errors of
    speeds, counts and travel times per observed value plus an optional
    regularisation towards the prior (λ = ``regularization``). The weights
    hold the measurement noise and, by default, the simulation's own noise,
    measured at the start: the second evaluation (tag ``replicate``)
    simulates the start OD again with seed + 1, and the spread between the
    two (:func:`egress.calibration.metamodel.estimate_model_noise`) enters every weight.
    Without it, values whose measurement is precise (travel times, counts)
    but whose simulation is not would outweigh the rest with differences
    that are only the simulation's randomness. How random a simulation is
    depends on its demand, so the noise is measured again where the search
    stands: when an incumbent is simulated a second time (its first redraw),
    the spread between its two draws replaces the start's, and every
    evaluation is scored anew. Found on the bench's large event: from a
    uniform prior the start spreads the event's cars over every interval and
    destination, 130-180 of them teleport, and its noise (speed 8.2 km/h,
    counts 27 %) made every later OD look as good as a perfect one (J 0.76)
    while it scored 1.55 on held-out seeds; measured at the incumbent after
    five simulations its speed noise is a quarter of that, its count noise
    half, and the same calibration (budget 30) ends at 1.22 (over
    calibration seeds 3-5: 1.05). Reported
    with the speed RMSE (km/h), RMSNE and R², and the share of counts with
    GEH < 5 (hourly flows ``M``, ``C``: ``GEH = sqrt(2 (M - C)² / (M + C))``).
The optimizers
    ``metamodel`` (default, see :mod:`egress.calibration.metamodel`) and ``spsa``
    (:mod:`egress.calibration.spsa`).
Outputs (`out`)
    ``calibrated.od.csv`` (with ``kind``) and ``calibrated.tazrel.xml``
    (the best OD, written when the search ends, also when it is interrupted),
    ``convergence.csv``
    (sim, tag, objective, rmse_kmh, rmsne, r2, geh_share, rmse_count,
    rmse_travel_time, accepted, best, wall_s, sumo_s, model_s, collect_s,
    sample_s, route_s, simulate_s, read_s, teleports: the times as in
    :class:`egress.calibration.runs.Evaluation`, ``model_s`` the search's own
    time before the evaluation, ``wall_s`` since the calibration started;
    the metamodel's proposals also its level, trust-region radius and
    predicted objective; ``supply.<name>`` the supply parameters it ran with),
    ``fit.csv`` (every observation with the prior's and the best simulated
    value), ``matched_segments.csv`` and ``matched_segments.png`` (how each
    observed segment was matched onto the network, and what was merged or
    dropped), ``diagnosis.csv`` (misfit by road class, see
    :mod:`egress.calibration.diagnosis`), ``calibrated.supply.toml`` (when
    supply parameters are calibrated), ``scatter.png`` (observed vs simulated
    speeds before and after, with x = y), ``convergence.png``,
    ``summary.json`` and ``state.json`` plus ``sims/NNN/`` (each
    evaluation's OD and aggregated results).
Resume
    ``state.json`` is replaced atomically after every evaluation (by a
    thread of its own while the next simulation runs; a calibration that
    stops, however it stops, waits for it). Both
    optimizers are deterministic functions of their inputs and of the
    evaluations (the SPSA perturbation of iteration k is drawn from
    ``default_rng([seed, k])``), so ``resume=True`` replays the algorithm,
    taking every evaluation already on disk from ``sims/`` instead of
    simulating it, and continues where it stopped.
"""


from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..config.supply import SCALARS
from ..demand import od as odmod
from ..engine import versions
from ..errors import InputError, Problems
from ..files import BackgroundWriter, atomic_csv, atomic_json, atomic_text, json_text
from ..progress import bar as progress_bar
from .diagnosis import diagnose
from .figures import plot_convergence, plot_scatter
from .matched import write_matched_segments
from .metamodel import (
    ModelNoise,
    Targets,
    estimate_model_noise,
)
from .problem import Problem
from .runs import ENTRY_WAIT, Evaluation, evaluate
from .search import model_around, run_metamodel, run_spsa

log = logging.getLogger(__name__)

METHODS = ("metamodel", "spsa")


#: Tag of the start OD's second simulation, with seed + :data:`REPLICATE_SEED_OFFSET`,
#: from which the simulation's own noise is estimated.
REPLICATE = "replicate"


REPLICATE_SEED_OFFSET = 1


@dataclass
class CalibrationResult:
    """What :func:`calibrate` produced.

    Attributes
    ----------
    od : pandas.DataFrame
        The calibrated OD (best evaluated), with ``kind``.
    history : pandas.DataFrame
        The convergence table.
    prior, best : Evaluation
    files : dict
    targets : Targets
        The objective the run used (with its model noise).
    supply : dict
        The calibrated supply parameters by name (empty when none were calibrated).
    diagnosis : egress.calibration.diagnosis.Diagnosis or None
        What in the misfit the OD cannot explain (None without speeds).
    held_outside : dict
        The calibrated OD's vehicles held outside the network (``vehicles,
        share, origins, message``), when more than :data:`ENTRY_WAIT_SHARE`
        of them; empty otherwise.
    """

    od: pd.DataFrame
    history: pd.DataFrame
    prior: Evaluation
    best: Evaluation
    files: dict[str, Path]
    targets: Targets | None = None
    supply: dict[str, float] = field(default_factory=dict)
    diagnosis: Any = None
    held_outside: dict[str, Any] = field(default_factory=dict)


class _Budget(Exception):
    """Raised inside an optimizer when the budget is spent."""


def _read_calibration_state(path: Path) -> dict[str, Any]:
    """The ``state.json`` of a calibration to resume, checked: a file that is not one
    (another tool's, truncated, edited) is bad input, named, rather than a traceback
    half-way through reading it."""
    try:
        state = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(path), f"not a calibration state ({type(exc).__name__}); use "
                         "another --out or drop --resume") from None
    history = state.get("history") if isinstance(state, dict) else None
    if (not isinstance(history, list) or "fingerprint" not in state
            or not all(isinstance(r, dict) and "tag" in r for r in history)):
        raise InputError(str(path), "not a calibration state (no fingerprint and history); "
                         "use another --out or drop --resume")
    return state


class _Runner:
    """Evaluations with caching on disk, the shared budget counter and the log."""

    def __init__(self, problem: Problem, out: Path, method: str, budget: int, seed: int,
                 resume: bool, keep_runs: bool, progress: bool, noise_setting: Any = None):
        self.p, self.out, self.method, self.budget = problem, out, method, budget
        self.keep_runs = keep_runs
        self.targets = problem.targets
        self.done: dict[str, Evaluation] = {}
        self.fp = problem.fingerprint(method, {"seed": seed, "model_noise": noise_setting})
        self.state_path = out / "state.json"
        self.cached: dict[str, dict] = {}
        if resume and self.state_path.is_file():
            state = _read_calibration_state(self.state_path)
            if state.get("fingerprint") != self.fp:
                raise InputError(str(out), "holds a calibration with other inputs or settings; "
                                 "use another --out or drop --resume")
            self.cached = {row["tag"]: row for row in state["history"]}
        elif self.state_path.is_file() and not resume:
            shutil.rmtree(out / "sims", ignore_errors=True)
        # the results of an earlier calibration in this folder are stale from now on: a
        # folder without summary.json is one whose calibration has not finished
        for name in ("summary.json", "fit.csv"):
            (out / name).unlink(missing_ok=True)
        self.history: list[dict] = []
        self.evals: list[Evaluation] = []
        self.candidates: list[Evaluation] = []
        self.best: Evaluation | None = None
        self.model_s = 0.0
        self.objective_noise = 0.0
        self.noise_at = None           # where the model noise was estimated (None: given)
        self.writer = BackgroundWriter()
        self.started = time.perf_counter()
        self.bar = progress_bar(progress, total=budget, unit="sim",
                                desc=f"calibrating ({method})")
        self.seed = seed

    def __call__(self, x: np.ndarray, tag: str, *, seed: int | None = None,
                 theta: np.ndarray | None = None, candidate: bool = True,
                 info: dict[str, Any] | None = None) -> Evaluation:
        """Evaluate `x` with supply parameters `theta` (default: the incumbent's,
        or the start's) once per `tag`; `seed` replaces the simulation seed,
        an evaluation that is not a `candidate` never becomes the best, and
        `info` goes into its row of the convergence table."""
        if tag in self.done:
            return self.done[tag]
        if len(self.history) >= self.budget:
            raise _Budget
        x = self.p.feasible(x)
        if theta is None:
            theta = self.best.theta if self.best is not None else self.p.theta0
        theta = np.clip(np.asarray(theta, dtype=float), self.p.supply_bounds[:, 0],
                        self.p.supply_bounds[:, 1])
        n = len(self.history)
        folder = self.out / "sims" / f"{n:03d}"
        row = self.cached.get(tag)
        ev = None
        if row is not None and (folder / "meta.json").is_file():
            ev = Evaluation.load(folder)
            if not (np.allclose(ev.x, x, rtol=1e-9, atol=1e-9)
                    and len(ev.theta) == len(theta)
                    and np.allclose(ev.theta, theta, rtol=1e-9, atol=1e-12)):
                log.warning("resume: evaluation %s differs from the one on disk; re-simulating",
                            tag)
                ev = None
        if ev is None:
            ev = evaluate(self.p, x, folder / "run", keep_runs=self.keep_runs, seed=seed,
                          theta=theta)
            ev.save(folder)
            wall = time.perf_counter() - self.started
        else:
            wall = row["wall_s"]
        ev.objective = self.score(ev)
        accepted = candidate and (self.best is None or ev.objective < self.best.objective)
        if accepted:
            self.best = ev
        self.done[tag] = ev
        self.evals.append(ev)
        if candidate:
            self.candidates.append(ev)
        self.history.append({
            "sim": n + 1, "tag": tag, "objective": ev.objective, **ev.metrics,
            "accepted": accepted, "best": self.best.objective if self.best else math.nan,
            "wall_s": wall,
            "sumo_s": ev.info.get("sumo_s", math.nan), "model_s": self.model_s,
            "collect_s": ev.info.get("collect_s", math.nan),
            **{k: ev.info.get(k, math.nan) for k in ("sample_s", "route_s", "simulate_s",
                                                      "read_s")},
            "teleports": ev.info.get("teleports", 0),
            "entry_waits": ev.info.get("entry_waits", math.nan),
            **{f"supply.{k}": v for k, v in self.p.supply_values(ev.theta).items()},
            **(info or {})})
        self.model_s = 0.0
        if self.best is not None:
            self._save()
        self.bar.update(1)
        self.bar.set_postfix(objective=f"{self.best.objective:.3g}",
                             rmse=f"{self.best.metrics.get('rmse_kmh', math.nan):.2f}")
        return ev

    def score(self, ev: Evaluation) -> float:
        """The objective of `ev`: the mean over its draws (one unless redrawn)."""
        return float(np.mean([self.targets.objective(sim, ev.x) for sim in ev.draws()]))

    def redraw_best(self) -> Evaluation:
        """Simulate the incumbent again with the next seed (one evaluation of the
        budget), score it by the mean over its draws, and make the candidate with
        the lowest score the incumbent.

        The incumbent is the lowest of many noisy draws, so its own draw tends
        to be a lucky one: every proposal is then measured against a value its
        OD does not give, and rejected. A redraw brings it back to what it
        gives; the evaluation appears in the convergence table (tag
        ``<incumbent's tag>-redraw<k>``), never as a candidate itself.
        """
        best = self.best
        tag = next(row["tag"] for e, row in zip(self.evals, self.history, strict=True)
                   if e is best)
        k = len(best.redraws) + 1
        ev = self(best.x, f"{tag}-redraw{k}", theta=best.theta,
                  candidate=False,
                  seed=self.p.scenario.simulation.seed + REPLICATE_SEED_OFFSET + k)
        best.redraws.append(ev)
        best.objective = self.score(best)
        self.best = min(self.candidates, key=lambda e: e.objective)
        self.history[-1]["best"] = self.best.objective
        log.info("redraw of the incumbent %s: %.4g over %d draws; incumbent now sim %d (%.4g)",
                 tag, best.objective, k + 1, self.best_sim, self.best.objective)
        if self.noise_at is not None and k == 1:  # estimated: measure it again here
            self.noise_from(best, ev, tag)
        self._save()
        return ev

    def noise_from(self, a: Evaluation, b: Evaluation, where: str) -> None:
        """Estimate the model noise from two draws `a`, `b` of one OD and score every
        evaluation with it (see "The objective")."""
        noise = estimate_model_noise(a.sim(), b.sim(), self.p.targets.idx)
        log.info("model noise at %s: speed %.2f km/h, counts %.1f %%, travel times %.2f "
                 "(sd of ln)", where, noise.speed, 100 * noise.count, noise.travel_time)
        self.set_targets(self.p.targets_with(noise))
        self.noise_at = where
        # the objective's own noise: two draws of one OD differ by sqrt(2) of it; of its
        # data term, since a start that overloads its entries holds hundreds of vehicles
        # more in one draw than in the other, and an answer that holds none has no such noise
        t = self.targets
        self.objective_noise = abs(t.misfit(a.sim()) - t.misfit(b.sim())) / math.sqrt(2)

    @property
    def best_sim(self) -> int:
        """Number (from 1) of the best evaluation."""
        return next(i for i, ev in enumerate(self.evals) if ev is self.best) + 1

    def set_targets(self, targets: Targets) -> None:
        """Score every evaluation so far with new `targets` (the start's replicate
        stays out of the running for the best)."""
        self.targets = targets
        best = None
        for ev, row in zip(self.evals, self.history, strict=True):
            row["objective"] = targets.objective(ev.sim(), ev.x)
            ev.objective = self.score(ev)
            row["accepted"] = (any(ev is c for c in self.candidates)
                               and (best is None or ev.objective < best.objective))
            if row["accepted"]:
                best = ev
            row["best"] = best.objective
        self.best = best
        self._save()

    def save_best(self) -> None:
        """Write the best OD (and supply parameters) so far."""
        best_od = self.p.od(self.best.x)
        atomic_csv(best_od, self.out / "calibrated.od.csv")
        if len(self.p.supply_names):
            # the whole [supply] table: the parameters held fixed (a jam threshold, say)
            # belong to the calibrated supply as much as the ones moved
            write_supply_toml(self.p.scenario_with(self.best.theta).supply.values(),
                              self.out / "calibrated.supply.toml")
        total = best_od.groupby(["origin", "destination", "begin", "end"], as_index=False,
                                sort=True)["trips"].sum()
        odmod.write_tazrelation(total[list(odmod.OD_COLUMNS)], self.out / "calibrated.tazrel.tmp")
        os.replace(self.out / "calibrated.tazrel.tmp", self.out / "calibrated.tazrel.xml")

    def set_best(self, ev: Evaluation) -> None:
        """Make the candidate `ev` the answer (the incumbent), in the tables too."""
        self.best = ev
        self.history[-1]["best"] = ev.objective
        self._save()

    def _save(self) -> None:
        """Write the convergence table and the state (the best OD is written when
        the search ends, however it ends: a large OD takes longer to write than
        a simulation's bookkeeping, and the state is enough to resume), as they
        are now, in the background (:class:`egress.files.BackgroundWriter`)."""
        self.writer.submit(atomic_csv, pd.DataFrame(self.history), self.out / "convergence.csv")
        noise = self.targets.model_noise
        self.writer.submit(atomic_text, self.state_path, json_text({
            "fingerprint": self.fp, "method": self.method, "budget": self.budget,
            "seed": self.seed, "rng": "spsa: numpy default_rng([seed, k]) per iteration",
            "model_noise": None if noise is None else asdict(noise),
            "history": self.history, "best_sim": self.best_sim}))


def calibrate(problem: Problem, out: str | Path, *, method: str = "metamodel", budget: int = 15,
              seed: int | None = None, resume: bool = False, keep_runs: bool = False,
              progress: bool = True, figures: bool = True,
              model_noise: str | ModelNoise | None = "estimate") -> CalibrationResult:
    """Calibrate the OD of `problem` to its observations.

    Parameters
    ----------
    problem : Problem
        From :func:`calibration_problem` or :func:`plain_calibration_problem`.
    out : str or pathlib.Path
        Output folder (see the module docstring).
    method : {"metamodel", "spsa"}
    budget : int
        Simulations allowed, the prior's included (>= 2).
    seed : int, optional
        Seed of the optimizer (SPSA perturbations); default the scenario's.
    resume : bool
        Continue a calibration interrupted in `out`.
    keep_runs : bool
        Keep every evaluation's SUMO files (routes, vehroutes, tripinfo).
    progress : bool
    figures : bool
        Write the scatter and convergence figures.
    model_noise : "estimate", ModelNoise or None
        The simulation's own noise in the objective's weights (see
        :mod:`egress.calibration.metamodel`). ``"estimate"`` (default, needs a budget of
        at least 3): the second simulation replicates the start OD with
        another seed (tag ``replicate``; it counts against the budget and is
        never the result) and :func:`egress.calibration.metamodel.estimate_model_noise`
        measures the noise from the pair. None: measurement noise only.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    InputError
        On a bad method or budget, or when resuming with other inputs.
    """
    estimate = _check_args(problem, method, budget, model_noise)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed = problem.scenario.simulation.seed if seed is None else int(seed)
    setting = model_noise if isinstance(model_noise, str) or model_noise is None \
        else asdict(model_noise)
    run = _Runner(problem, out, method, budget, seed, resume, keep_runs, progress, setting)
    if isinstance(model_noise, ModelNoise):
        run.targets = problem.targets_with(model_noise)
    # one BLAS thread: the search's vectors are too small to gain from more, and
    # on a machine whose cores are busy (SUMO, other workers) the threads wait
    # for each other (L-BFGS-B on 32,000 OD rows: 1.3-5.7 s instead of 0.2 s)
    try:
        with threadpool_limits(1, user_api="blas"):
            stopped = _search(run, method, seed, estimate)
            log.info("calibration stopped: %s", stopped)
            run.writer.wait()  # the state and table complete before summary.json
            return _write_results(run, out, figures, stopped)
    finally:
        run.writer.close()


def _check_args(problem: Problem, method: str, budget: int, model_noise) -> bool:
    """Check :func:`calibrate`'s settings; True when the model noise is to be estimated."""
    problems = Problems("calibrate")
    if method not in METHODS:
        problems.add(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    if not isinstance(budget, int) or budget < 2:
        problems.add(f"budget: must be an integer >= 2, got {budget!r}")
    if not problem.prior_sd >= 0:
        problems.add(f"prior_sd: must be >= 0, got {problem.prior_sd!r}")
    estimate = isinstance(model_noise, str) and model_noise == "estimate"
    if not (estimate or model_noise is None or isinstance(model_noise, ModelNoise)):
        problems.add(f"model_noise: must be 'estimate', a ModelNoise or None, got {model_noise!r}")
    elif estimate and isinstance(budget, int) and budget < 3:
        problems.add(f"budget: estimating the model noise needs at least 3 simulations, got "
                     f"{budget}; give a model noise or none")
    problems.raise_if_any(InputError)
    return estimate


def _search(run: _Runner, method: str, seed: int, estimate: bool) -> str:
    """The start, its replicate (to estimate the model noise), then the optimizer,
    until the budget is spent or the optimizer converges.

    Returns
    -------
    str
        Why the search stopped.
    """
    problem = run.p
    try:
        start = run(problem.x0, "start")
        if estimate:
            rep = run(problem.x0, REPLICATE, candidate=False,
                      seed=problem.scenario.simulation.seed + REPLICATE_SEED_OFFSET)
            run.noise_from(start, rep, "start")
        if method == "spsa":
            return run_spsa(run, seed)
        return run_metamodel(run)
    except _Budget:
        return "budget spent"
    finally:
        run.bar.close()
        if run.best is not None:
            run.save_best()


def _write_results(run: _Runner, out: Path, figures: bool, stopped: str) -> CalibrationResult:
    """fit.csv, the figures and summary.json of a finished calibration."""
    problem = run.p
    history = pd.DataFrame(run.history)
    prior, best = run.evals[0], run.best
    files = {"od": out / "calibrated.od.csv", "tazrel": out / "calibrated.tazrel.xml",
             "convergence": out / "convergence.csv", "state": out / "state.json"}
    fit = problem.obs.table.drop(columns=["length"]).copy()
    fit["edges"] = [" ".join(e) for e in fit["edges"]]
    for name, ev in (("prior", prior), ("best", best)):
        for k in ("speed", "count", "travel_time"):
            fit[f"{name}_{k}"] = ev.values[k].to_numpy()
    if len(problem.supply_names):
        files["supply"] = out / "calibrated.supply.toml"
    files["fit"] = out / "fit.csv"
    fit.to_csv(files["fit"], index=False)
    matched = write_matched_segments(problem.obs, problem.net, out, figure=figures)
    files["matched_segments"] = matched["table"]
    if "map" in matched:
        files["matched_segments_map"] = matched["map"]
    if figures:
        files["scatter"] = plot_scatter(problem.obs, prior, best, out / "scatter.png")
        files["convergence_plot"] = plot_convergence(history, out / "convergence.png")
    noise = run.targets.model_noise
    summary = {"method": run.method, "budget": run.budget, "seed": run.seed,
               "mode": problem.scenario.simulation.mode, "simulations": len(history),
               "model_noise": None if noise is None else asdict(noise),
               "model_noise_at": run.noise_at,
               "prior": {"objective": prior.objective, **prior.metrics},
               "best": {"objective": best.objective, **best.metrics, "sim": run.best_sim},
               "observations": problem.obs.n_values, "od_rows": len(problem.prior),
               "stopped": stopped,
               "supply": {"prior": problem.supply_values(prior.theta),
                          "best": problem.supply_values(best.theta),
                          "bounds": {k: list(v) for k, v in problem.supply.items()}},
               "versions": versions()}
    held = _held_outside(best)
    if held:
        summary["entry_waits"] = held
        log.warning("%s", held["message"])
    diagnosis = _diagnose(run)
    if diagnosis is not None:
        summary["diagnosis"] = diagnosis.to_dict()
        files["diagnosis"] = out / "diagnosis.csv"
        atomic_csv(diagnosis.classes, files["diagnosis"])
        if diagnosis.message:
            log.warning("%s", diagnosis.message)
    files["summary"] = out / "summary.json"
    atomic_json(files["summary"], summary)
    return CalibrationResult(problem.od(best.x), history, prior, best, files, run.targets,
                             problem.supply_values(best.theta), diagnosis, held)


#: Share of the simulated vehicles held outside the network (see
#: :func:`egress.calibration.runs.entry_waits`) above which a calibration warns.
ENTRY_WAIT_SHARE = 0.005


def _held_outside(best) -> dict[str, Any]:
    """The calibrated OD's vehicles held outside the network, with a one-line
    message; empty below :data:`ENTRY_WAIT_SHARE` of its vehicles (or for an
    evaluation saved without the count)."""
    n, total = best.info.get("entry_waits"), best.info.get("vehicles", 0)
    if n is None or not total or n <= ENTRY_WAIT_SHARE * total:
        return {}
    origins = best.info.get("entry_wait_origins", {})
    where = ", ".join(f"{k} ({v})" for k, v in origins.items())
    message = (f"{n} of {total} vehicles ({n / total:.1%}) of the calibrated OD waited over "
               f"{ENTRY_WAIT / 60:g} min to enter the network, most at origin {where}: demand "
               f"beyond what the model's entries carry, which no observation sees until it "
               f"drains (counts downstream stay at capacity whatever the demand behind them)")
    return {"vehicles": n, "share": n / total, "origins": origins, "message": message}


def _diagnose(run: _Runner):
    """The diagnosis of the best fit, with the metamodel around it when one can be
    fitted; None without speed observations."""
    if run.p.obs.table["speed"].notna().sum() == 0:
        return None
    try:
        model = model_around(run)
    except (ValueError, np.linalg.LinAlgError) as exc:
        log.info("diagnosis without the OD's reach: %s", exc)
        model = None
    noise = run.targets.model_noise
    return diagnose(run.p, run.best, model, noise.speed if noise is not None else 0.0)


def write_supply_toml(values: dict[str, float], path: Path) -> Path:
    """Supply parameters by name (:meth:`egress.config.supply.SupplySpec.values`) as a
    ``[supply]`` table to paste into a scenario or to name as its ``[supply] file``."""
    def toml(k: str, v: float) -> str:
        if k in SCALARS and SCALARS[k][0] == "bool":
            return "true" if v else "false"
        return f"{v:.4g}"

    scalars = {k: toml(k, v) for k, v in values.items() if "." not in k}
    groups: dict[str, dict[str, float]] = {}
    for k, v in values.items():
        if "." in k:
            group, _, kind = k.partition(".")
            groups.setdefault(group, {})[kind] = v
    lines = ["# the calibrated supply (the parameters held fixed and the ones calibrated): "
             "paste into the scenario's [supply] table", "[supply]"]
    lines += [f"{k} = {v}" for k, v in sorted(scalars.items())]
    for group, table in sorted(groups.items()):
        inner = ", ".join(f"{k} = {v:.4g}" for k, v in sorted(table.items()))
        lines.append(f"{group} = {{ {inner} }}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


__all__ = ["CalibrationResult", "METHODS", "calibrate", "write_supply_toml"]
