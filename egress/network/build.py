"""Building road networks with netconvert.

Two ways in:

* :func:`build_network` builds a SUMO network from a folder of plain-XML
  files (``*.nod.xml`` with nodes in WGS84 lon/lat, ``*.edg.xml``, and
  optionally ``*.typ.xml``, ``*.con.xml``, ``*.tll.xml``) and writes
  ``<folder>/<folder name>.net.xml``;
* :func:`build_osm` builds a car network from an OpenStreetMap extract.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .. import sumo
from ..errors import MissingFileError, NetworkError
from ..files import check_xml_root
from .graph import CAR

log = logging.getLogger(__name__)


#: netconvert options for hand-authored plain-XML networks. Signals are
#: actuated (green extends while vehicles arrive, as at most US arterial
#: signals). Freeway merges are best authored as ``zipper`` nodes.
PLAIN_OPTIONS = [
    "--proj.utm", "true",
    "--output.street-names", "true",
    "--no-turnarounds", "true",
    "--junctions.corner-detail", "5",
    "--tls.default-type", "actuated",
]


#: netconvert options for car networks from OpenStreetMap: keep what cars
#: may use, guess ramps and signals, join the clusters of nodes that OSM uses
#: for one intersection, and drop pieces not connected to the main network.
OSM_OPTIONS = [
    "--keep-edges.by-vclass", CAR,
    "--remove-edges.isolated", "true",
    "--keep-edges.components", "1",
    "--geometry.remove", "true",
    "--ramps.guess", "true",
    "--roundabouts.guess", "true",
    "--junctions.join", "true",
    "--tls.guess-signals", "true",
    "--tls.discard-simple", "true",
    "--tls.join", "true",
    "--tls.default-type", "actuated",
    "--no-turnarounds.except-deadend", "true",
    "--output.street-names", "true",
    "--output.original-names", "true",
]


_PLAIN_KINDS = {
    ".nod.xml": "--node-files",
    ".edg.xml": "--edge-files",
    ".typ.xml": "--type-files",
    ".con.xml": "--connection-files",
    ".tll.xml": "--tllogic-files",
}


def build_network(source: str | Path, output: str | Path | None = None) -> Path:
    """Build a SUMO network from a folder of plain-XML files.

    Parameters
    ----------
    source : str or pathlib.Path
        Folder with ``*.nod.xml`` (lon/lat nodes), ``*.edg.xml`` and optional
        ``*.typ.xml``, ``*.con.xml``, ``*.tll.xml`` files.
    output : str or pathlib.Path, optional
        The network to write; default ``<source>/<source name>.net.xml``.

    Returns
    -------
    pathlib.Path
        The written network.

    Raises
    ------
    MissingFileError, NetworkError, SumoError
    """
    source = Path(source)
    if not source.is_dir():
        raise MissingFileError(source, "network folder")
    args: list[str] = ["netconvert"]
    for suffix, option in _PLAIN_KINDS.items():
        files = sorted(source.glob(f"*{suffix}"))
        if files:
            args += [option, ",".join(str(f) for f in files)]
    if "--node-files" not in args or "--edge-files" not in args:
        raise NetworkError(str(source), "needs *.nod.xml and *.edg.xml files")
    output = Path(output) if output else source / f"{source.name}.net.xml"
    args += PLAIN_OPTIONS + ["--output-file", str(output)]
    sumo.run(args, what=f"netconvert on {source}")
    log.info("wrote %s", output)
    return output


def build_osm(osm: str | Path, output: str | Path) -> Path:
    """Build a car network from an OpenStreetMap extract.

    Parameters
    ----------
    osm : str or pathlib.Path
        An ``.osm`` (XML) file.
    output : str or pathlib.Path
        The network to write.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    MissingFileError, SumoError
    """
    osm = Path(osm)
    if not osm.is_file():
        raise MissingFileError(osm, "OSM file")
    if osm.suffix.lower() == ".osm" or not osm.name.lower().endswith((".gz", ".pbf")):
        check_xml_root(osm, ("osm",), "OpenStreetMap extract (.osm)", NetworkError)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    sumo.run(["netconvert", "--osm-files", str(osm), *OSM_OPTIONS, "--output-file", str(output)],
             what=f"netconvert on {osm}")
    return output


__all__ = ["OSM_OPTIONS", "PLAIN_OPTIONS", "build_network", "build_osm"]
