"""Reading SUMO's output files into tidy tables.

* :func:`read_tripinfo` — one row per vehicle, finished or not;
* :func:`read_edgedata` — one row per edge and interval;
* :func:`read_vehroutes` — one row per vehicle with its edges and the time it
  left each of them (:func:`vehroute_records`: the same as plain text tuples,
  for large files);
* :func:`read_statistics` — the run's vehicle and teleport counts.

Travel time in egress includes the insertion delay: a vehicle that waits to
leave a parking lot is already travelling. So ``travel_time = departDelay +
duration`` where SUMO's ``duration`` runs from insertion to arrival (or to the
end of the simulation for unfinished vehicles, ``arrival = -1``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.parsers import expat
from xml.sax.saxutils import unescape

import numpy as np
import pandas as pd

from .errors import SumoError

_ENTITIES = {"&quot;": '"', "&apos;": "'"}

_TRIP_FLOATS = {
    "depart": "depart",
    "departDelay": "depart_delay",
    "arrival": "arrival",
    "duration": "duration",
    "routeLength": "route_length",
    "waitingTime": "waiting_time",
    "timeLoss": "time_loss",
    "speedFactor": "speed_factor",
}
_EDGE_FLOATS = {
    "sampledSeconds": "sampled_seconds",
    "speed": "speed",
    "traveltime": "travel_time",
    "density": "density",
    "occupancy": "occupancy",
    "waitingTime": "waiting_time",
    "timeLoss": "time_loss",
    "entered": "entered",
    "left": "left",
    "departed": "departed",
    "arrived": "arrived",
}


def _parse(path: str | Path, start, end=None) -> None:
    """Stream a SUMO output through expat: ``start(tag, attrs)`` per opening
    tag and ``end(tag)`` per closing tag (no tree is built)."""
    path = Path(path)
    if not path.is_file():
        raise SumoError(f"{path}: SUMO output missing")
    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    try:
        with path.open("rb") as f:
            parser.ParseFile(f)
    except expat.ExpatError as exc:
        raise SumoError(f"{path}: unreadable SUMO output ({exc})") from None


def _floats(records: list[dict], key: str) -> np.ndarray:
    return np.array([r.get(key, "nan") for r in records], dtype=float)


def read_tripinfo(path: str | Path) -> pd.DataFrame:
    """Read a tripinfo file (written with ``--tripinfo-output.write-unfinished``).

    Returns
    -------
    pandas.DataFrame
        Columns ``vehicle, vtype, depart, depart_delay, arrival, duration,
        route_length, waiting_time, time_loss, speed_factor, finished,
        travel_time`` (seconds, metres). ``depart`` is the insertion time;
        ``depart - depart_delay`` the time the vehicle was ready to leave.
    """
    records: list[dict] = []
    _parse(path, lambda tag, a: records.append(a) if tag == "tripinfo" else None)
    df = pd.DataFrame({"vehicle": pd.Series([r["id"] for r in records], dtype=object),
                       "vtype": pd.Series([r.get("vType", "") for r in records], dtype=object),
                       **{col: _floats(records, key) for key, col in _TRIP_FLOATS.items()}})
    df["finished"] = df["arrival"] >= 0
    df["travel_time"] = df["depart_delay"] + df["duration"]
    return df


def read_edgedata(path: str | Path) -> pd.DataFrame:
    """Read an edgeData file.

    Returns
    -------
    pandas.DataFrame
        Columns ``begin, end, edge, sampled_seconds, speed, travel_time,
        density, occupancy, waiting_time, time_loss, entered, left, departed,
        arrived``; ``speed`` is SUMO's space-mean speed in m/s (NaN where no
        vehicle was on the edge).
    """
    records: list[dict] = []
    window = {"begin": "nan", "end": "nan"}

    def start(tag: str, a: dict) -> None:
        if tag == "edge":
            records.append(a)
            a["begin"], a["end"] = window["begin"], window["end"]
        elif tag == "interval":
            window.update(begin=a.get("begin", "nan"), end=a.get("end", "nan"))

    _parse(path, start)
    df = pd.DataFrame({"begin": _floats(records, "begin"), "end": _floats(records, "end"),
                       "edge": pd.Series([r["id"] for r in records], dtype=object),
                       **{col: _floats(records, key) for key, col in _EDGE_FLOATS.items()}})
    for col in ("entered", "left", "departed", "arrived", "sampled_seconds"):
        df[col] = df[col].fillna(0.0)
    return df


_ROUTE_TAG = re.compile(r"<(vehicle|route)\s([^>]*)>")
#: A vehicle as SUMO writes it without rerouting (one route; id, type and
#: depart first), read in one match; any other vehicle is read tag by tag.
_VEHICLE = re.compile(r'<vehicle id="([^"]*)" type="([^"]*)" depart="([^"]*)"([^>]*)>\s*'
                      r'<route edges="([^"]*)" exitTimes="([^"]*)"/>\s*</vehicle>'
                      r'|<vehicle\s([^>]*)>')


def _get(attrs: str, name: str) -> str | None:
    """The value of attribute `name` in the text ``' a="1" b="2"'`` (None if absent)."""
    i = attrs.find(f' {name}="')
    if i < 0:
        return None
    i += len(name) + 3
    value = attrs[i:attrs.index('"', i)]
    return unescape(value, _ENTITIES) if "&" in value else value


def vehroute_records(path: str | Path) -> list[tuple[str, str, str, str | None, str, str, str]]:
    """The vehicles of a vehroute file, fast: one regular-expression pass over
    the text instead of an XML tree (vehroute files run to tens of MB).

    Returns
    -------
    list of tuple
        Per vehicle in file order: ``(id, type, depart, arrival, edges,
        exitTimes, rerouted_by)`` as text; ``arrival`` is None for a vehicle
        still driving at the end; ``edges`` and ``exitTimes`` are those of its
        last route (after any rerouting), ``rerouted_by`` the ``reason`` SUMO
        gave for the last replacement ("" if none).

    Raises
    ------
    SumoError
        If the file is missing or does not end with ``</routes>`` (cut short).
    """
    path = Path(path)
    if not path.is_file():
        raise SumoError(f"{path}: SUMO output missing")
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text[-256:].rstrip().endswith("</routes>"):
        raise SumoError(f"{path}: unreadable SUMO output (it does not end with </routes>)")
    out = []
    for m in _VEHICLE.finditer(text, max(text.find("<routes"), 0)):
        if m.lastindex == 7:  # rerouted, or attributes in another order
            out.append(_vehicle_by_tags(text, m))
            continue
        vid, vtype, depart, rest, edges, exits = m.groups()[:6]
        i = rest.find(' arrival="')
        arrival = rest[i + 10:rest.index('"', i + 10)] if i >= 0 else None
        if "&" in vid or "&" in vtype or "&" in edges:
            vid, vtype, edges = (unescape(v, _ENTITIES) for v in (vid, vtype, edges))
        out.append((vid, vtype, depart, arrival, edges, exits, ""))
    return out


def _vehicle_by_tags(text: str, m: re.Match) -> tuple:
    """:func:`vehroute_records`' tuple of the vehicle whose opening tag is `m`."""
    vehicle = " " + m.group(7)
    routes = []
    if not vehicle.rstrip().endswith("/"):
        end = text.find("</vehicle>", m.end())
        routes = [" " + r.group(2) for r in _ROUTE_TAG.finditer(text, m.end(), end)
                  if r.group(1) == "route"]
    last = routes[-1] if routes else ""
    reason = ""
    for r in routes[:-1]:
        reason = _get(r, "reason") or reason
    return (_get(vehicle, "id") or "", _get(vehicle, "type") or "",
            _get(vehicle, "depart") or "nan", _get(vehicle, "arrival"),
            _get(last, "edges") or "", _get(last, "exitTimes") or "", reason)


