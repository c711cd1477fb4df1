"""Evaluating policies with common random numbers: ``egress evaluate-policy``.

Replications
    A replication is one evening. Replication ``k`` draws its own demand with
    seed ``simulation.seed + k``: every vehicle's departure time, lot, entry
    and exit edges, route and speed factor (:func:`egress.demand.vehicle_draws`),
    and SUMO's seed (used by the microscopic model's driver imperfection and
    by the signs' compliance draws). The number of vehicles per OD cell and
    interval is the OD's (rounded), the same in every replication: the OD is
    the expected evening, the replications are what varies around it.
    Within a replication the baseline and every policy variant share all of
    these draws (common random numbers), so the difference between a variant
    and its baseline is the effect of the policy, not of the dice, and the
    spread of that difference over replications is what the intervals
    measure. A scenario with fixed route files draws no demand: its
    replications differ only in SUMO's seed (which a mesoscopic run with
    fixed speed factors does not use; identical replications are reported).
Travel time
    Measured by the run engine's one definition (:mod:`egress.engine.vehicles`):
    from the planned departure (the wait to leave a lot counts) to the
    arrival or to leaving the study area; vehicles still inside at the end,
    or never inserted, count with their time so far. Every run's outputs
    pass the physical invariants (:mod:`egress.engine.invariants`); a run
    that breaks one is reported and its pairs are left out.
The comparison
    For each replication the saving is the paired difference of mean travel
    times (baseline − policy, minutes) over the vehicles present in both
    runs, for five groups: ``event`` (all event vehicles), ``compliers``
    (eligible vehicles that followed a sign), ``noncompliers`` (eligible
    vehicles that did not), ``background`` and ``all``. A vehicle is
    *eligible* when its route passes a sign towards the ramp/corridor the
    sign addresses and it reached the sign edge in the baseline run. Each
    pair also records what it compared: vehicles compared and dropped (and
    why), and per run the vehicles teleported, still inside at the end and
    never inserted. The table reports the mean saving over replications and
    its 95 % Student-t interval; a saving is *conclusive* when its interval
    excludes zero.
Precision on demand
    With ``target_halfwidth`` replications are added (in the same common
    random numbers) until every variant's event-vehicle interval is at most
    that many minutes wide on each side, or ``max_replications`` is reached.

Output folder::

    <out>/<scenario>/demand/r0/...           the demand of replication 0 (built)
    <out>/<scenario>/baseline/r0/...         one run folder per replication
    <out>/<scenario>/<policy>/infrastructure/  patched network, signal programs
    <out>/<scenario>/<policy>/f0.30/r0/      run.sumocfg (opens in sumo-gui), outputs,
                                             vehicles.<fmt> (per-vehicle travel times),
                                             inputs/ (signs.add.xml, relabelled routes)
    <out>/runs.csv       per run pair × group: means, saving, what was compared
    <out>/savings.csv    per scenario × policy × fraction × group: saving ± CI
    <out>/table.csv      the summary table that is printed
    <out>/invalid_runs.csv  runs that broke an invariant, with the reasons (if any)
    <out>/*.png          figures
    <out>/evaluation.json  inputs, seeds, modes SUMO ran, replications and versions
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import engine
from .config.scenario import Scenario, load_scenario
from .errors import InputError, Problems, RunError
from .network import study_area_edges
from .plots import pyplot
from .policies import (
    Infrastructure,
    Policy,
    PolicyError,
    Sign,
    check_against_network,
    check_routes,
    load_policies,
    prepare_infrastructure,
    prepare_variant,
    read_demand,
    select,
)

log = logging.getLogger(__name__)

GROUPS = ("event", "compliers", "noncompliers", "background", "all")
DEFAULT_FRACTIONS = (0.1, 0.3, 0.5)
#: Policy name of the baseline runs.
BASELINE = "baseline"
#: Replications at most when a target half-width is given.
MAX_REPLICATIONS = 30


@dataclass
class EvaluationResult:
    """What :func:`evaluate_policy` produced.

    Attributes
    ----------
    out : pathlib.Path
    table : pandas.DataFrame
        One row per scenario × policy × fraction: savings (minutes per
        vehicle) with 95% CI for event vehicles, compliers, non-compliers and
        background traffic, whether the event saving is conclusive, realised
        compliance, share of event vehicles affected, teleports, vehicles
        still inside at the end, replications used and invalid pairs.
    savings : pandas.DataFrame
        Tidy: scenario, policy, fraction, group, saving_min, ci_low, ci_high,
        replications, vehicles.
    runs : pandas.DataFrame
        One row per run pair and group, with what was compared.
    invalid : pandas.DataFrame
        Runs that broke an invariant: scenario, policy, fraction,
        replication, run folder, problems.
    figures : list of pathlib.Path
    """

    out: Path
    table: pd.DataFrame
    savings: pd.DataFrame
    runs: pd.DataFrame
    invalid: pd.DataFrame = field(default_factory=pd.DataFrame)
    figures: list[Path] = field(default_factory=list)

    def __str__(self) -> str:
        return format_table(self.table)


def mean_ci(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a sample and its two-sided Student-t confidence interval.

    Parameters
    ----------
    values : iterable of float
        One value per replication (NaNs are ignored).
    level : float, default 0.95

    Returns
    -------
    mean, low, high : float
        ``low``/``high`` are NaN with fewer than two values; with zero
        spread they equal the mean.
    """
    from scipy import stats

    x = np.asarray([v for v in values if not (v is None or math.isnan(v))], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if len(x) < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - half, m + half


def replications_needed(values: Sequence[float], halfwidth: float, level: float = 0.95) -> int:
    """Replications for a `level` interval of at most ±`halfwidth`, from the
    spread of `values` (at least one more than now while it is wider)."""
    from scipy import stats

    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = len(x)
    if n < 2:
        return 2
    s = float(x.std(ddof=1))
    if s == 0:
        return n
    need = n
    while need < 10_000:
        t = float(stats.t.ppf(0.5 + level / 2, need - 1))
        if t * s / math.sqrt(need) <= halfwidth:
            break
        need += 1
    return max(need, n)


def evaluate_policy(scenario: Scenario | str | Path | Sequence[Scenario | str | Path],
                    policies: Sequence[Policy | str] | str,
                    fractions: Sequence[float] = DEFAULT_FRACTIONS, replications: int = 5, *,
                    policy_file: str | Path | None = None, od: str | Path | None = None,
                    out: str | Path | None = None, mode: str | None = None,
                    progress: bool = True, workers: int | None = None,
                    target_halfwidth: float | None = None,
                    max_replications: int = MAX_REPLICATIONS) -> EvaluationResult:
    """Evaluate policies against the baseline with common random numbers.

    Parameters
    ----------
    scenario : Scenario, path, or a list of them
        The event scenario(s), e.g. the large and the small event.
    policies : list of Policy or names, or "name,name"
        Names are looked up in `policy_file`.
    fractions : sequence of float, default (0.1, 0.3, 0.5)
        Compliance fractions for policies with message signs (others run once).
    replications : int, default 5
        Replications (evenings) to run; replication ``k`` draws its demand
        and SUMO seed from ``simulation.seed + k``. With `target_halfwidth`,
        the number to start with.
    policy_file : path, optional
        The policy file (needed when policies are given by name).
    od : path, optional
        A calibrated OD table for the demand builder (scenarios without routes).
    out : path, optional
        Output folder; default ``<first scenario's outputs.dir>/policies``.
    mode : {"micro", "meso"}, optional
        Simulation mode; default each scenario's own ``simulation.mode``.
    progress : bool, default True
        Progress bar over runs.
    workers : int, optional
        SUMO runs at a time (default: the number of CPUs). Results do not
        depend on it.
    target_halfwidth : float, optional
        Minutes: add replications until the 95% interval of every variant's
        event-vehicle saving is at most this wide on each side.
    max_replications : int, default 30
        The most replications `target_halfwidth` may use.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    InputError
        Bad fractions, replications, mode or target; PolicyError for unknown
        or invalid policies (checked against each scenario's network and
        demand before any run starts).
    RunError
        If a SUMO run fails, or no valid pair of runs is left to compare.
    """
    import os

    scenarios = [scenario] if isinstance(scenario, Scenario | str | Path) else list(scenario)
    fractions = _check_args(fractions, replications, mode, target_halfwidth, max_replications,
                            workers)
    scenarios = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    if isinstance(policies, str) or any(isinstance(p, str) for p in policies):
        if policy_file is None:
            raise PolicyError("evaluate-policy", "policies given by name need a policy file "
                              "(--policy-file FILE)")
        known = load_policies(policy_file)
        names = policies if isinstance(policies, str) else [
            p if isinstance(p, str) else p.name for p in policies]
        chosen = select(known, names, str(policy_file))
    else:
        chosen = list(policies)
    out = Path(out) if out is not None else scenarios[0].output_dir / "policies"
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    plans = []
    for scen in scenarios:
        scen = scen.with_simulation(mode=mode) if mode else scen
        check_against_network(chosen, scen.network, chosen[0].source or "policies")
        _warn_meso(scen, chosen)
        plans.append(_Plan(scen, chosen, fractions, out / scen.name, od))
    runner = _Runner(workers, progress)
    for plan in plans:
        runner.run(plan.replicate(range(replications), plan.variants))
    if target_halfwidth is not None:
        _until_precise(plans, runner, target_halfwidth, max_replications)
    runner.close()
    runs, invalid = _compare_all(plans, runner.results)
    if runs.empty:
        raise RunError("evaluate-policy: no valid pair of runs to compare: "
                       + "; ".join(f"{r.run_dir}: {r.problems}" for r in invalid.itertuples()))
    savings = _aggregate(runs)
    table = _summary(savings, runs, invalid)
    runs.to_csv(out / "runs.csv", index=False)
    savings.to_csv(out / "savings.csv", index=False)
    table.to_csv(out / "table.csv", index=False)
    (out / "invalid_runs.csv").unlink(missing_ok=True)
    if len(invalid):
        invalid.to_csv(out / "invalid_runs.csv", index=False)
    figures = _figures(out, savings, runs, plans, runner.results)
    identical = {p.scen.name: p.identical_replications(runner.results) for p in plans}
    for name, same in identical.items():
        if same:
            log.warning("%s: the baseline replications are identical runs; the intervals "
                        "measure nothing of the evening's variability", name)
    modes = sorted({r.mode for r in runner.results.values()})
    (out / "evaluation.json").write_text(json.dumps({
        "scenarios": [str(p.scen.path) for p in plans],
        "policies": [p.name for p in chosen],
        "policy_file": str(policy_file) if policy_file else None,
        "fractions": list(fractions),
        "replications": {p.scen.name: p.replications for p in plans},
        "target_halfwidth": target_halfwidth, "max_replications": max_replications,
        "seeds": {p.scen.name: [p.seed(k) for k in range(p.replications)] for p in plans},
        "replication_draws": "each replication k draws its demand and SUMO seed from "
                             "simulation.seed + k; baseline and policies share them",
        "identical_replications": identical,
        "mode": modes[0] if len(modes) == 1 else modes,
        "od": str(od) if od else None,
        "invalid_runs": len(invalid),
        "versions": engine.versions(),
    }, indent=2) + "\n")
    return EvaluationResult(out, table, savings, runs, invalid, figures)


def _check_args(fractions: Sequence[float], replications: int, mode: str | None,
                target: float | None, max_replications: int, workers: int | None
                ) -> list[float]:
    problems = Problems("evaluate-policy")
    clean = []
    for f in fractions:
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 <= f <= 1:
            problems.add(f"fractions: {f!r} is not between 0 and 1")
        else:
            clean.append(float(f))
    if not clean and not problems:
        problems.add("fractions: give at least one fraction")
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        problems.add(f"replications: must be a positive integer, got {replications!r}")
    if mode is not None and mode not in engine.MODES:
        problems.add(f"mode: must be one of {', '.join(engine.MODES)}, got {mode!r}")
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, int | float) or not (
                math.isfinite(target) and target > 0):
            problems.add(f"target_halfwidth: must be a positive number of minutes, got {target!r}")
        if isinstance(replications, int) and replications < 2:
            problems.add("replications: a target half-width needs at least 2 to start with")
    if isinstance(max_replications, bool) or not isinstance(max_replications, int) or \
            max_replications < max(2, replications if isinstance(replications, int) else 2):
        problems.add(f"max_replications: must be an integer >= replications, got "
                     f"{max_replications!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        problems.add(f"workers: must be a positive integer, got {workers!r}")
    problems.raise_if_any(InputError)
    return sorted(set(clean))


def _warn_meso(scen: Scenario, chosen: list[Policy]) -> None:
    infra = sorted({q.kind for p in chosen for q in p.leaves()} & {"signal_retiming",
                                                                    "hov_opening", "lane_use"})
    if scen.simulation.meso and infra:
        log.warning("%s runs mesoscopic, which models lanes only as edge capacity and passes "
                    "signals as the scenario's meso options say: %s measures need micro runs "
                    "to show their full effect", scen.name, ", ".join(infra))


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Variant:
    """A policy at a compliance fraction (None for policies without signs)."""

    policy: Policy
    fraction: float | None

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def tag(self) -> str:
        return "all" if self.fraction is None else f"f{self.fraction:.2f}"

    @property
    def key(self) -> tuple[str, float | None]:
        return (self.policy.name, self.fraction)


@dataclass
class EvalRun:
    """One SUMO run of an evaluation: its configuration and how to read it.

    Attributes
    ----------
    scenario : str
    policy : str
        :data:`BASELINE` or the policy's name.
    fraction : float or None
    replication : int
    config : engine.RunConfig
    departures : pandas.DataFrame
        The replication's vehicles and planned departures.
    inside : frozenset of str
        Study-area edges.
    watch : dict
        Baseline only: vehicle id -> sign edge, for the vehicles some sign
        addresses (to record who reached a sign in the baseline).
    signs : list of Sign
        Variant only: its message signs.
    table_format : str
        Format of the vehicle table written into the run folder.
    """

    scenario: str
    policy: str
    fraction: float | None
    replication: int
    config: engine.RunConfig
    departures: pd.DataFrame
    inside: frozenset[str]
    watch: dict[str, str] = field(default_factory=dict)
    signs: list[Sign] = field(default_factory=list)
    table_format: str = "parquet"

    @property
    def key(self) -> tuple[str, str, float | None, int]:
        return (self.scenario, self.policy, self.fraction, self.replication)


@dataclass
class Outcome:
    """What one run gave an evaluation.

    Attributes
    ----------
    run_dir : pathlib.Path
    vehicles : pandas.DataFrame
        The vehicle table indexed by vehicle.
    valid : bool
    problems : list of str
    teleports : int
    relies_on_teleports : bool
    mode : str
    reached : set of str
        Baseline only: watched vehicles that reached their sign.
    signs : list of Sign
        Variant only: its message signs.
    speed : pandas.Series or None
        Sampled-seconds-weighted mean speed per edge (m/s).
    sumo_seconds, read_seconds : float
    """

    run_dir: Path
    vehicles: pd.DataFrame
    valid: bool
    problems: list[str]
    teleports: int
    relies_on_teleports: bool
    mode: str
    reached: set[str] = field(default_factory=set)
    signs: list[Sign] = field(default_factory=list)
    speed: pd.Series | None = None
    sumo_seconds: float = math.nan
    read_seconds: float = math.nan


class _Plan:
    """The runs of one scenario: its variants, and per replication the demand,
    the baseline and the variants' inputs."""

    def __init__(self, scen: Scenario, chosen: list[Policy], fractions: list[float],
                 base: Path, od: str | Path | None):
        self.scen, self.base, self.od = scen, base, od
        if scen.routes and od is not None:
            raise InputError(str(scen.path), "--od needs a scenario whose demand is built from "
                             "an OD (this one names fixed route files in demand.routes)")
        self.variants = [Variant(p, f) for p in chosen
                         for f in (fractions if p.uses_signs else [None])]
        self.inside = study_area_edges(scen.network, scen.venues)
        self.infrastructure: dict[str, Infrastructure] = {}
        self.replications = 0
        #: variant key -> replications it ran in
        self.ran: dict[tuple[str, float | None], list[int]] = {v.key: [] for v in self.variants}

    def seed(self, k: int) -> int:
        return self.scen.simulation.seed + k

    def demand(self, k: int) -> list[Path]:
        """The route files of replication `k` (built with seed + k)."""
        if self.scen.routes:
            return list(self.scen.routes)
        from .demand import build_demand

        return list(build_demand(self.scen, self.base / "demand" / f"r{k}", seed=self.seed(k),
                                 od=self.od).routes)

    def replicate(self, ks: Iterable[int], variants: list[Variant]) -> list[EvalRun]:
        """The runs of replications `ks`: each baseline and `variants`."""
        runs = []
        for k in ks:
            runs += self._replication(k, variants)
            self.replications = max(self.replications, k + 1)
        return runs

    def _replication(self, k: int, variants: list[Variant]) -> list[EvalRun]:
        scen = self.scen.with_simulation(seed=self.seed(k))
        routes = self.demand(k)
        departures = engine.read_departures(routes)
        signed = any(v.policy.uses_signs for v in variants)
        demand = read_demand(routes) if signed or any(
            self._patches(v.policy) for v in variants) else None
        name = scen.name
        runs = []
        watch: dict[str, str] = {}
        for v in variants:
            infra = self._infrastructure(v.policy, routes)
            run_dir = self.base / v.name / v.tag / f"r{k}"
            inputs = prepare_variant(v.policy, v.fraction, scen.network, routes,
                                     run_dir / "inputs", begin=scen.simulation.begin,
                                     end=scen.simulation.end, demand=demand,
                                     infrastructure=infra)
            for s in inputs.signs:
                watch.update(s.vehicles)
            config = engine.RunConfig.from_scenario(
                scen, run_dir, inputs.routes, network=inputs.network,
                additional=tuple(inputs.additional), edgedata_period=self._edgedata(scen))
            runs.append(EvalRun(name, v.name, v.fraction, k, config, departures, self.inside,
                                signs=inputs.signs, table_format=scen.output_format))
            self.ran[v.key].append(k)
        baseline = engine.RunConfig.from_scenario(scen, self.base / BASELINE / f"r{k}", routes,
                                                  edgedata_period=self._edgedata(scen))
        runs.insert(0, EvalRun(name, BASELINE, None, k, baseline, departures, self.inside,
                               watch=watch, table_format=scen.output_format))
        return runs

    @staticmethod
    def _edgedata(scen: Scenario) -> float:
        return scen.simulation.edgedata_period

    @staticmethod
    def _patches(policy: Policy) -> bool:
        return any(p.kind in ("hov_opening", "lane_use") for p in policy.leaves())

    def _infrastructure(self, policy: Policy, routes: list[Path]) -> Infrastructure:
        """The policy's network patch and signal programs, prepared once (from the
        first replication's demand) and shared by all its variants and replications."""
        if policy.name not in self.infrastructure:
            infra = prepare_infrastructure(policy, self.scen.network, routes,
                                           self.base / policy.name / "infrastructure",
                                           begin=self.scen.simulation.begin)
            if infra.network != self.scen.network:
                vehicles, _ = read_demand(routes)
                check_routes(infra.network, vehicles, policy.source or str(self.scen.path),
                             policy.name)
            self.infrastructure[policy.name] = infra
        return self.infrastructure[policy.name]

    def identical_replications(self, results: dict) -> bool:
        """True when two or more baseline replications ran and all gave the
        same travel time to every vehicle."""
        tables = [results[(self.scen.name, BASELINE, None, k)].vehicles["travel_time"]
                  for k in range(self.replications)
                  if (self.scen.name, BASELINE, None, k) in results]
        return len(tables) >= 2 and all(t.equals(tables[0]) for t in tables[1:])


# --------------------------------------------------------------------------- running


class _Runner:
    """Runs evaluation runs through the engine, `workers` at a time, with one
    progress bar over all of them."""

    def __init__(self, workers: int, progress: bool):
        from tqdm import tqdm

        self.workers = workers
        self.results: dict[tuple, Outcome] = {}
        self.bar = tqdm(total=0, unit="run", desc="evaluating",
                        disable=None if progress else True)

    def run(self, runs: list[EvalRun]) -> None:
        self.bar.total += len(runs)
        self.bar.refresh()
        if self.workers <= 1:
            for r in runs:
                self.results[r.key] = execute(r)
                self.bar.update()
            return
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for r, outcome in zip(runs, pool.map(execute, runs), strict=True):
                self.results[r.key] = outcome
                self.bar.update()

    def close(self) -> None:
        self.bar.close()


def execute(run: EvalRun, *, speeds: bool = True, save: bool = True) -> Outcome:
    """Run one evaluation run through the engine and keep what the comparison needs.

    Parameters
    ----------
    run : EvalRun
    speeds : bool, default True
        Also compute the mean speed per edge (needs the run's edgeData).
    save : bool, default True
        Write the vehicle table into the run folder.

    Returns
    -------
    Outcome
    """
    result = engine.run(run.config, departures=run.departures, inside=run.inside,
                        keep_records=bool(run.watch),
                        table_format=run.table_format if save else None, tables=("vehicles",))
    reached = _reached(result.records, run.watch) if run.watch else set()
    speed = None
    if speeds and result.edges is not None:
        edges = result.edges
        busy = edges[edges["sampled_seconds"] > 0]
        weighted = (busy["speed"] * busy["sampled_seconds"]).groupby(busy["edge"]).sum()
        speed = weighted / busy.groupby("edge")["sampled_seconds"].sum()
    return Outcome(result.run_dir, result.vehicles.set_index("vehicle"), result.valid,
                   list(result.problems), result.teleports, result.relies_on_teleports,
                   result.mode, reached, list(run.signs), speed, result.sumo_seconds,
                   result.read_seconds)


def _reached(records: list[tuple] | None, watch: dict[str, str]) -> set[str]:
    """Watched vehicles whose baseline route reached their sign edge (left
    the edge before it normally, or started on it)."""
    reached = set()
    for vid, _, _, _, route, exit_text, _ in records or ():
        sign = watch.get(vid)
        if sign is None:
            continue
        edges, exits = route.split(), exit_text.split()
        if sign in edges:
            k = edges.index(sign)
            if k == 0 or (k - 1 < len(exits) and float(exits[k - 1]) >= 0):
                reached.add(vid)
    return reached


def _until_precise(plans: list[_Plan], runner: _Runner, target: float, most: int) -> None:
    """Add replications until every variant's event interval is ±`target` or `most` ran."""
    while True:
        runs, _ = _compare_all(plans, runner.results)
        added = False
        for plan in plans:
            extra: dict[tuple[str, float | None], int] = {}
            for v in plan.variants:
                sel = runs[(runs["scenario"] == plan.scen.name) & (runs["policy"] == v.name)
                           & (runs["group"] == "event")
                           & _same_fraction(runs["fraction"], v.fraction)]
                values = sel["saving_min"].tolist()
                _, lo, hi = mean_ci(values)
                if not math.isnan(lo) and (hi - lo) / 2 <= target:
                    continue
                have = len(plan.ran[v.key])
                need = min(replications_needed(values, target), most)
                if need > have:
                    extra[v.key] = need - have
            if not extra:
                continue
            start = plan.replications
            batch = max(extra.values())
            more: list[EvalRun] = []
            for j in range(batch):
                chosen = [v for v in plan.variants if extra.get(v.key, 0) > j]
                more += plan.replicate([start + j], chosen)
            runner.run(more)
            added = True
            log.info("%s: %d more replication(s) for %s", plan.scen.name, batch,
                     ", ".join(f"{name} {f}" for name, f in extra))
        if not added:
            return


def _same_fraction(column: pd.Series, fraction: float | None) -> pd.Series:
    if fraction is None:
        return column.isna()
    return (column - fraction).abs() < 1e-9


# --------------------------------------------------------------------------- comparing


def _compare_all(plans: list[_Plan], results: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, invalid = [], {}
    for plan in plans:
        for v in plan.variants:
            for k in plan.ran[v.key]:
                base = results.get((plan.scen.name, BASELINE, None, k))
                pol = results.get((plan.scen.name, v.name, v.fraction, k))
                if base is None or pol is None:
                    continue
                bad = [(BASELINE, None, base), (v.name, v.fraction, pol)]
                broken = [(p, f, o) for p, f, o in bad if not o.valid]
                for p, f, o in broken:
                    invalid[str(o.run_dir)] = {"scenario": plan.scen.name, "policy": p,
                                               "fraction": f, "replication": k,
                                               "run_dir": str(o.run_dir),
                                               "problems": "; ".join(o.problems)}
                if broken:
                    continue
                rows += compare_pair(plan.scen.name, v, k, plan.seed(k), base, pol)
    return pd.DataFrame(rows), pd.DataFrame(list(invalid.values()),
                                            columns=["scenario", "policy", "fraction",
                                                     "replication", "run_dir", "problems"])


def compare_pair(scenario: str, variant: Variant, k: int, seed: int, base: Outcome,
                 pol: Outcome) -> list[dict[str, Any]]:
    """The rows of one baseline/variant pair: one per group (:data:`GROUPS`).

    Each row holds the mean travel times (minutes) of the group in both runs
    over the vehicles present in both, the saving, and what was compared:
    vehicles compared, dropped (present in only one of the runs) and why,
    and per run those teleported, still inside at the end and never inserted.
    """
    b, p = base.vehicles, pol.vehicles
    common = b.index.intersection(p.index)
    signs = variant.policy.uses_signs
    rerouters = {r for s in pol.signs for r in s.rerouters}
    labelled = {v for s in pol.signs for v in s.vehicles}
    eligible = pd.Index(sorted(labelled & base.reached)).intersection(common)
    complied = p.loc[eligible, "rerouted_by"].isin(rerouters).to_numpy() if len(eligible) \
        else np.zeros(0, dtype=bool)
    bc = b.loc[common]
    members = {
        "event": bc.index[bc["kind"] == "event"],
        "compliers": eligible[complied],
        "noncompliers": eligible[~complied],
        "background": bc.index[bc["kind"] == "background"],
        "all": bc.index,
    }
    n_event = len(members["event"])
    run = {
        "scenario": scenario, "policy": variant.name, "fraction": variant.fraction,
        "replication": k, "seed": seed,
        "eligible": len(eligible), "compliers": len(members["compliers"]),
        "realised_compliance": (len(members["compliers"]) / len(eligible)
                                if signs and len(eligible) else math.nan),
        "affected_share": (len(members["compliers"]) / n_event
                           if signs and n_event else math.nan),
        "teleports_baseline": base.teleports, "teleports_policy": pol.teleports,
        "relies_on_teleports": base.relies_on_teleports or pol.relies_on_teleports,
        "sumo_seconds_policy": pol.sumo_seconds, "read_seconds_policy": pol.read_seconds,
    }
    rows = []
    for group in GROUPS:
        ids = members[group]
        bg, pg = b.loc[ids], p.loc[ids]
        bm = bg["travel_time"].mean() / 60 if len(ids) else math.nan
        pm = pg["travel_time"].mean() / 60 if len(ids) else math.nan
        if group in ("compliers", "noncompliers") and not signs:
            bm = pm = math.nan
        dropped, why = _dropped(b, p, group)
        rows.append({**run, "group": group, "vehicles": len(ids), "dropped": dropped,
                     "dropped_why": why, "baseline_min": bm, "policy_min": pm,
                     "saving_min": bm - pm, **_ends(bg, "baseline"), **_ends(pg, "policy")})
    return rows


def _dropped(b: pd.DataFrame, p: pd.DataFrame, group: str) -> tuple[int, str]:
    """Vehicles of `group` present in only one of the two runs, and why."""
    if group in ("compliers", "noncompliers"):
        return 0, ""
    kinds = {"event": ("event",), "background": ("background",), "all": None}[group]

    def of(t: pd.DataFrame, missing: pd.Index) -> pd.Index:
        sel = t.loc[missing]
        return sel.index if kinds is None else sel.index[sel["kind"].isin(kinds)]

    only_b = of(b, b.index.difference(p.index))
    only_p = of(p, p.index.difference(b.index))
    why = []
    if len(only_b):
        why.append(f"{len(only_b)} not in the policy run")
    if len(only_p):
        why.append(f"{len(only_p)} not in the baseline run")
    return len(only_b) + len(only_p), "; ".join(why)


def _ends(t: pd.DataFrame, which: str) -> dict[str, int]:
    """How the vehicles of a group ended in one run: teleported, inside at the end,
    never inserted."""
    status = t["status"].value_counts()
    return {f"teleported_{which}": int((t["teleports"] > 0).sum()),
            f"inside_at_end_{which}": int(status.get("inside_at_end", 0)),
            f"not_inserted_{which}": int(status.get("not_inserted", 0))}


def _aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    keys = ["scenario", "policy", "fraction", "group"]
    for key, g in runs.groupby(keys, sort=False, dropna=False):
        m, lo, hi = mean_ci(g["saving_min"])
        rows.append({**dict(zip(keys, key, strict=True)), "saving_min": m, "ci_low": lo,
                     "ci_high": hi, "replications": int(g["saving_min"].notna().sum()),
                     "vehicles": float(g["vehicles"].mean()),
                     "dropped": float(g["dropped"].mean()),
                     "baseline_min": float(g["baseline_min"].mean()),
                     "policy_min": float(g["policy_min"].mean())})
    return pd.DataFrame(rows)


def conclusive(low: float, high: float) -> bool:
    """An interval is conclusive when it excludes zero (the sign of the effect is known)."""
    return bool(low > 0 or high < 0)


def _summary(savings: pd.DataFrame, runs: pd.DataFrame, invalid: pd.DataFrame) -> pd.DataFrame:
    keys = ["scenario", "policy", "fraction"]
    rows = []
    per_run = runs[runs["group"] == "event"]
    for key, g in savings.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, key, strict=True))
        for group in ("event", "compliers", "noncompliers", "background"):
            s = g[g["group"] == group].iloc[0]
            row[f"{group}_saving_min"] = s["saving_min"]
            row[f"{group}_ci_low"] = s["ci_low"]
            row[f"{group}_ci_high"] = s["ci_high"]
        ev = g[g["group"] == "event"].iloc[0]
        row["conclusive"] = conclusive(ev["ci_low"], ev["ci_high"]) \
            if not pd.isna(ev["ci_low"]) else False
        r = per_run[(per_run["scenario"] == key[0]) & (per_run["policy"] == key[1])
                    & _same_fraction(per_run["fraction"], None if pd.isna(key[2]) else key[2])]
        bad = invalid[(invalid["scenario"] == key[0])
                      & invalid["policy"].isin([key[1], BASELINE])] if len(invalid) else invalid
        row["event_baseline_min"] = ev["baseline_min"]
        row["event_vehicles"] = ev["vehicles"]
        row["dropped"] = ev["dropped"]
        row["eligible"] = r["eligible"].mean()
        row["realised_compliance"] = r["realised_compliance"].mean()
        row["affected_share"] = r["affected_share"].mean()
        row["teleports_baseline"] = r["teleports_baseline"].mean()
        row["teleports_policy"] = r["teleports_policy"].mean()
        row["relies_on_teleports"] = bool(r["relies_on_teleports"].any())
        row["inside_at_end_policy"] = r["inside_at_end_policy"].mean() + \
            r["not_inserted_policy"].mean()
        row["replications"] = len(r)
        row["invalid_runs"] = len(bad)
        rows.append(row)
    return pd.DataFrame(rows)


