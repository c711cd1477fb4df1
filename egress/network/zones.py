"""Zones: S2 cells of level 13 and the network edges that trips start and end on.

A zone is an S2 cell (about 1.2 km² at level 13 in Seattle) named by its cell
token, e.g. ``"54906a9c"``. Demand is an OD table between such tokens
(:mod:`egress.demand.od`); SUMO turns it into trips through a TAZ file that lists,
per zone, the edges a trip may start on (*sources*) and end on (*sinks*).

Rules
-----
Cell of an edge
    An edge belongs to the cell that holds the point halfway along its
    geometry (the node-to-node centreline, measured by length). An edge that
    crosses a cell border therefore belongs to the cell that holds the middle
    of the edge, which is the cell holding most of its middle part; it is
    never split between cells.
Sources and sinks
    Only car edges count (``edge.allows("passenger")``, internal edges are
    not read). A car may start or end a trip on an edge that is neither a
    freeway mainline nor a ramp: its speed limit is below
    :data:`FREEWAY_SPEED` (22 m/s, about 80 km/h), its type does not match
    :data:`FREEWAY_TYPES` (freeway, motorway, ramp, link, trunk) and its
    function is normal. Exceptions:

    * a boundary entry edge (:func:`egress.network.graph.boundary_edges`) is always
      a source and never a sink, a boundary exit always a sink and never a
      source, whatever its type: that is where traffic enters and leaves the
      modelled area (a trip ending on an entry, or starting on an exit, would
      have no car path);
    * a lot exit edge is a source of its venue's zone only (the cell holding
      the venue's lon/lat), whichever cell it lies in, and never a sink. A
      lot shared by several venues belongs to the first venue that lists it
      (a demand builder passes the event's venue first).
Weights
    An internal zone's source and sink weights are ``length × car lanes`` of
    each edge, normalised to sum 1 per zone, so that long multi-lane roads
    get more trips.
External zones
    Places outside the network (given with a population) are cells that hold
    no edge. Each is attached to the boundary: its sinks are the boundary
    exit edges whose end node lies within ``d_min + 1500 m`` of the cell
    centre, where ``d_min`` is the distance to the nearest boundary exit's
    end node (for a far place: the side of the network that faces it); its
    sources are the boundary entry edges chosen likewise by the distance of
    their start node. Weights are ``car lanes × speed limit⁴``
    (:data:`EXIT_SPEED_POWER`), normalised to sum 1: capacity times the
    preference of long trips for fast roads, so that through traffic keeps
    to the freeways as it does in reality. With the square, SODO's trips to
    the north left by I-5 only about half the time (a 3-lane 40 km/h street
    weighed 1/10 of the 5-lane 97 km/h freeway): the model's northbound
    I-5 carried 1,700-2,000 veh/h north of downtown against 2,800-3,600
    counted in May 2018, and the rest crossed the downtown grid, which it
    congested. The fourth power (1/58) puts 77-79 % of them on I-5.
Unusable cells
    An internal cell whose edges allow no trip to start or end (e.g. only
    freeway mainline) is kept in the table with no sources and no sinks,
    logged as a warning and listed in :attr:`Zones.unusable`.
"""

from __future__ import annotations

import logging
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import s2sphere

from ..errors import InputError, Problems
from .geometry import midpoint
from .graph import CAR, boundary_edges, read_net

log = logging.getLogger(__name__)

#: S2 level of the zones.
LEVEL = 13

#: Speed limit (m/s) from which an edge counts as a freeway: no trip starts there.
FREEWAY_SPEED = 22.0

#: Edge types (SUMO/OSM type ids, e.g. ``highway.motorway_link``) of freeways and ramps.
FREEWAY_TYPES = re.compile(r"freeway|motorway|ramp|link|trunk", re.IGNORECASE)

#: External zones attach to boundary edges at most this many metres farther
#: than the nearest one: for a far place, the side of the network facing it.
EXTERNAL_SLACK_M = 1500.0
#: Power of the speed limit in the weight of an external place's boundary edges
#: (see the module docstring).
EXIT_SPEED_POWER = 4

