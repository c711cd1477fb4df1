"""Snapping places given by coordinates to network edges.

A venues file or a policy file written for one's own city knows where a lot
exit or a message sign is (a point on a map), not the edge id netconvert gave
that street. :func:`snap` finds the edge:

* the nearest **car** edge (one whose lanes allow passenger cars; internal
  edges left out) within ``radius`` metres of the point;
* of a **kind** that fits the place: a lot exit or a sign stands on a street,
  so freeways and ramps are skipped (``streets_only``); a ramp given by
  coordinates is looked for among ramps;
* heading the right way when a **heading** is given (degrees clockwise from
  north, the direction of the traffic at that point): on a two-way street
  the two directions are separate edges on the same line, and only the
  heading tells them apart. Edges whose direction at the nearest point is
  more than :data:`MAX_TURN` degrees off are skipped.

Each snap is recorded (:class:`Snap`: what was asked, the edge found, the
street name and the distance) so that the user sees what was snapped where.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import NetworkError
from .graph import CAR

#: Degrees a snapped edge's direction may differ from the heading asked for.
MAX_TURN = 60.0
#: Metres searched around a point by default.
RADIUS = 150.0
#: Edge types that are not streets (freeways, ramps, their OSM names).
NOT_STREETS = ("motorway", "freeway", "ramp", "trunk_link")


@dataclass(frozen=True)
class Snap:
    """One place snapped to an edge.

    Attributes
    ----------
    what : str
        The place, e.g. ``"lot 'north_lot'"`` or ``"policy 'to_b'.signs[0]"``.
    lon, lat : float
    edge : str
        The edge found.
    street : str
        Its name in the network ("" if it has none).
    distance : float
        Metres from the point to the edge.
    """

    what: str
    lon: float
    lat: float
    edge: str
    street: str
    distance: float

    def __str__(self) -> str:
        street = f" ({self.street})" if self.street else ""
        return (f"{self.what}: ({self.lon:.6f}, {self.lat:.6f}) -> edge {self.edge}{street}, "
                f"{self.distance:.0f} m away")


def _allows_car(edge) -> bool:
    return any(lane.allows(CAR) for lane in edge.getLanes())


def _direction(shape, x: float, y: float) -> float:
    """Compass bearing (degrees) of the shape's segment nearest to (x, y)."""
    best, bearing = math.inf, 0.0
    for (x0, y0), (x1, y1) in zip(shape[:-1], shape[1:], strict=True):
        dx, dy = x1 - x0, y1 - y0
        seg = dx * dx + dy * dy
        t = 0.0 if seg == 0 else max(0.0, min(1.0, ((x - x0) * dx + (y - y0) * dy) / seg))
        d = math.hypot(x - (x0 + t * dx), y - (y0 + t * dy))
        if d < best:
            best, bearing = d, math.degrees(math.atan2(dx, dy)) % 360
    return bearing


def _fits(edge, kind: str) -> bool:
    etype = (edge.getType() or "").lower()
    street = not any(word in etype for word in NOT_STREETS)
    if kind == "street":
        return street
    if kind == "ramp":
        return "ramp" in etype or etype.endswith(("motorway_link", "trunk_link"))
    return True


def snap(net, lon: float, lat: float, what: str, *, heading: float | None = None,
         kind: str = "street", radius: float = RADIUS) -> Snap:
    """The edge a point given in lon/lat stands on (module docstring).

    Parameters
    ----------
    net : sumolib.net.Net
        A network with a projection (built from lon/lat or OSM).
    lon, lat : float
    what : str
        The place, for the record and for error messages.
    heading : float, optional
        Direction of travel at the point, degrees clockwise from north.
    kind : {"street", "ramp", "any"}
    radius : float
        Metres to search.

    Raises
    ------
    NetworkError
        If no fitting edge is within `radius`, or the network has no projection.
    """
    try:
        x, y = net.convertLonLat2XY(lon, lat)
    except Exception as exc:  # noqa: BLE001 - sumolib raises bare errors without pyproj
        raise NetworkError(what, f"cannot place ({lon}, {lat}) on the network: it has no "
                           f"geographic projection ({exc})") from None
    found = []
    for edge, dist in net.getNeighboringEdges(x, y, radius):
        if edge.getFunction() == "internal" or not _allows_car(edge) or not _fits(edge, kind):
            continue
        if heading is not None:
            turn = abs((_direction(edge.getShape(), x, y) - heading + 180) % 360 - 180)
            if turn > MAX_TURN:
                continue
        found.append((dist, edge.getID(), edge))
    if not found:
        facing = f" heading {heading:g}°" if heading is not None else ""
        raise NetworkError(what, f"no {kind if kind != 'any' else 'car'} edge{facing} within "
                           f"{radius:g} m of ({lon}, {lat})")
    dist, eid, edge = min(found)
    return Snap(what, float(lon), float(lat), eid, edge.getName() or "", float(dist))


__all__ = ["MAX_TURN", "NOT_STREETS", "RADIUS", "Snap", "snap"]