def format_table(table: pd.DataFrame) -> str:
    """The summary table as text: minutes saved per vehicle with 95% CI."""
    def ci(row, group):
        m, lo, hi = (row[f"{group}_saving_min"], row[f"{group}_ci_low"],
                     row[f"{group}_ci_high"])
        if pd.isna(m):
            return "—"
        if pd.isna(lo):
            return f"{m:+.2f}"
        return f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"

    head = (f"{'scenario':<20} {'policy':<16} {'frac':>5}  {'event vehicles':<24} "
            f"{'compliers':<24} {'non-compliers':<24} {'background':<24} "
            f"{'compl.':>6} {'affect.':>7} {'telep.':>9} {'inside':>7} {'reps':>4}")
    lines = ["minutes saved per vehicle (baseline − policy; mean over paired replications "
             "[95% t-interval]; positive = faster)", head, "-" * len(head)]
    flags = []
    for _, r in table.iterrows():
        frac = "all" if pd.isna(r["fraction"]) else f"{r['fraction']:.0%}"
        comp = "" if pd.isna(r["realised_compliance"]) else f"{r['realised_compliance']:.1%}"
        aff = "" if pd.isna(r["affected_share"]) else f"{r['affected_share']:.1%}"
        tel = f"{r['teleports_baseline']:.0f}/{r['teleports_policy']:.0f}"
        mark = "!" if r["relies_on_teleports"] else ""
        lines.append(f"{r['scenario']:<20} {r['policy']:<16} {frac:>5}  {ci(r, 'event'):<24} "
                     f"{ci(r, 'compliers'):<24} {ci(r, 'noncompliers'):<24} "
                     f"{ci(r, 'background'):<24} {comp:>6} {aff:>7} {tel + mark:>9} "
                     f"{r['inside_at_end_policy']:>7.0f} {r['replications']:>4.0f}")
        if r["relies_on_teleports"]:
            flags.append(f"{r['policy']} {frac}")
        if r["invalid_runs"]:
            flags.append(f"{r['policy']} {frac}: {r['invalid_runs']:.0f} invalid run(s) left "
                         "out (invalid_runs.csv)")
    lines.append("compl. = realised compliance among eligible vehicles; affect. = compliers "
                 "as a share of event vehicles; telep. = teleports baseline/policy per run; "
                 "inside = vehicles still in the network or never inserted at the end of the "
                 "policy run (counted with their time so far, not dropped); reps = paired "
                 "replications")
    if table["relies_on_teleports"].any():
        lines.append("! = more than 1% of the vehicles teleported in some run: the result "
                     "relies on teleports (gridlock) and is not valid as it stands")
    for f in flags:
        if ":" in f:
            lines.append(f"warning: {f}")
    return "\n".join(lines)