#: Mean Earth radius (km) used for cell areas.
EARTH_RADIUS_KM = 6371.0088

#: Columns of :func:`edge_cells`.
EDGE_COLUMNS = ["edge", "token", "lon", "lat", "length", "speed", "lanes",
                "is_source", "is_sink", "source_zone"]

#: Columns of :attr:`Zones.table`.
TABLE_COLUMNS = ["token", "kind", "lon", "lat", "area_km2", "n_edges", "n_sources",
                 "n_sinks", "population"]

#: Venues (:class:`egress.config.venues.Venues`: anything with a ``venues``
#: mapping of objects with ``lon``, ``lat`` and ``exits``), or a mapping lot
#: exit edge -> venue zone token, or None.
VenuesLike = Any


# --------------------------------------------------------------------------- cells

def cell_of(lon: float, lat: float, level: int = LEVEL) -> str:
    """Return the token of the S2 cell of `level` that holds a point.

    Parameters
    ----------
    lon, lat : float
        WGS84 degrees.
    level : int
        S2 level, 0-30.

    Returns
    -------
    str
        The cell token, e.g. ``"54906a9c"``.

    Raises
    ------
    InputError
        If the coordinates are not finite degrees or the level is out of range.
    """
    problems = Problems("cell_of")
    if not (isinstance(level, int) and 0 <= level <= 30):
        problems.add(f"level must be an integer 0-30, got {level!r}")
    try:
        lon_f, lat_f = float(lon), float(lat)
    except (TypeError, ValueError):
        lon_f = lat_f = math.nan
    if not (math.isfinite(lon_f) and math.isfinite(lat_f)
            and -180 <= lon_f <= 180 and -90 <= lat_f <= 90):
        problems.add(f"expected lon/lat in degrees, got ({lon!r}, {lat!r})")
    problems.raise_if_any(InputError)
    point = s2sphere.LatLng.from_degrees(lat_f, lon_f)
    return s2sphere.CellId.from_lat_lng(point).parent(level).to_token()


def _cell_id(token: str) -> s2sphere.CellId:
    """Return the cell of a token; raise InputError if it is not one."""
    ok = isinstance(token, str) and 0 < len(token) <= 16 and re.fullmatch(r"[0-9a-fA-F]+", token)
    cid = s2sphere.CellId.from_token(token) if ok else None
    if cid is None or not cid.is_valid():
        raise InputError("cell token", f"{token!r} is not a valid S2 cell token")
    return cid


def is_token(token: Any, level: int | None = LEVEL) -> bool:
    """Tell whether `token` is a valid S2 cell token (of `level`, unless None)."""
    try:
        cid = _cell_id(token)
    except InputError:
        return False
    return level is None or cid.level() == level


def cell_polygon(token: str) -> list[tuple[float, float]]:
    """Return the 4 corners of a cell as (lon, lat), counter-clockwise.

    Raises
    ------
    InputError
        If `token` is not a valid cell token.
    """
    cell = s2sphere.Cell(_cell_id(token))
    out = []
    for k in range(4):
        ll = s2sphere.LatLng.from_point(cell.get_vertex(k))
        out.append((ll.lng().degrees, ll.lat().degrees))
    return out


def cell_center(token: str) -> tuple[float, float]:
    """Return the centre of a cell as (lon, lat)."""
    ll = _cell_id(token).to_lat_lng()
    return ll.lng().degrees, ll.lat().degrees


def cell_area_km2(token: str) -> float:
    """Return the area of a cell in km² (on a sphere of radius :data:`EARTH_RADIUS_KM`)."""
    return s2sphere.Cell(_cell_id(token)).exact_area() * EARTH_RADIUS_KM ** 2


# --------------------------------------------------------------------------- edges

def _net(net):
    return read_net(net) if isinstance(net, str | Path) else net


def _car_lanes(edge) -> int:
    return sum(1 for lane in edge.getLanes() if lane.allows(CAR))


