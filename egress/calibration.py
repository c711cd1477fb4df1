"""Calibrating OD demand to observed segment speeds, counts and travel times.

``egress calibrate`` adjusts an OD table so that the simulation reproduces
the observations (:mod:`egress.observations`), in as few simulations as
possible.

The decision vector
    Every row (kind, origin, destination, interval) of the prior OD table;
    ``x`` holds its trips (>= 0). One *evaluation* turns ``x`` into trips
    with :func:`egress.demand.sample_trips`, routes them with
    :func:`egress.demand.routing.route_vehicles` and runs SUMO (meso by default, micro
    with ``meso=False``) with edgeData and vehroutes (exit times). The
    sampling, routing and SUMO seeds are the same for every evaluation
    (common random numbers), so two ODs differ in their results only
    through the OD. Each evaluation counts one against the budget.
The objective
    ``J`` of :class:`egress.metamodel.Targets`: weighted squared errors of
    speeds, counts and travel times per observed value plus an optional
    regularisation towards the prior (λ = ``regularization``). The weights
    hold the measurement noise and, by default, the simulation's own noise,
    measured at the start: the second evaluation (tag ``replicate``)
    simulates the start OD again with seed + 1, and the spread between the
    two (:func:`egress.metamodel.estimate_model_noise`) enters every weight.
    Without it, values whose measurement is precise (travel times, counts)
    but whose simulation is not would outweigh the rest with differences
    that are only the simulation's randomness. Reported
    with the speed RMSE (km/h), RMSNE and R², and the share of counts with
    GEH < 5 (hourly flows ``M``, ``C``: ``GEH = sqrt(2 (M - C)² / (M + C))``).
The optimizers
    ``metamodel`` (default, see :mod:`egress.metamodel`) and ``spsa``
    (:mod:`egress.spsa`).
Outputs (`out`)
    ``calibrated.od.csv`` (with ``kind``) and ``calibrated.tazrel.xml``
    (best OD so far, rewritten after every evaluation), ``convergence.csv``
    (sim, tag, objective, rmse_kmh, rmsne, r2, geh_share, rmse_count,
    rmse_travel_time, accepted, best, wall_s, sumo_s, model_s, collect_s,
    teleports; the metamodel's proposals also its level, trust-region
    radius and predicted objective), ``fit.csv`` (every observation with the prior's
    and the best simulated value), ``scatter.png`` (observed vs simulated
    speeds before and after, with x = y), ``convergence.png``,
    ``summary.json`` and ``state.json`` plus ``sims/NNN/`` (each
    evaluation's OD and aggregated results).
Resume
    ``state.json`` is replaced atomically after every evaluation. Both
    optimizers are deterministic functions of their inputs and of the
    evaluations (the SPSA perturbation of iteration k is drawn from
    ``default_rng([seed, k])``), so ``resume=True`` replays the algorithm,
    taking every evaluation already on disk from ``sims/`` instead of
    simulating it, and continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .config.scenario import Scenario, Simulation, load_scenario
from .engine import outputs
from .errors import InputError, InvalidRunError, MissingFileError, Problems
from .metamodel import (
    Metamodel,
    ModelNoise,
    Targets,
    assignment_matrix,
    estimate_model_noise,
    fit_speed_flow,
)
from .observations import Observations, read_observations, simulated_values
from .plots import pyplot

log = logging.getLogger(__name__)

METHODS = ("metamodel", "spsa")
#: Initial, largest and smallest relative trust-region radius of the metamodel.
RADIUS = (0.5, 2.0, 0.01)
#: The metamodel's search levels, coarse to fine: OD rows sharing these
#: columns move by one factor (the last level moves every row that reaches an
#: observation on its own, the others by kind and interval).
LEVELS = (("kind", "begin"), ("kind", "begin", "origin"),
          ("kind", "begin", "origin", "destination"))
#: Proposals in a row that failed (rejected, or gained less than
#: :data:`LEVEL_GAIN` of the objective) after which the metamodel refines its level.
LEVEL_PATIENCE = 2
LEVEL_GAIN = 0.01
#: Tag of the start OD's second simulation, with seed + :data:`REPLICATE_SEED_OFFSET`,
#: from which the simulation's own noise is estimated.
REPLICATE = "replicate"
REPLICATE_SEED_OFFSET = 1
#: SUMO output files deleted after an evaluation unless ``keep_runs``.
_HEAVY = ("vehroutes.xml", "tripinfo.xml", "routes.rou.xml")


# --------------------------------------------------------------------------- the problem

class TazZones:
    """Zones read from a SUMO TAZ file (``<taz>`` with ``tazSource``/``tazSink``
    children or an ``edges`` attribute), enough for :func:`egress.demand.sample_trips`."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(path, "TAZ file")
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:
            raise InputError(str(path), f"malformed XML ({exc})") from None
        self.sources: dict[str, dict[str, float]] = {}
        self.sinks: dict[str, dict[str, float]] = {}
        for taz in root.iter("taz"):
            tid = taz.get("id")
            src = {s.get("id"): float(s.get("weight", 1)) for s in taz.iter("tazSource")}
            snk = {s.get("id"): float(s.get("weight", 1)) for s in taz.iter("tazSink")}
            if not src and not snk and taz.get("edges"):
                src = snk = {e: 1.0 for e in taz.get("edges").split()}
            self.sources[tid] = _norm(src)
            self.sinks[tid] = _norm(snk)
        if not self.sources:
            raise InputError(str(path), "no <taz> elements")
        self.venue_zones: dict[str, str] = {}

    @property
    def tokens(self) -> list[str]:
        return sorted(self.sources)

    def venue_zone(self, venue_id: str) -> str:
        raise KeyError(venue_id)


