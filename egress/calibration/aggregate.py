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

from itertools import chain
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
    n = len(t)
    # one entry per observation row and edge of its segment, in row and segment order
    n_edges = np.fromiter(map(len, t["edges"]), dtype=np.int64, count=n)
    row = np.repeat(np.arange(n), n_edges)
    pos = np.arange(len(row)) - np.repeat(np.cumsum(n_edges) - n_edges, n_edges)
    edge = np.fromiter(chain.from_iterable(t["edges"]), dtype=object, count=len(row))
    # each entry with the edgeData rows of its edge (in file order) inside its interval:
    # the pairs, and their order, of a left merge on the edge, by index arithmetic (the
    # merge and the joins back cost more than the sums)
    codes, names = pd.factorize(np.concatenate([edge, edges["edge"].to_numpy(dtype=object)]))
    code, data_code = codes[:len(edge)], codes[len(edge):]
    order = np.argsort(data_code, kind="stable")
    start = np.searchsorted(data_code[order], np.arange(len(names) + 1))
    n_pairs = start[code + 1] - start[code]
    e = np.repeat(np.arange(len(edge)), n_pairs)
    d = order[np.repeat(start[code] - (np.cumsum(n_pairs) - n_pairs), n_pairs)
              + np.arange(int(n_pairs.sum()))]
    r = row[e]
    inside = ((edges["begin"].to_numpy(dtype=float)[d] >= t["begin"].to_numpy()[r] - 1e-6)
              & (edges["end"].to_numpy(dtype=float)[d] <= t["end"].to_numpy()[r] + 1e-6))
    e, d = e[inside], d[inside]

    def column(name: str) -> np.ndarray:  # the pairs' values, missing ones 0
        values = edges[name].to_numpy(dtype=float)[d]
        return np.where(np.isnan(values), 0.0, values)

    ss = column("sampled_seconds")
    sp = np.nan_to_num(edges["speed"].to_numpy(dtype=float)[d])
    # the sums by pandas (compensated), over the values in the merge's order
    per_edge = pd.DataFrame({"vm": ss * sp, "ss": ss}).groupby(e, sort=True).sum()
    has = per_edge.index.to_numpy()
    vm_edge = np.zeros(len(edge))
    ss_edge = np.zeros(len(edge))
    vm_edge[has] = per_edge["vm"].to_numpy()
    ss_edge[has] = per_edge["ss"].to_numpy()
    # per-(row, edge) speed for travel times; unsampled edges at their limit
    limit = np.array([net.getEdge(x).getSpeed() for x in edge])
    length = np.array([net.getEdge(x).getLength() for x in edge])
    v_edge = np.where(ss_edge > 0, vm_edge / np.maximum(ss_edge, 1e-12), limit)
    v_edge = np.maximum(v_edge, 0.1)
    tt = pd.Series(length / v_edge).groupby(row).sum()
    tot = per_edge.groupby(row[has])[["vm", "ss"]].sum()
    vm = np.zeros(n)
    ssum = np.zeros(n)
    vm[tot.index.to_numpy()] = tot["vm"].to_numpy()
    ssum[tot.index.to_numpy()] = tot["ss"].to_numpy()
    speed = np.where(ssum > 0, vm / np.maximum(ssum, 1e-12) * 3.6, t["free_speed"].to_numpy())
    at_first = pos[e] == 0
    first = pd.Series(column("entered")[at_first] + column("departed")[at_first]).groupby(
        row[e][at_first]).sum()
    count = np.zeros(n)
    count[first.index.to_numpy()] = first.to_numpy()
    travel = np.zeros(n)
    travel[tt.index.to_numpy()] = tt.to_numpy()
    return pd.DataFrame({"speed": speed, "count": count, "travel_time": travel,
                         "sampled_seconds": ssum})



__all__ = ["simulated_values"]