def _midpoint(net, edge) -> tuple[float, float]:
    """(lon, lat) of the point halfway along the edge's centreline (node to node)."""
    shape = edge.getRawShape()
    if len(shape) < 2 or all(p == shape[0] for p in shape):
        shape = edge.getShape()
    lon, lat = net.convertXY2LonLat(*midpoint(shape))
    return float(lon), float(lat)


def allows_trips(edge) -> bool:
    """Tell whether a trip may start or end on an edge by its own kind.

    True unless the edge is a freeway mainline or ramp (speed limit >=
    :data:`FREEWAY_SPEED` or type matching :data:`FREEWAY_TYPES`) or has a
    special function. Boundary edges and lot exits are handled by
    :func:`edge_cells`.
    """
    return (edge.getSpeed() < FREEWAY_SPEED
            and not FREEWAY_TYPES.search(edge.getType() or "")
            and edge.getFunction() == "")


def _lot_zones(venues: VenuesLike) -> tuple[dict[str, str], dict[str, str], str]:
    """Return (lot exit edge -> venue zone, venue id -> zone, source name)."""
    if venues is None:
        return {}, {}, "lot exits"
    if hasattr(venues, "venues"):
        # a lot shared by several venues belongs to the first venue listing it
        exits: dict[str, str] = {}
        zones: dict[str, str] = {}
        for vid, venue in venues.venues.items():
            zones[vid] = cell_of(venue.lon, venue.lat)
            for edge in venue.exits:
                exits.setdefault(edge, zones[vid])
        return exits, zones, str(venues.path)
    problems = Problems("lot exits")
    for edge, zone in venues.items():
        if not is_token(zone):
            problems.add(f"{edge}: {zone!r} is not a level-{LEVEL} cell token")
    problems.raise_if_any(InputError)
    return dict(venues), {}, "lot exits"


def _check_lot_exits(net, lot_zone: Mapping[str, str], source: str) -> None:
    problems = Problems(source)
    for edge in lot_zone:
        if not net.hasEdge(edge):
            problems.add(f"lot exit {edge!r} is not an edge of the network")
        elif not net.getEdge(edge).allows(CAR):
            problems.add(f"lot exit {edge!r} does not allow cars")
    problems.raise_if_any(InputError)


def edge_cells(net, venues: VenuesLike = None) -> pd.DataFrame:
    """Assign every car edge to its level-13 cell and say where trips may start and end.

    Parameters
    ----------
    net : sumolib.net.Net or path
        A network read with :func:`egress.network.graph.read_net` (or its path).
    venues : Venues or mapping, optional
        The lot exits: a :class:`~egress.config.venues.Venues`,
        or a mapping lot exit edge -> venue zone token.

    Returns
    -------
    pandas.DataFrame
        One row per car edge, sorted by edge id, with columns ``edge, token``
        (cell of the edge's midpoint), ``lon, lat`` (that midpoint),
        ``length`` (m), ``speed`` (m/s), ``lanes`` (car lanes), ``is_source,
        is_sink`` and ``source_zone`` (the zone the edge is a source of: its
        own cell, the venue zone for a lot exit, None when not a source).

    Raises
    ------
    InputError
        If a lot exit is not a car edge of the network.
    """
    net = _net(net)
    lot_zone, _, source = _lot_zones(venues)
    _check_lot_exits(net, lot_zone, source)
    entries, exits = boundary_edges(net, exclude=lot_zone)
    entries, exits = set(entries), set(exits)
    rows = []
    for edge in sorted(net.getEdges(), key=lambda e: e.getID()):
        if edge.getFunction() == "internal" or not edge.allows(CAR):
            continue
        eid = edge.getID()
        lon, lat = _midpoint(net, edge)
        token = cell_of(lon, lat)
        ordinary = allows_trips(edge)
        if eid in lot_zone:
            is_source, is_sink, zone = True, False, lot_zone[eid]
        else:
            # a boundary entry leads in from nowhere: no trip ends on it; a
            # boundary exit leads nowhere: no trip starts on it
            is_source = eid in entries or (ordinary and eid not in exits)
            is_sink = eid in exits or (ordinary and eid not in entries)
            zone = token if is_source else None
        rows.append((eid, token, lon, lat, float(edge.getLength()), float(edge.getSpeed()),
                     _car_lanes(edge), is_source, is_sink, zone))
    return pd.DataFrame(rows, columns=EDGE_COLUMNS)


