"""Geometry on a network: midpoints, point-in-polygon and the study area.

The *study area* of a scenario (its venues file's polygon) is where travel
times are measured: a vehicle's travel time ends when it leaves the area
(:mod:`egress.engine.vehicles`). An edge belongs to it when the midpoint of
its shape, in lon/lat, lies inside the polygon.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .graph import read_net


def midpoint(shape) -> tuple[float, float]:
    """The point halfway along a polyline (by length)."""
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


def inside_polygon(points, polygon) -> np.ndarray:
    """Which of `points` (n × 2) lie inside `polygon` (a ring of vertices), by ray casting."""
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
    venues : egress.config.venues.Venues, optional
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



def network_lines(net) -> list[np.ndarray]:
    """Edge centrelines of a network in lon/lat (internal edges left out).

    Parameters
    ----------
    net : sumolib.net.Net or path

    Returns
    -------
    list of numpy.ndarray
        One ``(n, 2)`` array of (lon, lat) per edge.
    """
    if isinstance(net, str | Path):
        net = read_net(net)
    lines = []
    for edge in net.getEdges():
        if edge.getFunction() == "internal":
            continue
        pts = [net.convertXY2LonLat(x, y) for x, y in edge.getShape()]
        lines.append(np.asarray(pts, dtype=float))
    return lines


__all__ = ["inside_polygon", "midpoint", "network_lines", "study_area_edges"]
