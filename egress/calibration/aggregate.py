"""Simulated twins of observed values: SUMO's edgeData aggregated like the observations.

Simulated values (:func:`simulated_values`) are aggregated exactly like the
observations (:mod:`egress.calibration.observations`) from SUMO's edgeData:

* speed = Σ sampledSeconds·speed / Σ sampledSeconds over the segment's
  edges and the edgeData intervals inside the observation interval (the
  space-mean speed: vehicle-metres over vehicle-seconds), in km/h. A segment
  that no vehicle was on in the interval gets its **free-flow speed**, the
  length-weighted harmonic mean of its edges' speed limits.
* count = ``entered + departed`` of the segment's first edge, summed over the
  interval.
* travel time = Σ over edges of ``length / speed``, each edge's speed
  aggregated as above (its speed limit when no vehicle was on it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from .observations import Observations


def simulated_values(edges: pd.DataFrame, obs: Observations, net) -> pd.DataFrame:
    """Aggregate SUMO edgeData like the observations (see the module docstring).

    Parameters
    ----------
    edges : pandas.DataFrame
        From :func:`egress.engine.outputs.read_edgedata`.
    obs : Observations
    net : sumolib.net.Net
        For edge lengths and speed limits.

    Returns
    -------
    pandas.DataFrame
        One row per observation row (same order): ``speed`` (km/h),
        ``count`` (veh), ``travel_time`` (s), ``sampled_seconds``.
    """
    t = obs.table
    # Explode observations to (row, edge, position) and join edge-intervals inside them.
    rec = [(i, e, k) for i, es in enumerate(t["edges"]) for k, e in enumerate(es)]
    ex = pd.DataFrame(rec, columns=["row", "edge", "pos"])
    ex["obegin"] = t["begin"].to_numpy()[ex["row"]]
    ex["oend"] = t["end"].to_numpy()[ex["row"]]
    ed = edges[["begin", "end", "edge", "sampled_seconds", "speed", "entered", "departed"]]
    j = ex.merge(ed, on="edge", how="left")
    inside = (j["begin"] >= j["obegin"] - 1e-6) & (j["end"] <= j["oend"] + 1e-6)
    j = j.loc[inside].copy()
    ss = j["sampled_seconds"].fillna(0.0).to_numpy()
    sp = np.nan_to_num(j["speed"].to_numpy(dtype=float))
    j["vm"] = ss * sp
    j["ss"] = ss
    j["cnt"] = j["entered"].fillna(0.0) + j["departed"].fillna(0.0)
    per_edge = j.groupby(["row", "pos"], sort=True)[["vm", "ss"]].sum()
    # per-(row, edge) speed for travel times; unsampled edges at their limit
    pe = ex.set_index(["row", "pos"]).join(per_edge, how="left").fillna({"vm": 0.0, "ss": 0.0})
    limit = np.array([net.getEdge(e).getSpeed() for e in pe["edge"]])
    length = np.array([net.getEdge(e).getLength() for e in pe["edge"]])
    v_edge = np.where(pe["ss"].to_numpy() > 0,
                      pe["vm"].to_numpy() / np.maximum(pe["ss"].to_numpy(), 1e-12), limit)
    v_edge = np.maximum(v_edge, 0.1)
    pe["tt"] = length / v_edge
    rows = pe.index.get_level_values("row")
    tt = pd.Series(pe["tt"].to_numpy()).groupby(rows).sum()
    tot = per_edge.groupby(level="row")[["vm", "ss"]].sum()
    n = len(t)
    vm = np.zeros(n)
    ssum = np.zeros(n)
    vm[tot.index.to_numpy()] = tot["vm"].to_numpy()
    ssum[tot.index.to_numpy()] = tot["ss"].to_numpy()
    speed = np.where(ssum > 0, vm / np.maximum(ssum, 1e-12) * 3.6, t["free_speed"].to_numpy())
    first = j.loc[j["pos"] == 0].groupby("row")["cnt"].sum()
    count = np.zeros(n)
    count[first.index.to_numpy()] = first.to_numpy()
    travel = np.zeros(n)
    travel[tt.index.to_numpy()] = tt.to_numpy()
    return pd.DataFrame({"speed": speed, "count": count, "travel_time": travel,
                         "sampled_seconds": ssum})



__all__ = ["simulated_values"]
