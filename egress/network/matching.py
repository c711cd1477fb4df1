"""Map matching: segments given by WGS84 end points onto the network's directed edges.

Probe-speed products (TMC or map-provider segments), detector stations and
synthetic observations name a segment by its start and end points.
:func:`match_segment` finds the directed edges a car drives between them, for
segments that lie wholly in the model; :func:`match_part` also matches the
part of a real segment that lies in the model, and says how much of the
segment that part is.

Real segments run past the model's edge or along roads the model lacks
(its network is a cut-out of the region), so a segment is matched like this:

1. Candidate edges lie within ``radius`` of a point (sumolib's
   ``getNeighboringEdges``, fast with ``rtree``) and head within ``angle``
   of the segment's bearing, so that the two carriageways of a road are told
   apart.
2. If both end points have candidates and a car path joins them, the pair
   of candidates (up to 4 × 4) minimising ``d_start + d_end + |driven -
   length|`` is the match: ``driven`` is the length driven along the path
   between the points' projections, ``length`` the segment's. When the
   segment's road is named, candidate edges of that name come first and a
   path on which no edge carries the name (:func:`same_road`) scores
   :data:`OTHER_ROAD` m more: where two roads lie on top of each other (a
   viaduct over a surface street) or side by side, only the name tells them
   apart. A first or last edge the segment only touches (less than
   :data:`TRIM` m of it) is left out.
3. Otherwise the segment is clipped: points every :data:`STEP` metres along
   the straight line between its ends (at most :data:`MAX_POINTS`) are tried
   as its ends, the widest pair with candidates and a car path first. What
   lies before and after the matched part is recorded (``clipped_start``,
   ``clipped_end``).
4. The **matched share** is ``driven / length`` (the product's segment length
   when given, else the straight distance). A match covering less than
   :data:`MIN_SHARE` of its segment is refused, and so is one whose path is a
   detour (driven more than :data:`MAX_DETOUR` times the part's expected
   length; segments under :data:`SHORT` m may drive up to :data:`SHORT_DRIVEN`).
   A match on other roads than the segment's is refused too when the model
   has a road of that name elsewhere: the segment's road is then missing
   here, and a parallel street is not it. (A model whose names differ from
   the product's is not judged by them.)
"""

from __future__ import annotations

import math
import re
import weakref
from dataclasses import dataclass, replace

from .graph import CAR, car_graph

#: Map matching: search radius (m) around a segment end, and the largest
#: angle (degrees) between an edge's heading and the start-to-end bearing.
MATCH_RADIUS = 60.0
MATCH_ANGLE = 60.0

#: The smallest matched share (driven length / segment length) kept. Below
#: half, the matched edges would see less of the segment than they miss, and
#: a segment's speed is not uniform along it: an arterial segment's delay sits
#: at its downstream signal, a freeway segment's at the merge it ends in. The
#: other half might be exactly where the measured speed comes from.
MIN_SHARE = 0.5

#: A path longer than this many times the part of the segment it stands for
#: goes round a block or through an interchange: not the segment.
MAX_DETOUR = 1.6

#: Segments shorter than :data:`SHORT` m may match a path up to
#: :data:`SHORT_DRIVEN` m, since a path's length is then mostly the distance
#: from the points to the edges' ends, not the segment.
SHORT = 100.0
SHORT_DRIVEN = 250.0

#: Spacing (m) of the points tried as the ends of a clipped segment, and
#: their largest number per segment.
STEP = 25.0
MAX_POINTS = 41

#: A segment whose end point lies at a junction projects onto the end of the
#: edge before it (or the start of the edge after it). Such an edge, driven for
#: less than this many metres (and less than half its length), is not part of
#: the match: it would make the segment's count that of the road before it.
TRIM = 20.0

#: Metres added to the score of a path on no road of the segment's name.
OTHER_ROAD = 200.0

#: Candidate edges kept per point, and pairs of points tried when clipping.
_PER_POINT = 4
_MAX_PAIRS = 60


@dataclass(frozen=True)
class SegmentMatch:
    """The match of a segment (or of its part that lies in the model).

    Attributes
    ----------
    edges : tuple of str
        Edge ids in driving order; empty when no car path was found.
    why : str
        Empty when the match is good; else why the segment is not matched
        (with `edges` the best refused match, if any).
    length : float
        The segment's length (m): the product's, or the straight distance.
    driven : float
        Metres driven along `edges` (and across the junctions between them)
        between the projections of the matched part's ends.
    d_start, d_end : float
        Distances (m) from the matched part's ends to the edges.
    clipped_start, clipped_end : float
        Metres of the segment (along the straight line between its ends)
        before and after the matched part: the parts outside the model.
    """

    edges: tuple[str, ...] = ()
    why: str = ""
    length: float = math.nan
    driven: float = math.nan
    d_start: float = math.nan
    d_end: float = math.nan
    clipped_start: float = 0.0
    clipped_end: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the match is good (edges found and no reason to refuse them)."""
        return bool(self.edges) and not self.why

    @property
    def share(self) -> float:
        """The matched share: driven length / segment length."""
        return self.driven / self.length if self.length > 0 else math.nan

    @property
    def offset(self) -> float:
        """The larger distance (m) of the matched part's ends from the edges."""
        return max(self.d_start, self.d_end)


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


