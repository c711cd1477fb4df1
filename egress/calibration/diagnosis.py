"""Why a fit stays off: misfit the OD cannot explain.

Calibrating the OD can only move traffic volumes. When a segment is slower
or faster than any demand would make it — an arterial whose signals the
model passes at free flow, a freeway whose traffic drives above its limit —
the OD search cannot close the gap, and more simulations will not help. A
:class:`Diagnosis` says so, with the evidence:

By road class
    The speed residuals (simulated − observed) of the segments of each
    edge type (a segment's type is the one covering most of its length). A
    class whose mean residual is more than twice its standard error away from
    zero *and* larger than :data:`MIN_BIAS` km/h is biased: the model treats
    that kind of road differently from reality.
By reach
    For the worst segments (largest standardized residuals), the speeds the
    metamodel predicts when every OD row is halved and doubled. An observed
    speed outside that range by more than the noise would put the worst of
    the rows there (``sqrt(2 ln n)`` standard deviations of measurement and
    simulation noise together, n the speed rows: about 3.7 for 900) is
    beyond what the OD can reach. Without that margin a fit at the noise
    floor was reported as misfit: the worst of 900 rows always sits three
    or four standard deviations off, and on a free-flowing segment the
    OD's reach is narrower than that.
What would
    For a class simulated too fast: a signal delay (``signal_penalty``) where
    its edges meet signals, a lower capacity (``capacity.<type>``) or lower
    speeds (``speed.<type>``); too slow: a higher capacity or speed factor.
    A parameter the calibration already moves but that sits at a bound is
    named with its bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..network.classes import segment_type

#: Smallest mean speed residual (km/h) of a road class that counts as a bias.
MIN_BIAS = 5.0
#: Worst segments whose reach by the OD is checked.
WORST = 5
#: Demand factors between which the OD's reach is measured.
REACH = (0.5, 2.0)


@dataclass
class Diagnosis:
    """What the OD cannot explain, after a calibration.

    Attributes
    ----------
    message : str
        One line; empty when nothing points beyond the OD.
    classes : pandas.DataFrame
        Per edge type: ``segments, values, observed_kmh, simulated_kmh,
        bias_kmh, se_kmh, biased``.
    segments : pandas.DataFrame
        The worst segments: ``segment, begin, observed_kmh, simulated_kmh,
        z, reach_low_kmh, reach_high_kmh, reachable``.
    parameters : list of str
        Supply parameters that would act on the misfit.
    """

    message: str
    classes: pd.DataFrame
    segments: pd.DataFrame
    parameters: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"message": self.message, "parameters": self.parameters,
                "classes": self.classes.to_dict("records"),
                "segments": self.segments.to_dict("records")}


def segment_types(problem) -> list[str]:
    """The edge type covering most of each observation row's segment."""
    return [segment_type(problem.net, edges) for edges in problem.obs.table["edges"]]


