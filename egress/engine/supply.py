"""Supply parameters as SUMO sees them: options and an additional file.

:func:`supply_inputs` turns a :class:`egress.config.supply.SupplySpec` into

* SUMO options: ``--meso-tls-penalty``, ``--meso-minor-penalty``,
  ``--meso-junction-control``, ``--meso-jam-threshold`` (mesoscopic runs only);
* an additional file with one ``<type>`` per edge type whose mesoscopic
  parameters differ (headways divided by the capacity factor, the signal and
  minor-link penalties, junction control) — SUMO applies these per edge type,
  overriding the global options for that type;
* variable speed signs (``<variableSpeedSign>``) on the lanes of every edge
  of a type with a speed factor, each set to its lane's speed limit times
  the factor from the start of the run (both modes).

The mesoscopic headway defaults are SUMO's (``--meso-tauff`` 1.13 s,
``--meso-taufj`` 1.13 s, ``--meso-taujf`` 1.73 s, ``--meso-taujj`` 1.4 s).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..config.supply import SupplySpec
from ..files import num, write_xml
from ..network import read_net

#: SUMO's mesoscopic headways (s) between free (f) and jammed (j) queues.
MESO_HEADWAYS = {"tauff": 1.13, "taufj": 1.13, "taujf": 1.73, "taujj": 1.4}

#: File name of the supply's additional file in a run folder.
SUPPLY_FILE = "supply.add.xml"


def supply_options(spec: SupplySpec, mode: str) -> dict[str, str]:
    """The SUMO options of `spec` in `mode` (meso options only in meso)."""
    if mode != "meso":
        return {}
    out = {}
    if spec.signal_penalty:
        out["meso-tls-penalty"] = num(spec.signal_penalty)
    if spec.minor_penalty:
        out["meso-minor-penalty"] = num(spec.minor_penalty)
    if spec.junction_control:
        out["meso-junction-control"] = "true"
    if spec.jam_threshold != -1.0:
        out["meso-jam-threshold"] = num(spec.jam_threshold)
    return out


def write_supply(spec: SupplySpec, network: str | Path, mode: str, folder: Path,
                 begin: float = 0.0) -> Path | None:
    """Write the supply's additional file into `folder` (None if it needs none);
    speed signs act from `begin` (the start of the run).

    Returns
    -------
    pathlib.Path or None
    """
    root = ET.Element("additional")
    if mode == "meso":
        for kind, factor in sorted(spec.capacity.items()):
            meso = ET.SubElement(ET.SubElement(root, "type", id=kind), "meso")
            # the other parameters of a <type> default to the global options
            for key, tau in MESO_HEADWAYS.items():
                meso.set(key, num(round(tau / factor, 3)))
    if spec.speed:
        net = read_net(network)
        for edge in sorted(net.getEdges(), key=lambda e: e.getID()):
            factor = spec.speed.get(edge.getType())
            if factor is None or factor == 1.0:
                continue
            for lane in edge.getLanes():
                sign = ET.SubElement(root, "variableSpeedSign", id=f"supply~{lane.getID()}",
                                     lanes=lane.getID())
                ET.SubElement(sign, "step", time=num(begin),
                              speed=num(round(lane.getSpeed() * factor, 3)))
    if len(root) == 0:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return write_xml(root, folder / SUPPLY_FILE)


__all__ = ["MESO_HEADWAYS", "SUPPLY_FILE", "supply_options", "write_supply"]