def _norm(w: dict[str, float]) -> dict[str, float]:
    total = sum(w.values())
    return {k: v / total for k, v in sorted(w.items())} if total > 0 else {}


@dataclass
class Problem:
    """Everything one calibration needs.

    Attributes
    ----------
    scenario : Scenario
        Network, window, seed, micro/meso and edgeData period of every evaluation.
    net : sumolib.net.Net
    zones : Zones or TazZones
    prior : pandas.DataFrame
        The prior OD: ``origin, destination, begin, end, trips, kind``.
    obs : Observations or None
        None only to simulate ODs without comparing (:func:`egress.observations.observe`).
    event : EventSpec or None
    lot_exits : list of str
    routing : dict
        Keyword arguments of :func:`egress.demand.routing.route_vehicles`.
    regularization : float
        λ of the objective (pull of each row towards the prior).
    prior_sd : float
        σ of the objective's log-normal prior on the total demand of each
        kind in each interval (see :mod:`egress.metamodel`); 0 for none.
    """

    scenario: Scenario
    net: Any
    zones: Any
    prior: pd.DataFrame
    obs: Observations | None
    event: Any = None
    lot_exits: list[str] = field(default_factory=list)
    routing: dict[str, Any] = field(default_factory=dict)
    regularization: float = 0.01
    prior_sd: float = 0.5

    def __post_init__(self) -> None:
        self.prior = self.prior.reset_index(drop=True)
        keys = self.prior[["kind", "origin", "destination"]].astype(str).agg("|".join, axis=1)
        self.rows = pd.DataFrame({"group": pd.factorize(keys)[0],
                                  "begin": self.prior["begin"].to_numpy(dtype=float)})
        self.levels = [pd.MultiIndex.from_frame(self.prior[list(cols)].astype(str)).factorize()[0]
                       for cols in LEVELS]
        if self.obs is None:  # only for simulating ODs (egress observe)
            return
        t = self.obs.table
        seg_keys = [" ".join(e) for e in t["edges"]]
        self.obs_key = pd.DataFrame({"seg": pd.factorize(pd.Series(seg_keys))[0],
                                     "begin": t["begin"].to_numpy(dtype=float)})
        self.per_hour = 3600.0 / (t["end"] - t["begin"]).to_numpy(dtype=float)
        self.targets = self.targets_with(None)

    def targets_with(self, noise: ModelNoise | None) -> Targets:
        """The objective's targets with model noise `noise`."""
        groups = self.levels[0] if self.prior_sd > 0 else None
        return Targets.from_observations(self.obs, self.x0, self.regularization, noise, groups,
                                         self.prior_sd)

    @property
    def x0(self) -> np.ndarray:
        return self.prior["trips"].to_numpy(dtype=float)

    def od(self, x: np.ndarray) -> pd.DataFrame:
        """The OD table with trips `x`."""
        return self.prior.assign(trips=np.asarray(x, dtype=float))

    def feasible(self, x: np.ndarray) -> np.ndarray:
        """`x` with the event's trips scaled down, if need be, so that its cars
        fit in the venue's lots (less one car per interval for rounding).

        Both optimizers may propose more event cars than the lots hold; the
        lots are a physical limit, so such a proposal is simulated (and
        recorded) at the largest event demand they allow, in the same
        proportions.
        """
        x = np.asarray(x, dtype=float)
        if self.event is None or not hasattr(self.zones, "venue_zone"):
            return x
        zone = self.zones.venue_zone(self.event.venue)
        rows = ((self.prior["kind"] == "event") & (self.prior["origin"] == zone)).to_numpy()
        limit = sum(self.event.lots.values()) - self.prior.loc[rows, "begin"].nunique()
        total = float(x[rows].sum())
        if total <= limit:
            return x
        x = x.copy()
        x[rows] *= max(limit, 0) / total
        return x

    def fingerprint(self, method: str, extra: dict | None = None) -> str:
        h = hashlib.sha256()
        h.update(pd.util.hash_pandas_object(self.prior, index=False).values.tobytes())
        h.update(self.obs.table.drop(columns=["edges"]).to_csv().encode())
        h.update(json.dumps([str(self.scenario.network), self.scenario.simulation.__dict__,
                             self.regularization, self.prior_sd, method, extra or {}],
                            default=str,
                            sort_keys=True).encode())
        return h.hexdigest()[:16]


