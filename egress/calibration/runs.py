"""One evaluation of an OD: sample, route and simulate it, and aggregate what the
observations see (:func:`evaluate`), with the crossings the metamodel learns from."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .. import engine
from ..demand.routing import route_vehicles, vehicle_routes
from ..demand.sampling import sample_trips
from ..engine import outputs
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
        ``inserted, teleports, sumo_s`` (routing + sumo), ``collect_s``.
    theta : numpy.ndarray
        The supply parameters it ran with (:attr:`Problem.supply_names`;
        empty when the calibration moves none).
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

    def sim(self) -> dict[str, np.ndarray]:
        return {k: self.values[k].to_numpy(dtype=float)
                for k in ("speed", "count", "travel_time")}

    def demand(self, per_hour: np.ndarray) -> np.ndarray:
        """Planned vehicles per hour entering each observation row's segment."""
        return np.asarray(self.planned.sum(axis=0)).ravel() * per_hour

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "x.npy", self.x)
        np.save(folder / "theta.npy", self.theta)
        np.save(folder / "vehicles.npy", self.vehicles)
        sparse.save_npz(folder / "crossings.npz", self.crossings.tocsr())
        sparse.save_npz(folder / "planned.npz", self.planned.tocsr())
        self.values.to_csv(folder / "values.csv", index=False)
        atomic_json(folder / "meta.json", {"objective": self.objective, "metrics": self.metrics,
                                            "info": self.info})

    @classmethod
    def load(cls, folder: Path) -> Evaluation:
        meta = json.loads((folder / "meta.json").read_text())
        theta = folder / "theta.npy"
        return cls(np.load(folder / "x.npy"), pd.read_csv(folder / "values.csv"),
                   sparse.load_npz(folder / "crossings.npz").tocsr(),
                   sparse.load_npz(folder / "planned.npz").tocsr(),
                   np.load(folder / "vehicles.npy"), meta["objective"], meta["metrics"],
                   meta["info"], np.load(theta) if theta.is_file() else np.zeros(0))


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
        ``route``: a tuple of edges, None if unrouted), run facts, and the
        run's vehroutes (:func:`egress.engine.outputs.vehroute_table`).

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
    n = np.bincount(veh["od_row"].to_numpy(), minlength=len(x))
    info["collect_s"] = time.perf_counter() - t0
    ev = Evaluation(x, values, cross, planned, n.astype(float), info=info, theta=theta)
    ev.objective = problem.targets.objective(ev.sim(), x)
    ev.metrics = fit_metrics(problem.obs, values)
    if not keep_runs:
        for name in _HEAVY:
            (run_dir / name).unlink(missing_ok=True)
    return ev



__all__ = ["Evaluation", "crossings", "evaluate", "planned_crossings", "run_od"]
