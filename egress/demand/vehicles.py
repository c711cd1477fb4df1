"""The vehicles egress writes: vehicle types, departure attributes, trip files.

Vehicle ids are ``ev_000001``, ``bg_000001``, ... (:data:`PREFIX`) in
departure order per kind; their vType is the kind (:data:`VTYPES`), so a run's
vehicle table knows each vehicle's kind (:func:`egress.engine.vehicle_kind`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: Kinds of demand, in the order their vehicles are numbered.
KINDS = ("event", "background")

#: Vehicle id prefix per kind.
PREFIX = {"event": "ev_", "background": "bg_"}


#: The vehicle types written into the trips and routes files.
VTYPES = {
    "event": {"id": "event", "vClass": "passenger", "speedFactor": "normc(1.0,0.1,0.2,2.0)",
              "sigma": "0.5", "color": "1,0.2,0.2"},
    "background": {"id": "background", "vClass": "passenger",
                   "speedFactor": "normc(1.0,0.1,0.2,2.0)", "sigma": "0.5",
                   "color": "0.75,0.75,0.75"},
}


#: Departure attributes per kind. Event cars start from standstill at the
#: start of their lot exit edge; while the edge is full they wait to be
#: inserted, and that wait (``departDelay``) is part of their travel time.
DEPART = {
    "event": {"departLane": "best", "departPos": "base", "departSpeed": "0"},
    "background": {"departLane": "best", "departPos": "base", "departSpeed": "max"},
}


def vtype_lines() -> list[str]:
    """The ``<vType>`` elements of :data:`VTYPES`, indented for a route file."""
    return ["    <vType " + " ".join(f'{k}="{v}"' for k, v in vt.items()) + "/>"
            for vt in VTYPES.values()]


def vehicle_attributes(kind: str) -> tuple[str, str]:
    """The vType id and the departure attributes (:data:`DEPART`, as XML
    attribute text) of a vehicle of `kind`."""
    depart = DEPART.get(kind, DEPART["background"])
    return (kind if kind in VTYPES else "background",
            " ".join(f'{k}="{v}"' for k, v in depart.items()))


def write_trips(vehicles: pd.DataFrame, path: str | Path) -> Path:
    """Write vehicles (from :func:`sample_trips`) as a SUMO trips file with vTypes."""
    path = Path(path)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<routes>", *vtype_lines()]
    attrs = {k: vehicle_attributes(k) for k in vehicles["kind"].unique()}
    for kind, vid, dep, frm, to in zip(vehicles["kind"], vehicles["id"], vehicles["depart"],
                                       vehicles["from"], vehicles["to"], strict=True):
        vtype, extra = attrs[kind]
        lines.append(f'    <trip id="{vid}" type="{vtype}" depart="{dep:.2f}" '
                     f'from="{frm}" to="{to}" {extra}/>')
    lines.append("</routes>")
    path.write_text("\n".join(lines) + "\n")
    return path



__all__ = ["DEPART", "KINDS", "PREFIX", "VTYPES", "vehicle_attributes", "vtype_lines",
           "write_trips"]
