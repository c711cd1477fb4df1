"""Engineering measures of one run: clearance, delay, time to leave, queues, ramp flows.

A traffic engineer compares plans by more than the mean travel time. This
module computes, from the run's vehicle table (:mod:`egress.engine.vehicles`,
the one definition of travel time) and its vehroutes (the time each vehicle
left each edge), the measures below. All of them come from SUMO's own
outputs, so they mean the same in micro and meso runs.

Clearance time (``clear_95``, ``clear_100``)
    The clock time at which 95 % (100 %) of a group's vehicles had ended
    their trip (arrived or left the study area). A vehicle still inside at
    the end of the window, or never inserted, has not ended; when fewer
    than 95 % (100 %) had ended by then, the clearance is **censored**: it
    is NaN with ``*_censored`` true and is shown as "not cleared by HH:MM"
    (the window's end), never as an invented time.
Delay against free flow (``delay_vh``)
    Per vehicle, its travel time minus the free-flow time of the part of its
    route it drove within that travel time (each edge's length over its
    speed limit, up to the edge on which it left the study area or arrived;
    for a vehicle still driving, the edges it had finished). The wait to get
    out of a lot is delay. Summed over the group in vehicle-hours. Vehicles
    faster than the limit (speed factor above 1) add a small negative delay;
    it is kept so that the sum stays the sum.
Time to leave (``median_min``, ``p95_min``)
    The median and 95th percentile of the group's travel times, minutes. A
    vehicle that has not ended counts with its time so far, a lower bound of
    its true time; the percentile is exact when every such vehicle's time so
    far is already at or above it (it then stays above whatever its true
    time is), else ``*_censored`` is true and the value is a lower bound.
Total vehicle-hours (``vehicle_hours``)
    The group's travel times summed, hours: the total the savings per
    vehicle multiply up to.
Queue at a lot exit or ramp (:func:`place_flows`)
    A point queue, in vehicles, sampled every :data:`QUEUE_STEP` seconds: a
    vehicle is queued on an edge from the moment it would have left the
    edge at free-flow speed until it actually left it (deterministic queueing
    as in the highway capacity literature; it needs no detector and means the
    same in micro and meso). At a lot exit the vehicles waiting to be
    inserted (planned departure passed, not yet on the network) are queued
    too: that is the queue in the lot. Reported as the maximum and the mean
    over the simulated window.
Throughput
    Vehicles leaving each ramp per :data:`THROUGHPUT_PERIOD` (15 minutes),
    by kind (event, background).

Which edges are ramps
    Edges whose SUMO type is ``ramp`` (the bundled networks' plain XML) or a
    freeway link of OpenStreetMap (``highway.motorway_link``,
    ``highway.trunk_link``), anywhere in the network (a diversion's target
    ramp may lie outside the study area). The network's boundary is not used:
    boundary stretches of arterials are not ramps, and a ramp in the middle
    of the network is one.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import units
from ..network import read_net

#: Seconds between samples of a queue.
QUEUE_STEP = 60.0
#: Seconds per throughput bin (15 minutes).
THROUGHPUT_PERIOD = 900.0
#: SUMO edge types counted as ramps (also any type ending in one of :data:`RAMP_SUFFIXES`).
RAMP_TYPES = frozenset({"ramp"})
RAMP_SUFFIXES = ("motorway_link", "trunk_link")
#: Measures per group (:func:`group_measures`), in display order, with their units.
GROUP_MEASURES = {
    "clear_95": "clock s", "clear_100": "clock s", "delay_vh": "veh·h",
    "median_min": "min", "p95_min": "min", "vehicle_hours": "veh·h",
}


def is_ramp(edge_type: str) -> bool:
    """Whether a SUMO edge type is a ramp (module docstring, *Which edges are ramps*)."""
    return edge_type in RAMP_TYPES or edge_type.endswith(RAMP_SUFFIXES)


@dataclass(frozen=True)
class Places:
    """The network facts the measures need: free-flow times and the watched edges.

    Attributes
    ----------
    free_flow : dict
        Edge id -> free-flow time, s (length / speed limit).
    lot_exits : dict
        Lot exit edge -> the lot's name.
    ramps : dict
        Ramp edge -> its street name (the edge id where it has none).
    """

    free_flow: Mapping[str, float]
    lot_exits: Mapping[str, str] = field(default_factory=dict)
    ramps: Mapping[str, str] = field(default_factory=dict)

    def label(self, edge: str) -> str:
        return self.lot_exits.get(edge) or self.ramps.get(edge) or edge

    def kind(self, edge: str) -> str:
        return "lot_exit" if edge in self.lot_exits else "ramp"


def places(network: str | Path, venues=None) -> Places:
    """The free-flow times, lot exits (from `venues`) and ramps of a network."""
    path = Path(network).resolve()
    free_flow, ramps = _network_facts(str(path), path.stat().st_mtime_ns)
    lots: dict[str, str] = {}
    if venues is not None:
        for venue in venues.venues.values():
            for lot in venue.lots:
                for x in lot.exits:
                    lots.setdefault(x, lot.name or lot.id)
    return Places(free_flow, lots, {e: n for e, n in ramps.items() if e not in lots})


@functools.lru_cache(maxsize=8)
def _network_facts(path: str, _mtime: int) -> tuple[dict[str, float], dict[str, str]]:
    """Free-flow time per edge and the ramps with their names (cached per file)."""
    net = read_net(path)
    free_flow, ramps = {}, {}
    for e in net.getEdges():
        if e.getFunction() == "internal":
            continue
        speed = e.getSpeed()
        free_flow[e.getID()] = e.getLength() / speed if speed > 0 else 0.0
        if is_ramp(e.getType() or ""):
            ramps[e.getID()] = e.getName() or e.getID()
    return free_flow, ramps


# --------------------------------------------------------------------------- per vehicle


def _known(x: str) -> float:
    t = float(x)
    return t if t >= 0 else math.nan


def driven_free_flow(records: Iterable[tuple], vehicles: pd.DataFrame,
                     free_flow: Mapping[str, float], inside: frozenset[str] | None
                     ) -> pd.Series:
    """Free-flow time (s) of the part of each vehicle's route inside its travel time.

    Parameters
    ----------
    records : iterable of tuple
        The run's vehroutes (:func:`egress.engine.outputs.vehroute_records`).
    vehicles : pandas.DataFrame
        The vehicle table (``vehicle``, ``status``, ``end``).
    free_flow : dict
        Edge -> free-flow time.
    inside : frozenset of str or None
        Study-area edges.

    Returns
    -------
    pandas.Series
        Indexed by vehicle; 0 for a vehicle never inserted.
    """
    ends = dict(zip(vehicles["vehicle"], vehicles["end"], strict=True))
    out = dict.fromkeys(vehicles["vehicle"], 0.0)
    for vid, _, _, _, route, exit_text, _ in records:
        stop = ends.get(vid)
        if stop is None:
            continue
        edges, exits = route.split(), exit_text.split()
        total = 0.0
        for i, e in enumerate(edges):
            left = _known(exits[i]) if i < len(exits) else math.nan
            if not left <= stop + 1e-6:
                break
            total += free_flow.get(e, 0.0)
            if inside is not None and e in inside and i + 1 < len(edges) and \
                    edges[i + 1] not in inside:
                break
        out[vid] = total
    return pd.Series(out, dtype=float)


# --------------------------------------------------------------------------- per group


def clearance(ends: np.ndarray, finished: np.ndarray, share: float) -> float:
    """Clock time by which `share` of the vehicles had finished (NaN: censored).

    Parameters
    ----------
    ends : numpy.ndarray
        End of each vehicle's travel time (s after midnight).
    finished : numpy.ndarray of bool
        Whether the vehicle arrived or left the area (not inside at the end,
        not never inserted).
    share : float
        0 < share <= 1.
    """
    n = len(ends)
    if n == 0:
        return math.nan
    need = math.ceil(share * n - 1e-9)
    done = np.sort(ends[finished])
    if len(done) < need:
        return math.nan
    return float(done[need - 1])


def percentile(times: np.ndarray, finished: np.ndarray, q: float) -> tuple[float, bool]:
    """The `q`-th percentile of travel times and whether it is only a lower bound.

    Unfinished vehicles count with their time so far; the value is exact when
    every one of them is already at or above it (module docstring).
    """
    if len(times) == 0:
        return math.nan, False
    value = float(np.percentile(times, q))
    open_ = times[~finished]
    return value, bool(len(open_) and open_.min() < value)


def group_measures(v: pd.DataFrame, free_flow: pd.Series | None = None) -> dict[str, float]:
    """The measures of one group of vehicles in one run (module docstring).

    Parameters
    ----------
    v : pandas.DataFrame
        Rows of the vehicle table (indexed by vehicle or with a ``vehicle``
        column): ``end``, ``travel_time``, ``status``.
    free_flow : pandas.Series, optional
        :func:`driven_free_flow` of the run; without it ``delay_vh`` is NaN.

    Returns
    -------
    dict
        :data:`GROUP_MEASURES` and ``clear_95_censored``,
        ``clear_100_censored``, ``median_censored``, ``p95_censored``,
        ``vehicles``, ``unfinished``.
    """
    ends = v["end"].to_numpy(dtype=float)
    times = v["travel_time"].to_numpy(dtype=float)
    finished = v["status"].isin(("arrived", "left_area")).to_numpy()
    c95, c100 = clearance(ends, finished, 0.95), clearance(ends, finished, 1.0)
    med, med_c = percentile(times, finished, 50)
    p95, p95_c = percentile(times, finished, 95)
    delay = math.nan
    if free_flow is not None:
        ids = v.index if "vehicle" not in v.columns else pd.Index(v["vehicle"])
        ff = free_flow.reindex(ids).fillna(0.0).to_numpy()
        delay = float((times - ff).sum() / 3600) if len(v) else 0.0
    return {"vehicles": len(v), "unfinished": int((~finished).sum()),
            "clear_95": c95, "clear_95_censored": len(v) > 0 and math.isnan(c95),
            "clear_100": c100, "clear_100_censored": len(v) > 0 and math.isnan(c100),
            "delay_vh": delay, "median_min": med / 60, "median_censored": med_c,
            "p95_min": p95 / 60, "p95_censored": p95_c,
            "vehicle_hours": float(times.sum() / 3600)}


# --------------------------------------------------------------------------- per place


def _edge_times(records: Iterable[tuple], watched: set[str]) -> dict[str, list[tuple]]:
    """Per watched edge: (vehicle, type, entered, left) for every vehicle on it
    (NaN where SUMO wrote no time: never left, or around a teleport)."""
    out: dict[str, list[tuple]] = {e: [] for e in watched}
    for vid, vtype, depart, _, route, exit_text, _ in records:
        edges = route.split()
        hit = [i for i, e in enumerate(edges) if e in watched]
        if not hit:
            continue
        exits = exit_text.split()
        for i in hit:
            entered = float(depart) if i == 0 else (
                _known(exits[i - 1]) if i - 1 < len(exits) else math.nan)
            left = _known(exits[i]) if i < len(exits) else math.nan
            out[edges[i]].append((vid, vtype, entered, left))
    return out


def _queue(starts: np.ndarray, stops: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Vehicles with ``start <= t < stop`` at each time of `grid` (stop may be inf)."""
    keep = starts < stops
    s, e = np.sort(starts[keep]), np.sort(stops[keep])
    return (np.searchsorted(s, grid, side="right")
            - np.searchsorted(e, grid, side="right")).astype(int)