def read_prior(path: str | Path, zones=None) -> pd.DataFrame:
    """Read an OD file (CSV or tazRelation XML); a CSV column ``kind`` (event or
    background, default background) is kept.

    Raises
    ------
    MissingFileError, InputError
    """
    from .demand.od import read_kinded_od

    return read_kinded_od(path, zones)


def setup(scenario: Scenario | str | Path, observations: str | Path | Observations, *,
          prior: str | Path | pd.DataFrame | None = None, meso: bool | None = True,
          seed: int | None = None, regularization: float = 0.01,
          prior_sd: float = 0.5) -> Problem:
    """Set up a calibration of a scenario's OD.

    Parameters
    ----------
    scenario : Scenario or path
    observations : path or Observations
    prior : path or DataFrame, optional
        The OD to start from (default: the scenario's own OD, see
        :func:`egress.demand.build_od`).
    meso : bool or None, default True
        Mesoscopic evaluations (None: the scenario's mode).
    seed : int, optional
        Seed of every evaluation (default the scenario's).
    regularization : float
        λ of the objective.
    prior_sd : float
        σ of the prior on the total demand per kind and interval (0: none).
    """
    from .network import read_net

    scenario, built = _scenario_od(scenario, meso, seed)
    net = read_net(scenario.network)
    if prior is None:
        od = built.od
    elif isinstance(prior, pd.DataFrame):
        od = prior.copy()
        if "kind" not in od.columns:
            od["kind"] = "background"
    else:
        od = read_prior(prior, built.zones)
    obs = _observations(observations, net, scenario.simulation)
    lot_exits = list(scenario.venues.lot_exits) if scenario.venues is not None else []
    return Problem(scenario, net, built.zones, od[["origin", "destination", "begin", "end",
                                                   "trips", "kind"]], obs, built.spec.event,
                   lot_exits, built.spec.routing.kwargs(), regularization, prior_sd)


def _scenario_od(scenario, meso: bool | None, seed: int | None):
    from .demand import build_od

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    changes: dict[str, Any] = {}
    if meso is not None:
        changes["mode"] = "meso" if meso else "micro"
    if seed is not None:
        changes["seed"] = int(seed)
    scenario = scenario.with_simulation(**changes) if changes else scenario
    return scenario, build_od(scenario)


def scenario_problem(scenario: Scenario | str | Path, *, meso: bool | None = True,
                     seed: int | None = None) -> Problem:
    """A :class:`Problem` without observations: the scenario's OD, for simulating ODs."""
    from .network import read_net

    scenario, built = _scenario_od(scenario, meso, seed)
    lot_exits = list(scenario.venues.lot_exits) if scenario.venues is not None else []
    od = built.od[["origin", "destination", "begin", "end", "trips", "kind"]]
    return Problem(scenario, read_net(scenario.network), built.zones, od, None,
                   built.spec.event, lot_exits, built.spec.routing.kwargs())


def setup_plain(net: str | Path, taz: str | Path, od: str | Path,
                observations: str | Path | Observations, *, begin: float | None = None,
                end: float | None = None, period: float = 300.0, meso: bool = True,
                seed: int = 42, regularization: float = 0.01,
                random_factor: float = 1.3, prior_sd: float = 0.5) -> Problem:
    """Set up a calibration of an existing SUMO model: network, TAZ file, OD file.

    The window defaults to the OD's first begin until the later of its last
    end and the observations' last end.
    """
    from .network import read_net

    net_path = Path(net)
    netobj = read_net(net_path)
    zones = TazZones(taz)
    prior = read_prior(od, zones.tokens)
    b = float(prior["begin"].min()) if begin is None else float(begin)
    e = float(prior["end"].max()) if end is None else float(end)
    if end is None and not isinstance(observations, Observations):
        raw = read_observations(observations, netobj)
        e = max(e, float(raw.table["end"].max()))
    sim = Simulation(begin=b, end=e, seed=int(seed), mode="meso" if meso else "micro",
                     edgedata_period=float(period))
    scenario = Scenario(path=Path(od).resolve(), name="calibration", description="",
                        network=net_path.resolve(), venues=None, simulation=sim,
                        output_format="csv")
    obs = _observations(observations, netobj, sim)
    return Problem(scenario, netobj, zones, prior, obs, None, [],
                   {"random_factor": random_factor}, regularization, prior_sd)


def _observations(observations, net, sim: Simulation) -> Observations:
    if isinstance(observations, Observations):
        return observations
    return read_observations(observations, net, window=(sim.begin, sim.end),
                             period=sim.edgedata_period, grid_start=sim.begin)


# --------------------------------------------------------------------------- one evaluation

