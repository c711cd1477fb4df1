"""Evaluating policies with common random numbers: ``egress evaluate-policy``.

Replications
    A replication is one evening. Replication ``k`` draws its own demand with
    seed ``simulation.seed + k``: every vehicle's departure time, lot, entry
    and exit edges, route and speed factor (:func:`egress.demand.sampling.vehicle_draws`),
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
    <out>/measures.csv   engineering measures per scenario × policy × fraction × group:
                         clearance 95/100 %, delay, median and p95 time to leave,
                         vehicle-hours; baseline, policy, change ± CI
                         (egress.policies.measures); measure_runs.csv per pair
    <out>/places.csv     per lot exit and ramp: max and mean queue, vehicles out ± CI
    <out>/queues.csv     queue per place every minute, mean over replications
    <out>/throughput.csv vehicles leaving each ramp and lot exit per 15 min and kind
    <out>/gis/           GeoJSON layers in WGS84 for QGIS (egress.policies.layers)
    <out>/snapped.csv    places given by coordinates and the edges they were snapped to
    <out>/*.png          figures
    <out>/evaluation.json  inputs, seeds, modes SUMO ran, replications and versions
"""


from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import engine
from ..config.scenario import Scenario, load_scenario
from ..demand import build_demand
from ..engine.measures import Places, driven_free_flow, first_edges, place_flows, places
from ..errors import InputError, PolicyError, Problems, RunError
from ..network import study_area_edges
from ..progress import bar as progress_bar
from ..stats import mean_ci, replications_needed
from .comparison import (
    BASELINE,
    EvaluationResult,
    Outcome,
    Variant,
    aggregate,
    compare_all,
    same_fraction,
    summary_table,
)
from .figures import figures
from .file import Policy, check_against_network, load_policies, select, write_snapped
from .layers import write_layers
from .measures import measure_pairs, per_run_series, summarise
from .reuse import inputs_digest, reusable
from .variants import (
    Infrastructure,
    Sign,
    check_routes,
    prepare_infrastructure,
    prepare_variant,
    read_demand,
)

log = logging.getLogger(__name__)

DEFAULT_FRACTIONS = (0.1, 0.3, 0.5)


#: Replications at most when a target half-width is given.
MAX_REPLICATIONS = 30


def evaluate_policy(scenario: Scenario | str | Path | Sequence[Scenario | str | Path],
                    policies: Sequence[Policy | str] | str,
                    fractions: Sequence[float] = DEFAULT_FRACTIONS, replications: int = 5, *,
                    policy_file: str | Path | None = None, od: str | Path | None = None,
                    out: str | Path | None = None, mode: str | None = None,
                    progress: bool = True, workers: int | None = None,
                    target_halfwidth: float | None = None,
                    max_replications: int = MAX_REPLICATIONS,
                    resume: bool = False) -> EvaluationResult:
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
    resume : bool, default False
        Reuse every run folder under `out` that holds a complete, valid run
        of exactly the same inputs (same SUMO options, network, route and
        additional files; recorded as a digest in its ``summary.json``), and
        run only the others: an interrupted evaluation continues where it
        stopped, and adding a policy or replications runs only what is new.

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
    scenarios = [scenario] if isinstance(scenario, Scenario | str | Path) else list(scenario)
    fractions = _check_args(fractions, replications, mode, target_halfwidth, max_replications,
                            workers)
    scenarios = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    names = [s.name for s in scenarios]
    for name in sorted({n for n in names if names.count(n) > 1}):
        raise InputError("scenarios", f"two scenarios are named {name!r}; each writes into "
                         f"OUT/<name>, so names must differ")
    chosen = _chosen(policies, policy_file, scenarios[0].network)
    out = Path(out) if out is not None else scenarios[0].output_dir / "policies"
    out.mkdir(parents=True, exist_ok=True)
    plans = []
    for scen in scenarios:
        scen = scen.with_simulation(mode=mode) if mode else scen
        check_against_network(chosen, scen.network, chosen[0].source or "policies")
        _warn_meso(scen, chosen)
        plans.append(ScenarioPlan(scen, chosen, fractions, out / scen.name, od, resume))
    write_snapped(out / "snapped.csv", [p.scen.venues for p in plans], chosen)
    # evaluation.json records a finished evaluation: until this one finishes, the folder's
    # earlier tables are not its result (the report then finds no evaluation here)
    (out / "evaluation.json").unlink(missing_ok=True)
    runner = _Runner(workers or os.cpu_count() or 1, progress)
    runner.run(plan.replicate([k], plan.variants) for plan in plans
               for k in range(replications))
    if target_halfwidth is not None:
        _until_precise(plans, runner, target_halfwidth, max_replications)
    runner.close()
    runs, invalid = compare_all(plans, runner.results)
    if runs.empty:
        raise RunError("evaluate-policy: no valid pair of runs to compare: "
                       + "; ".join(f"{r.run_dir}: {r.problems}" for r in invalid.itertuples()))
    savings = aggregate(runs)
    table = summary_table(savings, runs, invalid)
    group_pairs, place_pairs = measure_pairs(plans, runner.results)
    measures = summarise(group_pairs, ["scenario", "policy", "fraction", "group", "measure"])
    place_table = summarise(place_pairs, ["scenario", "policy", "fraction", "place",
                                          "place_kind", "label", "measure"])
    for name, frame in (("runs", runs), ("savings", savings), ("table", table),
                        ("measures", measures), ("measure_runs", group_pairs),
                        ("places", place_table),
                        ("throughput", per_run_series(runner.results, "throughput")),
                        ("queues", per_run_series(runner.results, "queues"))):
        frame.to_csv(out / f"{name}.csv", index=False)
    (out / "invalid_runs.csv").unlink(missing_ok=True)
    if len(invalid):
        invalid.to_csv(out / "invalid_runs.csv", index=False)
    paths = figures(out, savings, runs, plans, runner.results)
    layers = write_layers(out / "gis", plans, runner.results)
    _record(out, plans, chosen, runner.results, len(invalid), {
        "policy_file": str(policy_file) if policy_file else None,
        "fractions": list(fractions), "target_halfwidth": target_halfwidth,
        "max_replications": max_replications, "od": str(od) if od else None,
        "resumed": resume})
    return EvaluationResult(out, table, savings, runs, invalid, paths, measures, place_table,
                            layers)