def place_flows(records: Iterable[tuple], vehicles: pd.DataFrame, watch: Places, *,
                begin: float, end: float, origins: Mapping[str, str] | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Queues over time at every lot exit and ramp, and ramp throughput per 15 min.

    Parameters
    ----------
    records : iterable of tuple
        The run's vehroutes.
    vehicles : pandas.DataFrame
        The vehicle table (``vehicle, kind, ready, depart``).
    watch : Places
    begin, end : float
        The simulated window.
    origins : dict, optional
        Vehicle -> first edge (:func:`first_edges` of the route files): places
        the cars that never got onto the network in their lot's queue.

    Returns
    -------
    queues : pandas.DataFrame
        ``place, place_kind, label, time, queue`` (vehicles), every
        :data:`QUEUE_STEP` seconds.
    throughput : pandas.DataFrame
        ``place, label, begin, kind, vehicles``: vehicles that left each ramp
        and lot exit in each :data:`THROUGHPUT_PERIOD`.
    """
    watched = set(watch.lot_exits) | set(watch.ramps)
    on_edge = _edge_times(records, watched)
    kinds = dict(zip(vehicles["vehicle"], vehicles["kind"], strict=True))
    grid = np.arange(begin, end + 1e-9, QUEUE_STEP)
    queue_rows, flow_rows = [], []
    waiting = _lot_waiting(records, vehicles, watch, origins)
    for place in sorted(watched):
        rows = on_edge[place]
        entered = np.array([r[2] for r in rows], dtype=float)
        left = np.array([r[3] for r in rows], dtype=float)
        ff = watch.free_flow.get(place, 0.0)
        known = ~np.isnan(entered)
        q = _queue(entered[known] + ff, np.where(np.isnan(left), np.inf, left)[known], grid)
        if place in waiting:
            ready, depart = waiting[place]
            q = q + _queue(ready, np.where(np.isnan(depart), np.inf, depart), grid)
        label, pkind = watch.label(place), watch.kind(place)
        queue_rows.append(pd.DataFrame({"place": place, "place_kind": pkind, "label": label,
                                        "time": grid, "queue": q}))
        done = ~np.isnan(left)
        if done.any():
            bins = begin + np.floor((left[done] - begin) / THROUGHPUT_PERIOD) * THROUGHPUT_PERIOD
            kind = [kinds.get(r[0], "other") for r, d in zip(rows, done, strict=True) if d]
            counts = pd.DataFrame({"begin": bins, "kind": kind}).value_counts().reset_index()
            counts.columns = ["begin", "kind", "vehicles"]
            counts.insert(0, "label", label)
            counts.insert(0, "place_kind", pkind)
            counts.insert(0, "place", place)
            flow_rows.append(counts)
    queues = pd.concat(queue_rows, ignore_index=True) if queue_rows else pd.DataFrame(
        columns=["place", "place_kind", "label", "time", "queue"])
    flows = pd.concat(flow_rows, ignore_index=True).sort_values(
        ["place", "begin", "kind"], ignore_index=True) if flow_rows else pd.DataFrame(
        columns=["place", "place_kind", "label", "begin", "kind", "vehicles"])
    return queues, flows


_FIRST_EDGE = re.compile(rb'<vehicle\s[^>]*?\bid="([^"]*)"[^>]*>\s*<route\s[^>]*?'
                         rb'\bedges="([^"\s]+)'
                         rb'|<trip\s[^>]*?\bid="([^"]*)"[^>]*?\bfrom="([^"]*)"')


def first_edges(routes: Iterable[str | Path]) -> dict[str, str]:
    """Vehicle id -> the first edge of its route, from route files (vehicles with a
    ``<route>`` and trips with ``from``). The vehroutes know it only for vehicles
    SUMO inserted; a car that never got out of its lot is in the route file."""
    out: dict[str, str] = {}
    for path in routes:
        for m in _FIRST_EDGE.finditer(Path(path).read_bytes()):
            vid, edge = (m.group(1), m.group(2)) if m.group(1) is not None else \
                (m.group(3), m.group(4))
            out[vid.decode("utf-8", "replace")] = edge.decode("utf-8", "replace")
    return out


def _lot_waiting(records: Iterable[tuple], vehicles: pd.DataFrame, watch: Places,
                 origins: Mapping[str, str] | None = None
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per lot exit: (planned departure, insertion) of the vehicles that start on it;
    insertion NaN for a vehicle never inserted (it waits to the end)."""
    if not watch.lot_exits:
        return {}
    first = dict(origins or {})
    first.update({r[0]: r[4].split(" ", 1)[0] for r in records})
    v = vehicles[["vehicle", "ready", "depart"]]
    start = v["vehicle"].map(first)
    out = {}
    for place in watch.lot_exits:
        sel = v[start == place]
        if len(sel):
            out[place] = (sel["ready"].to_numpy(dtype=float), sel["depart"].to_numpy(dtype=float))
    return out


def queue_summary(queues: pd.DataFrame) -> pd.DataFrame:
    """Per place: ``max_queue`` and ``mean_queue`` (vehicles, over the window),
    ``time_of_max`` (clock s)."""
    if queues.empty:
        return pd.DataFrame(columns=["place", "place_kind", "label", "max_queue", "mean_queue",
                                     "time_of_max"])
    g = queues.groupby(["place", "place_kind", "label"], sort=False)["queue"]
    out = g.agg(max_queue="max", mean_queue="mean").reset_index()
    at = queues.loc[g.idxmax().to_numpy(), "time"].to_numpy()
    out["time_of_max"] = at
    return out


def slice_name(t: float) -> str:
    """``HHMM`` of a slice start, hours past midnight counting on (``2415`` is 00:15
    the next day), for field names of the GIS layers."""
    s = int(round(t))
    return f"{s // 3600:02d}{s // 60 % 60:02d}"


def slice_speeds(frames: Iterable[pd.DataFrame | None], begin: float,
                 period: float = THROUGHPUT_PERIOD) -> pd.DataFrame:
    """Edge × time-slice space-mean speeds (display unit) over runs.

    Parameters
    ----------
    frames : iterable of pandas.DataFrame
        Per run: ``edge, begin, speed, sampled_seconds`` (edgeData intervals).
    begin : float
        Start of the window (slices count from it).
    period : float, default 15 minutes

    Returns
    -------
    pandas.DataFrame
        Indexed by edge; ``speed_<HHMM>`` per slice with data (the mean
        weighted by the seconds vehicles spent on the edge, SUMO's
        ``sampledSeconds``, as a space-mean speed must be) and
        ``speed_window`` over the whole window.
    """
    got = [f for f in frames if f is not None and len(f)]
    if not got:
        return pd.DataFrame()
    e = pd.concat(got, ignore_index=True)
    e = e[e["sampled_seconds"] > 0]
    e = e.assign(slice=begin + np.floor((e["begin"] - begin) / period) * period,
                 w=e["speed"] * e["sampled_seconds"])
    per = e.groupby(["edge", "slice"])[["w", "sampled_seconds"]].sum()
    speed = (per["w"] / per["sampled_seconds"]).map(units.speed).unstack("slice")
    speed.columns = [f"speed_{slice_name(c)}" for c in speed.columns]
    whole = e.groupby("edge")[["w", "sampled_seconds"]].sum()
    speed["speed_window"] = (whole["w"] / whole["sampled_seconds"]).map(units.speed)
    return speed.round(1)




def format_run_measures(table: pd.DataFrame | str | Path, end: float | None = None) -> str:
    """The measures of one run per vehicle kind (``measures.csv`` of a run folder, or
    its path) as text."""
    if isinstance(table, str | Path):
        try:
            table = pd.read_csv(table)
        except pd.errors.EmptyDataError:
            return ""
    if table is None or table.empty:
        return ""

    def clear(v: float, censored: bool) -> str:
        if censored or (isinstance(v, float) and math.isnan(v)):
            return (f"not by {units.clock(end)} (the end of the window)" if end is not None
                    else "not by the end of the window")
        return f"by {units.clock(v)}"

    lines = []
    for r in table.to_dict("records"):
        bound = " (a lower bound: some are still driving)"
        lines.append(
            f"{r['kind']} vehicles ({r['vehicles']:,}): 95% out "
            f"{clear(r['clear_95'], r['clear_95_censored'])}, all out "
            f"{clear(r['clear_100'], r['clear_100_censored'])}; time to leave median "
            f"{r['median_min']:.1f} min, 95th percentile {r['p95_min']:.1f} min"
            f"{bound if r['p95_censored'] else ''}; delay against free flow "
            f"{r['delay_vh']:,.1f} veh·h of {r['vehicle_hours']:,.1f} veh·h in the area")
    return "\n".join(lines)


__all__ = ["GROUP_MEASURES", "Places", "QUEUE_STEP", "RAMP_SUFFIXES", "RAMP_TYPES",
           "THROUGHPUT_PERIOD", "clearance", "driven_free_flow", "group_measures",
           "is_ramp", "percentile", "place_flows", "places", "queue_summary", "slice_name",
           "slice_speeds", "format_run_measures", "first_edges"]
