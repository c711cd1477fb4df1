"""Reading SUMO's output files into tidy tables, as SUMO wrote them.

* :func:`read_tripinfo` — SUMO's trip summaries, one row per vehicle;
* :func:`read_edgedata` — one row per edge and interval;
* :func:`read_vehroutes` — one row per vehicle with its edges and the time it
  left each of them (:func:`vehroute_records`: the same as plain text tuples,
  for large files);
* :func:`read_statistics` — the run's vehicle and teleport counts, and the
  mode and seed SUMO ran with (from the file's header);
* :func:`read_teleports` — the vehicles SUMO teleported, from its log.

These readers interpret nothing: a vehicle's travel time is defined once, in
:mod:`egress.engine.vehicles`. In particular an exit time of ``-1`` in the
vehroutes (an edge the vehicle did not leave in the normal way, e.g. around a
teleport) is kept as SUMO wrote it and is never a time.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.parsers import expat
from xml.sax.saxutils import unescape

import numpy as np
import pandas as pd

from ..errors import SumoError

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
        route_length, waiting_time, time_loss, speed_factor`` (seconds,
        metres) as SUMO wrote them: ``depart`` is the insertion time,
        ``arrival`` is -1 for a vehicle still driving at the end.
    """
    records: list[dict] = []
    _parse(path, lambda tag, a: records.append(a) if tag == "tripinfo" else None)
    return pd.DataFrame({"vehicle": pd.Series([r["id"] for r in records], dtype=object),
                         "vtype": pd.Series([r.get("vType", "") for r in records], dtype=object),
                         **{col: _floats(records, key) for key, col in _TRIP_FLOATS.items()}})


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
        :func:`vehroute_table` of the file's records.
    """
    return vehroute_table(vehroute_records(path))


def vehroute_table(records: list[tuple]) -> pd.DataFrame:
    """:func:`vehroute_records` as a table.

    Returns
    -------
    pandas.DataFrame
        Columns ``vehicle, vtype, depart, arrival, edges (tuple of str),
        exit_times (numpy array, s), rerouted_by``: the last route of each
        vehicle (after any rerouting) and the ``reason`` SUMO gave for the
        last replacement (e.g. the id of the rerouter; "" if none). Vehicles
        still driving at the end have ``arrival`` -1; an exit time of -1
        marks an edge not left in the normal way (around a teleport).
    """
    rows = [(vid, vtype, float(depart), float(arrival) if arrival is not None else -1.0,
             tuple(edges.split()), np.array(exits.split(), dtype=float), reason)
            for vid, vtype, depart, arrival, edges, exits, reason in records]
    return pd.DataFrame(rows, columns=["vehicle", "vtype", "depart", "arrival", "edges",
                                       "exit_times", "rerouted_by"])


def read_statistics(path: str | Path) -> dict[str, float]:
    """Read a ``--statistic-output`` file into a flat dict.

    Keys include ``loaded, inserted, running, waiting`` (vehicles),
    ``teleports, teleports_jam, teleports_yield, teleports_wrong_lane``,
    ``collisions``, ``clock_seconds``, and from the configuration SUMO
    writes into the file's header: ``meso`` (1.0 when it ran
    ``--mesosim``, else 0.0) and ``seed`` (the seed it used; SUMO's
    default 23423 when none was given).
    """
    path = Path(path)
    if not path.is_file():
        raise SumoError(f"{path}: SUMO output missing")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise SumoError(f"{path}: unreadable SUMO output ({exc})") from None
    out: dict[str, float] = dict(_header_options(text))
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


#: SUMO's seed when none is given (``--seed`` default).
SUMO_DEFAULT_SEED = 23423
_HEADER = re.compile(r'<(mesosim|seed) value="([^"]*)"\s*/>')


def _header_options(text: str) -> dict[str, float]:
    """``meso`` and ``seed`` from the configuration comment heading a SUMO output."""
    end = text.find("-->")
    found = dict(_HEADER.findall(text[:end if end > 0 else 0]))
    meso = found.get("mesosim", "false").strip().lower() in ("true", "1", "yes", "on", "x")
    try:
        seed = float(found.get("seed", SUMO_DEFAULT_SEED))
    except ValueError:
        seed = float("nan")
    return {"meso": float(meso), "seed": seed}


_TELEPORT = re.compile(r"Teleporting vehicle '((?:[^']|'(?!;))*)';")


def read_teleports(log: str | Path) -> dict[str, int]:
    """Teleports per vehicle, from SUMO's warnings in its log.

    SUMO writes one ``Teleporting vehicle '<id>'; <reason>`` warning per
    teleport (jam, yield, wrong lane); :func:`read_statistics` has the total.

    Returns
    -------
    dict
        Vehicle id -> number of teleports (vehicles that never teleported are
        absent).
    """
    path = Path(log)
    if not path.is_file():
        raise SumoError(f"{path}: SUMO log missing")
    counts: dict[str, int] = {}
    with path.open("rb") as f:
        for raw in f:
            if b"Teleporting vehicle" not in raw:
                continue
            for vid in _TELEPORT.findall(raw.decode("utf-8", errors="replace")):
                counts[vid] = counts.get(vid, 0) + 1
    return counts
