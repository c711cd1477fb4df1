"""Paired savings from a sweep's stored results (:func:`savings`)."""

from __future__ import annotations

import pandas as pd

from ..policies import BASELINE
from ..stats import mean_ci
from .worker import KIND_GROUPS


def savings(results: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Paired savings per event × calibration × policy × fraction × group.

    Each variant run is paired with the baseline of the same event,
    calibration and seed (same vehicles, same seed); the saving of a seed
    is ``baseline − variant`` mean travel time. Reported: the mean over
    seeds with its two-sided Student-t interval.

    Parameters
    ----------
    results : pandas.DataFrame
        From :func:`load_results`.
    level : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        ``event, calibration, policy, fraction, group, saving_min, ci_low,
        ci_high, replications, baseline_min, policy_min, teleports,
        vehicles, complied``; seeds without a baseline are left out.
    """
    cols = ["event", "calibration", "policy", "fraction", "group", "saving_min", "ci_low",
            "ci_high", "replications", "baseline_min", "policy_min", "teleports", "vehicles",
            "complied"]
    if results.empty:
        return pd.DataFrame(columns=cols)
    pair = ["event", "calibration", "seed", "group"]
    base = results[results["policy"] == BASELINE][[*pair, "mean_travel_time_min"]]
    base = base.rename(columns={"mean_travel_time_min": "baseline_min"})
    var = results[results["policy"] != BASELINE]
    merged = var.merge(base, on=pair, how="inner")
    merged["saving_min"] = merged["baseline_min"] - merged["mean_travel_time_min"]
    rows = []
    keys = ["event", "calibration", "policy", "fraction", "group"]
    for key, g in merged.groupby(keys, sort=True, dropna=False):
        m, lo, hi = mean_ci(g["saving_min"], level)
        rows.append({**dict(zip(keys, key, strict=True)), "saving_min": m, "ci_low": lo,
                     "ci_high": hi, "replications": int(g["saving_min"].notna().sum()),
                     "baseline_min": float(g["baseline_min"].mean()),
                     "policy_min": float(g["mean_travel_time_min"].mean()),
                     "teleports": float(g["teleports"].mean()),
                     "vehicles": float(g["vehicles"].mean()),
                     "complied": float(g["complied"].mean())})
    table = pd.DataFrame(rows, columns=cols)
    order = {g: i for i, g in enumerate(KIND_GROUPS)}
    table["_g"] = table["group"].map(order)
    return table.sort_values(["event", "calibration", "policy", "fraction", "_g"]) \
        .drop(columns="_g").reset_index(drop=True)


def format_savings(table: pd.DataFrame, group: str = "event") -> str:
    """The summary of one vehicle group as text: saving [CI] in minutes per vehicle."""
    t = table[table["group"] == group]
    if t.empty:
        return f"no paired results for group {group!r} yet"
    lines = [f"saving per {group} vehicle, minutes (mean over seeds [95% CI])"]
    for _, r in t.iterrows():
        frac = "all" if pd.isna(r["fraction"]) else f"{100 * r['fraction']:.0f}%"
        ci = "" if pd.isna(r["ci_low"]) else f" [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]"
        lines.append(f"  {r['event']:<12} {r['calibration']:<10} {r['policy']:<16} "
                     f"{frac:>4}  {r['saving_min']:+.2f}{ci}  (n={r['replications']})")
    return "\n".join(lines)



__all__ = ["format_savings", "savings"]
