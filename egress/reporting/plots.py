"""Figures: demand heat maps over S2 cells.

:func:`plot_demand` draws trips per level-13 cell for an event evening and a
normal evening side by side, plus their difference, over the network's
outline. Matplotlib runs with the Agg backend (no display needed).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config.scenario import load_scenario
from ..demand import build_od
from ..demand.models import _haversine_km
from ..network.geometry import network_lines
from ..network.zones import cell_center, cell_polygon

log = logging.getLogger(__name__)

#: Cells whose centre lies farther (km) from the network's centre are not
#: drawn; their trips are given in the panel's note.
DEFAULT_RADIUS_KM = 8.0


def pyplot():
    """Return ``matplotlib.pyplot``, imported on first use.

    The backend is left to matplotlib: inline in a notebook, a window on a
    desktop, Agg (files only) on a machine without a display.
    """
    import matplotlib.pyplot as plt

    return plt




def _per_cell(od: pd.DataFrame, column: str) -> pd.Series:
    return od.groupby(column)["trips"].sum() if len(od) else pd.Series(dtype=float)


def plot_demand(event_od: pd.DataFrame, normal_od: pd.DataFrame, zones, net,
                path: str | Path, *, radius_km: float = DEFAULT_RADIUS_KM,
                titles: tuple[str, str] = ("event evening", "normal evening")) -> Path:
    """Draw trips per S2 cell: event evening, normal evening, difference.

    Two rows: trips by origin cell (where they start) and by destination
    cell (where they end), each summed over all intervals and kinds. The
    first two columns share one colour scale; the third shows event minus
    normal on a diverging scale. Cells are drawn within `radius_km` of the
    centre of the internal zones (the network plus the nearby external
    places); trips of cells beyond are summed in each panel's note, so far
    destinations (Everett, Tacoma) do not shrink the map.

    Parameters
    ----------
    event_od, normal_od : pandas.DataFrame
        OD tables (``origin, destination, trips``; other columns ignored).
    zones : egress.network.zones.Zones
        Zones of the network (to find its centre and internal cells).
    net : sumolib.net.Net or path
        The network, drawn as thin grey lines.
    path : str or pathlib.Path
        PNG to write.
    radius_km : float
        Drawing radius around the network's centre.
    titles : tuple of str
        Names of the two evenings.

    Returns
    -------
    pathlib.Path
    """
    from matplotlib.colors import LogNorm, SymLogNorm

    plt = pyplot()
    table = zones.table
    internal = table[table["kind"] == "internal"]
    clon, clat = internal["lon"].mean(), internal["lat"].mean()
    lines = network_lines(net)
    tokens = sorted(set(event_od["origin"]) | set(event_od["destination"])
                    | set(normal_od["origin"]) | set(normal_od["destination"])
                    | set(internal["token"]))
    centres = np.array([cell_center(t) for t in tokens])
    near = _haversine_km(clon, clat, centres[:, 0], centres[:, 1]) <= radius_km
    shown = [t for t, ok in zip(tokens, near, strict=True) if ok]
    polys = [np.asarray(cell_polygon(t)) for t in shown]

    fig, axes = plt.subplots(2, 3, figsize=(16, 11), constrained_layout=True)
    for r, (column, label) in enumerate((("origin", "trips by origin cell"),
                                         ("destination", "trips by destination cell"))):
        ev = _per_cell(event_od, column)
        no = _per_cell(normal_od, column)
        values = [ev.reindex(shown).fillna(0).to_numpy(), no.reindex(shown).fillna(0).to_numpy()]
        diff = values[0] - values[1]
        vmax = max(1.0, max(v.max() for v in values))
        vmin = max(0.5, min((v[v > 0].min() for v in values if (v > 0).any()), default=1.0))
        lim = max(1.0, np.abs(diff).max())
        panels = [
            (values[0], LogNorm(vmin=vmin, vmax=vmax), "viridis", titles[0], ev),
            (values[1], LogNorm(vmin=vmin, vmax=vmax), "viridis", titles[1], no),
            (diff, SymLogNorm(linthresh=10.0, vmin=-lim, vmax=lim), "RdBu_r",
             f"{titles[0]} − {titles[1]}", ev.sub(no, fill_value=0)),
        ]
        for c, (vals, norm, cmap, title, series) in enumerate(panels):
            _cell_panel(fig, axes[r, c], polys, lines, vals, norm, cmap)
            beyond = series.drop(index=shown, errors="ignore").sum()
            axes[r, c].set_title(f"{title}\n{label}", fontsize=10)
            axes[r, c].text(0.01, 0.01, f"total {series.sum():,.0f}; beyond {radius_km:g} km: "
                            f"{beyond:,.0f}", transform=axes[r, c].transAxes, fontsize=8,
                            bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
            axes[r, c].set_aspect(1.0 / np.cos(np.radians(clat)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    log.info("wrote %s", path)
    return path


def _cell_panel(fig, ax, polys: list[np.ndarray], lines: list[np.ndarray], vals: np.ndarray,
                norm, cmap: str) -> None:
    """One map of values per cell over the network's outline."""
    from matplotlib.collections import LineCollection, PolyCollection

    mask = vals != 0
    coll = PolyCollection([p for p, m in zip(polys, mask, strict=True) if m],
                          array=vals[mask], cmap=cmap, norm=norm,
                          edgecolors="white", linewidths=0.3, alpha=0.85)
    empty = PolyCollection([p for p, m in zip(polys, mask, strict=True) if not m],
                           facecolors="none", edgecolors="0.85", linewidths=0.3)
    ax.add_collection(empty)
    ax.add_collection(coll)
    ax.add_collection(LineCollection(lines, colors="0.35", linewidths=0.4))
    fig.colorbar(coll, ax=ax, shrink=0.8, label="trips")
    ax.autoscale_view()
    ax.set_xlabel("lon")
    ax.set_ylabel("lat")
    ax.tick_params(labelsize=7)


def plot_demand_scenarios(event_scenario: Any, normal_scenario: Any, path: str | Path, *,
                          radius_km: float = DEFAULT_RADIUS_KM) -> Path:
    """Build the OD tables of two scenarios and draw them with :func:`plot_demand`.

    Parameters
    ----------
    event_scenario, normal_scenario : Scenario or path
        Scenarios (or scenario files) of the event evening and the normal
        evening, on the same network.
    path : str or pathlib.Path
        PNG to write.

    Returns
    -------
    pathlib.Path
    """
    scenarios = [s if not isinstance(s, str | Path) else load_scenario(s)
                 for s in (event_scenario, normal_scenario)]
    ev, no = (build_od(s) for s in scenarios)
    return plot_demand(ev.od, no.od, ev.zones, scenarios[0].network, path,
                       radius_km=radius_km, titles=(scenarios[0].name, scenarios[1].name))


__all__ = ["DEFAULT_RADIUS_KM", "plot_demand", "plot_demand_scenarios", "pyplot"]
