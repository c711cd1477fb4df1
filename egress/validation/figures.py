"""Figures of a validation: speeds observed against simulated, and maps of a speed change."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..network.geometry import network_lines
from .metrics import fit_statistics

log = logging.getLogger(__name__)

#: Colour of each road class.
CLASS_COLORS = {"freeway": "tab:blue", "arterial": "tab:orange", "ramp": "tab:green"}


def plot_speed_scatter(panels: Mapping[str, pd.DataFrame], path: str | Path, *,
                       hours: Iterable[int] | None = None) -> Path:
    """Observed against simulated speed, one panel per comparison, coloured by road class.

    Parameters
    ----------
    panels : mapping of str to pandas.DataFrame
        Title -> comparison table (:func:`egress.validation.compare.compare`),
        e.g. ``{"normal evenings": ..., "18 May (event)": ...}``.
    path : str or pathlib.Path
        PNG to write.
    hours : iterable of int, optional
        Only rows starting in these hours.
    """
    import matplotlib.pyplot as plt

    hours = None if hours is None else list(hours)
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 4.6), squeeze=False)
    top = 10.0
    for ax, (title, table) in zip(axes[0], panels.items(), strict=False):
        t = table if hours is None else table[table["hour"].isin(hours)]
        t = t[t["observed_speed"].notna() & t["simulated_speed"].notna()]
        for cls, g in t.groupby("road_class", sort=True):
            ax.errorbar(g["observed_speed"], g["simulated_speed"], xerr=g["speed_sd"],
                        fmt="o", ms=4, alpha=0.75, elinewidth=0.6,
                        color=CLASS_COLORS.get(cls, "0.4"), label=f"{cls} ({len(g)})")
        if len(t):
            top = max(top, float(t[["observed_speed", "simulated_speed"]].max().max()) * 1.08)
        s = fit_statistics(t)
        ax.set_title(f"{title}\nRMSE {s['rmse_kmh']:.1f} km/h, R² {s['r2']:.2f}, "
                     f"n = {s['speed_rows']}", fontsize=9)
        ax.set_xlabel("observed speed, km/h (± day-to-day sd)")
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes[0]:
        ax.plot([0, top], [0, top], color="0.5", lw=0.8, ls="--")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_aspect("equal")
    axes[0][0].set_ylabel("simulated speed, km/h")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    log.info("wrote %s", path)
    return path


def speed_change(normal: pd.DataFrame, event: pd.DataFrame, *,
                 hours: Iterable[int] | None = None) -> pd.DataFrame:
    """Per segment, the mean speed change of `event` against `normal` over the
    (segment, interval) rows both have: ``segment, edges, road_class,
    observed_change, simulated_change`` (km/h, negative = slower)."""
    cols = ["segment", "edges", "road_class", "begin", "observed_speed", "simulated_speed"]
    m = normal[cols].merge(event[cols], on=["segment", "edges", "road_class", "begin"],
                           suffixes=("_normal", "_event"))
    if hours is not None:
        m = m[(m["begin"] // 3600).astype(int).isin(list(hours))]
    m["observed_change"] = m["observed_speed_event"] - m["observed_speed_normal"]
    m["simulated_change"] = m["simulated_speed_event"] - m["simulated_speed_normal"]
    return m.groupby(["segment", "edges", "road_class"], as_index=False, sort=True)[
        ["observed_change", "simulated_change"]].mean()


def plot_speed_change_maps(net, change: pd.DataFrame, path: str | Path, *,
                           title: str = "speed change") -> Path:
    """Two maps side by side: the observed and the simulated speed change per segment.

    Parameters
    ----------
    net : sumolib.net.Net
    change : pandas.DataFrame
        From :func:`speed_change`.
    path : str or pathlib.Path
        PNG to write.
    title : str
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.colors import TwoSlopeNorm

    values = change[["observed_change", "simulated_change"]].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    limit = max(5.0, min(40.0, float(np.abs(finite).max()) if finite.size else 5.0))
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    lines = [np.asarray([net.convertXY2LonLat(x, y) for x, y in net.getEdge(e).getShape()])
             for edges in change["edges"] for e in edges.split()]
    owner = [i for i, edges in enumerate(change["edges"]) for _ in edges.split()]
    background = network_lines(net)
    fig, axes = plt.subplots(1, 2, figsize=(11, 6), sharex=True, sharey=True)
    coll = None
    for ax, col, label in zip(axes, ("observed_change", "simulated_change"),
                              ("observed", "simulated"), strict=True):
        ax.add_collection(LineCollection(background, colors="0.82", linewidths=0.5))
        vals = change[col].to_numpy(dtype=float)[owner]
        coll = LineCollection(lines, array=vals, cmap="RdBu", norm=norm, linewidths=3.0)
        ax.add_collection(coll)
        ax.autoscale_view()
        ax.set_title(f"{label}: mean {np.nanmean(change[col]):+.1f} km/h", fontsize=9)
        ax.set_xlabel("lon")
        ax.tick_params(labelsize=7)
        ax.set_aspect(1.0 / math.cos(math.radians(float(np.mean(ax.get_ylim())))))
    axes[0].set_ylabel("lat")
    fig.colorbar(coll, ax=axes, shrink=0.8, label="speed change, km/h (red: slower)")
    fig.suptitle(title, fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    log.info("wrote %s", path)
    return path


__all__ = ["CLASS_COLORS", "plot_speed_change_maps", "plot_speed_scatter", "speed_change"]