# --------------------------------------------------------------------------- zones

@dataclass
class Zones:
    """The zones of a network: cells, their source and sink edges, external places.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per zone: ``token, kind ('internal'|'external'), lon, lat``
        (cell centre), ``area_km2, n_edges, n_sources, n_sinks, population``
        (NaN unless given). Internal zones first, each kind sorted by token.
    sources, sinks : dict
        Token -> {edge id: weight}, weights summing to 1 per zone (empty
        dict for a zone without sources or sinks).
    token_of_edge : dict
        Car edge id -> token of the cell holding its midpoint.
    edges : pandas.DataFrame
        The :func:`edge_cells` table.
    external : pandas.DataFrame or None
        The external places, one row per cell: ``token, population``.
    unusable : list of str
        Internal cells with neither sources nor sinks.
    venue_zones : dict
        Venue id -> token of the cell holding the venue.
    shapes : dict
        Token -> cell outline in network coordinates (x, y), for the TAZ file.
    """

    table: pd.DataFrame
    sources: dict[str, dict[str, float]]
    sinks: dict[str, dict[str, float]]
    token_of_edge: dict[str, str]
    edges: pd.DataFrame
    external: pd.DataFrame | None = None
    unusable: list[str] = field(default_factory=list)
    venue_zones: dict[str, str] = field(default_factory=dict)
    shapes: dict[str, list[tuple[float, float]]] = field(default_factory=dict, repr=False)

    @property
    def tokens(self) -> list[str]:
        """All zone tokens, in table order."""
        return list(self.table["token"])

    def venue_zone(self, venue_id: str) -> str:
        """Return the token of the zone that holds venue `venue_id`.

        Raises
        ------
        KeyError
            If the zones were built without that venue.
        """
        try:
            return self.venue_zones[venue_id]
        except KeyError:
            known = ", ".join(sorted(self.venue_zones)) or "none"
            raise KeyError(f"unknown venue {venue_id!r} (known: {known})") from None

    def write_taz(self, path: str | Path) -> Path:
        """Write the zones as a SUMO TAZ additional file.

        Each zone becomes ``<taz id="TOKEN" shape="...">`` (the cell outline in
        network coordinates, for sumo-gui and netedit) holding its
        ``<tazSource id="EDGE" weight="..."/>`` then ``<tazSink .../>``
        elements, zones in table order and edges sorted by id, so the file is
        deterministic. od2trips, duarouter and sumo read it.

        Parameters
        ----------
        path : str or pathlib.Path

        Returns
        -------
        pathlib.Path
        """
        path = Path(path)
        root = ET.Element("additional")
        for token in self.tokens:
            attrs = {"id": token}
            if token in self.shapes:
                attrs["shape"] = " ".join(f"{x:.2f},{y:.2f}" for x, y in self.shapes[token])
            taz = ET.SubElement(root, "taz", attrs)
            for tag, table in (("tazSource", self.sources), ("tazSink", self.sinks)):
                for edge, weight in sorted(table.get(token, {}).items()):
                    ET.SubElement(taz, tag, {"id": edge, "weight": repr(float(weight))})
        ET.indent(root, space="    ")
        path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)
        log.info("wrote %s (%d zones)", path, len(self.tokens))
        return path