def _chosen(policies: Sequence[Policy | str] | str, policy_file: str | Path | None,
            network: Path) -> list[Policy]:
    """The policies to evaluate: given, or looked up by name in `policy_file`."""
    if not (isinstance(policies, str) or any(isinstance(p, str) for p in policies)):
        return list(policies)
    if policy_file is None:
        raise PolicyError("evaluate-policy", "policies given by name need a policy file "
                          "(--policy-file FILE)")
    known = load_policies(policy_file, network)
    names = policies if isinstance(policies, str) else [
        p if isinstance(p, str) else p.name for p in policies]
    return select(known, names, str(policy_file))


def _record(out: Path, plans: list[ScenarioPlan], chosen: list[Policy],
            results: dict[tuple, Outcome], invalid: int, settings: dict) -> None:
    """evaluation.json: inputs, seeds, the modes SUMO ran, replications, versions."""
    identical = {p.scen.name: p.identical_replications(results) for p in plans}
    for name, same in identical.items():
        if same:
            log.warning("%s: the baseline replications are identical runs; the intervals "
                        "measure nothing of the evening's variability", name)
    modes = sorted({r.mode for r in results.values()})
    (out / "evaluation.json").write_text(json.dumps({
        "scenarios": [str(p.scen.path) for p in plans],
        "policies": [p.name for p in chosen],
        **settings,
        "replications": {p.scen.name: p.replications for p in plans},
        "seeds": {p.scen.name: [p.seed(k) for k in range(p.replications)] for p in plans},
        "replication_draws": "each replication k draws its demand and SUMO seed from "
                             "simulation.seed + k; baseline and policies share them",
        "identical_replications": identical,
        "mode": modes[0] if len(modes) == 1 else modes,
        "invalid_runs": invalid,
        "versions": engine.versions(),
    }, indent=2) + "\n")


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
    places : Places or None
        Free-flow times, lot exits and ramps for the engineering measures
        (:mod:`egress.engine.measures`); None computes none.
    resume : bool
        Reuse the run folder's outputs when it holds a complete run of the
        same inputs (:func:`reusable`).
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
    places: Places | None = None
    resume: bool = False

    @property
    def key(self) -> tuple[str, str, float | None, int]:
        return (self.scenario, self.policy, self.fraction, self.replication)


