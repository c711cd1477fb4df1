"""Calibration figures: observed vs simulated values around x = y, convergence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .observations import Observations
from .runs import Evaluation

#: Axis label and fit caption of each observed quantity in the scatter.
_PANELS = {
    "speed": "speed (km/h)",
    "count": "count (veh/h)",
    "travel_time": "travel time (s)",
}


def _caption(kind: str, metrics: dict) -> str:
    """The fit statistics of one quantity, as the panel's title says them."""
    def num(key: str, fmt: str) -> str:
        v = metrics.get(key, math.nan)
        return format(v, fmt) if v is not None and math.isfinite(v) else "-"

    if kind == "speed":
        return f"RMSE {num('rmse_kmh', '.1f')} km/h, R² {num('r2', '.2f')}"
    if kind == "count":
        share = metrics.get("geh_share", math.nan)
        geh = f"{share:.0%}" if share is not None and math.isfinite(share) else "-"
        return f"GEH<5 {geh}, RMSE {num('rmse_count', '.1f')} veh"
    return f"RMSE {num('rmse_travel_time', '.1f')} s"


def plot_scatter(obs: Observations, before: Evaluation, after: Evaluation, path: Path) -> Path:
    """Observed vs simulated values, before and after, around x = y.

    One row of panels per quantity the observations hold (speeds, counts as
    hourly flows, travel times on log axes, as the objective compares them),
    so that a calibration on counts or travel times alone draws its fit as
    well as one on speeds; the left panel is the prior OD, the right the
    calibrated one.
    """
    import matplotlib.pyplot as plt

    t = obs.table
    kinds = [k for k in _PANELS if t[k].notna().any()]
    per_hour = 3600.0 / (t["end"] - t["begin"]).to_numpy(dtype=float)
    fig, axes = plt.subplots(len(kinds), 2, figsize=(10, 4.6 * len(kinds)), squeeze=False)
    for row, kind in zip(axes, kinds, strict=True):
        i = t[kind].notna().to_numpy()
        scale = per_hour[i] if kind == "count" else 1.0
        o = t[kind].to_numpy(dtype=float)[i] * scale
        for ax, ev, title in ((row[0], before, "prior OD"), (row[1], after, "calibrated OD")):
            s = ev.values[kind].to_numpy(dtype=float)[i] * scale
            _scatter_panel(ax, o, s, log=kind == "travel_time")
            ax.set_title(f"{title}: {_caption(kind, ev.metrics)}")
            ax.set_xlabel(f"observed {_PANELS[kind]}")
            ax.set_ylabel(f"simulated {_PANELS[kind]}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _scatter_panel(ax, observed: np.ndarray, simulated: np.ndarray, log: bool) -> None:
    """One panel: the points and the x = y line over both axes' range."""
    both = np.concatenate([observed, simulated])
    both = both[np.isfinite(both)]
    top = max(float(both.max()) if both.size else 1.0, 1.0) * 1.1
    if log:
        low = max(float(both[both > 0].min()) if (both > 0).any() else 0.1, 1e-3) / 1.1
        ax.set_xscale("log")
        ax.set_yscale("log")
    else:
        low = 0.0
    ax.scatter(observed, simulated, s=8, alpha=0.5)
    ax.plot([low, top], [low, top], color="k", lw=1, label="x = y")
    ax.set_xlim(low, top)
    ax.set_ylim(low, top)
    ax.legend(loc="upper left")


def plot_convergence(history: pd.DataFrame, path: Path) -> Path:
    """Objective of every simulation and best so far."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(history["sim"], history["objective"], "o", alpha=0.6, label="simulation")
    ax.plot(history["sim"], history["best"], "-", label="best so far")
    ax.set_yscale("log")
    ax.set_xlabel("simulation")
    ax.set_ylabel("objective")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path



__all__ = ["plot_convergence", "plot_scatter"]
