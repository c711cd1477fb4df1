"""Maps for the report, drawn from an evaluation's GIS layers.

The maps read the same GeoJSON layers a user opens in QGIS
(:mod:`egress.policies.layers`), so the report and the GIS agree:

* an **overview**: the study area, the streets with the names of the main
  ones, the venue, the lots and the message signs;
* **speeds per time slice** in the baseline, and the **change** a policy
  makes, one panel per 15-minute slice, every half hour from the event's
  end: a mean over the whole evening would hide the queue that builds and
  clears in the hour after the game.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .. import units
from ..network.geometry import midpoint
from .html import fig_png
from .plots import pyplot

#: Named streets labelled on the overview (the longest ones).
LABELLED_STREETS = 14
#: Panels per slice map.
PANELS = 6


def read_layer(path: Path) -> list[dict]:
    """The features of a GeoJSON layer (empty if the file is missing)."""
    if not path.is_file():
        return []
    return json.loads(path.read_text())["features"]


def _lines(features: list[dict]) -> list[np.ndarray]:
    return [np.asarray(f["geometry"]["coordinates"], dtype=float) for f in features]


def _aspect(ax) -> None:
    lat = np.mean(ax.get_ylim())
    ax.set_aspect(1 / np.cos(np.radians(lat)))
    ax.set_xticks([])
    ax.set_yticks([])


def _markers(ax, folder: Path, labels: bool) -> None:
    """Venue (star), lots (squares), signs (triangles), study area (dashed)."""
    for f in read_layer(folder / "study_area.geojson"):
        ring = np.asarray(f["geometry"]["coordinates"][0])
        ax.plot(ring[:, 0], ring[:, 1], "--", color="0.4", lw=0.8)
    lots = read_layer(folder / "lots.geojson")
    if lots:
        xy = np.array([f["geometry"]["coordinates"] for f in lots])
        ax.scatter(xy[:, 0], xy[:, 1], marker="s", s=18, color="#6a3d9a", zorder=5,
                   label="parking lot exit")
    signs = read_layer(folder / "signs.geojson")
    if signs:
        xy = np.array([f["geometry"]["coordinates"] for f in signs])
        ax.scatter(xy[:, 0], xy[:, 1], marker="^", s=40, color="#ff7f00", edgecolor="k",
                   zorder=6, label="message sign")
    for i, f in enumerate(read_layer(folder / "venues.geojson")):
        x, y = f["geometry"]["coordinates"]
        ax.scatter([x], [y], marker="*", s=180, color="#e31a1c", edgecolor="k", zorder=7,
                   label="venue" if i == 0 else None)
        if labels:
            ax.annotate(f["properties"]["name"], (x, y), xytext=(6, 6),
                        textcoords="offset points", fontsize=8, weight="bold")


def _street_labels(ax, edges: list[dict]) -> None:
    """Names of the longest named streets at the middle of their longest edge."""
    import matplotlib.patheffects as pe

    by_name: dict[str, list[dict]] = {}
    for f in edges:
        name = f["properties"].get("name") or ""
        if name and f["properties"].get("type") != "lot_exit":
            by_name.setdefault(name, []).append(f)
    longest = sorted(by_name, key=lambda n: -sum(f["properties"]["length_m"]
                                                  for f in by_name[n]))
    for name in longest[:LABELLED_STREETS]:
        f = max(by_name[name], key=lambda f: f["properties"]["length_m"])
        x, y = midpoint(f["geometry"]["coordinates"])
        ax.text(x, y, name, fontsize=6.5, color="0.15", ha="center", va="center",
                path_effects=[pe.withStroke(linewidth=2.5, foreground="white")], zorder=8)


def overview(folder: Path) -> bytes | None:
    """The overview map of a scenario's layers (PNG), or None without layers."""
    edges = read_layer(folder / "edges_baseline.geojson")
    if not edges:
        return None
    plt = pyplot()
    from matplotlib.collections import LineCollection

    fig, ax = plt.subplots(figsize=(9, 11))
    widths = [0.4 + 0.5 * f["properties"]["lanes"] for f in edges]
    ax.add_collection(LineCollection(_lines(edges), colors="0.55", linewidths=widths))
    ax.autoscale()
    _markers(ax, folder, labels=True)
    _street_labels(ax, edges)
    _aspect(ax)
    ax.legend(loc="lower left", fontsize=7)
    ax.set_title("Where things are: streets, venue, parking lot exits, message signs")
    return fig_png(fig)


def _slices(props: dict, prefix: str) -> list[str]:
    return sorted(k for k in props if re.fullmatch(prefix + r"_\d{4}", k))


def chosen_slices(edges: list[dict], prefix: str, start: float | None) -> list[str]:
    """Up to :data:`PANELS` slice fields every half hour from `start` (the event's end)."""
    names = sorted({k for f in edges for k in _slices(f["properties"], prefix)})
    if not names:
        return []

    def secs(n: str) -> int:
        hhmm = n.rsplit("_", 1)[1]
        return int(hhmm[:2]) * 3600 + int(hhmm[2:]) * 60

    first = start if start is not None else secs(names[0])
    picked = [n for n in names if secs(n) >= first - 1 and (secs(n) - first) % 1800 < 1]
    return (picked or names)[:PANELS]


def slice_map(folder: Path, layer: str, prefix: str, title: str,
              start: float | None = None) -> tuple[bytes, list[str]] | None:
    """Panels of one field per time slice (``speed`` or ``change``) of an edge layer.

    Returns
    -------
    (PNG, slices shown) or None when the layer has no such field.
    """
    from matplotlib.collections import LineCollection

    edges = read_layer(folder / layer)
    names = chosen_slices(edges, prefix, start)
    if not names:
        return None
    plt = pyplot()
    unit = units.speed_unit()
    n = len(names)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.4 * rows), squeeze=False)
    lines = _lines(edges)
    values = np.array([[np.nan if f["properties"].get(k) is None else f["properties"][k]
                        for k in names] for f in edges], dtype=float)
    if prefix == "change":
        lim = max(5.0, float(np.nanpercentile(np.abs(values), 98)) if np.isfinite(
            values).any() else 5.0)
        cmap, clim, label = "RdBu", (-lim, lim), f"change in speed, policy − baseline ({unit})"
    else:
        top = float(np.nanpercentile(values, 98)) if np.isfinite(values).any() else 100.0
        cmap, clim, label = "RdYlGn", (0, top), f"space-mean speed ({unit})"
    lc = None
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        ax.add_collection(LineCollection(lines, colors="0.88", linewidths=0.6))
        v = values[:, i]
        has = ~np.isnan(v)
        lc = LineCollection([ln for ln, h in zip(lines, has, strict=True) if h], array=v[has],
                            cmap=cmap, linewidths=1.8)
        lc.set_clim(*clim)
        ax.add_collection(lc)
        ax.autoscale()
        _markers(ax, folder, labels=False)
        _aspect(ax)
        t = names[i].rsplit("_", 1)[1]
        begin = int(t[:2]) * 3600 + int(t[2:]) * 60
        ax.set_title(f"{units.clock(begin, day=False)}–{units.clock(begin + 900)}", fontsize=9)
    if lc is not None:
        fig.colorbar(lc, ax=axes, shrink=0.6, label=label)
    fig.suptitle(title)
    return fig_png(fig), names


__all__ = ["chosen_slices", "overview", "read_layer", "slice_map"]