@dataclass
class Evaluation:
    """One simulation of an OD.

    Attributes
    ----------
    x : numpy.ndarray
        The OD trips.
    values : pandas.DataFrame
        Simulated ``speed, count, travel_time, sampled_seconds`` per observation row.
    crossings : scipy.sparse.csr_matrix
        OD rows × observation rows: vehicles entering the segment's first
        edge in the observation's interval.
    planned : scipy.sparse.csr_matrix
        The same for the vehicles' planned passages
        (:func:`planned_crossings`): the demand each segment would see
        without congestion.
    vehicles : numpy.ndarray
        Vehicles sampled per OD row.
    objective : float
    metrics : dict
    info : dict
        ``inserted, teleports, sumo_s`` (routing + sumo), ``collect_s``.
    """

    x: np.ndarray
    values: pd.DataFrame
    crossings: sparse.csr_matrix
    planned: sparse.csr_matrix
    vehicles: np.ndarray
    objective: float = math.nan
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def sim(self) -> dict[str, np.ndarray]:
        return {k: self.values[k].to_numpy(dtype=float)
                for k in ("speed", "count", "travel_time")}

    def demand(self, per_hour: np.ndarray) -> np.ndarray:
        """Planned vehicles per hour entering each observation row's segment."""
        return np.asarray(self.planned.sum(axis=0)).ravel() * per_hour

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "x.npy", self.x)
        np.save(folder / "vehicles.npy", self.vehicles)
        sparse.save_npz(folder / "crossings.npz", self.crossings.tocsr())
        sparse.save_npz(folder / "planned.npz", self.planned.tocsr())
        self.values.to_csv(folder / "values.csv", index=False)
        _atomic_json(folder / "meta.json", {"objective": self.objective, "metrics": self.metrics,
                                            "info": self.info})

    @classmethod
    def load(cls, folder: Path) -> Evaluation:
        meta = json.loads((folder / "meta.json").read_text())
        return cls(np.load(folder / "x.npy"), pd.read_csv(folder / "values.csv"),
                   sparse.load_npz(folder / "crossings.npz").tocsr(),
                   sparse.load_npz(folder / "planned.npz").tocsr(),
                   np.load(folder / "vehicles.npy"), meta["objective"], meta["metrics"],
                   meta["info"])


