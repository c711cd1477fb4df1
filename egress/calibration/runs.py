"""One evaluation of an OD: sample, route and simulate it, and aggregate what the
observations see (:func:`evaluate`), with the crossings the metamodel learns from."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .. import engine
from ..demand.routing import route_vehicles, vehicle_routes
from ..demand.sampling import sample_trips
from ..errors import InvalidRunError
from ..files import atomic_json
from .metrics import fit_metrics
from .observations import Observations, simulated_values
from .problem import Problem

#: SUMO output files deleted after an evaluation unless ``keep_runs``.
_HEAVY = ("vehroutes.xml", "tripinfo.xml", "routes.rou.xml")


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
        ``inserted, teleports, vehicles``, ``entry_waits`` and
        ``entry_wait_origins`` (:func:`entry_waits`); times in s:
        ``sample_s`` (drawing the trips), ``sumo_s`` (routing, SUMO and
        reading its outputs), of
        which ``route_s`` (routing and writing the route file),
        ``simulate_s`` (the SUMO process alone) and ``read_s`` (reading and
        checking its outputs); ``collect_s`` (aggregating them for the
        observations and the metamodel).
    theta : numpy.ndarray
        The supply parameters it ran with (:attr:`Problem.supply_names`;
        empty when the calibration moves none).
    held : numpy.ndarray
        Vehicles held outside the network per OD row (:func:`held_outside`).
    redraws : list of Evaluation
        Further simulations of the same OD and supply with other seeds (a
        calibration's incumbent, see :meth:`mean_sim`); not saved with it.
    """

    x: np.ndarray
    values: pd.DataFrame
    crossings: sparse.csr_matrix
    planned: sparse.csr_matrix
    vehicles: np.ndarray
    objective: float = math.nan
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    theta: np.ndarray = field(default_factory=lambda: np.zeros(0))
    held: np.ndarray | None = None
    redraws: list[Evaluation] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.held is None:
            self.held = np.zeros(len(self.x))

    def sim(self) -> dict[str, np.ndarray]:
        """Simulated ``speed``, ``count``, ``travel_time`` per observation row, and
        ``held`` per OD row (vehicles held outside the network)."""
        return {**{k: self.values[k].to_numpy(dtype=float)
                   for k in ("speed", "count", "travel_time")}, "held": self.held}

    def draws(self) -> list[dict[str, np.ndarray]]:
        """:meth:`sim` of this simulation and of each of its :attr:`redraws`."""
        return [self.sim()] + [r.sim() for r in self.redraws]

    def mean_sim(self) -> dict[str, np.ndarray]:
        """The mean of :meth:`draws` per observation row (NaN where no draw has a
        value): with redraws, a better estimate of what this OD gives than its
        first simulation alone."""
        draws = self.draws()
        if len(draws) == 1:
            return draws[0]
        out = {}
        for k in draws[0]:
            a = np.vstack([d[k] for d in draws])
            n = np.isfinite(a).sum(axis=0)
            out[k] = np.where(n > 0, np.nansum(a, axis=0) / np.maximum(n, 1), np.nan)
        return out

    def demand(self, per_hour: np.ndarray) -> np.ndarray:
        """Planned vehicles per hour entering each observation row's segment."""
        return np.asarray(self.planned.sum(axis=0)).ravel() * per_hour

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "x.npy", self.x)
        np.save(folder / "theta.npy", self.theta)
        np.save(folder / "vehicles.npy", self.vehicles)
        np.save(folder / "held.npy", self.held)
        sparse.save_npz(folder / "crossings.npz", self.crossings.tocsr(), compressed=False)
        sparse.save_npz(folder / "planned.npz", self.planned.tocsr(), compressed=False)
        self.values.to_csv(folder / "values.csv", index=False)
        atomic_json(folder / "meta.json", {"objective": self.objective, "metrics": self.metrics,
                                            "info": self.info})

    @classmethod
    def load(cls, folder: Path) -> Evaluation:
        meta = json.loads((folder / "meta.json").read_text())
        theta, held = folder / "theta.npy", folder / "held.npy"
        return cls(np.load(folder / "x.npy"), pd.read_csv(folder / "values.csv"),
                   sparse.load_npz(folder / "crossings.npz").tocsr(),
                   sparse.load_npz(folder / "planned.npz").tocsr(),
                   np.load(folder / "vehicles.npy"), meta["objective"], meta["metrics"],
                   meta["info"], np.load(theta) if theta.is_file() else np.zeros(0),
                   np.load(held) if held.is_file() else None)


