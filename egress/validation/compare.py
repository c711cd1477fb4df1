"""Observed values beside their simulated twins, one row per observation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..calibration.aggregate import simulated_values
from ..network.classes import road_class, segment_type

#: Columns of a comparison table (:func:`compare`).
COLUMNS = ["segment", "road", "direction", "road_class", "edge_type", "edges", "begin", "end",
           "hour", "days", "observed_speed", "speed_sd", "simulated_speed", "observed_count",
           "count_sd", "simulated_count", "observed_flow", "simulated_flow", "geh"]


def geh(model: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """GEH of hourly flows: ``sqrt(2 (M - C)² / (M + C))`` (0 when both are 0)."""
    model, counted = np.asarray(model, dtype=float), np.asarray(counted, dtype=float)
    total = model + counted
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sqrt(2.0 * (model - counted) ** 2 / total)
    return np.where(total > 0, out, 0.0)


def compare(edges: pd.DataFrame, obs, net) -> pd.DataFrame:
    """Put a run's simulated values beside the observations.

    Parameters
    ----------
    edges : pandas.DataFrame
        The run's edge statistics (:func:`egress.engine.outputs.read_edgedata`).
    obs : egress.calibration.observations.Observations
        Real observations, matched onto the run's network.
    net : sumolib.net.Net

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`: speeds in km/h, counts in vehicles per interval,
        flows in vehicles per hour (for the GEH), ``road_class`` from the
        segment's edge types (:func:`egress.network.classes.road_class`).
    """
    t = obs.table
    sim = simulated_values(edges, obs, net)
    per_hour = 3600.0 / (t["end"] - t["begin"]).to_numpy(dtype=float)
    types = [segment_type(net, e) for e in t["edges"]]
    out = pd.DataFrame({
        "segment": t["segment"].astype(str).to_numpy(),
        "road": t["road"].to_numpy() if "road" in t else "",
        "direction": t["direction"].to_numpy() if "direction" in t else "",
        "road_class": [road_class(k) for k in types],
        "edge_type": types,
        "edges": [" ".join(e) for e in t["edges"]],
        "begin": t["begin"].to_numpy(dtype=float), "end": t["end"].to_numpy(dtype=float),
        "hour": (t["begin"].to_numpy(dtype=float) // 3600).astype(int),
        "days": t["days"].to_numpy() if "days" in t else np.nan,
        "observed_speed": t["speed"].to_numpy(dtype=float),
        "speed_sd": t["speed_sd"].to_numpy(dtype=float),
        "simulated_speed": sim["speed"].to_numpy(dtype=float),
        "observed_count": t["count"].to_numpy(dtype=float),
        "count_sd": t["count_sd"].to_numpy(dtype=float),
        "simulated_count": sim["count"].to_numpy(dtype=float),
    })
    out["observed_flow"] = out["observed_count"] * per_hour
    out["simulated_flow"] = out["simulated_count"] * per_hour
    has = out["observed_count"].notna()
    out["geh"] = np.where(has, geh(out["simulated_flow"].fillna(0.0),
                                   out["observed_flow"].fillna(0.0)), np.nan)
    return out[COLUMNS]


__all__ = ["COLUMNS", "compare", "geh"]