def run_od(problem: Problem, x: np.ndarray, run_dir: str | Path, *, progress: bool = False,
           seed: int | None = None
           ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """Sample, route and simulate the OD `x` in `run_dir`.

    `seed` replaces the scenario's seed (sampling, routing and SUMO).

    Returns
    -------
    edges, vehicles, info, vehroutes
        The edgeData table (:func:`egress.engine.outputs.read_edgedata`), the
        sampled vehicles (:func:`egress.demand.sample_trips`, with their
        ``route``: a tuple of edges, None if unrouted), run facts, and the
        run's vehroutes (:func:`egress.engine.outputs.vehroute_table`).

    Raises
    ------
    InvalidRunError
        If the run's outputs break a physical invariant.
    """
    from . import engine
    from .demand.routing import route_vehicles, vehicle_routes
    from .demand.sampling import sample_trips

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    sc = problem.scenario
    if seed is not None and int(seed) != sc.simulation.seed:
        sc = sc.with_simulation(seed=int(seed))
    seed = sc.simulation.seed
    od = problem.od(x)
    t0 = time.perf_counter()
    veh = sample_trips(od, problem.zones, event=problem.event, lot_exits=problem.lot_exits,
                       seed=seed)
    routes = run_dir / "routes.rou.xml"
    t1 = time.perf_counter()
    veh["route"] = vehicle_routes(sc.network, veh, seed=seed, **problem.routing)
    route_vehicles(sc.network, veh, routes, seed=seed, **problem.routing)
    routed = veh[veh["route"].notna()]
    departures = pd.DataFrame({"vehicle": routed["id"].to_numpy(dtype=object),
                               "vtype": routed["kind"].to_numpy(dtype=object),
                               "ready": routed["depart"].to_numpy(dtype=float)})
    config = engine.RunConfig.from_scenario(sc, run_dir, [routes])
    result = engine.run(config, departures=departures, progress=progress, keep_records=True)
    if not result.valid:
        raise InvalidRunError(str(run_dir), result.problems)
    t2 = time.perf_counter()
    stats = result.statistics
    info = {"inserted": int(stats.get("inserted", 0)), "teleports": result.teleports,
            "vehicles": len(veh), "sumo_s": t2 - t1, "sample_s": t1 - t0}
    return result.edges, veh, info, outputs.vehroute_table(result.records)


def crossings(vehroutes: pd.DataFrame, veh: pd.DataFrame, obs: Observations, n_rows: int
              ) -> sparse.csr_matrix:
    """Count, per OD row and observation row, vehicles entering the segment's first
    edge during the observation's interval (entry = previous edge's exit time,
    or the departure on the first edge)."""
    t = obs.table
    first: dict[str, list[tuple[float, float, int]]] = {}
    for i, (edges, b, e) in enumerate(zip(t["edges"], t["begin"], t["end"], strict=True)):
        first.setdefault(edges[0], []).append((b, e, i))
    row_of = dict(zip(veh["id"], veh["od_row"], strict=True))
    rr, cc = [], []
    for vid, dep, edges, exits in zip(vehroutes["vehicle"], vehroutes["depart"],
                                      vehroutes["edges"], vehroutes["exit_times"], strict=True):
        r = row_of.get(vid, -1)
        if r < 0:
            continue
        enter = dep
        for k, edge in enumerate(edges):
            hit = first.get(edge)
            if hit is not None:
                for b, e, i in hit:
                    if b <= enter < e:
                        rr.append(r)
                        cc.append(i)
            if k >= len(exits) or exits[k] < 0:
                break  # not left, or left abnormally (teleport): no entry time for the next
            enter = exits[k]
    data = np.ones(len(rr))
    return sparse.csr_matrix((data, (rr, cc)), shape=(n_rows, len(t)))


def planned_crossings(veh: pd.DataFrame, obs: Observations, net, n_rows: int
                      ) -> sparse.csr_matrix:
    """Count, per OD row and observation row, vehicles whose planned passage
    enters the segment's first edge during the observation's interval.

    The planned passage is the departure plus the free-flow time along the
    vehicle's route: each edge's length over its speed limit times the
    vehicle's ``speed_factor``. Unlike :func:`crossings` it ignores
    congestion, so it is the demand on the segment, a linear and noise-free
    function of the OD (common random numbers fix every vehicle's draws).
    """
    t = obs.table
    first: dict[str, list[tuple[float, float, int]]] = {}
    for i, (edges, b, e) in enumerate(zip(t["edges"], t["begin"], t["end"], strict=True)):
        first.setdefault(edges[0], []).append((b, e, i))
    offsets: dict[tuple, list[tuple[float, list]]] = {}
    rr, cc = [], []
    for r, dep, route, factor in zip(veh["od_row"], veh["depart"], veh["route"],
                                     veh["speed_factor"], strict=True):
        if route is None:
            continue
        hits = offsets.get(route)
        if hits is None:
            hits, clock = [], 0.0
            for edge in route:
                if edge in first:
                    hits.append((clock, first[edge]))
                e = net.getEdge(edge)
                clock += e.getLength() / e.getSpeed()
            offsets[route] = hits
        for clock, windows in hits:
            enter = dep + clock / factor
            for b, e, i in windows:
                if b <= enter < e:
                    rr.append(r)
                    cc.append(i)
    return sparse.csr_matrix((np.ones(len(rr)), (rr, cc)), shape=(n_rows, len(t)))


def evaluate(problem: Problem, x: np.ndarray, run_dir: str | Path, *, keep_runs: bool = False,
             progress: bool = False, seed: int | None = None) -> Evaluation:
    """Simulate the OD `x` and compare with the observations.

    `seed` replaces the scenario's seed.

    Returns
    -------
    Evaluation
    """
    run_dir = Path(run_dir)
    x = np.asarray(x, dtype=float)
    edges, veh, info, vehroutes = run_od(problem, x, run_dir, progress=progress, seed=seed)
    t0 = time.perf_counter()
    values = simulated_values(edges, problem.obs, problem.net)
    cross = crossings(vehroutes, veh, problem.obs, len(x))
    planned = planned_crossings(veh, problem.obs, problem.net, len(x))
    n = np.bincount(veh["od_row"].to_numpy(), minlength=len(x))
    info["collect_s"] = time.perf_counter() - t0
    ev = Evaluation(x, values, cross, planned, n.astype(float), info=info)
    ev.objective = problem.targets.objective(ev.sim(), x)
    ev.metrics = fit_metrics(problem.obs, values)
    if not keep_runs:
        for name in _HEAVY:
            (run_dir / name).unlink(missing_ok=True)
    return ev


# --------------------------------------------------------------------------- statistics

def geh(model: np.ndarray, count: np.ndarray) -> np.ndarray:
    """GEH statistic of hourly flows: ``sqrt(2 (M - C)² / (M + C))`` (0 where both are 0)."""
    m, c = np.asarray(model, dtype=float), np.asarray(count, dtype=float)
    s = m + c
    return np.where(s > 0, np.sqrt(2.0 * (m - c) ** 2 / np.where(s > 0, s, 1.0)), 0.0)


def fit_metrics(obs: Observations, values: pd.DataFrame) -> dict[str, float]:
    """Standard fit statistics of simulated `values` against `obs`.

    Returns
    -------
    dict
        ``rmse_kmh, rmsne, r2`` of speeds, ``geh_share`` (share of counts with
        GEH < 5 on hourly flows; NaN without counts), ``rmse_count``,
        ``rmse_travel_time``.
    """
    t = obs.table
    out: dict[str, float] = {}
    i = t["speed"].notna().to_numpy()
    o = t["speed"].to_numpy(dtype=float)[i]
    s = values["speed"].to_numpy(dtype=float)[i]
    if i.any():
        out["rmse_kmh"] = float(np.sqrt(np.mean((s - o) ** 2)))
        out["rmsne"] = float(np.sqrt(np.mean(((s - o) / o) ** 2)))
        tot = float(np.sum((o - o.mean()) ** 2))
        out["r2"] = float(1 - np.sum((s - o) ** 2) / tot) if tot > 0 else math.nan
    else:
        out.update(rmse_kmh=math.nan, rmsne=math.nan, r2=math.nan)
    j = t["count"].notna().to_numpy()
    if j.any():
        per_hour = 3600.0 / (t["end"] - t["begin"]).to_numpy(dtype=float)[j]
        c = t["count"].to_numpy(dtype=float)[j]
        m = values["count"].to_numpy(dtype=float)[j]
        out["geh_share"] = float(np.mean(geh(m * per_hour, c * per_hour) < 5.0))
        out["rmse_count"] = float(np.sqrt(np.mean((m - c) ** 2)))
    else:
        out.update(geh_share=math.nan, rmse_count=math.nan)
    k = t["travel_time"].notna().to_numpy()
    out["rmse_travel_time"] = float(np.sqrt(np.mean(
        (values["travel_time"].to_numpy()[k] - t["travel_time"].to_numpy()[k]) ** 2))) \
        if k.any() else math.nan
    return out


# --------------------------------------------------------------------------- the run

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
    """

    od: pd.DataFrame
    history: pd.DataFrame
    prior: Evaluation
    best: Evaluation
    files: dict[str, Path]
    targets: Targets | None = None


class _Budget(Exception):
    """Raised inside an optimizer when the budget is spent."""


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
            state = json.loads(self.state_path.read_text())
            if state.get("fingerprint") != self.fp:
                raise InputError(str(out), "holds a calibration with other inputs or settings; "
                                 "use another --out or drop --resume")
            self.cached = {row["tag"]: row for row in state["history"]}
        elif self.state_path.is_file() and not resume:
            shutil.rmtree(out / "sims", ignore_errors=True)
        self.history: list[dict] = []
        self.evals: list[Evaluation] = []
        self.best: Evaluation | None = None
        self.model_s = 0.0
        self.started = time.perf_counter()
        from tqdm import tqdm

        self.bar = tqdm(total=budget, unit="sim", desc=f"calibrating ({method})",
                        disable=None if progress else True)
        self.seed = seed

    def __call__(self, x: np.ndarray, tag: str, *, seed: int | None = None,
                 candidate: bool = True, info: dict[str, Any] | None = None) -> Evaluation:
        """Evaluate `x` (once per `tag`); `seed` replaces the simulation seed,
        an evaluation that is not a `candidate` never becomes the best, and
        `info` goes into its row of the convergence table."""
        if tag in self.done:
            return self.done[tag]
        if len(self.history) >= self.budget:
            raise _Budget
        x = self.p.feasible(x)
        n = len(self.history)
        folder = self.out / "sims" / f"{n:03d}"
        row = self.cached.get(tag)
        ev = None
        if row is not None and (folder / "meta.json").is_file():
            ev = Evaluation.load(folder)
            if not np.allclose(ev.x, x, rtol=1e-9, atol=1e-9):
                log.warning("resume: evaluation %s differs from the one on disk; re-simulating",
                            tag)
                ev = None
        if ev is None:
            ev = evaluate(self.p, x, folder / "run", keep_runs=self.keep_runs, seed=seed)
            ev.save(folder)
            wall = time.perf_counter() - self.started
        else:
            wall = row["wall_s"]
        ev.objective = self.targets.objective(ev.sim(), ev.x)
        accepted = candidate and (self.best is None or ev.objective < self.best.objective)
        if accepted:
            self.best = ev
        self.done[tag] = ev
        self.evals.append(ev)
        self.history.append({
            "sim": n + 1, "tag": tag, "objective": ev.objective, **ev.metrics,
            "accepted": accepted, "best": self.best.objective if self.best else math.nan,
            "wall_s": wall,
            "sumo_s": ev.info.get("sumo_s", math.nan), "model_s": self.model_s,
            "collect_s": ev.info.get("collect_s", math.nan),
            "teleports": ev.info.get("teleports", 0), **(info or {})})
        self.model_s = 0.0
        if self.best is not None:
            self._save()
        self.bar.update(1)
        self.bar.set_postfix(objective=f"{self.best.objective:.3g}",
                             rmse=f"{self.best.metrics.get('rmse_kmh', math.nan):.2f}")
        return ev

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
            ev.objective = targets.objective(ev.sim(), ev.x)
            row["objective"] = ev.objective
            row["accepted"] = row["tag"] != REPLICATE and (best is None
                                                            or ev.objective < best.objective)
            if row["accepted"]:
                best = ev
            row["best"] = best.objective
        self.best = best
        self._save()

    def _save(self) -> None:
        from .demand import od as odmod

        best_od = self.p.od(self.best.x)
        _atomic_csv(best_od, self.out / "calibrated.od.csv")
        total = best_od.groupby(["origin", "destination", "begin", "end"], as_index=False,
                                sort=True)["trips"].sum()
        odmod.write_tazrelation(total[list(odmod.OD_COLUMNS)], self.out / "calibrated.tazrel.tmp")
        os.replace(self.out / "calibrated.tazrel.tmp", self.out / "calibrated.tazrel.xml")
        _atomic_csv(pd.DataFrame(self.history), self.out / "convergence.csv")
        noise = self.targets.model_noise
        _atomic_json(self.state_path, {
            "fingerprint": self.fp, "method": self.method, "budget": self.budget,
            "seed": self.seed, "rng": "spsa: numpy default_rng([seed, k]) per iteration",
            "model_noise": None if noise is None else asdict(noise),
            "history": self.history, "best_sim": self.best_sim})


def calibrate(problem: Problem, out: str | Path, *, method: str = "metamodel", budget: int = 15,
              seed: int | None = None, resume: bool = False, keep_runs: bool = False,
              progress: bool = True, figures: bool = True,
              model_noise: str | ModelNoise | None = "estimate") -> CalibrationResult:
    """Calibrate the OD of `problem` to its observations.

    Parameters
    ----------
    problem : Problem
        From :func:`setup` or :func:`setup_plain`.
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
        :mod:`egress.metamodel`). ``"estimate"`` (default, needs a budget of
        at least 3): the second simulation replicates the start OD with
        another seed (tag ``replicate``; it counts against the budget and is
        never the result) and :func:`egress.metamodel.estimate_model_noise`
        measures the noise from the pair. None: measurement noise only.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    InputError
        On a bad method or budget, or when resuming with other inputs.
    """
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
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed = problem.scenario.simulation.seed if seed is None else int(seed)
    setting = model_noise if isinstance(model_noise, str) or model_noise is None \
        else asdict(model_noise)
    run = _Runner(problem, out, method, budget, seed, resume, keep_runs, progress, setting)
    if isinstance(model_noise, ModelNoise):
        run.targets = problem.targets_with(model_noise)
    try:
        start = run(problem.x0, "start")
        if estimate:
            rep = run(problem.x0, REPLICATE, candidate=False,
                      seed=problem.scenario.simulation.seed + REPLICATE_SEED_OFFSET)
            noise = estimate_model_noise(start.sim(), rep.sim(), problem.targets.idx)
            log.info("model noise: speed %.2f km/h, counts %.1f %%, travel times %.2f (sd of ln)",
                     noise.speed, 100 * noise.count, noise.travel_time)
            run.set_targets(problem.targets_with(noise))
        if method == "spsa":
            _run_spsa(run, seed)
        else:
            _run_metamodel(run)
    except _Budget:
        pass
    finally:
        run.bar.close()
    history = pd.DataFrame(run.history)
    prior, best = run.evals[0], run.best
    files = {"od": out / "calibrated.od.csv", "tazrel": out / "calibrated.tazrel.xml",
             "convergence": out / "convergence.csv", "state": out / "state.json"}
    fit = problem.obs.table.drop(columns=["length"]).copy()
    fit["edges"] = [" ".join(e) for e in fit["edges"]]
    for name, ev in (("prior", prior), ("best", best)):
        for k in ("speed", "count", "travel_time"):
            fit[f"{name}_{k}"] = ev.values[k].to_numpy()
    files["fit"] = out / "fit.csv"
    fit.to_csv(files["fit"], index=False)
    if figures:
        files["scatter"] = plot_scatter(problem.obs, prior, best, out / "scatter.png")
        files["convergence_plot"] = plot_convergence(history, out / "convergence.png")
    noise = run.targets.model_noise
    summary = {"method": method, "budget": budget, "seed": seed,
               "mode": problem.scenario.simulation.mode, "simulations": len(history),
               "model_noise": None if noise is None else asdict(noise),
               "prior": {"objective": prior.objective, **prior.metrics},
               "best": {"objective": best.objective, **best.metrics,
                        "sim": run.best_sim},
               "observations": problem.obs.n_values, "od_rows": len(problem.prior)}
    from .engine import versions

    summary["versions"] = versions()
    files["summary"] = out / "summary.json"
    _atomic_json(files["summary"], summary)
    return CalibrationResult(problem.od(best.x), history, prior, best, files, run.targets)


def _run_spsa(run: _Runner, seed: int) -> None:
    from .spsa import spsa

    p = run.p
    spent = len(run.history) - 1  # simulations besides the start (the replicate)
    spsa(lambda x, tag: run(x, tag).objective, p.x0, run.budget - spent,
         scale=run.targets.scale, seed=seed)


def _run_metamodel(run: _Runner) -> None:
    p = run.p
    best = run(p.x0, "start")
    radius, r_max, r_min = RADIUS
    free = p.obs.table["free_speed"].to_numpy(dtype=float)
    seg = p.obs_key["seg"].to_numpy()
    it = level = fails = 0
    last = len(p.levels) - 1
    round_start = best
    while len(run.history) < run.budget:
        if radius < r_min or fails >= LEVEL_PATIENCE:
            if level == last:
                if best is round_start:
                    break  # a whole round of levels improved nothing
                round_start, level = best, -1
            # the region says how far the model can be trusted, which regrouping the
            # rows does not change: after rejections the next level starts from
            # twice the shrunk radius, after no predicted gain from the initial one
            radius = RADIUS[0] if radius < r_min else min(RADIUS[0], 2.0 * radius)
            level, fails = level + 1, 0
            log.info("metamodel: level %d (%s)", level + 1, ", ".join(LEVELS[level]))
        it += 1
        t0 = time.perf_counter()
        pmat = assignment_matrix([{"crossings": e.crossings, "vehicles": e.vehicles}
                                  for e in run.evals], p.rows, p.obs_key)
        pdem = assignment_matrix([{"crossings": e.planned, "vehicles": e.vehicles}
                                  for e in run.evals], p.rows, p.obs_key)
        curve = fit_speed_flow(seg, [e.demand(p.per_hour) for e in run.evals],
                               [e.values["speed"].to_numpy(dtype=float) for e in run.evals], free)
        model = Metamodel(run.targets, pmat, p.per_hour, curve, best.x, best.sim(),
                          demand=pdem)
        # on the finest level the rows no observation sees move per kind and interval
        x_new, m_new = model.minimize(radius, p.levels[level],
                                      unseen=p.levels[0] if level == last else None)
        run.model_s = time.perf_counter() - t0
        predicted = best.objective - m_new
        if predicted <= 1e-9 * max(1.0, best.objective):
            radius = r_min / 2  # nothing to gain at this level: refine
            log.info("metamodel: no predicted gain at level %d", level + 1)
            continue
        ev = run(x_new, f"it{it}", info={"level": level + 1, "radius": radius,
                                         "predicted": m_new})
        rho = (best.objective - ev.objective) / predicted
        if ev.objective < best.objective:
            # a gain below LEVEL_GAIN of the objective counts as a failure of the level
            small = best.objective - ev.objective < LEVEL_GAIN * best.objective
            best, fails = ev, fails + 1 if small else 0
            if rho > 0.5:
                radius = min(2.0 * radius, r_max)
            elif rho < 0.1:
                radius *= 0.5
        else:
            radius *= 0.5
            fails += 1
        log.info("metamodel it %d (level %d): J %.4g (model %.4g), rho %.2f, radius %.3g", it,
                 level + 1, ev.objective, m_new, rho, radius)


# --------------------------------------------------------------------------- figures

def plot_scatter(obs: Observations, before: Evaluation, after: Evaluation, path: Path) -> Path:
    """Observed vs simulated segment speeds, before and after, around x = y."""
    plt = pyplot()

    i = obs.table["speed"].notna().to_numpy()
    o = obs.table["speed"].to_numpy(dtype=float)[i]
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), sharex=True, sharey=True)
    top = max(float(o.max()), 1.0) * 1.1
    for ax, ev, title in ((axes[0], before, "prior OD"), (axes[1], after, "calibrated OD")):
        s = ev.values["speed"].to_numpy(dtype=float)[i]
        ax.scatter(o, s, s=8, alpha=0.5)
        ax.plot([0, top], [0, top], color="k", lw=1, label="x = y")
        m = ev.metrics
        ax.set_title(f"{title}: RMSE {m['rmse_kmh']:.1f} km/h, R² {m['r2']:.2f}")
        ax.set_xlabel("observed speed (km/h)")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.legend(loc="upper left")
    axes[0].set_ylabel("simulated speed (km/h)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_convergence(history: pd.DataFrame, path: Path) -> Path:
    """Objective of every simulation and best so far."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(history["sim"], history["objective"], "o", alpha=0.6, label="simulation")
    ax.plot(history["sim"], history["best"], "-", label="best so far")
    ax.set_yscale("log")
    ax.set_xlabel("simulation")
    ax.set_ylabel("objective")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- files

def _atomic_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_jsonable) + "\n")
    os.replace(tmp, path)


def _atomic_csv(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.integer | np.bool_):
        return v.item()
    if isinstance(v, np.floating):
        return float(v)
    return str(v)


__all__ = ["CalibrationResult", "Evaluation", "METHODS", "Problem", "TazZones", "calibrate",
           "crossings", "evaluate", "fit_metrics", "geh", "planned_crossings",
           "plot_convergence", "plot_scatter", "read_prior", "run_od", "setup", "setup_plain"]
