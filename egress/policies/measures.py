"""Engineering measures of a policy, paired with its baseline like the savings.

The savings (:mod:`egress.policies.comparison`) answer "how many minutes per
vehicle". An engineer also compares plans by when the area is clear, how many
vehicle-hours of delay there are, how long the slowest drivers take, and how
long the queues at the lot exits and ramps get. This module computes those
measures (defined in :mod:`egress.engine.measures`) for every run pair of an
evaluation and summarises them over replications with the same paired
95 % Student-t intervals as the savings:

* per group (``event``, ``compliers``, ``noncompliers``, ``background``; the
  vehicles present in both runs, :func:`egress.policies.comparison.group_members`):
  clearance at 95 % and 100 %, vehicle-hours of delay against free flow,
  median and 95th-percentile time to leave, total vehicle-hours;
* per lot exit and ramp: maximum and time-averaged queue, and vehicles out.

``change`` is always *policy − baseline* in the measure's unit (minutes for
clearance and times to leave, vehicle-hours, vehicles); the column ``better``
says which sign is an improvement. A replication whose baseline or policy
value is censored (a clearance not reached by the end of the window, a
percentile that is only a lower bound) gives no change: its count is in
``censored``, and a measure censored in every replication has no interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .. import units
from ..engine.measures import group_measures, queue_summary
from ..stats import conclusive, mean_ci
from .comparison import BASELINE, Outcome, Plan, Variant, group_members, same_fraction

#: Groups the measures are computed for.
MEASURE_GROUPS = ("event", "compliers", "noncompliers", "background")

#: Measure -> (unit, which sign of policy − baseline is better, its censored flag).
MEASURES: dict[str, tuple[str, str, str | None]] = {
    "clear_95": ("min", "lower", "clear_95_censored"),
    "clear_100": ("min", "lower", "clear_100_censored"),
    "delay_vh": ("veh·h", "lower", None),
    "median_min": ("min", "lower", "median_censored"),
    "p95_min": ("min", "lower", "p95_censored"),
    "vehicle_hours": ("veh·h", "lower", None),
}

#: Per-place measures: (unit, better).
PLACE_MEASURES = {"max_queue": ("veh", "lower"), "mean_queue": ("veh", "lower"),
                  "vehicles_out": ("veh", "higher")}


def pair_measures(scenario: str, variant: Variant, k: int, base: Outcome, pol: Outcome
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The group and place measures of one baseline/variant pair.

    Returns
    -------
    groups : list of dict
        One row per group and measure: ``baseline_value``, ``policy_value`` (clock
        seconds for clearances, else the unit of :data:`MEASURES`),
        ``change`` (policy − baseline; minutes for clearances; NaN when
        either is censored), ``censored`` (bool).
    places : list of dict
        One row per lot exit or ramp and measure (:data:`PLACE_MEASURES`).
    """
    key = {"scenario": scenario, "policy": variant.name, "fraction": variant.fraction,
           "replication": k}
    members = group_members(variant, base, pol)
    rows = []
    for group in MEASURE_GROUPS:
        ids = members[group]
        if group in ("compliers", "noncompliers") and not variant.policy.uses_signs:
            continue
        mb = group_measures(base.vehicles.loc[ids], base.free_flow)
        mp = group_measures(pol.vehicles.loc[ids], pol.free_flow)
        for name, (_, _, flag) in MEASURES.items():
            cens = bool(flag and (mb[flag] or mp[flag]))
            scale = 60.0 if name.startswith("clear") else 1.0
            change = math.nan if cens else (mp[name] - mb[name]) / scale
            rows.append({**key, "group": group, "measure": name, "vehicles": len(ids),
                         "baseline_value": mb[name], "policy_value": mp[name],
                         "change": change,
                         "censored": cens})
    return rows, _place_rows(key, base, pol)


def _place_rows(key: dict[str, Any], base: Outcome, pol: Outcome) -> list[dict[str, Any]]:
    if base.queues is None or pol.queues is None:
        return []
    qb, qp = queue_summary(base.queues), queue_summary(pol.queues)
    qb["vehicles_out"] = qb["place"].map(_out(base)).fillna(0)
    qp["vehicles_out"] = qp["place"].map(_out(pol)).fillna(0)
    both = qb.merge(qp, on=["place", "place_kind", "label"], suffixes=("_b", "_p"))
    rows = []
    for r in both.itertuples(index=False):
        for m in PLACE_MEASURES:
            b, p = getattr(r, f"{m}_b"), getattr(r, f"{m}_p")
            rows.append({**key, "place": r.place, "place_kind": r.place_kind,
                         "label": r.label, "measure": m, "baseline_value": float(b),
                         "policy_value": float(p), "change": float(p - b)})
    return rows