def run_od(problem: Problem, x: np.ndarray, run_dir: str | Path, *, progress: bool = False,
           seed: int | None = None, theta: np.ndarray | None = None
           ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """Sample, route and simulate the OD `x` in `run_dir`.

    `seed` replaces the scenario's seed (sampling, routing and SUMO); `theta`
    sets the calibrated supply parameters (default: the scenario's values).

    Returns
    -------
    edges, vehicles, info, vehroutes
        The edgeData table (:func:`egress.engine.outputs.read_edgedata`), the
        sampled vehicles (:func:`egress.demand.sampling.sample_trips`, with their
        ``route``: a tuple of edges, None if unrouted, and ``held``:
        :func:`held_outside`), run facts (with
        :func:`entry_waits`), and the run's vehroutes as
        :func:`egress.engine.outputs.vehroute_records` reads them (text per
        vehicle; :func:`egress.engine.outputs.vehroute_table` makes a table of
        them). Not the table: a calibration reads only the edges and exit
        times, and a tuple and an array per vehicle took longer than
        counting its crossings from them (:func:`crossings`).

    Raises
    ------
    InvalidRunError
        If the run's outputs break a physical invariant.
    """

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    sc = problem.scenario_with(theta)
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
    t_routed = time.perf_counter()
    routed = veh[veh["route"].notna()]
    departures = pd.DataFrame({"vehicle": routed["id"].to_numpy(dtype=object),
                               "vtype": routed["kind"].to_numpy(dtype=object),
                               "ready": routed["depart"].to_numpy(dtype=float)})
    # edgeData of the observed edges only (all of them when simulating without observations)
    observed = None if problem.obs is None else tuple(sorted(
        {e for edges in problem.obs.table["edges"] for e in edges}))
    config = engine.RunConfig.from_scenario(sc, run_dir, [routes], edgedata_edges=observed)
    result = engine.run(config, departures=departures, progress=progress, keep_records=True)
    if not result.valid:
        raise InvalidRunError(str(run_dir), result.problems)
    t2 = time.perf_counter()
    stats = result.statistics
    info = {"inserted": int(stats.get("inserted", 0)), "teleports": result.teleports,
            "vehicles": len(veh), "sumo_s": t2 - t1, "sample_s": t1 - t0,
            "route_s": t_routed - t1, "simulate_s": result.sumo_seconds,
            "read_s": result.read_seconds}
    veh["held"] = held_outside(result.vehicles, veh, sc.simulation.end)
    veh["start"] = network_start(result.vehicles, veh)
    info.update(_counted(veh, veh["held"].to_numpy()))
    return result.edges, veh, info, result.records


def crossings(vehroutes: list[tuple], veh: pd.DataFrame, obs: Observations, n_rows: int
              ) -> sparse.csr_matrix:
    """Count, per OD row and observation row, vehicles entering the segment's first
    edge during the observation's interval (entry = previous edge's exit time,
    or the departure on the first edge; after an edge left abnormally, exit
    time -1 around a teleport, or not left at all, no later entry is known).

    `vehroutes` are the run's vehicles as
    :func:`egress.engine.outputs.vehroute_records` reads them. Many vehicles
    share a route, so each distinct route text is split and looked up once.
    """
    first = _FirstEdges(obs)
    n_veh = len(vehroutes)
    if not n_veh or not len(first.index):
        return sparse.csr_matrix((n_rows, len(obs.table)))
    # one list per field (transposing with zip(*vehroutes) holds an iterator per
    # vehicle, enough of them to set off a full garbage collection)
    route_text = [r[4] for r in vehroutes]
    exit_text = [r[5] for r in vehroutes]
    pos = pd.Index(veh["id"].to_numpy(dtype=object), dtype=object).get_indexer(
        np.array([r[0] for r in vehroutes], dtype=object))
    od_row = np.where(pos >= 0, veh["od_row"].to_numpy()[np.maximum(pos, 0)], -1)
    route_of, routes = pd.factorize(np.array(route_text, dtype=object))
    # the texts joined and split at once: a list per route or vehicle, all held
    # until the last is made, set off full garbage collections
    lengths = _tokens(routes)
    code = first.code(np.array(" ".join(routes).split(), dtype=object))
    v, h, k = _route_hits(route_of, lengths, code)
    n_exits = _tokens(exit_text)
    flat = np.fromiter(map(float, " ".join(exit_text).split()), dtype=float,
                       count=int(n_exits.sum()))
    hit = (od_row[v] >= 0) & (k <= n_exits[v])
    v, h, k = v[hit], h[hit], k[hit]
    # exits left abnormally up to and including each position, per vehicle
    bad = np.cumsum(flat < 0)
    x0 = np.cumsum(n_exits) - n_exits
    before = np.where(x0 > 0, bad[np.maximum(x0 - 1, 0)], 0) if len(bad) else np.zeros(n_veh)
    prev = x0[v] + k - 1  # the previous edge's exit
    later = k > 0
    ok = ~later.copy()
    ok[later] = (bad[prev[later]] - before[v[later]]) == 0
    depart = np.fromiter((float(r[2]) for r in vehroutes), dtype=float, count=n_veh)
    enter = np.where(later, flat[np.maximum(prev, 0)] if len(flat) else 0.0, depart[v])
    return first.matrix(code[h[ok]], enter[ok], od_row[v[ok]], n_rows)


def planned_crossings(veh: pd.DataFrame, obs: Observations, net, n_rows: int
                      ) -> sparse.csr_matrix:
    """Count, per OD row and observation row, vehicles whose planned passage
    enters the segment's first edge during the observation's interval.

    The planned passage starts when the vehicle enters the network (its
    departure, or for an event car the time it left its lot:
    ``start`` of `veh`, :func:`network_start`, when present) and adds the
    free-flow time along the vehicle's route: each edge's length over its
    speed limit times the vehicle's ``speed_factor``. Unlike :func:`crossings`
    it ignores congestion in the network, so it is the demand on the segment,
    a linear and, but for the lots' queues, noise-free function of the OD
    (common random numbers fix every vehicle's draws).
    """
    first = _FirstEdges(obs)
    routed = veh["route"].notna().to_numpy()
    if not routed.any() or not len(first.index):
        return sparse.csr_matrix((n_rows, len(obs.table)))
    route_of, routes = pd.factorize(veh["route"].to_numpy(dtype=object)[routed])
    lengths = np.fromiter(map(len, routes), dtype=np.int64, count=len(routes))
    flat = np.fromiter(chain.from_iterable(routes), dtype=object, count=int(lengths.sum()))
    inverse, names = pd.factorize(flat)
    free = np.array([net.getEdge(e).getLength() / net.getEdge(e).getSpeed() for e in names])
    t = free[inverse]
    starts = np.cumsum(lengths) - lengths
    clock = np.cumsum(t) - t  # free-flow time from the start of the route to each edge
    clock -= np.repeat(clock[starts] if len(starts) else np.zeros(0), lengths)
    code = first.code(flat)
    v, h, _ = _route_hits(route_of, lengths, code)
    depart = veh["start" if "start" in veh else "depart"].to_numpy(dtype=float)[routed]
    factor = veh["speed_factor"].to_numpy(dtype=float)[routed]
    rows = veh["od_row"].to_numpy()[routed]
    return first.matrix(code[h], depart[v] + clock[h] / factor[v], rows[v], n_rows)


def _tokens(texts: list[str] | np.ndarray) -> np.ndarray:
    """Words (edge ids, exit times) in each text."""
    return np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))


