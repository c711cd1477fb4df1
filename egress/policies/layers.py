"""GIS layers of an evaluation: speeds per time slice and their change, lots, signs, venues.

Written into ``<out>/gis/<scenario>/`` with every evaluation, as GeoJSON in
WGS84 (:mod:`egress.network.gis` says why GeoJSON), to be opened in QGIS:

``edges_baseline.geojson``
    Every edge with its street name, type, lanes and speed limit, its
    space-mean speed in each 15-minute slice of the window (``speed_2130``,
    ``speed_2145``, …; hours past midnight go on counting, ``speed_2415`` is
    00:15 the next day) and over the whole window (``speed_window``), the
    mean over the baseline's valid replications weighted by the time vehicles
    spent on the edge (SUMO's ``sampledSeconds``). Empty where no vehicle
    drove in that slice. The unit is in the layer's ``speed_unit`` property
    (km/h or mph, :mod:`egress.units`).
``edges_<policy>_<fraction>.geojson``
    The same for a policy variant, plus ``change_<HHMM>`` and
    ``change_window``: policy − baseline speed (positive = faster).
``places.geojson``
    Lot exits and ramps as points with the baseline's maximum and mean queue
    and each variant's (vehicles), and the vehicles that left them.
``signs.geojson``
    A point at the end of each sign edge (where drivers read it), with the
    policy, its description and the street.
``lots.geojson``, ``venues.geojson``, ``study_area.geojson``
    From the venues file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .. import units
from ..engine.measures import queue_summary, slice_speeds
from ..network.gis import (
    edge_features,
    edge_geometry,
    feature,
    point,
    venue_features,
    write_geojson,
)
from .comparison import BASELINE, Outcome, Plan, Variant


def _outcomes(plan: Plan, results: dict, policy: str, fraction: float | None,
              ks: Sequence[int]) -> list[Outcome]:
    got = [results.get((plan.scen.name, policy, fraction, k)) for k in ks]
    return [o for o in got if o is not None and o.valid]


def write_layers(folder: Path, plans: Sequence[Plan], results: dict) -> list[Path]:
    """Write the GIS layers of every scenario of an evaluation (module docstring)."""
    paths = []
    for plan in plans:
        out = Path(folder) / plan.scen.name
        geometry = edge_geometry(plan.scen.network)
        begin = plan.scen.simulation.begin
        ks = sorted({k for v in plan.variants for k in plan.ran[v.key]})
        base = slice_speeds([o.edge_speed for o in _outcomes(plan, results, BASELINE, None, ks)],
                            begin)
        paths.append(_edges(out / "edges_baseline.geojson", geometry, base, "baseline"))
        for v in plan.variants:
            pol = slice_speeds([o.edge_speed for o in _outcomes(plan, results, v.name,
                                                                 v.fraction, plan.ran[v.key])],
                               begin)
            if pol.empty:
                continue
            change = (pol - base.reindex(index=pol.index, columns=pol.columns)).round(1)
            change.columns = [c.replace("speed_", "change_") for c in change.columns]
            paths.append(_edges(out / f"edges_{v.name}_{v.tag}.geojson", geometry,
                                pol.join(change), f"{v.name} {v.tag}"))
        for name, feats in venue_features(geometry, plan.scen.venues).items():
            paths.append(write_geojson(out / f"{name}.geojson", feats, name))
        paths.append(write_geojson(out / "signs.geojson", sign_features(geometry, plan.variants),
                                   "signs"))
        paths.append(write_geojson(out / "places.geojson",
                                   place_features(geometry, plan, results, ks), "places"))
    return paths


def _edges(path: Path, geometry: pd.DataFrame, values: pd.DataFrame, name: str) -> Path:
    values = values.assign(speed_unit=units.speed_unit()) if not values.empty else None
    return write_geojson(path, edge_features(geometry, values), name)


def sign_features(geometry: pd.DataFrame, variants: Sequence[Variant]) -> list[dict]:
    """One point per sign edge of each policy (at the edge's end, where drivers read it)."""
    feats, seen = [], set()
    for v in variants:
        for leaf in v.policy.leaves():
            for edge in leaf.params.get("signs") or []:
                if (leaf.name, edge) in seen or edge not in geometry.index:
                    continue
                seen.add((leaf.name, edge))
                lon, lat = geometry.loc[edge, "lonlat"][-1]
                target = leaf.params.get("to_ramp") or ", ".join(leaf.params.get("via") or [])
                feats.append(feature(point(lon, lat), {
                    "policy": leaf.name, "description": leaf.description, "edge": edge,
                    "street": geometry.loc[edge, "name"], "recommends": target}))
    return feats


def place_features(geometry: pd.DataFrame, plan: Plan, results: dict,
                   ks: Sequence[int]) -> list[dict]:
    """Lot exits and ramps with their queues in the baseline and each variant."""
    columns: dict[str, pd.DataFrame] = {}
    runs = [(BASELINE, None, ks)] + [(v.name, v.fraction, plan.ran[v.key])
                                     for v in plan.variants]
    for policy, fraction, rks in runs:
        outs = [o for o in _outcomes(plan, results, policy, fraction, rks)
                if o.queues is not None]
        if not outs:
            continue
        s = pd.concat([queue_summary(o.queues) for o in outs]).groupby(
            ["place", "place_kind", "label"])[["max_queue", "mean_queue"]].mean()
        tag = BASELINE if policy == BASELINE else f"{policy}_{_tag(fraction)}"
        columns[tag] = s.round(1).add_suffix(f"_{tag}")
    if not columns:
        return []
    table = pd.concat(columns.values(), axis=1).reset_index()
    feats = []
    for r in table.to_dict("records"):
        edge = r["place"]
        if edge not in geometry.index:
            continue
        pts = geometry.loc[edge, "lonlat"]
        lon, lat = pts[0] if r["place_kind"] == "lot_exit" else pts[len(pts) // 2]
        props = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                 for k, v in r.items() if k != "place"}
        feats.append(feature(point(lon, lat), {"edge": edge, **props,
                                               "street": geometry.loc[edge, "name"]}))
    return feats


def _tag(fraction: float | None) -> str:
    """The folder tag of a fraction, as :attr:`Variant.tag` writes it."""
    return "all" if fraction is None else f"f{fraction:.2f}"


__all__ = ["place_features", "sign_features", "write_layers"]