def _out(o: Outcome) -> pd.Series:
    if o.throughput is None or o.throughput.empty:
        return pd.Series(dtype=float)
    return o.throughput.groupby("place")["vehicles"].sum()


def measure_pairs(plans: Sequence[Plan], results: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`pair_measures` of every valid pair of every plan (tidy tables)."""
    groups, places = [], []
    for plan in plans:
        for v in plan.variants:
            for k in plan.ran[v.key]:
                base = results.get((plan.scen.name, BASELINE, None, k))
                pol = results.get((plan.scen.name, v.name, v.fraction, k))
                if base is None or pol is None or not (base.valid and pol.valid):
                    continue
                g, p = pair_measures(plan.scen.name, v, k, base, pol)
                groups += g
                places += p
    return pd.DataFrame(groups), pd.DataFrame(places)


def summarise(pairs: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Mean baseline and policy values and the change with its 95 % interval.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Rows of :func:`measure_pairs` (either table).
    keys : sequence of str
        Columns that name one measure (e.g. ``scenario, policy, fraction,
        group, measure``).

    Returns
    -------
    pandas.DataFrame
        `keys`, ``unit``, ``better``, ``baseline_value``, ``policy_value`` (means over
        the uncensored replications of each), ``change``, ``ci_low``,
        ``ci_high``, ``conclusive``, ``replications``, ``censored``.
    """
    if pairs.empty:
        return pd.DataFrame(columns=[*keys, "unit", "better", "baseline_value", "policy_value",
                                     "change",
                                     "ci_low", "ci_high", "conclusive", "replications",
                                     "censored"])
    rows = []
    for key, g in pairs.groupby(list(keys), sort=False, dropna=False):
        info = dict(zip(keys, key, strict=True))
        unit, better = _unit(info["measure"])
        m, lo, hi = mean_ci(g["change"])
        cens = g["censored"] if "censored" in g else pd.Series(False, index=g.index)
        rows.append({**info, "unit": unit, "better": better,
                     "baseline_value": _mean(g["baseline_value"]),
                     "policy_value": _mean(g["policy_value"]),
                     "change": m, "ci_low": lo, "ci_high": hi,
                     "conclusive": (not math.isnan(lo)) and conclusive(lo, hi),
                     "replications": int(g["change"].notna().sum()),
                     "censored": int(cens.sum())})
    return pd.DataFrame(rows)


def _unit(measure: str) -> tuple[str, str]:
    if measure in MEASURES:
        return MEASURES[measure][0], MEASURES[measure][1]
    return PLACE_MEASURES[measure]


def _mean(x: pd.Series) -> float:
    x = x.dropna()
    return float(x.mean()) if len(x) else math.nan


def per_run_series(results: dict, what: str) -> pd.DataFrame:
    """Queues (``what="queues"``) or throughput (``"throughput"``) of every valid
    run, averaged over the replications of each scenario × policy × fraction
    (the baseline included, as policy ``baseline``); a throughput bin with no
    vehicle in some replication counts as 0 there."""
    runs: dict[tuple, int] = {}
    for (scen, policy, fraction, _k), o in results.items():
        if o.valid:
            runs[(scen, policy, fraction)] = runs.get((scen, policy, fraction), 0) + 1
    frames = []
    for (scen, policy, fraction, _k), o in results.items():
        table = getattr(o, what)
        if not o.valid or table is None or table.empty:
            continue
        frames.append(table.assign(scenario=scen, policy=policy, fraction=fraction,
                                   runs=runs[(scen, policy, fraction)]))
    if not frames:
        return pd.DataFrame()
    allruns = pd.concat(frames, ignore_index=True)
    value, time = ("queue", "time") if what == "queues" else ("vehicles", "begin")
    keys = ["scenario", "policy", "fraction", "runs", "place", "place_kind", "label", time]
    if what == "throughput":
        keys.append("kind")
    out = allruns.groupby(keys, dropna=False)[value].sum().reset_index()
    out[value] = out[value] / out["runs"]
    return out.drop(columns="runs")


def measures_table(groups: pd.DataFrame, places: pd.DataFrame, scenario: str, policy: str,
                   fraction: float | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of one variant in the summaries of :func:`summarise`."""
    def pick(t: pd.DataFrame) -> pd.DataFrame:
        if t.empty:
            return t
        return t[(t["scenario"] == scenario) & (t["policy"] == policy)
                 & same_fraction(t["fraction"], fraction)]
    return pick(groups), pick(places)




#: How each measure is named in text.
LABELS = {
    "clear_95": "95% of vehicles out by",
    "clear_100": "all vehicles out by",
    "delay_vh": "delay against free flow",
    "median_min": "median time to leave",
    "p95_min": "95th-percentile time to leave",
    "vehicle_hours": "total time in the area",
    "max_queue": "longest queue",
    "mean_queue": "mean queue over the window",
    "vehicles_out": "vehicles out",
}


def format_value(measure: str, v: float, end: float | None) -> str:
    if measure.startswith("clear"):
        return units.clock(v) if not math.isnan(v) else (
            f"not cleared by {units.clock(end)}" if end is not None else "not cleared")
    if measure.endswith("_vh") or measure == "vehicle_hours":
        return f"{v:,.1f} veh·h" if abs(v) < 100 else f"{units.count(v)} veh·h"
    if measure in PLACE_MEASURES:
        return f"{v:,.0f} veh"
    return f"{v:.1f} min"


def format_change(r: pd.Series, end: float | None = None) -> str:
    """The change of a summarised measure with its interval, in words where censored.

    When every pair is censored because the baseline never reached a
    clearance the policy reached, the change is only bounded: the policy
    clears at least (window end − its clearance) earlier.
    """
    m, lo, hi = r["change"], r["ci_low"], r["ci_high"]
    unit = r["unit"]
    digits = 1 if unit == "min" or abs(r["change"]) < 100 else 0
    if math.isnan(m):
        text = f"censored in {r['censored']} of {r['censored'] + r['replications']} pairs"
        if str(r["measure"]).startswith("clear") and end is not None and \
                math.isnan(r["baseline_value"]) and not math.isnan(r["policy_value"]):
            text = (f"at least {(end - r['policy_value']) / 60:.0f} min earlier (the baseline "
                    f"did not clear by {units.clock(end)}); {text}")
        return text
    text = f"{m:+,.{digits}f} {unit}"
    if not math.isnan(lo):
        text += f" [{lo:+,.{digits}f}, {hi:+,.{digits}f}]"
        if r["conclusive"]:
            better = (m < 0) == (r["better"] == "lower")
            text += " better" if better else " worse"
    if r["censored"]:
        text += f"; {r['censored']} censored pair(s) left out"
    return text


def format_measures(measures: pd.DataFrame, places: pd.DataFrame, *, group: str = "event",
                    end: float | None = None, top: int = 2) -> str:
    """The engineering measures of each variant as text (for the terminal).

    Parameters
    ----------
    measures, places : pandas.DataFrame
        :attr:`EvaluationResult.measures` and ``.places``.
    group : str, default "event"
    end : float, optional
        The window's end (clock s), for "not cleared by".
    top : int, default 2
        Lot exits and ramps shown per variant: those with the longest
        baseline queue.
    """
    if measures.empty:
        return ""
    lines = [f"engineering measures, {group} vehicles: baseline → policy, change = policy − "
             "baseline per paired replication [95% t-interval]"]
    ms = measures[measures["group"] == group]
    for (scen, pol, frac), g in ms.groupby(["scenario", "policy", "fraction"], sort=False,
                                           dropna=False):
        tag = "all vehicles" if pd.isna(frac) else f"{frac:.0%} compliance"
        lines.append(f"{scen} · {pol} · {tag}")
        for r in g.to_dict("records"):
            r = pd.Series(r)
            before = format_value(r["measure"], r["baseline_value"], end)
            after = format_value(r["measure"], r["policy_value"], end)
            lines.append(f"  {LABELS[r['measure']]:<32} {before:>24} → {after:<24} "
                         f"{format_change(r, end)}")
        lines += _place_lines(places, scen, pol, frac, top)
    return "\n".join(lines)


def _place_lines(places: pd.DataFrame, scen: str, pol: str, frac, top: int) -> list[str]:
    if places.empty:
        return []
    p = places[(places["scenario"] == scen) & (places["policy"] == pol)
               & same_fraction(places["fraction"], None if pd.isna(frac) else frac)]
    lines = []
    for kind, what in (("lot_exit", "lot exit"), ("ramp", "ramp")):
        q = p[(p["place_kind"] == kind) & (p["measure"] == "max_queue")]
        for r in q.sort_values("baseline_value", ascending=False).head(top).to_dict("records"):
            r = pd.Series(r)
            lines.append(f"  longest queue, {what} {r['label'][:40]:<40} "
                         f"{r['baseline_value']:>6,.0f} → {r['policy_value']:<6,.0f} veh  "
                         f"{format_change(r)}")
    return lines


__all__ = ["LABELS", "MEASURES", "MEASURE_GROUPS", "PLACE_MEASURES", "format_change",
           "format_measures", "format_value",
           "measure_pairs", "measures_table", "pair_measures", "per_run_series", "summarise"]