def _route_hits(route_of: np.ndarray, lengths: np.ndarray, code: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every vehicle's meetings with an observed first edge along its route.

    Parameters
    ----------
    route_of : numpy.ndarray
        Per vehicle, its route (a position in `lengths`).
    lengths : numpy.ndarray
        Edges per route.
    code : numpy.ndarray
        Per edge of the routes laid end to end, :meth:`_FirstEdges.code`.

    Returns
    -------
    v, h, k : numpy.ndarray
        Per meeting, the vehicle, the edge's position in `code` and in its
        route; by vehicle, then along the route.
    """
    hit = np.flatnonzero(code >= 0)
    starts = np.cumsum(lengths) - lengths
    route = np.repeat(np.arange(len(lengths)), lengths)[hit]
    n_hits = np.bincount(route, minlength=len(lengths))
    hit_start = np.cumsum(n_hits) - n_hits
    per_vehicle = n_hits[route_of]
    v = np.repeat(np.arange(len(route_of)), per_vehicle)
    h = np.repeat(hit_start[route_of] - (np.cumsum(per_vehicle) - per_vehicle), per_vehicle) \
        + np.arange(int(per_vehicle.sum()))
    h = hit[h]
    return v, h, h - starts[route_of[v]]


class _FirstEdges:
    """The first edges of the observed segments and their intervals.

    The begins and ends of all intervals cut time into slots; an entry is
    counted in its first edge's slot (one binary search for all entries),
    and each slot in every observation of that edge whose interval covers
    it. A test of every entry against each observation in turn took more
    than twice as long (700 observations, 116,000 entries on the normal
    evening).
    """

    def __init__(self, obs: Observations):
        t = obs.table
        firsts = np.array([e[0] for e in t["edges"]], dtype=object)
        self.index = pd.Index(pd.unique(firsts), dtype=object)
        self.n_obs = len(t)
        begin = t["begin"].to_numpy(dtype=float)
        end = t["end"].to_numpy(dtype=float)
        self.cuts = np.unique(np.concatenate([begin, end]))
        # observation i covers the slots from its begin's cut to the one before its end's
        lo = np.searchsorted(self.cuts, begin)
        n = np.maximum(np.searchsorted(self.cuts, end) - lo, 0)
        slot = np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
        cell = np.repeat(self.index.get_indexer(firsts), n) * len(self.cuts) + slot
        self.covers = sparse.csr_matrix(
            (np.ones(len(cell)), (cell, np.repeat(np.arange(self.n_obs), n))),
            shape=(len(self.index) * len(self.cuts), self.n_obs))

    def code(self, edges: np.ndarray) -> np.ndarray:
        """Per edge id, the code of the observed first edge (-1 if none)."""
        if not len(edges):
            return np.zeros(0, dtype=np.int64)
        # hash the many edge ids once, look up the few distinct ones
        inverse, names = pd.factorize(edges)
        return self.index.get_indexer(np.asarray(names, dtype=object))[inverse]

    def matrix(self, code: np.ndarray, when: np.ndarray, od_row: np.ndarray, n_rows: int
               ) -> sparse.csr_matrix:
        """OD rows × observation rows: entries of `code` at time `when` of `od_row`,
        counted in every observation of that first edge whose interval holds them."""
        # slot s holds cuts[s] <= when < cuts[s + 1]: none before the first cut or from
        # the last on (NaN sorts last)
        slot = np.searchsorted(self.cuts, when, side="right") - 1
        ok = (slot >= 0) & (slot < len(self.cuts) - 1)
        cell = code[ok] * len(self.cuts) + slot[ok]
        entries = sparse.csr_matrix((np.ones(len(cell)), (od_row[ok], cell)),
                                    shape=(n_rows, self.covers.shape[0]))
        out = (entries @ self.covers).tocsr()
        out.sort_indices()  # the layout the entries one by one gave
        return out


#: Seconds after its planned departure beyond which a vehicle still waiting to
#: enter the network counts as held outside it (:func:`entry_waits`).
ENTRY_WAIT = 300.0


def _in_lot(veh: pd.DataFrame) -> np.ndarray:
    """Which sampled trips are event cars leaving a parking lot."""
    if "lot" not in veh:
        return np.zeros(len(veh), dtype=bool)
    lot = veh["lot"]
    return ~(lot.isna() | (lot.astype(str) == "")).to_numpy()


def network_start(vehicles: pd.DataFrame, veh: pd.DataFrame) -> np.ndarray:
    """When each sampled trip's passage through the network starts: its planned
    departure, or for an event car that left its lot later, when it left.

    The queue before a lot's exit is real and outside every observed segment
    (:func:`held_outside`): a car that waits there half an hour reaches the
    segments half an hour after its planned departure, and until it leaves
    it puts no demand on them. In the bench's large event the cars planned
    for 22:15-22:30 wait a median 36 min in the truth's lots, those for
    22:30-22:45 75 min; counted from their planned departure, their demand
    fell on quarter-hours in which the observed streets still flowed.
    Measured there (metamodel, held-out score over calibration seeds 3, 4,
    5; the truth scores 0.47): from the halved prior 0.87, 0.74, 0.88
    before, 0.90, 0.45, 0.51 after; from the uniform prior 0.91-1.22 (mean
    1.05) before, 1.01, 1.01 and 2.08 after (the last an answer drawn once,
    see :func:`egress.calibration.search._answer_drawn_twice`).

    Parameters
    ----------
    vehicles, veh
        As for :func:`held_outside`.

    Returns
    -------
    numpy.ndarray
        Seconds per row of `veh`.
    """
    planned = veh["depart"].to_numpy(dtype=float)
    lot = _in_lot(veh)
    if not lot.any():
        return planned
    _, left = _run_times(vehicles, veh)
    later = lot & np.isfinite(left) & (left > planned)
    return np.where(later, left, planned)


def held_outside(vehicles: pd.DataFrame, veh: pd.DataFrame, end: float) -> np.ndarray:
    """Which sampled trips were held outside the network: inserted more than
    :data:`ENTRY_WAIT` s after their planned departure, or never inserted
    though planned more than that before the simulation's `end`.

    SUMO keeps a vehicle it cannot insert (its first edge is full) waiting
    outside the network. That queue is demand beyond what the model's entry
    carries, and no observation sees it until it drains: counts downstream of
    a full on-ramp stay at its capacity whatever the demand behind it. A
    calibration whose OD holds vehicles there has put demand where the
    observations cannot judge it. Event vehicles leaving a parking lot are
    never held: their wait before the lot's exit is a real queue, in the
    lot (measured by :mod:`egress.engine.measures`).

    Parameters
    ----------
    vehicles : pandas.DataFrame
        The run's vehicle table (:func:`egress.engine.vehicles.vehicle_table`:
        ``vehicle``, ``ready`` the planned departure, ``depart`` the
        insertion, NaN if never).
    veh : pandas.DataFrame
        The sampled trips (``id``, optionally ``lot``); a trip that is no
        vehicle of the run (no route) is not held.
    end : float
        The simulation's end, s.

    Returns
    -------
    numpy.ndarray
        Boolean per row of `veh`.
    """
    ready, depart = _run_times(vehicles, veh)
    held = np.isfinite(ready) & np.where(np.isnan(depart), ready < end - ENTRY_WAIT,
                                         depart - ready > ENTRY_WAIT)
    return held & ~_in_lot(veh)


def _run_times(vehicles: pd.DataFrame, veh: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `veh`, the run's planned departure (``ready``) and insertion
    (``depart``) of that vehicle; NaN for a trip that is no vehicle of the run."""
    run = vehicles.drop_duplicates("vehicle").set_index("vehicle")
    ready = np.full(len(veh), np.nan)
    depart = np.full(len(veh), np.nan)
    if not len(run):
        return ready, depart
    # positions by hashing (an isin on object arrays compares element by element)
    pos = run.index.get_indexer(veh["id"])
    found = pos >= 0
    ready[found] = run["ready"].to_numpy(dtype=float)[pos[found]]
    depart[found] = run["depart"].to_numpy(dtype=float)[pos[found]]
    return ready, depart