def _candidates(net, x: float, y: float, bearing: float, radius: float, angle: float,
                road: str | None = None):
    """Edges near (x, y) heading along `bearing`: (distance, edge, offset), nearest
    first, those of the road named `road` before the others."""
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
    out.sort(key=lambda c: (not (road and same_road(road, [c[1].getName()])), c[0],
                            c[1].getID()))
    return out[:_PER_POINT]


def _junctions(path: list) -> float:
    """Metres across the junctions between consecutive edges (from one edge's end
    to the next one's start), which a segment's length along the road includes."""
    total = 0.0
    for a, b in zip(path[:-1], path[1:], strict=True):
        (xa, ya), (xb, yb) = a.getShape()[-1][:2], b.getShape()[0][:2]
        total += math.hypot(xb - xa, yb - ya)
    return total


def _norm(name: str) -> str:
    name = re.sub(r"\s+", " ", name.upper().replace(".", "")).strip()
    name = re.sub(r"\b(WA|SR|US|HWY)[- ]?(\d+)\b", r"SR \2", name)
    for long, short in (("AVENUE", "AVE"), ("STREET", "ST"), ("EXTENSION", "EXT"),
                        ("BOULEVARD", "BLVD"), ("DRIVE", "DR"), ("ROAD", "RD")):
        name = re.sub(rf"\b{long}\b", short, name)
    return re.sub(r"\s+(N|S|E|W|NB|SB|EB|WB)$", "", name)


def same_road(road: str, names) -> bool:
    """Whether any of the edge `names` is the road `road` (case, abbreviations
    such as AVENUE/AVE, a trailing direction letter and WA-99/SR 99 aside)."""
    want = _norm(road)
    return bool(want) and any(_norm(n) == want for n in names if n)


def _trim(edges: list, o1: float, o2: float) -> list:
    """`edges` without a first edge the segment only touches at its end, or a last
    one it only touches at its start (see :data:`TRIM`)."""
    if len(edges) > 1 and edges[0].getLength() - o1 < min(TRIM, 0.5 * edges[0].getLength()):
        edges = edges[1:]
    if len(edges) > 1 and o2 < min(TRIM, 0.5 * edges[-1].getLength()):
        edges = edges[:-1]
    return edges


def _best_pair(net, first, last, straight: float, road: str | None = None,
               trim: bool = False):
    """The best (score, edges, driven, d1, d2) joining candidates `first` to `last`
    (with `trim`, edges the segment only touches are left out: :func:`_trim`)."""
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
                driven = sum(e.getLength() for e in path) - o1 - (e2.getLength() - o2) \
                    + _junctions(path)
            score = d1 + d2 + abs(driven - straight)
            if road and not same_road(road, (e.getName() for e in edges)):
                score += OTHER_ROAD
            if trim:
                edges = _trim(edges, o1, o2)
            if best is None or score < best[0]:
                best = (score, tuple(e.getID() for e in edges), driven, d1, d2)
    return best


def _project(net, start, end):
    """The end points in network x/y, or a reason they cannot be projected."""
    try:
        return net.convertLonLat2XY(*start), net.convertLonLat2XY(*end)
    except Exception as exc:  # sumolib without pyproj or a network without projection
        return f"cannot project lon/lat onto the network ({exc})"


