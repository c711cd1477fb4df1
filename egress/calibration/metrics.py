"""Fit statistics of simulated against observed values: speed RMSE, R², GEH."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .observations import Observations


def geh(model: np.ndarray, count: np.ndarray) -> np.ndarray:
    """GEH statistic of hourly flows: ``sqrt(2 (M - C)² / (M + C))`` (0 where both are 0)."""
    m, c = np.asarray(model, dtype=float), np.asarray(count, dtype=float)
    s = m + c
    return np.where(s > 0, np.sqrt(2.0 * (m - c) ** 2 / np.where(s > 0, s, 1.0)), 0.0)


def fit_metrics(obs: Observations, values: pd.DataFrame) -> dict[str, float]:
    """Standard fit statistics of simulated `values` against `obs`.

    Returns
    -------
    dict
        ``rmse_kmh, rmsne, r2`` of speeds, ``geh_share`` (share of counts with
        GEH < 5 on hourly flows; NaN without counts), ``rmse_count``,
        ``rmse_travel_time``.
    """
    t = obs.table
    out: dict[str, float] = {}
    i = t["speed"].notna().to_numpy()
    o = t["speed"].to_numpy(dtype=float)[i]
    s = values["speed"].to_numpy(dtype=float)[i]
    if i.any():
        out["rmse_kmh"] = float(np.sqrt(np.mean((s - o) ** 2)))
        out["rmsne"] = float(np.sqrt(np.mean(((s - o) / o) ** 2)))
        tot = float(np.sum((o - o.mean()) ** 2))
        out["r2"] = float(1 - np.sum((s - o) ** 2) / tot) if tot > 0 else math.nan
    else:
        out.update(rmse_kmh=math.nan, rmsne=math.nan, r2=math.nan)
    j = t["count"].notna().to_numpy()
    if j.any():
        per_hour = 3600.0 / (t["end"] - t["begin"]).to_numpy(dtype=float)[j]
        c = t["count"].to_numpy(dtype=float)[j]
        m = values["count"].to_numpy(dtype=float)[j]
        out["geh_share"] = float(np.mean(geh(m * per_hour, c * per_hour) < 5.0))
        out["rmse_count"] = float(np.sqrt(np.mean((m - c) ** 2)))
    else:
        out.update(geh_share=math.nan, rmse_count=math.nan)
    k = t["travel_time"].notna().to_numpy()
    out["rmse_travel_time"] = float(np.sqrt(np.mean(
        (values["travel_time"].to_numpy()[k] - t["travel_time"].to_numpy()[k]) ** 2))) \
        if k.any() else math.nan
    return out



__all__ = ["fit_metrics", "geh"]
