"""Road networks: building them with netconvert and checking car paths.

Two ways in:

* :func:`build_network` builds a SUMO network from a folder of plain-XML
  files (``*.nod.xml`` with nodes in WGS84 lon/lat, ``*.edg.xml``, and
  optionally ``*.typ.xml``, ``*.con.xml``, ``*.tll.xml``) and writes
  ``<folder>/<folder name>.net.xml``;
* :func:`build_osm` builds a car network from an OpenStreetMap extract.

The *boundary* of a network is where traffic enters and leaves the modelled
area: an edge whose start node has no incoming car edge is a boundary entry,
one whose end node has no outgoing car edge is a boundary exit. Lot exits
(pure sources inside the area) are excluded by the caller.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from . import sumo
from .errors import MissingFileError, NetworkError, Problems, ScenarioError

log = logging.getLogger(__name__)

#: The vehicle class a path must allow to count as a car path.
CAR = "passenger"

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
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    sumo.run(["netconvert", "--osm-files", str(osm), *OSM_OPTIONS, "--output-file", str(output)],
             what=f"netconvert on {osm}")
    return output


def read_net(path: str | Path):
    """Read a SUMO network with sumolib (cached per file and modification time).

    Raises
    ------
    MissingFileError
        If the file does not exist.
    NetworkError
        If it is not a readable SUMO network.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise MissingFileError(path, "network file")
    return _read_net(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_net(path: str, _mtime: int):
    import sumolib

    try:
        return sumolib.net.readNet(path, withPrograms=True)
    except Exception as exc:  # sumolib raises bare SAX / attribute errors
        raise NetworkError(path, f"not a readable SUMO network ({exc})") from None


def car_successors(net) -> dict[str, set[str]]:
    """Map each car edge to the edges a car can turn into from it."""
    graph: dict[str, set[str]] = {}
    for edge in net.getEdges():
        if not edge.allows(CAR):
            continue
        nxt = graph.setdefault(edge.getID(), set())
        for to_edge, conns in edge.getOutgoing().items():
            if any(c.getFromLane().allows(CAR) and c.getToLane().allows(CAR) for c in conns):
                nxt.add(to_edge.getID())
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Edges reachable from `start` (included) in a successor graph."""
    seen = {start}
    todo = deque([start])
    while todo:
        for nxt in graph.get(todo.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def boundary_edges(net, exclude: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """Return the boundary entry and exit edges of a network (car edges only).

    Parameters
    ----------
    net : sumolib.net.Net
    exclude : iterable of str
        Edges that are not boundary edges although they look like it (lot
        exits: sources inside the area).

    Returns
    -------
    entries, exits : list of str
        Sorted edge ids.
    """
    skip = set(exclude)
    graph = car_successors(net)
    has_pred = {e for succ in graph.values() for e in succ}
    entries = sorted(e for e in graph if e not in has_pred and e not in skip)
    exits = sorted(e for e, succ in graph.items() if not succ and e not in skip)
    return entries, exits


def check_venues(scenario) -> None:
    """Check a scenario's venues against its network.

    Every lot exit must be an edge of the network that allows cars, and every
    venue must reach every boundary exit by car.

    Raises
    ------
    ScenarioError
        Naming each missing edge and each venue/exit pair without a path.
    """
    if scenario.venues is None:
        return
    net = read_net(scenario.network)
    problems = Problems(scenario.venues.path)
    graph = car_successors(net)
    _, exits = boundary_edges(net, exclude=scenario.venues.lot_exits)
    for venue in scenario.venues.venues.values():
        for lot in venue.lots:
            for edge in lot.exits:
                if not net.hasEdge(edge):
                    problems.add(f"venue {venue.id} lot {lot.id}: exit edge {edge!r} "
                                 f"is not in {Path(scenario.network).name}")
                elif edge not in graph:
                    problems.add(f"venue {venue.id} lot {lot.id}: exit edge {edge!r} "
                                 "does not allow cars")
                else:
                    missing = sorted(set(exits) - reachable(graph, edge))
                    if missing:
                        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
                        problems.add(f"venue {venue.id} lot {lot.id}: no car path from exit "
                                     f"{edge!r} to boundary exit(s) {shown}")
    problems.raise_if_any(ScenarioError)


def midpoint(shape) -> tuple[float, float]:
    """The point halfway along a polyline (by length)."""
    import numpy as np

    pts = np.asarray(shape, dtype=float)[:, :2]
    seg = np.hypot(*np.diff(pts, axis=0).T)
    total = seg.sum()
    if total == 0:
        return float(pts[0, 0]), float(pts[0, 1])
    half, acc = total / 2, 0.0
    for i, s in enumerate(seg):
        if acc + s >= half:
            t = (half - acc) / s if s else 0.0
            x, y = pts[i] + t * (pts[i + 1] - pts[i])
            return float(x), float(y)
        acc += s
    return float(pts[-1, 0]), float(pts[-1, 1])


def inside_polygon(points, polygon):
    """Which of `points` (n × 2) lie inside `polygon` (a ring of vertices), by ray casting."""
    import numpy as np

    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    ring = np.asarray(polygon, dtype=float)
    x, y = pts[:, 0][:, None], pts[:, 1][:, None]
    x0, y0 = ring[:, 0][None, :], ring[:, 1][None, :]
    x1, y1 = np.roll(ring[:, 0], -1)[None, :], np.roll(ring[:, 1], -1)[None, :]
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return ((crosses & (x < at)).sum(axis=1) % 2) == 1


def study_area_edges(network: str | Path, venues=None) -> frozenset[str]:
    """Edges of the study area: those whose midpoint (lon/lat) lies in the
    venues' study-area polygon; every edge when there is none.

    Memoised per network file (path and modification time) and venues file.

    Parameters
    ----------
    network : path
    venues : egress.venues.Venues, optional
    """
    path = Path(network).resolve()
    area = venues.study_area if venues is not None else None
    polygon = tuple(area.polygon) if area is not None and area.polygon else None
    return _study_area(str(path), path.stat().st_mtime_ns, polygon)


@functools.lru_cache(maxsize=8)
def _study_area(path: str, _mtime: int, polygon) -> frozenset[str]:
    net = read_net(path)
    edges = list(net.getEdges())
    if polygon is None:
        return frozenset(e.getID() for e in edges)
    lonlat = [net.convertXY2LonLat(*midpoint(e.getShape())) for e in edges]
    mask = inside_polygon(lonlat, polygon)
    return frozenset(e.getID() for e, m in zip(edges, mask, strict=True) if m)


_ROUTE_EDGES = re.compile(r'<(?:route|vehicle|trip|flow)\s[^>]*?\b(edges|from|to|via)="([^"]*)"')
_ROUTE_ID = re.compile(r'<(vehicle|trip|flow|route)\s[^>]*?\bid="([^"]*)"')


def check_route_files(network: str | Path, routes: Iterable[str | Path]) -> None:
    """Check that every edge the route files name is an edge of `network`.

    Raises
    ------
    InputError
        Naming each route file, the first element that uses an unknown edge,
        and how many edges are unknown.
    """
    from .errors import InputError

    known = {e.getID() for e in read_net(network).getEdges()}
    problems = []
    for path in routes:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        unknown: dict[str, int] = {}
        for m in _ROUTE_EDGES.finditer(text):
            for edge in m.group(2).split():
                if edge not in known:
                    unknown.setdefault(edge, m.start())
        if unknown:
            edge, at = min(unknown.items(), key=lambda kv: kv[1])
            owner = [o for o in _ROUTE_ID.finditer(text, 0, at + 1)]
            where = f" ({owner[-1].group(1)} {owner[-1].group(2)!r})" if owner else ""
            more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
            problems.append(f"{path}: edge {edge!r}{where}{more} not in {Path(network).name}")
    if problems:
        raise InputError("routes", problems)