def _classes(problem, values: pd.DataFrame, types: list[str]) -> pd.DataFrame:
    t = problem.obs.table
    frame = pd.DataFrame({"type": types, "segment": t["segment"],
                          "observed": t["speed"].to_numpy(dtype=float),
                          "simulated": values["speed"].to_numpy(dtype=float)})
    frame = frame[frame["observed"].notna() & frame["simulated"].notna()]
    rows = []
    for kind, g in frame.groupby("type", sort=True):
        r = g["simulated"] - g["observed"]
        n = len(r)
        se = float(r.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        bias = float(r.mean())
        biased = n >= 3 and abs(bias) > MIN_BIAS and (math.isnan(se) or abs(bias) > 2 * se)
        rows.append({"type": kind, "segments": int(g["segment"].nunique()), "values": n,
                     "observed_kmh": float(g["observed"].mean()),
                     "simulated_kmh": float(g["simulated"].mean()), "bias_kmh": bias,
                     "se_kmh": se, "biased": biased})
    return pd.DataFrame(rows, columns=["type", "segments", "values", "observed_kmh",
                                       "simulated_kmh", "bias_kmh", "se_kmh", "biased"])


def _reach(problem, model, best, model_sd: float = 0.0) -> pd.DataFrame:
    """The worst speed rows and the speeds halving and doubling the OD reaches."""
    t = problem.obs.table
    obs = t["speed"].to_numpy(dtype=float)
    sim = best.values["speed"].to_numpy(dtype=float)
    sd = t["speed_sd"].to_numpy(dtype=float)
    rows = np.flatnonzero(np.isfinite(obs) & np.isfinite(sim))
    # how far noise alone puts the worst of the rows
    margin = max(1.0, math.sqrt(2.0 * math.log(max(len(rows), 1)))) * np.sqrt(sd ** 2
                                                                               + model_sd ** 2)
    if not len(rows):
        return pd.DataFrame(columns=["segment", "begin", "observed_kmh", "simulated_kmh", "z",
                                     "reach_low_kmh", "reach_high_kmh", "reachable"])
    z = (sim[rows] - obs[rows]) / sd[rows]
    worst = rows[np.argsort(-np.abs(z))[:WORST]]
    if model is not None:
        preds = [model.predict(best.x * f)["speed"] for f in REACH]
        low, high = np.minimum(*preds), np.maximum(*preds)
        low, high = np.minimum(low, sim), np.maximum(high, sim)
    else:
        low, high = np.full(len(obs), np.nan), np.full(len(obs), np.nan)
    out = []
    for i in worst:
        reachable = bool(np.isnan(low[i]) or low[i] - margin[i] <= obs[i] <= high[i] + margin[i])
        out.append({"segment": t["segment"].iloc[i], "begin": float(t["begin"].iloc[i]),
                    "observed_kmh": float(obs[i]), "simulated_kmh": float(sim[i]),
                    "z": float((sim[i] - obs[i]) / sd[i]), "reach_low_kmh": float(low[i]),
                    "reach_high_kmh": float(high[i]), "reachable": reachable})
    return pd.DataFrame(out)


def _signalised_types(problem) -> set[str]:
    """Edge types with an edge that ends at a signalised junction."""
    return {e.getType() for e in problem.net.getEdges()
            if e.getToNode().getType() == "traffic_light"}


def _parameters(problem, classes: pd.DataFrame, theta: np.ndarray) -> list[str]:
    """Supply parameters that act on the biased classes (and where a moved one stands)."""
    signals = _signalised_types(problem)
    moved = dict(zip(problem.supply_names, theta, strict=True)) if len(theta) else {}
    bounds = dict(zip(problem.supply_names, problem.supply_bounds, strict=True))
    out: list[str] = []
    for row in classes[classes["biased"]].itertuples():
        names = []
        if row.bias_kmh > 0:
            if row.type in signals:
                names.append("signal_penalty")
            names += [f"capacity.{row.type} < 1", f"speed.{row.type} < 1"]
        else:
            names += [f"capacity.{row.type} > 1", f"speed.{row.type} > 1"]
        for n in names:
            key = n.split(" ")[0]
            if key in moved:
                lo, hi = bounds[key]
                at = " (at its upper bound)" if math.isclose(moved[key], hi) else \
                    " (at its lower bound)" if math.isclose(moved[key], lo) else ""
                n = f"{key} = {moved[key]:.3g}{at}"
            if n not in out:
                out.append(n)
    return out


def diagnose(problem, best, model=None, model_sd: float = 0.0) -> Diagnosis:
    """Diagnose the fit of `best` (an :class:`egress.calibration.runs.Evaluation`).

    Parameters
    ----------
    problem : egress.calibration.problem.Problem
    best : Evaluation
    model : Metamodel, optional
        The metamodel around `best` (for the OD's reach); without it the
        reach is not checked.
    model_sd : float
        The simulation's own sd of a speed, km/h (:class:`ModelNoise`), added
        to each row's measurement sd in the reach's margin.
    """
    if problem.obs.table["speed"].notna().sum() == 0:
        return Diagnosis("", _classes(problem, best.values, segment_types(problem)),
                         pd.DataFrame())
    classes = _classes(problem, best.values, segment_types(problem))
    segments = _reach(problem, model, best, model_sd)
    parameters = _parameters(problem, classes, best.theta)
    biased = classes[classes["biased"]]
    unreachable = segments[~segments["reachable"]] if len(segments) else segments
    if biased.empty and unreachable.empty:
        return Diagnosis("", classes, segments, [])
    parts = []
    for r in biased.itertuples():
        way = "faster" if r.bias_kmh > 0 else "slower"
        parts.append(f"{r.type} segments are simulated {abs(r.bias_kmh):.1f} km/h {way} than "
                     f"observed on average (n={r.values})")
    if len(unreachable):
        parts.append(f"{len(unreachable)} of the {len(segments)} worst segments lie beyond what "
                     f"halving or doubling the OD reaches ("
                     + ", ".join(dict.fromkeys(unreachable["segment"].astype(str))) + ")")
    message = "the OD cannot explain the misfit: " + "; ".join(parts)
    if parameters:
        message += "; supply parameters that would: " + ", ".join(parameters)
    return Diagnosis(message, classes, segments, parameters)


__all__ = ["Diagnosis", "MIN_BIAS", "diagnose", "segment_types"]
