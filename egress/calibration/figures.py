"""Calibration figures: observed vs simulated speeds around x = y, convergence."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .observations import Observations
from .runs import Evaluation


def plot_scatter(obs: Observations, before: Evaluation, after: Evaluation, path: Path) -> Path:
    """Observed vs simulated segment speeds, before and after, around x = y."""
    import matplotlib.pyplot as plt

    i = obs.table["speed"].notna().to_numpy()
    o = obs.table["speed"].to_numpy(dtype=float)[i]
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), sharex=True, sharey=True)
    top = max(float(o.max()), 1.0) * 1.1
    for ax, ev, title in ((axes[0], before, "prior OD"), (axes[1], after, "calibrated OD")):
        s = ev.values["speed"].to_numpy(dtype=float)[i]
        ax.scatter(o, s, s=8, alpha=0.5)
        ax.plot([0, top], [0, top], color="k", lw=1, label="x = y")
        m = ev.metrics
        ax.set_title(f"{title}: RMSE {m['rmse_kmh']:.1f} km/h, R² {m['r2']:.2f}")
        ax.set_xlabel("observed speed (km/h)")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.legend(loc="upper left")
    axes[0].set_ylabel("simulated speed (km/h)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
