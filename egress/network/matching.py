"""Map matching: segments given by WGS84 end points onto the network's directed edges.

Probe-speed products (TMC or map-provider segments) and synthetic
observations name a segment by its start and end points. :func:`match_segment`
finds the directed edges a car drives between them.
"""

from __future__ import annotations

import math

from .graph import CAR, car_graph

#: Map matching: search radius (m) around a segment end, and the largest
#: angle (degrees) between an edge's heading and the start-to-end bearing.
MATCH_RADIUS = 60.0
MATCH_ANGLE = 60.0


def _heading(shape: list, offset: float) -> float:
    """Heading (radians, math convention) of a polyline at `offset` metres."""
    run = 0.0
    for (x1, y1), (x2, y2) in zip(shape[:-1], shape[1:], strict=True):
        seg = math.hypot(x2 - x1, y2 - y1)
        if run + seg >= offset or (x2, y2) == tuple(shape[-1]):
            return math.atan2(y2 - y1, x2 - x1)
        run += seg
    (x1, y1), (x2, y2) = shape[-2], shape[-1]
    return math.atan2(y2 - y1, x2 - x1)


def _candidates(net, x: float, y: float, bearing: float, radius: float, angle: float):
    from sumolib.geomhelper import polygonOffsetAndDistanceToPoint

    out = []
    for edge, dist in net.getNeighboringEdges(x, y, radius, includeJunctions=False):
        if edge.getFunction() == "internal" or not edge.allows(CAR):
            continue
        shape = [tuple(p[:2]) for p in edge.getShape()]
        offset, _ = polygonOffsetAndDistanceToPoint((x, y), shape)
        diff = abs((_heading(shape, max(offset, 0.0)) - bearing + math.pi) % (2 * math.pi)
                   - math.pi)
        if math.degrees(diff) <= angle:
            out.append((dist, edge, max(offset, 0.0)))
    out.sort(key=lambda c: (c[0], c[1].getID()))
    return out[:4]


def match_segment(net, start: tuple[float, float], end: tuple[float, float], *,
                  radius: float = MATCH_RADIUS, angle: float = MATCH_ANGLE
                  ) -> tuple[tuple[str, ...], float] | str:
    """Map-match a segment given by WGS84 start and end points onto directed edges.

    Candidate edges lie within `radius` of each end (sumolib's
    ``getNeighboringEdges``, fast with ``rtree``) and head within `angle` of
    the start-to-end bearing, so the two carriageways of a road are told
    apart. Among up to 4 × 4 candidate pairs the one minimising ``d_start +
    d_end + |driven length - straight length|`` wins, the driven length
    being that of the shortest car path between the two points.

    Parameters
    ----------
    net : sumolib.net.Net
        A network with a geo projection.
    start, end : (lon, lat)

    Returns
    -------
    (edges, offset) or str
        The edge ids in driving order and the larger end distance (m); or a
        string saying why the segment cannot be matched.
    """
    try:
        x1, y1 = net.convertLonLat2XY(*start)
        x2, y2 = net.convertLonLat2XY(*end)
    except Exception as exc:  # sumolib without pyproj or a network without projection
        return f"cannot project lon/lat onto the network ({exc})"
    straight = math.hypot(x2 - x1, y2 - y1)
    if straight < 1.0:
        return "start and end are the same point"
    bearing = math.atan2(y2 - y1, x2 - x1)
    first = _candidates(net, x1, y1, bearing, radius, angle)
    last = _candidates(net, x2, y2, bearing, radius, angle)
    if not first or not last:
        where = "start" if not first else "end"
        return (f"no edge within {radius:g} m of the {where} heading within {angle:g}° of "
                "the segment's direction")
    graph = car_graph(net)
    best = None
    for d1, e1, o1 in first:
        for d2, e2, o2 in last:
            if e1 is e2:
                if o2 < o1:
                    continue
                edges, driven = [e1], o2 - o1
            else:
                ids = graph.path(e1.getID(), e2.getID(), by="length")
                if not ids:
                    continue
                edges = path = [net.getEdge(e) for e in ids]
                driven = sum(e.getLength() for e in path) - o1 - (e2.getLength() - o2)
            score = d1 + d2 + abs(driven - straight)
            if best is None or score < best[0]:
                best = (score, tuple(e.getID() for e in edges), max(d1, d2))
    if best is None:
        return "no car path between the edges near the start and the end"
    return best[1], best[2]



__all__ = ["MATCH_ANGLE", "MATCH_RADIUS", "match_segment"]