def match_segment(net, start: tuple[float, float], end: tuple[float, float], *,
                  radius: float = MATCH_RADIUS, angle: float = MATCH_ANGLE
                  ) -> tuple[tuple[str, ...], float] | str:
    """Map-match a segment that lies wholly in the model onto directed edges.

    Steps 1 and 2 of the module docstring: no clipping and no check of the
    matched share (see :func:`match_part` for real segments).

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
    points = _project(net, start, end)
    if isinstance(points, str):
        return points
    (x1, y1), (x2, y2) = points
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
    best = _best_pair(net, first, last, straight)
    if best is None:
        return "no car path between the edges near the start and the end"
    return best[1], max(best[3], best[4])


def match_part(net, start: tuple[float, float], end: tuple[float, float], *,
               length: float | None = None, road: str | None = None,
               radius: float = MATCH_RADIUS,
               angle: float = MATCH_ANGLE, min_share: float = MIN_SHARE) -> SegmentMatch:
    """Map-match the part of a real segment that lies in the model.

    See the module docstring for the method, the matched share and when a
    match is refused.

    Parameters
    ----------
    net : sumolib.net.Net
        A network with a geo projection.
    start, end : (lon, lat)
    length : float, optional
        The segment's length (m) as the product gives it (along the road);
        default the straight distance between the ends.
    road : str, optional
        The segment's road name (e.g. ``I-5``, ``4TH AVE S``): paths on it are
        preferred.
    radius, angle : float
        Candidate edges: within `radius` m of a point, heading within
        `angle` degrees of the segment's bearing.
    min_share : float
        The smallest matched share accepted.

    Returns
    -------
    SegmentMatch
        Never raises for a segment that does not match: its ``why`` says why.
    """
    points = _project(net, start, end)
    if isinstance(points, str):
        return SegmentMatch(why=points)
    (x1, y1), (x2, y2) = points
    straight = math.hypot(x2 - x1, y2 - y1)
    total = float(length) if length is not None and length > 0 else straight
    if straight < 1.0:
        return SegmentMatch(why="start and end are the same point", length=total)
    bearing = math.atan2(y2 - y1, x2 - x1)
    n = min(MAX_POINTS, max(2, math.ceil(straight / STEP) + 1))
    fractions = [k / (n - 1) for k in range(n)]
    cands: dict[int, list] = {}

    def candidates(k: int) -> list:
        if k not in cands:
            f = fractions[k]
            cands[k] = _candidates(net, x1 + f * (x2 - x1), y1 + f * (y2 - y1), bearing,
                                   radius, angle, road)
        return cands[k]

    # the whole segment first; clipped parts, widest first, only when it fails
    pairs = [(0, n - 1)] if candidates(0) and candidates(n - 1) else []
    road = road if road and _known_road(net, road) else None
    refused = _try(net, pairs, candidates, fractions, (straight, total), min_share, road)
    if isinstance(refused, SegmentMatch) and refused.ok:
        return refused
    usable = [k for k in range(n) if candidates(k)]
    if len(usable) < 2:
        near = f"; only the point {fractions[usable[0]] * straight:.0f} m from its start is" \
            if usable else ""
        return SegmentMatch(why=f"no road of the model along it (no car edge within "
                                f"{radius:g} m heading within {angle:g}° of its direction"
                                f"{near})", length=total)
    pairs = sorted(((i, j) for i in usable for j in usable if j > i and (i, j) != (0, n - 1)),
                   key=lambda p: (p[0] - p[1], p[0]))[:_MAX_PAIRS]
    got = _try(net, pairs, candidates, fractions, (straight, total), min_share, road)
    if isinstance(got, SegmentMatch) and (got.ok or refused is None):
        return got
    if refused is not None:
        return refused
    return SegmentMatch(why="no car path between the edges along it (the model's roads "
                            "near it do not connect in its direction)", length=total)


def _try(net, pairs, candidates, fractions, lengths: tuple[float, float], min_share: float,
         road: str | None) -> SegmentMatch | None:
    """The first good match among `pairs` of points, else the first refused one
    (None when no pair has a car path); `lengths` are the segment's straight
    and given length."""
    straight, total = lengths
    refused = None
    for i, j in pairs:
        expected = (fractions[j] - fractions[i]) * total
        best = _best_pair(net, candidates(i), candidates(j), expected, road, trim=True)
        if best is None:
            continue
        _, edges, driven, d1, d2 = best
        match = _refuse(SegmentMatch(edges, "", total, driven, d1, d2,
                                     fractions[i] * straight, (1 - fractions[j]) * straight),
                        expected, min_share)
        names = [net.getEdge(e).getName() for e in edges]
        if match.ok and road and not same_road(road, names):
            match = replace(match, why=f"its road {road} is not near it in its direction: "
                                       f"the nearest path runs on {_names(names)}")
        if match.ok:
            return match
        refused = refused or match
    return refused


def _names(names: list[str]) -> str:
    seen = list(dict.fromkeys(n for n in names if n))
    return " > ".join(seen) if seen else "unnamed edges"


_ROADS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _known_road(net, road: str) -> bool:
    """Whether any edge of `net` carries the road name `road`."""
    if net not in _ROADS:
        _ROADS[net] = {_norm(e.getName()) for e in net.getEdges() if e.getName()}
    return _norm(road) in _ROADS[net]


def _refuse(match: SegmentMatch, expected: float, min_share: float) -> SegmentMatch:
    """`match` with the reason it is refused, if it is: too small a share, or a detour."""
    if expected < SHORT:
        detour = match.driven > SHORT_DRIVEN
    else:
        detour = match.driven > MAX_DETOUR * expected
    if detour:
        return replace(match, why=f"the car path between its ends is {match.driven:.0f} m "
                                  f"for {expected:.0f} m of segment: a detour, not the segment")
    if not match.share >= min_share:
        outside = ""
        if match.clipped_start > 0 or match.clipped_end > 0:
            outside = (f"; {match.clipped_start:.0f} m before and {match.clipped_end:.0f} m "
                       "after it are off the model's roads")
        return replace(match, why=f"only {match.share:.0%} of it ({match.driven:.0f} of "
                                  f"{match.length:.0f} m) lies on the model's roads (at least "
                                  f"{min_share:.0%} needed){outside}")
    return match



__all__ = ["MATCH_ANGLE", "MATCH_RADIUS", "MAX_DETOUR", "MIN_SHARE", "SegmentMatch",
           "match_part", "match_segment"]