def entry_waits(vehicles: pd.DataFrame, veh: pd.DataFrame, end: float) -> dict[str, Any]:
    """The vehicles held outside the network (:func:`held_outside`), counted.

    Parameters
    ----------
    vehicles, veh, end
        As for :func:`held_outside`; `veh` needs ``origin``.

    Returns
    -------
    dict
        ``entry_waits`` (vehicles) and ``entry_wait_origins`` (vehicles per
        origin zone, the five with most, largest first).
    """
    return _counted(veh, held_outside(vehicles, veh, end))


def _counted(veh: pd.DataFrame, held: np.ndarray) -> dict[str, Any]:
    """:func:`entry_waits` of the trips `veh` whose `held` is true."""
    origins = veh["origin"].to_numpy(dtype=object)[held]
    top = pd.Series(origins, dtype=object).value_counts().head(5)
    return {"entry_waits": int(held.sum()),
            "entry_wait_origins": {str(k): int(v) for k, v in top.items()}}


def evaluate(problem: Problem, x: np.ndarray, run_dir: str | Path, *, keep_runs: bool = False,
             progress: bool = False, seed: int | None = None,
             theta: np.ndarray | None = None) -> Evaluation:
    """Simulate the OD `x` (with supply parameters `theta`) and compare with the
    observations.

    `seed` replaces the scenario's seed.

    Returns
    -------
    Evaluation
    """
    run_dir = Path(run_dir)
    x = np.asarray(x, dtype=float)
    theta = problem.theta0 if theta is None else np.asarray(theta, dtype=float)
    edges, veh, info, vehroutes = run_od(problem, x, run_dir, progress=progress, seed=seed,
                                         theta=theta)
    t0 = time.perf_counter()
    values = simulated_values(edges, problem.obs, problem.net)
    cross = crossings(vehroutes, veh, problem.obs, len(x))
    planned = planned_crossings(veh, problem.obs, problem.net, len(x))
    rows = veh["od_row"].to_numpy()
    n = np.bincount(rows, minlength=len(x))
    held = np.bincount(rows, weights=veh["held"].to_numpy(dtype=float), minlength=len(x))
    info["collect_s"] = time.perf_counter() - t0
    ev = Evaluation(x, values, cross, planned, n.astype(float), info=info, theta=theta,
                    held=held)
    ev.objective = problem.targets.objective(ev.sim(), x)
    ev.metrics = fit_metrics(problem.obs, values)
    if not keep_runs:
        for name in _HEAVY:
            (run_dir / name).unlink(missing_ok=True)
    return ev



__all__ = ["ENTRY_WAIT", "Evaluation", "crossings", "entry_waits", "evaluate", "held_outside",
           "network_start", "planned_crossings", "run_od"]