def headline(table: pd.DataFrame, policy: str | None = None,
             fraction: float | None = None) -> str:
    """One sentence on a row of the table: the event saving, its interval, and
    whether it is conclusive (default: the last row)."""
    t = table
    if policy is not None:
        t = t[t["policy"] == policy]
    if fraction is not None:
        t = t[_same_fraction(t["fraction"], fraction)]
    if t.empty:
        return ""
    r = t.iloc[-1]
    frac = "" if pd.isna(r["fraction"]) else f" at {r['fraction']:.0%} compliance"
    m, lo, hi = r["event_saving_min"], r["event_ci_low"], r["event_ci_high"]
    if pd.isna(lo):
        return (f"{r['policy']}{frac} on {r['scenario']}: {m:+.2f} min per event vehicle "
                "from one replication: no interval, not conclusive")
    verdict = ("conclusive: the interval excludes zero" if r["conclusive"] else
               "NOT conclusive: the interval includes zero (more replications: "
               "--target-halfwidth)")
    gain = "saves" if m >= 0 else "costs"
    return (f"{r['policy']}{frac} on {r['scenario']}: event vehicles {gain} "
            f"{abs(m):.2f} min each [95% interval {lo:+.2f}, {hi:+.2f}; ±{(hi - lo) / 2:.2f}] "
            f"over {r['replications']:.0f} paired replications; {verdict}"
            + ("; WARNING: relies on teleports" if r["relies_on_teleports"] else ""))