def _normalise(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    if total <= 0:  # all-zero weights: share evenly
        return {e: 1.0 / len(weights) for e in sorted(weights)} if weights else {}
    return {e: weights[e] / total for e in sorted(weights)}


def _external_places(external: pd.DataFrame, internal: set[str]) -> pd.DataFrame:
    """Validate external places; return one row per cell: token, population."""
    source = "external zones"
    problems = Problems(source)
    if not isinstance(external, pd.DataFrame):
        raise InputError(source, f"expected a pandas DataFrame, got {type(external).__name__}")
    has_ll = {"lon", "lat"} <= set(external.columns)
    if "token" not in external.columns and not has_ll:
        problems.add("needs a 'token' column or 'lon' and 'lat' columns")
    if "population" not in external.columns:
        problems.add("needs a 'population' column")
    problems.raise_if_any(InputError)
    tokens, pops = [], []
    for pos, (_, row) in enumerate(external.iterrows()):
        where = f"row {pos}"
        token = row["token"] if "token" in external.columns else None
        if token is None or (isinstance(token, float) and math.isnan(token)) or token == "":
            if not has_ll:
                problems.add(f"{where}: no token and no lon/lat")
                continue
            try:
                token = cell_of(row["lon"], row["lat"])
            except InputError as exc:
                problems.add(f"{where}: {exc.problems[0]}")
                continue
        elif not is_token(str(token)):
            problems.add(f"{where}: {token!r} is not a level-{LEVEL} cell token")
            continue
        token = str(token)
        try:
            pop = float(row["population"])
        except (TypeError, ValueError):
            pop = math.nan
        if not (math.isfinite(pop) and pop >= 0):
            problems.add(f"{where}: population must be a number >= 0, got {row['population']!r}")
            continue
        if token in internal:
            problems.add(f"{where}: cell {token} holds network edges; external places must "
                         "lie outside the network")
            continue
        tokens.append(token)
        pops.append(pop)
    problems.raise_if_any(InputError)
    df = pd.DataFrame({"token": tokens, "population": pops})
    return df.groupby("token", as_index=False, sort=True)["population"].sum()


def _attach(net, center_xy: tuple[float, float], candidates: list[tuple[str, Any]],
            ) -> dict[str, float]:
    """Boundary edges near a point; candidates are (edge id, node) pairs."""
    if not candidates:
        return {}
    cx, cy = center_xy
    dist = {}
    for eid, node in candidates:
        x, y = node.getCoord()[:2]
        dist[eid] = math.hypot(x - cx, y - cy)
    limit = min(dist.values()) + EXTERNAL_SLACK_M
    weights = {}
    for eid, d in dist.items():
        if d <= limit:
            edge = net.getEdge(eid)
            weights[eid] = _car_lanes(edge) * edge.getSpeed() ** EXIT_SPEED_POWER
    return _normalise(weights)


def build_zones(net, venues: VenuesLike = None, external: pd.DataFrame | None = None) -> Zones:
    """Build the zones of a network.

    Parameters
    ----------
    net : sumolib.net.Net or path
        The network (read with :func:`egress.network.graph.read_net`) or its path.
    venues : Venues or mapping, optional
        Venues whose lot exits are sources of the venue's zone only; or a
        mapping lot exit edge -> venue zone token.
    external : pandas.DataFrame, optional
        Places outside the network: a ``token`` column or ``lon`` and
        ``lat`` columns, plus ``population``. Rows in the same cell are
        summed. Each becomes an external zone attached to the nearest
        boundary edges (see the module rules).

    Returns
    -------
    Zones

    Raises
    ------
    InputError
        Listing every problem with the lot exits or the external places.
    """
    net = _net(net)
    lot_zone, venue_zones, _ = _lot_zones(venues)
    edges = edge_cells(net, lot_zone)
    token_of_edge = dict(zip(edges["edge"], edges["token"], strict=True))

    raw_src: dict[str, dict[str, float]] = {}
    raw_snk: dict[str, dict[str, float]] = {}
    for row in edges.itertuples(index=False):
        weight = row.length * row.lanes
        if row.is_source:
            raw_src.setdefault(row.source_zone, {})[row.edge] = weight
        if row.is_sink:
            raw_snk.setdefault(row.token, {})[row.edge] = weight
    internal = sorted(set(edges["token"]) | set(lot_zone.values()) | set(venue_zones.values()))
    sources = {t: _normalise(raw_src.get(t, {})) for t in internal}
    sinks = {t: _normalise(raw_snk.get(t, {})) for t in internal}
    n_edges = edges["token"].value_counts()

    rows = []
    for token in internal:
        lon, lat = cell_center(token)
        rows.append((token, "internal", lon, lat, cell_area_km2(token),
                     int(n_edges.get(token, 0)), len(sources[token]), len(sinks[token]), np.nan))
    unusable = [t for t in internal if not sources[t] and not sinks[t]]
    for token in unusable:
        log.warning("zone %s has %d car edge(s) but none where a trip may start or end "
                    "(only freeway mainline, ramps or lot exits); no trip can use it",
                    token, int(n_edges.get(token, 0)))
    for token in internal:
        if token not in unusable and (not sources[token] or not sinks[token]):
            log.warning("zone %s has %s", token, "no sources" if not sources[token] else "no sinks")

    places = None
    if external is not None:
        places = _external_places(external, set(internal))
        entries, exits = boundary_edges(net, exclude=lot_zone)
        problems = Problems("external zones")
        if len(places) and (not entries or not exits):
            problems.add("the network has no boundary entry or exit edge to attach them to")
        problems.raise_if_any(InputError)
        entry_nodes = [(e, net.getEdge(e).getFromNode()) for e in entries]
        exit_nodes = [(e, net.getEdge(e).getToNode()) for e in exits]
        for token, pop in zip(places["token"], places["population"], strict=True):
            lon, lat = cell_center(token)
            xy = net.convertLonLat2XY(lon, lat)
            sources[token] = _attach(net, xy, entry_nodes)
            sinks[token] = _attach(net, xy, exit_nodes)
            rows.append((token, "external", lon, lat, cell_area_km2(token), 0,
                         len(sources[token]), len(sinks[token]), float(pop)))

    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    shapes = {}
    for token in table["token"]:
        shapes[token] = [tuple(map(float, net.convertLonLat2XY(lon, lat)))
                         for lon, lat in cell_polygon(token)]
    log.info("%d zones (%d external), %d unusable", len(table),
             0 if places is None else len(places), len(unusable))
    return Zones(table=table, sources=sources, sinks=sinks, token_of_edge=token_of_edge,
                 edges=edges, external=places, unusable=unusable, venue_zones=venue_zones,
                 shapes=shapes)


# --------------------------------------------------------------------------- CLI helpers

_SUMMARY = ["token", "kind", "lon", "lat", "area_km2", "n_edges", "n_sources", "n_sinks"]


def zones_table(net_path: str | Path, venues: VenuesLike = None) -> pd.DataFrame:
    """Summarise the zones of a network (what ``egress zones NETWORK`` shows).

    Parameters
    ----------
    net_path : str or pathlib.Path
        A SUMO network.
    venues : Venues or mapping, optional
        See :func:`build_zones`.

    Returns
    -------
    pandas.DataFrame
        ``token, kind, lon, lat`` (cell centre), ``area_km2, n_edges,
        n_sources, n_sinks``, one row per zone.
    """
    return build_zones(read_net(net_path), venues).table[_SUMMARY].copy()


def write_zones(net_path: str | Path, out_dir: str | Path,
                venues: VenuesLike = None) -> dict[str, Path]:
    """Write ``zones.csv`` (the :func:`zones_table`) and ``zones.taz.xml`` into `out_dir`.

    Returns
    -------
    dict
        ``{"zones": path of zones.csv, "taz": path of zones.taz.xml}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    zones = build_zones(read_net(net_path), venues)
    csv = out / "zones.csv"
    zones.table[_SUMMARY].to_csv(csv, index=False)
    taz = zones.write_taz(out / "zones.taz.xml")
    log.info("wrote %s", csv)
    return {"zones": csv, "taz": taz}


def format_zones(path: str | Path) -> str:
    """A ``zones.csv`` (:func:`write_zones`) as an aligned text table."""
    table = pd.read_csv(path)
    with pd.option_context("display.max_rows", None, "display.width", 120):
        return table.to_string(index=False, float_format=lambda x: f"{x:.5f}")


__all__ = [
    "LEVEL", "Zones", "allows_trips", "build_zones", "cell_area_km2", "cell_center", "cell_of",
    "cell_polygon", "edge_cells", "format_zones", "is_token", "write_zones", "zones_table",
]
