"""Reading SUMO's output files into tidy tables.

* :func:`read_tripinfo` — one row per vehicle, finished or not;
* :func:`read_edgedata` — one row per edge and interval;
* :func:`read_vehroutes` — one row per vehicle with its edges and the time it
  left each of them;
* :func:`read_statistics` — the run's vehicle and teleport counts.

Travel time in egress includes the insertion delay: a vehicle that waits to
leave a parking lot is already travelling. So ``travel_time = departDelay +
duration`` where SUMO's ``duration`` runs from insertion to arrival (or to the
end of the simulation for unfinished vehicles, ``arrival = -1``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SumoError

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


def _iter(path: str | Path, tag: str):
    path = Path(path)
    if not path.is_file():
        raise SumoError(f"{path}: SUMO output missing")
    try:
        for _, elem in ET.iterparse(path, events=("end",)):
            if elem.tag == tag:
                yield elem
    except ET.ParseError as exc:
        raise SumoError(f"{path}: unreadable SUMO output ({exc})") from None


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
    rows = []
    for el in _iter(path, "tripinfo"):
        a = el.attrib
        row = {"vehicle": a["id"], "vtype": a.get("vType", "")}
        for key, col in _TRIP_FLOATS.items():
            row[col] = float(a.get(key, "nan"))
        rows.append(row)
        el.clear()
    cols = ["vehicle", "vtype", *_TRIP_FLOATS.values()]
    df = pd.DataFrame(rows, columns=cols)
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
    rows = []
    for interval in _iter(path, "interval"):
        begin = float(interval.get("begin"))
        end = float(interval.get("end"))
        for el in interval.iter("edge"):
            a = el.attrib
            row = {"begin": begin, "end": end, "edge": a["id"]}
            for key, col in _EDGE_FLOATS.items():
                row[col] = float(a.get(key, "nan"))
            rows.append(row)
        interval.clear()
    df = pd.DataFrame(rows, columns=["begin", "end", "edge", *_EDGE_FLOATS.values()])
    for col in ("entered", "left", "departed", "arrived", "sampled_seconds"):
        df[col] = df[col].fillna(0.0)
    return df


def read_vehroutes(path: str | Path) -> pd.DataFrame:
    """Read a vehroute file written with ``--vehroute-output.exit-times``.

    Returns
    -------
    pandas.DataFrame
        Columns ``vehicle, depart, arrival, edges (tuple of str), exit_times
        (numpy array, s)``; the last route of each vehicle (after any
        rerouting) is used.
    """
    rows = []
    for el in _iter(path, "vehicle"):
        routes = el.findall("route")
        if not routes:
            routes = el.findall("routeDistribution/route")
        route = routes[-1] if routes else None
        edges = tuple(route.get("edges", "").split()) if route is not None else ()
        exits = route.get("exitTimes", "") if route is not None else ""
        rows.append({
            "vehicle": el.get("id"),
            "depart": float(el.get("depart", "nan")),
            "arrival": float(el.get("arrival", "-1")),
            "edges": edges,
            "exit_times": np.array(exits.split(), dtype=float),
        })
        el.clear()
    return pd.DataFrame(rows, columns=["vehicle", "depart", "arrival", "edges", "exit_times"])


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