class ScenarioPlan:
    """The runs of one scenario: its variants, and per replication the demand,
    the baseline and the variants' inputs."""

    def __init__(self, scen: Scenario, chosen: list[Policy], fractions: list[float],
                 base: Path, od: str | Path | None, resume: bool = False):
        self.scen, self.base, self.od, self.resume = scen, base, od, resume
        if scen.routes and od is not None:
            raise InputError(str(scen.path), "--od needs a scenario whose demand is built from "
                             "an OD (this one names fixed route files in demand.routes)")
        self.variants = [Variant(p, f) for p in chosen
                         for f in (fractions if p.uses_signs else [None])]
        self.inside = study_area_edges(scen.network, scen.venues)
        self.places = places(scen.network, scen.venues)
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
                                signs=inputs.signs, table_format=scen.output_format,
                                places=self.places, resume=self.resume))
            self.ran[v.key].append(k)
        baseline = engine.RunConfig.from_scenario(scen, self.base / BASELINE / f"r{k}", routes,
                                                  edgedata_period=self._edgedata(scen))
        runs.insert(0, EvalRun(name, BASELINE, None, k, baseline, departures, self.inside,
                               watch=watch, table_format=scen.output_format,
                               places=self.places, resume=self.resume))
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


class _Runner:
    """Runs evaluation runs through the engine, `workers` at a time, with one
    progress bar over all of them.

    :meth:`run` takes batches (e.g. one replication's runs each) from an
    iterable and plans the next batch while the runs of the earlier ones are
    under way: planning (demand, sign inputs) is Python work, a run is a
    SUMO process, so the two overlap.
    """

    def __init__(self, workers: int, progress: bool):
        self.workers = workers
        self.results: dict[tuple, Outcome] = {}
        self.bar = progress_bar(progress, total=0, unit="run", desc="evaluating")

    def run(self, batches: Iterable[list[EvalRun]]) -> None:
        """Run every run of `batches` (planned one batch at a time)."""
        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            pending = []
            for batch in batches:
                self.bar.total += len(batch)
                self.bar.refresh()
                pending += [(r, pool.submit(execute, r)) for r in batch]
            for r, future in pending:
                self.results[r.key] = future.result()
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
    digest = inputs_digest(run.config)
    if run.resume and reusable(run.config, digest):
        log.info("%s: reusing the finished run", run.config.run_dir)
        result = engine.collect(run.config, run.departures, inside=run.inside,
                                keep_records=True)
        result.sumo_seconds = float((engine.read_state(run.config.run_dir) or {}).get(
            "sumo_seconds", math.nan))
    else:
        result = engine.run(run.config, departures=run.departures, inside=run.inside,
                            keep_records=True, extra={"inputs": digest},
                            table_format=run.table_format if save else None,
                            tables=("vehicles",))
    reached = _reached(result.records, run.watch) if run.watch else set()
    speed = edge_speed = None
    if speeds and result.edges is not None:
        edges = result.edges
        busy = edges[edges["sampled_seconds"] > 0]
        weighted = (busy["speed"] * busy["sampled_seconds"]).groupby(busy["edge"]).sum()
        speed = weighted / busy.groupby("edge")["sampled_seconds"].sum()
        edge_speed = busy[["edge", "begin", "speed", "sampled_seconds"]].reset_index(drop=True)
    free_flow = queues = throughput = None
    if run.places is not None and result.records is not None:
        free_flow = driven_free_flow(result.records, result.vehicles, run.places.free_flow,
                                     run.inside)
        queues, throughput = place_flows(result.records, result.vehicles, run.places,
                                         begin=run.config.begin, end=run.config.end,
                                         origins=first_edges(run.config.routes))
    return Outcome(result.run_dir, result.vehicles.set_index("vehicle"), result.valid,
                   list(result.problems), result.teleports, result.relies_on_teleports,
                   result.mode, reached, list(run.signs), speed, result.sumo_seconds,
                   result.read_seconds, free_flow, queues, throughput, edge_speed,
                   run.config.begin, run.config.end)


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


def _until_precise(plans: list[ScenarioPlan], runner: _Runner, target: float, most: int) -> None:
    """Add replications until every variant's event interval is ±`target` or `most` ran."""
    while True:
        runs, _ = compare_all(plans, runner.results)
        added = False
        for plan in plans:
            extra: dict[tuple[str, float | None], int] = {}
            for v in plan.variants:
                sel = runs[(runs["scenario"] == plan.scen.name) & (runs["policy"] == v.name)
                           & (runs["group"] == "event")
                           & same_fraction(runs["fraction"], v.fraction)]
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
            runner.run(plan.replicate([start + j],
                                      [v for v in plan.variants if extra.get(v.key, 0) > j])
                       for j in range(batch))
            added = True
            log.info("%s: %d more replication(s) for %s", plan.scen.name, batch,
                     ", ".join(f"{name} {f}" for name, f in extra))
        if not added:
            return



__all__ = ["DEFAULT_FRACTIONS", "EvalRun", "MAX_REPLICATIONS", "evaluate_policy", "execute"]
