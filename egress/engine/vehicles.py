"""The one definition of a vehicle's travel time.

A vehicle's **travel time** runs from its **planned departure** (``ready``:
the ``depart`` of its route file, the moment it wants to leave; the wait to
be inserted, e.g. queueing at a lot exit, counts) to the first of

* its **arrival** at its destination (``status = "arrived"``);
* the moment it **leaves the study area** (``"left_area"``): the exit time of
  the last study-area edge before its route first leaves the area; a route
  that never leaves the area (or a run without a study area) runs to its
  arrival;
* the **end of the simulated window**, for a vehicle still driving then
  (``"inside_at_end"``: kept with its time so far, never dropped);
* the end of the window too for a vehicle that was due but never got onto
  the network (``"not_inserted"``, e.g. still queueing in its lot).

Every vehicle the run loaded is in exactly one of these four groups.

Teleports
    SUMO teleports a vehicle that stood for ``time-to-teleport`` seconds
    (gridlock). Its time keeps the wait before the jump and the time after
    it, but the jump itself takes no time, so a teleported vehicle's travel
    time is a lower bound. Each vehicle carries its number of teleports
    (``teleports``, from SUMO's log) so that it can be flagged and counted;
    a run in which more than 1 % of the vehicles teleported is not a valid
    result (:data:`egress.engine.invariants.TELEPORT_LIMIT`).
Exit times of ``-1``
    SUMO writes ``-1`` as the exit time of an edge a vehicle did not leave in
    the normal way (the edge it was teleported from, and the ones it jumped
    over). That is not a time: when the edge on which a vehicle leaves the
    study area has no exit time, the vehicle is taken to have left at the
    first time known after it (the exit time of a later edge, or its
    arrival). If there is none, the vehicle's leaving is unknown and it
    counts as inside at the end.

The table's columns are in :data:`COLUMNS`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from xml.sax.saxutils import unescape

import numpy as np
import pandas as pd

from .. import limits
from ..demand.vehicles import KINDS as DEMAND_KINDS
from ..errors import InputError

#: How a vehicle's trip ended, in the order they are counted.
STATUSES = ("arrived", "left_area", "inside_at_end", "not_inserted")

#: Columns of the vehicle table (:func:`vehicle_table`).
COLUMNS = ["vehicle", "kind", "vtype", "ready", "depart", "arrival", "leave", "end",
           "travel_time", "status", "teleports", "rerouted_by"]

#: Vehicle kinds: the kinds of demand (:data:`egress.demand.vehicles.KINDS`), and
#: "other" for vehicles of route files that are neither.
KINDS = (*DEMAND_KINDS, "other")

_VEHICLE_TAG = re.compile(rb"<(vehicle|trip|flow)\s([^>]*)>")
_ATTR = re.compile(rb'\s([A-Za-z]+)="([^"]*)"')


def read_departures(routes: Iterable[str | Path]) -> pd.DataFrame:
    """The vehicles of route files and their planned departures.

    Parameters
    ----------
    routes : iterable of path
        SUMO route (or trip) files, as a run loads them.

    Returns
    -------
    pandas.DataFrame
        ``vehicle, vtype, ready`` (planned departure, s) in file order.

    Notes
    -----
    A ``<flow>`` with a fixed ``period``, ``vehsPerHour`` or ``number``
    is expanded as SUMO expands it: vehicles ``<id>.0``, ``<id>.1``, ...
    due at ``begin + i × period``.

    Raises
    ------
    InputError
        If a departure is not a number of seconds (``triggered``, ...) or a
        flow is random (``probability``, ``period="exp(...)"``): such
        vehicles have no planned departure to measure their travel time from.
    """
    frames = []
    for path in routes:
        path = Path(path)
        key = (str(path.resolve()), *_stamp(path))
        if key not in _DEPARTURES:
            if len(_DEPARTURES) >= 8:
                _DEPARTURES.pop(next(iter(_DEPARTURES)))
            _DEPARTURES[key] = _read_one(path)
        frames.append(_DEPARTURES[key])
    if not frames:
        return pd.DataFrame({"vehicle": [], "vtype": [], "ready": []})
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].copy()


_DEPARTURES: dict[tuple, pd.DataFrame] = {}


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        raise InputError(str(path), "route file not found") from None
    return st.st_mtime_ns, st.st_size


def _read_one(path: Path) -> pd.DataFrame:
    data = path.read_bytes()
    ids, types, ready = [], [], []
    for m in _VEHICLE_TAG.finditer(data):
        attrs = dict(_ATTR.findall(b" " + m.group(2)))
        vid = attrs.get(b"id")
        if vid is None:
            raise InputError(str(path), f"a <{m.group(1).decode()}> without an id")
        if m.group(1) == b"flow":
            name = _unescape(vid)
            times = _flow_departures(attrs, name, path)
            ids += [f"{name}.{i}" for i in range(len(times))]
            types += [_unescape(attrs.get(b"type", b"DEFAULT_VEHTYPE"))] * len(times)
            ready += times
            continue
        try:
            t = float(attrs.get(b"depart", b"nan"))
        except ValueError:
            t = math.nan
        if not math.isfinite(t) or limits.time_of_day(t):
            raise InputError(str(path), f"vehicle {vid.decode(errors='replace')!r}: depart must "
                             f"be a number of seconds from 0 to 48:00, got "
                             f"{attrs.get(b'depart', b'').decode(errors='replace')!r}")
        ids.append(_unescape(vid))
        types.append(_unescape(attrs.get(b"type", b"DEFAULT_VEHTYPE")))
        ready.append(t)
    return pd.DataFrame({"vehicle": pd.Series(ids, dtype=object),
                         "vtype": pd.Series(types, dtype=object),
                         "ready": np.asarray(ready, dtype=float)})


def _flow_departures(attrs: dict[bytes, bytes], name: str, path: Path) -> list[float]:
    """The departures of a flow with a fixed period (SUMO's expansion)."""
    def number(key: bytes, default: float | None = None) -> float | None:
        raw = attrs.get(key)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise InputError(str(path), f"flow {name!r}: {key.decode()} must be a finite "
                             f"number, got {raw.decode(errors='replace')!r}")
        return value

    if b"probability" in attrs:
        raise InputError(str(path), f"flow {name!r}: a random flow (probability) has no "
                         "planned departures; give period, vehsPerHour or number")
    begin = number(b"begin", 0.0)
    end = number(b"end")
    n = number(b"number")
    period = number(b"period")
    per_hour = number(b"vehsPerHour", number(b"perHour"))
    if period is None and per_hour:
        period = 3600.0 / per_hour
    if period is None and n and end is not None:
        period = (end - begin) / n
    if period is None or period <= 0 or (n is None and end is None):
        raise InputError(str(path), f"flow {name!r}: needs begin with period, vehsPerHour or "
                         "number, and end or number")
    count = int(n) if n is not None else math.ceil((end - begin) / period - 1e-9)
    if count > limits.VEHICLES_MAX:
        raise InputError(str(path), f"flow {name!r}: {count:,} vehicles, more than "
                         f"{limits.VEHICLES_MAX:,} (egress.limits)")
    times = [begin + i * period for i in range(max(count, 0))]
    return [t for t in times if end is None or t < end]


def _unescape(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    if "&" in text:
        text = unescape(text, {"&quot;": '"', "&apos;": "'"})
    return text


def vehicle_kind(vehicle: str, vtype: str) -> str:
    """``event``, ``background`` or ``other``: by the vType (before any
    ``~`` of a policy's clone), else by the id prefix ``ev_`` / ``bg_``."""
    base = vtype.split("~")[0]
    if base == "event" or vehicle.startswith("ev_"):
        return "event"
    if base == "background" or vehicle.startswith("bg_"):
        return "background"
    return "other"


def leave_index(edges: list[str], inside: frozenset[str]) -> int | None:
    """Index of the last study-area edge before the route first leaves the
    area (its exit time is when the vehicle leaves); None if it never does."""
    for i in range(len(edges) - 1):
        if edges[i] in inside and edges[i + 1] not in inside:
            return i
    return None


def _first_time(exits: list[str], start: int) -> float:
    """The first exit time at or after `start` that is a time (>= 0); NaN if none."""
    for x in exits[start:]:
        t = float(x)
        if t >= 0:
            return t
    return math.nan


def vehicle_table(departures: pd.DataFrame, records: Iterable[tuple], *, begin: float,
                  end: float, inside: frozenset[str] | None = None,
                  teleports: Mapping[str, int] | None = None) -> pd.DataFrame:
    """One row per vehicle the run loaded, with its travel time (module docstring).

    Parameters
    ----------
    departures : pandas.DataFrame
        ``vehicle, vtype, ready`` of every vehicle in the run's route files
        (:func:`read_departures`).
    records : iterable of tuple
        The run's vehroutes (:func:`egress.engine.outputs.vehroute_records`).
    begin, end : float
        The simulated window. Vehicles due outside ``[begin, end)`` are not
        part of the run (SUMO discards the earlier ones and never loads the
        later ones).
    inside : frozenset of str, optional
        Edges of the study area; None: the whole network.
    teleports : dict, optional
        Vehicle id -> number of teleports (:func:`egress.engine.outputs.read_teleports`).

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`: ``kind`` (:data:`KINDS`), ``vtype`` (as loaded),
        ``ready`` (planned departure), ``depart`` (insertion; NaN if never
        inserted), ``arrival`` (NaN if not arrived), ``leave`` (left the study
        area; NaN if it did not before arriving or the end), ``end`` (when
        its travel time stops), ``travel_time = end - ready`` (s),
        ``status`` (:data:`STATUSES`), ``teleports``, ``rerouted_by`` (the
        ``reason`` SUMO gave for its last route replacement, e.g. a
        rerouter's id; "" if none).
    """
    teleports = teleports or {}
    due = departures[(departures["ready"] >= begin) & (departures["ready"] < end)]
    driven = {r[0]: r for r in records}
    leaves: dict[str, int | None] = {}
    kinds: dict[tuple[str, str], str] = {}
    rows = []
    nan = math.nan
    for vid, vtype, ready in zip(due["vehicle"].tolist(), due["vtype"].tolist(),
                                  due["ready"].tolist(), strict=True):
        key = (vtype, vid[:3])
        kind = kinds.get(key) or kinds.setdefault(key, vehicle_kind(vid, vtype))
        record = driven.get(vid)
        if record is None:
            rows.append((vid, kind, vtype, ready, nan, nan, nan, end, "not_inserted", ""))
            continue
        _, _, depart_text, arrival_text, route, exit_text, reason = record
        arrival = float(arrival_text) if arrival_text is not None else nan
        leave = nan
        if inside is not None:
            if route not in leaves:
                leaves[route] = leave_index(route.split(), inside)
            i = leaves[route]
            if i is not None:
                leave = _first_time(exit_text.split(), i)
                if math.isnan(leave):
                    leave = arrival
        if leave < arrival or (math.isnan(arrival) and not math.isnan(leave)):
            stop, status = leave, "left_area"
        elif not math.isnan(arrival):
            stop, status, leave = arrival, "arrived", nan
        else:
            stop, status = end, "inside_at_end"
        rows.append((vid, kind, vtype, ready, float(depart_text), arrival, leave, stop, status,
                     reason))
    table = pd.DataFrame(rows, columns=["vehicle", "kind", "vtype", "ready", "depart",
                                        "arrival", "leave", "end", "status", "rerouted_by"])
    table["travel_time"] = table["end"] - table["ready"]
    table["teleports"] = np.array([teleports.get(v, 0) for v in table["vehicle"]], dtype=int)
    return table[COLUMNS]


def skipped_before_begin(departures: pd.DataFrame, begin: float) -> int:
    """Vehicles due before the window: SUMO loads and discards them."""
    return int((departures["ready"] < begin).sum())