# --------------------------------------------------------------------------- figures


def _figures(out: Path, savings: pd.DataFrame, runs: pd.DataFrame, plans: list[_Plan],
             results: dict[tuple, Outcome]) -> list[Path]:
    plt = pyplot()

    paths = []
    ev = savings[savings["group"] == "event"].copy()
    ev["label"] = ev["fraction"].map(lambda f: "all" if pd.isna(f) else f"{f:.0%}")
    scen_names = list(dict.fromkeys(ev["scenario"]))
    fig, axes = plt.subplots(len(scen_names), 1, figsize=(9, 3.6 * len(scen_names)),
                             squeeze=False)
    for ax, sname in zip(axes[:, 0], scen_names, strict=True):
        d = ev[ev["scenario"] == sname].reset_index(drop=True)
        x = np.arange(len(d))
        err = np.vstack([d["saving_min"] - d["ci_low"], d["ci_high"] - d["saving_min"]])
        err = np.nan_to_num(err)
        ax.bar(x, d["saving_min"], yerr=err, capsize=3, color="tab:blue", alpha=0.8)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, [f"{p}\n{lab}" for p, lab in zip(d["policy"], d["label"],
                                                          strict=True)],
                      fontsize=7)
        ax.set_ylabel("min saved per event vehicle")
        ax.set_title(f"{sname}: savings with 95% CI")
    fig.tight_layout()
    paths.append(out / "savings.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    comp = runs[(runs["group"] == "event") & runs["fraction"].notna()]
    if len(comp):
        fig, axes = plt.subplots(1, len(scen_names), figsize=(5 * len(scen_names), 3.8),
                                 squeeze=False)
        for ax, sname in zip(axes[0], scen_names, strict=True):
            for pname, g in comp[comp["scenario"] == sname].groupby("policy", sort=False):
                agg = g.groupby("fraction").agg(c=("realised_compliance", "mean"))
                s = ev[(ev["scenario"] == sname) & (ev["policy"] == pname)].set_index("fraction")
                s = s.loc[agg.index]
                err = np.nan_to_num(np.vstack([s["saving_min"] - s["ci_low"],
                                               s["ci_high"] - s["saving_min"]]))
                ax.errorbar(agg["c"].fillna(pd.Series(agg.index, index=agg.index)),
                            s["saving_min"], yerr=err, marker="o", capsize=3, label=pname)
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xlabel("realised compliance (share of eligible vehicles)")
            ax.set_ylabel("min saved per event vehicle")
            ax.set_title(sname)
            ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / "savings_vs_compliance.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)

    for plan in plans:
        paths += _speed_maps(out, plan, results, plt)
    return paths


def _speed_maps(out: Path, plan: _Plan, results: dict[tuple, Outcome], plt) -> list[Path]:
    from matplotlib.collections import LineCollection

    from .network import read_net

    scen = plan.scen
    net = read_net(scen.network)

    def mean_speed(policy: str, fraction: float | None, ks: Iterable[int]) -> pd.Series | None:
        got = [results.get((scen.name, policy, fraction, k)) for k in ks]
        speeds = [o.speed for o in got if o is not None and o.valid and o.speed is not None]
        return pd.concat(speeds, axis=1).mean(axis=1) if speeds else None

    by_policy: dict[str, Variant] = {}
    for v in plan.variants:
        cur = by_policy.get(v.name)
        if cur is None or (v.fraction is not None
                           and abs(v.fraction - 0.3) < abs((cur.fraction or 9) - 0.3)):
            by_policy[v.name] = v
    shapes = {e.getID(): np.asarray(e.getShape())[:, :2] for e in net.getEdges()}
    paths = []
    for name, v in by_policy.items():
        ks = plan.ran[v.key]
        base = mean_speed(BASELINE, None, ks)
        pol = mean_speed(v.name, v.fraction, ks)
        if base is None or pol is None:
            continue
        delta = (pol.reindex(base.index) - base).dropna() * 3.6
        fig, ax = plt.subplots(figsize=(7, 7))
        grey = [shapes[e] for e in shapes if e not in delta.index]
        ax.add_collection(LineCollection(grey, colors="0.85", linewidths=0.5))
        segs = [shapes[e] for e in delta.index if e in shapes]
        vals = [delta[e] for e in delta.index if e in shapes]
        lim = max(1.0, float(np.nanmax(np.abs(vals))) if vals else 1.0)
        lc = LineCollection(segs, array=np.asarray(vals), cmap="RdBu", linewidths=1.6)
        lc.set_clim(-lim, lim)
        ax.add_collection(lc)
        ax.autoscale()
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(lc, ax=ax, shrink=0.7, label="change in mean speed (km/h)")
        tag = "all vehicles" if v.fraction is None else f"{v.fraction:.0%} compliance"
        ax.set_title(f"{scen.name}: {name} ({tag}) − baseline, whole window")
        fig.tight_layout()
        paths.append(out / f"speed_change_{scen.name}_{name}.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


__all__ = ["BASELINE", "DEFAULT_FRACTIONS", "EvalRun", "EvaluationResult", "GROUPS", "Outcome",
           "Variant", "compare_pair", "conclusive", "evaluate_policy", "execute",
           "format_table", "headline", "mean_ci", "replications_needed"]
