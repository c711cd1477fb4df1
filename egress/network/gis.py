"""GIS layers of a network: edges, points and areas as GeoJSON in WGS84.

Why GeoJSON and not GeoPackage
    GeoJSON (RFC 7946) is plain JSON in longitude/latitude (WGS84), so it is
    written with the standard library, needs no GDAL, opens in QGIS by drag
    and drop, in web maps and in GeoPandas, and diffs as text. A GeoPackage
    would need GDAL (through pyogrio or fiona) on every machine that writes
    one, for layers of a few thousand features.

Each layer is one ``.geojson`` file holding one kind of feature. Edge layers
carry the street name, SUMO type, lanes and speed limit with whatever values
the caller adds per edge (speeds per time slice, changes against a baseline);
:mod:`egress.policies.layers` and :mod:`egress.engine.simulate` write them
with every evaluation and run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .graph import read_net

#: Decimal places of a coordinate (1e-6 degrees is about 0.1 m).
PRECISION = 6


def _clean(v: Any) -> Any:
    """A property value as JSON holds it (NaN -> null, numpy -> Python)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def feature(geometry: dict, properties: Mapping[str, Any]) -> dict:
    """A GeoJSON feature."""
    return {"type": "Feature", "geometry": geometry,
            "properties": {k: _clean(v) for k, v in properties.items()}}


def point(lon: float, lat: float) -> dict:
    return {"type": "Point", "coordinates": [round(lon, PRECISION), round(lat, PRECISION)]}


def line(points: Iterable[tuple[float, float]]) -> dict:
    return {"type": "LineString",
            "coordinates": [[round(x, PRECISION), round(y, PRECISION)] for x, y in points]}


def polygon(ring: Iterable[tuple[float, float]]) -> dict:
    pts = [[round(x, PRECISION), round(y, PRECISION)] for x, y in ring]
    if pts and pts[0] != pts[-1]:
        pts.append(pts[0])
    return {"type": "Polygon", "coordinates": [pts]}


def write_geojson(path: str | Path, features: list[dict], name: str | None = None) -> Path:
    """Write a FeatureCollection (WGS84 longitude/latitude, RFC 7946)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"type": "FeatureCollection"}
    if name:
        data["name"] = name
    data["features"] = features
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":"), allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def edge_geometry(network: str | Path) -> pd.DataFrame:
    """Every non-internal edge of a network with its centreline in lon/lat.

    Returns
    -------
    pandas.DataFrame
        Indexed by edge id: ``name`` (the street name; "" where the network
        has none), ``type``, ``lanes``, ``speed_limit`` (m/s), ``length``
        (m), ``lonlat`` (list of (lon, lat)).
    """
    net = read_net(network)
    rows = []
    for e in net.getEdges():
        if e.getFunction() == "internal":
            continue
        rows.append({"edge": e.getID(), "name": e.getName() or "", "type": e.getType() or "",
                     "lanes": e.getLaneNumber(), "speed_limit": e.getSpeed(),
                     "length": e.getLength(),
                     "lonlat": [net.convertXY2LonLat(x, y) for x, y in e.getShape()]})
    return pd.DataFrame(rows).set_index("edge")


def edge_features(geometry: pd.DataFrame, values: pd.DataFrame | None = None,
                  only: Iterable[str] | None = None) -> list[dict]:
    """Line features of edges with their attributes and `values` (indexed by edge)."""
    ids = list(geometry.index if only is None else [e for e in only if e in geometry.index])
    extra = values.reindex(ids) if values is not None else None
    out = []
    for e in ids:
        g = geometry.loc[e]
        props = {"edge": e, "name": g["name"], "type": g["type"], "lanes": int(g["lanes"]),
                 "speed_limit_ms": round(float(g["speed_limit"]), 2),
                 "length_m": round(float(g["length"]), 1)}
        if extra is not None:
            props.update(extra.loc[e].to_dict())
        out.append(feature(line(g["lonlat"]), props))
    return out


def venue_features(geometry: pd.DataFrame, venues) -> dict[str, list[dict]]:
    """Venues (points), lots (a point at each lot exit's start, where cars leave
    the facility) and the study area (polygon) of a venues file."""
    out: dict[str, list[dict]] = {"venues": [], "lots": [], "study_area": []}
    if venues is None:
        return out
    seen = set()
    for v in venues.venues.values():
        out["venues"].append(feature(point(v.lon, v.lat), {"id": v.id, "name": v.name,
                                                           "parking_spaces": v.capacity}))
        for lot in v.lots:
            for x in lot.exits:
                if (lot.id, x) in seen or x not in geometry.index:
                    continue
                seen.add((lot.id, x))
                # where the lot is when it was given by coordinates, else where its
                # exit edge starts (the facility's gate)
                lon, lat = (lot.lon, lot.lat) if lot.lon is not None else \
                    geometry.loc[x, "lonlat"][0]
                out["lots"].append(feature(point(lon, lat), {
                    "lot": lot.id, "name": lot.name, "capacity": lot.capacity,
                    "exit_edge": x, "street": geometry.loc[x, "name"]}))
    area = venues.study_area
    if area is not None and area.polygon:
        out["study_area"].append(feature(polygon(area.polygon), {"name": area.name}))
    return out


__all__ = ["PRECISION", "edge_features", "edge_geometry", "feature", "line", "point",
           "polygon", "venue_features", "write_geojson"]