def read_vehroutes(path: str | Path) -> pd.DataFrame:
    """Read a vehroute file written with ``--vehroute-output.exit-times``.

    Returns
    -------
    pandas.DataFrame
        Columns ``vehicle, vtype, depart, arrival, edges (tuple of str),
        exit_times (numpy array, s), rerouted_by``: the last route of each
        vehicle (after any rerouting) and the ``reason`` SUMO gave for the
        last replacement (e.g. the id of the rerouter; "" if none). Vehicles
        still driving at the end have ``arrival`` -1.
    """
    rows = [(vid, vtype, float(depart), float(arrival) if arrival is not None else -1.0,
             tuple(edges.split()), np.array(exits.split(), dtype=float), reason)
            for vid, vtype, depart, arrival, edges, exits, reason in vehroute_records(path)]
    return pd.DataFrame(rows, columns=["vehicle", "vtype", "depart", "arrival", "edges",
                                       "exit_times", "rerouted_by"])


def read_statistics(path: str | Path) -> dict[str, float]:
    """Read a ``--statistic-output`` file into a flat dict.

    Keys include ``loaded, inserted, running, waiting`` (vehicles),
    ``teleports, teleports_jam, teleports_yield, teleports_wrong_lane`` and
    ``collisions``.
    """
    path = Path(path)
    if not path.is_file():
        raise SumoError(f"{path}: SUMO output missing")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise SumoError(f"{path}: unreadable SUMO output ({exc})") from None
    out: dict[str, float] = {}
    veh = root.find("vehicles")
    if veh is not None:
        for key in ("loaded", "inserted", "running", "waiting"):
            out[key] = float(veh.get(key, 0))
    tel = root.find("teleports")
    if tel is not None:
        out["teleports"] = float(tel.get("total", 0))
        out["teleports_jam"] = float(tel.get("jam", 0))
        out["teleports_yield"] = float(tel.get("yield", 0))
        out["teleports_wrong_lane"] = float(tel.get("wrongLane", 0))
    safety = root.find("safety")
    if safety is not None:
        out["collisions"] = float(safety.get("collisions", 0))
    perf = root.find("performance")
    if perf is not None:
        out["clock_seconds"] = float(perf.get("clockDuration", "nan"))
    return out
