"""Fit statistics of a comparison table: speeds overall and by road class, counts by GEH."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

#: GEH below which an hourly flow counts as matched (the usual acceptance rule).
GEH_LIMIT = 5.0


def _select(table: pd.DataFrame, hours: Iterable[int] | None) -> pd.DataFrame:
    return table if hours is None else table[table["hour"].isin(list(hours))]


def fit_statistics(table: pd.DataFrame, *, hours: Iterable[int] | None = None) -> dict:
    """Speed RMSE, R² and bias, mean speeds by class, and the GEH share of counts.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`egress.validation.compare.compare`.
    hours : iterable of int, optional
        Only the rows starting in these hours (e.g. ``range(21, 23)`` for
        21:00-23:00).

    Returns
    -------
    dict
        ``speed_rows, rmse_kmh, r2, bias_kmh``; per road class
        ``<class>_observed_kmh, <class>_simulated_kmh, <class>_error`` (the
        relative difference of the mean speeds) and ``<class>_rows``;
        ``count_rows, geh_share`` (share of hourly flows with GEH <
        :data:`GEH_LIMIT`). NaN where there is nothing to compute.
    """
    t = _select(table, hours)
    s = t[t["observed_speed"].notna() & t["simulated_speed"].notna()]
    err = (s["simulated_speed"] - s["observed_speed"]).to_numpy()
    obs = s["observed_speed"].to_numpy()
    out: dict = {"speed_rows": int(len(s))}
    if len(s):
        ss_tot = float(((obs - obs.mean()) ** 2).sum())
        out.update(rmse_kmh=float(np.sqrt((err ** 2).mean())), bias_kmh=float(err.mean()),
                   r2=1.0 - float((err ** 2).sum()) / ss_tot if ss_tot > 0 else math.nan)
    else:
        out.update(rmse_kmh=math.nan, bias_kmh=math.nan, r2=math.nan)
    for row in by_class(t).itertuples():
        out[f"{row.road_class}_rows"] = int(row.rows)
        out[f"{row.road_class}_observed_kmh"] = row.observed_kmh
        out[f"{row.road_class}_simulated_kmh"] = row.simulated_kmh
        out[f"{row.road_class}_error"] = row.error
    c = t[t["observed_count"].notna()]
    out["count_rows"] = int(len(c))
    out["geh_share"] = float((c["geh"] < GEH_LIMIT).mean()) if len(c) else math.nan
    return out


def by_class(table: pd.DataFrame, *, hours: Iterable[int] | None = None) -> pd.DataFrame:
    """Mean observed and simulated speed per road class over the same rows.

    Returns
    -------
    pandas.DataFrame
        ``road_class, rows, observed_kmh, simulated_kmh, error`` (relative
        difference of the means, simulated / observed - 1).
    """
    t = _select(table, hours)
    s = t[t["observed_speed"].notna() & t["simulated_speed"].notna()]
    g = s.groupby("road_class", sort=True).agg(rows=("observed_speed", "size"),
                                               observed_kmh=("observed_speed", "mean"),
                                               simulated_kmh=("simulated_speed", "mean"))
    g["error"] = g["simulated_kmh"] / g["observed_kmh"] - 1.0
    return g.reset_index()


__all__ = ["GEH_LIMIT", "by_class", "fit_statistics"]
