"""Comparing a policy variant with its baseline, pair by pair, and summarising.

For each replication the saving is the paired difference of mean travel
times (baseline − policy, minutes) over the vehicles present in both runs,
for five groups (:data:`GROUPS`). Each pair also records what it compared.
The table reports the mean saving over replications and its 95 % Student-t
interval (:func:`egress.stats.mean_ci`); a saving is *conclusive* when its
interval excludes zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..stats import conclusive, mean_ci
from .file import Policy
from .variants import Sign

GROUPS = ("event", "compliers", "noncompliers", "background", "all")


#: Policy name of the baseline runs.
BASELINE = "baseline"


@dataclass
class EvaluationResult:
    """What :func:`evaluate_policy` produced.

    Attributes
    ----------
    out : pathlib.Path
    table : pandas.DataFrame
        One row per scenario × policy × fraction: savings (minutes per
        vehicle) with 95% CI for event vehicles, compliers, non-compliers and
        background traffic, whether the event saving is conclusive, realised
        compliance, share of event vehicles affected, teleports, vehicles
        still inside at the end, replications used and invalid pairs.
    savings : pandas.DataFrame
        Tidy: scenario, policy, fraction, group, saving_min, ci_low, ci_high,
        replications, vehicles.
    runs : pandas.DataFrame
        One row per run pair and group, with what was compared.
    invalid : pandas.DataFrame
        Runs that broke an invariant: scenario, policy, fraction,
        replication, run folder, problems.
    figures : list of pathlib.Path
    measures : pandas.DataFrame
        Engineering measures per scenario × policy × fraction × group
        (:func:`egress.policies.measures.summarise`): clearance, delay,
        times to leave, vehicle-hours, each with its paired change and
        95 % interval.
    places : pandas.DataFrame
        Queues and vehicles out per lot exit and ramp, the same way.
    layers : list of pathlib.Path
        GIS layers (GeoJSON, WGS84) written with the evaluation.
    """

    out: Path
    table: pd.DataFrame
    savings: pd.DataFrame
    runs: pd.DataFrame
    invalid: pd.DataFrame = field(default_factory=pd.DataFrame)
    figures: list[Path] = field(default_factory=list)
    measures: pd.DataFrame = field(default_factory=pd.DataFrame)
    places: pd.DataFrame = field(default_factory=pd.DataFrame)
    layers: list[Path] = field(default_factory=list)

    def __str__(self) -> str:
        return format_table(self.table)


@dataclass(frozen=True)
class Variant:
    """A policy at a compliance fraction (None for policies without signs)."""

    policy: Policy
    fraction: float | None

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def tag(self) -> str:
        return "all" if self.fraction is None else f"f{self.fraction:.2f}"

    @property
    def key(self) -> tuple[str, float | None]:
        return (self.policy.name, self.fraction)


@dataclass
class Outcome:
    """What one run gave an evaluation.

    Attributes
    ----------
    run_dir : pathlib.Path
    vehicles : pandas.DataFrame
        The vehicle table indexed by vehicle.
    valid : bool
    problems : list of str
    teleports : int
    relies_on_teleports : bool
    mode : str
    reached : set of str
        Baseline only: watched vehicles that reached their sign.
    signs : list of Sign
        Variant only: its message signs.
    speed : pandas.Series or None
        Sampled-seconds-weighted mean speed per edge (m/s).
    sumo_seconds, read_seconds : float
    free_flow : pandas.Series or None
        Per vehicle: free-flow time of the part of its route it drove
        (:func:`egress.engine.measures.driven_free_flow`).
    queues, throughput : pandas.DataFrame or None
        Queues over time at lot exits and ramps, ramp throughput per 15 min
        (:func:`egress.engine.measures.place_flows`).
    edge_speed : pandas.DataFrame or None
        ``edge, begin, speed, sampled_seconds`` per edgeData interval (for
        the GIS layers per time slice).
    begin, end : float
        The simulated window.
    """

    run_dir: Path
    vehicles: pd.DataFrame
    valid: bool
    problems: list[str]
    teleports: int
    relies_on_teleports: bool
    mode: str
    reached: set[str] = field(default_factory=set)
    signs: list[Sign] = field(default_factory=list)
    speed: pd.Series | None = None
    sumo_seconds: float = math.nan
    read_seconds: float = math.nan
    free_flow: pd.Series | None = None
    queues: pd.DataFrame | None = None
    throughput: pd.DataFrame | None = None
    edge_speed: pd.DataFrame | None = None
    begin: float = math.nan
    end: float = math.nan


class Plan(Protocol):
    """The runs of one scenario, as the comparison reads them
    (:class:`egress.policies.evaluation.ScenarioPlan`)."""

    scen: Any
    variants: list[Variant]
    #: variant key -> replications it ran in
    ran: dict[tuple[str, float | None], list[int]]

    def seed(self, k: int) -> int: ...


def compare_all(plans: Sequence[Plan], results: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, invalid = [], {}
    for plan in plans:
        for v in plan.variants:
            for k in plan.ran[v.key]:
                base = results.get((plan.scen.name, BASELINE, None, k))
                pol = results.get((plan.scen.name, v.name, v.fraction, k))
                if base is None or pol is None:
                    continue
                bad = [(BASELINE, None, base), (v.name, v.fraction, pol)]
                broken = [(p, f, o) for p, f, o in bad if not o.valid]
                for p, f, o in broken:
                    invalid[str(o.run_dir)] = {"scenario": plan.scen.name, "policy": p,
                                               "fraction": f, "replication": k,
                                               "run_dir": str(o.run_dir),
                                               "problems": "; ".join(o.problems)}
                if broken:
                    continue
                rows += compare_pair(plan.scen.name, v, k, plan.seed(k), base, pol)
    return pd.DataFrame(rows), pd.DataFrame(list(invalid.values()),
                                            columns=["scenario", "policy", "fraction",
                                                     "replication", "run_dir", "problems"])


def compare_pair(scenario: str, variant: Variant, k: int, seed: int, base: Outcome,
                 pol: Outcome) -> list[dict[str, Any]]:
    """The rows of one baseline/variant pair: one per group (:data:`GROUPS`).

    Each row holds the mean travel times (minutes) of the group in both runs
    over the vehicles present in both, the saving, and what was compared:
    vehicles compared, dropped (present in only one of the runs) and why,
    and per run those teleported, still inside at the end and never inserted.
    """
    b, p = base.vehicles, pol.vehicles
    signs = variant.policy.uses_signs
    members = group_members(variant, base, pol)
    eligible = members["compliers"].union(members["noncompliers"])
    n_event = len(members["event"])
    run = {
        "scenario": scenario, "policy": variant.name, "fraction": variant.fraction,
        "replication": k, "seed": seed,
        "eligible": len(eligible), "compliers": len(members["compliers"]),
        "realised_compliance": (len(members["compliers"]) / len(eligible)
                                if signs and len(eligible) else math.nan),
        "affected_share": (len(members["compliers"]) / n_event
                           if signs and n_event else math.nan),
        "teleports_baseline": base.teleports, "teleports_policy": pol.teleports,
        "relies_on_teleports": base.relies_on_teleports or pol.relies_on_teleports,
        "sumo_seconds_policy": pol.sumo_seconds, "read_seconds_policy": pol.read_seconds,
    }
    rows = []
    for group in GROUPS:
        ids = members[group]
        bg, pg = b.loc[ids], p.loc[ids]
        bm = bg["travel_time"].mean() / 60 if len(ids) else math.nan
        pm = pg["travel_time"].mean() / 60 if len(ids) else math.nan
        if group in ("compliers", "noncompliers") and not signs:
            bm = pm = math.nan
        dropped, why = _dropped(b, p, group)
        rows.append({**run, "group": group, "vehicles": len(ids), "dropped": dropped,
                     "dropped_why": why, "baseline_min": bm, "policy_min": pm,
                     "saving_min": bm - pm,
                     "vehicle_hours_saved": (bm - pm) * len(ids) / 60,
                     **_ends(bg, "baseline"), **_ends(pg, "policy")})
    return rows


def group_members(variant: Variant, base: Outcome, pol: Outcome) -> dict[str, pd.Index]:
    """The vehicles of each group (:data:`GROUPS`) among those present in both runs.

    A vehicle is *eligible* when a sign of the variant addresses it and its
    baseline route reached the sign edge; eligible vehicles the sign's
    rerouter rerouted in the policy run are *compliers*, the others
    *non-compliers*.
    """
    b, p = base.vehicles, pol.vehicles
    common = b.index.intersection(p.index)
    rerouters = {r for s in pol.signs for r in s.rerouters}
    labelled = {v for s in pol.signs for v in s.vehicles}
    eligible = pd.Index(sorted(labelled & base.reached)).intersection(common)
    complied = p.loc[eligible, "rerouted_by"].isin(rerouters).to_numpy() if len(eligible) \
        else np.zeros(0, dtype=bool)
    bc = b.loc[common]
    return {
        "event": bc.index[bc["kind"] == "event"],
        "compliers": eligible[complied],
        "noncompliers": eligible[~complied],
        "background": bc.index[bc["kind"] == "background"],
        "all": bc.index,
    }


def _dropped(b: pd.DataFrame, p: pd.DataFrame, group: str) -> tuple[int, str]:
    """Vehicles of `group` present in only one of the two runs, and why."""
    if group in ("compliers", "noncompliers"):
        return 0, ""
    kinds = {"event": ("event",), "background": ("background",), "all": None}[group]

    def of(t: pd.DataFrame, missing: pd.Index) -> pd.Index:
        sel = t.loc[missing]
        return sel.index if kinds is None else sel.index[sel["kind"].isin(kinds)]

    only_b = of(b, b.index.difference(p.index))
    only_p = of(p, p.index.difference(b.index))
    why = []
    if len(only_b):
        why.append(f"{len(only_b)} not in the policy run")
    if len(only_p):
        why.append(f"{len(only_p)} not in the baseline run")
    return len(only_b) + len(only_p), "; ".join(why)


def _ends(t: pd.DataFrame, which: str) -> dict[str, int]:
    """How the vehicles of a group ended in one run: teleported, inside at the end,
    never inserted."""
    status = t["status"].value_counts()
    return {f"teleported_{which}": int((t["teleports"] > 0).sum()),
            f"inside_at_end_{which}": int(status.get("inside_at_end", 0)),
            f"not_inserted_{which}": int(status.get("not_inserted", 0))}


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    keys = ["scenario", "policy", "fraction", "group"]
    for key, g in runs.groupby(keys, sort=False, dropna=False):
        m, lo, hi = mean_ci(g["saving_min"])
        vh, vh_lo, vh_hi = mean_ci(g["vehicle_hours_saved"])
        rows.append({**dict(zip(keys, key, strict=True)), "saving_min": m, "ci_low": lo,
                     "ci_high": hi, "vehicle_hours_saved": vh, "vh_ci_low": vh_lo,
                     "vh_ci_high": vh_hi, "replications": int(g["saving_min"].notna().sum()),
                     "vehicles": float(g["vehicles"].mean()),
                     "dropped": float(g["dropped"].mean()),
                     "baseline_min": float(g["baseline_min"].mean()),
                     "policy_min": float(g["policy_min"].mean())})
    return pd.DataFrame(rows)


def summary_table(savings: pd.DataFrame, runs: pd.DataFrame, invalid: pd.DataFrame) -> pd.DataFrame:
    keys = ["scenario", "policy", "fraction"]
    rows = []
    per_run = runs[runs["group"] == "event"]
    for key, g in savings.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, key, strict=True))
        for group in ("event", "compliers", "noncompliers", "background"):
            s = g[g["group"] == group].iloc[0]
            row[f"{group}_saving_min"] = s["saving_min"]
            row[f"{group}_ci_low"] = s["ci_low"]
            row[f"{group}_ci_high"] = s["ci_high"]
        ev = g[g["group"] == "event"].iloc[0]
        row["conclusive"] = conclusive(ev["ci_low"], ev["ci_high"]) \
            if not pd.isna(ev["ci_low"]) else False
        r = per_run[(per_run["scenario"] == key[0]) & (per_run["policy"] == key[1])
                    & same_fraction(per_run["fraction"], None if pd.isna(key[2]) else key[2])]
        bad = invalid[(invalid["scenario"] == key[0])
                      & invalid["policy"].isin([key[1], BASELINE])] if len(invalid) else invalid
        row["event_baseline_min"] = ev["baseline_min"]
        row["event_vehicles"] = ev["vehicles"]
        row["dropped"] = ev["dropped"]
        row["eligible"] = r["eligible"].mean()
        row["realised_compliance"] = r["realised_compliance"].mean()
        row["affected_share"] = r["affected_share"].mean()
        row["teleports_baseline"] = r["teleports_baseline"].mean()
        row["teleports_policy"] = r["teleports_policy"].mean()
        row["relies_on_teleports"] = bool(r["relies_on_teleports"].any())
        row["inside_at_end_policy"] = r["inside_at_end_policy"].mean() + \
            r["not_inserted_policy"].mean()
        row["replications"] = len(r)
        row["invalid_runs"] = len(bad)
        rows.append(row)
    return pd.DataFrame(rows)


def same_fraction(column: pd.Series, fraction: float | None) -> pd.Series:
    if fraction is None:
        return column.isna()
    return (column - fraction).abs() < 1e-9


def format_table(table: pd.DataFrame) -> str:
    """The summary table as text: minutes saved per vehicle with 95% CI."""
    def ci(row, group):
        m, lo, hi = (row[f"{group}_saving_min"], row[f"{group}_ci_low"],
                     row[f"{group}_ci_high"])
        if pd.isna(m):
            return "—"
        if pd.isna(lo):
            return f"{m:+.2f}"
        return f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"

    head = (f"{'scenario':<20} {'policy':<16} {'frac':>5}  {'event vehicles':<24} "
            f"{'compliers':<24} {'non-compliers':<24} {'background':<24} "
            f"{'compl.':>6} {'affect.':>7} {'telep.':>9} {'inside':>7} {'reps':>4}")
    lines = ["minutes saved per vehicle (baseline − policy; mean over paired replications "
             "[95% t-interval]; positive = faster)", head, "-" * len(head)]
    flags = []
    for _, r in table.iterrows():
        frac = "all" if pd.isna(r["fraction"]) else f"{r['fraction']:.0%}"
        comp = "" if pd.isna(r["realised_compliance"]) else f"{r['realised_compliance']:.1%}"
        aff = "" if pd.isna(r["affected_share"]) else f"{r['affected_share']:.1%}"
        tel = f"{r['teleports_baseline']:.0f}/{r['teleports_policy']:.0f}"
        mark = "!" if r["relies_on_teleports"] else ""
        lines.append(f"{r['scenario']:<20} {r['policy']:<16} {frac:>5}  {ci(r, 'event'):<24} "
                     f"{ci(r, 'compliers'):<24} {ci(r, 'noncompliers'):<24} "
                     f"{ci(r, 'background'):<24} {comp:>6} {aff:>7} {tel + mark:>9} "
                     f"{r['inside_at_end_policy']:>7.0f} {r['replications']:>4.0f}")
        if r["relies_on_teleports"]:
            flags.append(f"{r['policy']} {frac}")
        if r["invalid_runs"]:
            flags.append(f"{r['policy']} {frac}: {r['invalid_runs']:.0f} invalid run(s) left "
                         "out (invalid_runs.csv)")
    lines.append("compl. = realised compliance among eligible vehicles; affect. = compliers "
                 "as a share of event vehicles; telep. = teleports baseline/policy per run; "
                 "inside = vehicles still in the network or never inserted at the end of the "
                 "policy run (counted with their time so far, not dropped); reps = paired "
                 "replications")
    if table["relies_on_teleports"].any():
        lines.append("! = more than 1% of the vehicles teleported in some run: the result "
                     "relies on teleports (gridlock) and is not valid as it stands")
    for f in flags:
        if ":" in f:
            lines.append(f"warning: {f}")
    return "\n".join(lines)


def headline(table: pd.DataFrame, policy: str | None = None,
             fraction: float | None = None) -> str:
    """One sentence on a row of the table: the event saving, its interval, and
    whether it is conclusive (default: the last row)."""
    t = table
    if policy is not None:
        t = t[t["policy"] == policy]
    if fraction is not None:
        t = t[same_fraction(t["fraction"], fraction)]
    if t.empty:
        return ""
    r = t.iloc[-1]
    frac = "" if pd.isna(r["fraction"]) else f" at {r['fraction']:.0%} compliance"
    m, lo, hi = r["event_saving_min"], r["event_ci_low"], r["event_ci_high"]
    if pd.isna(lo):
        return (f"{r['policy']}{frac} on {r['scenario']}: {m:+.2f} min per event vehicle "
                "from one replication: no interval, not conclusive")
    verdict = ("conclusive: the interval excludes zero" if r["conclusive"] else
               "NOT conclusive: the interval includes zero (more replications: "
               "--target-halfwidth)")
    gain = "saves" if m >= 0 else "costs"
    return (f"{r['policy']}{frac} on {r['scenario']}: event vehicles {gain} "
            f"{abs(m):.2f} min each [95% interval {lo:+.2f}, {hi:+.2f}; ±{(hi - lo) / 2:.2f}] "
            f"over {r['replications']:.0f} paired replications; {verdict}"
            + ("; WARNING: relies on teleports" if r["relies_on_teleports"] else ""))



__all__ = ["BASELINE", "EvaluationResult", "GROUPS", "Outcome", "Plan", "Variant", "aggregate",
           "compare_all", "compare_pair", "format_table", "group_members", "headline",
           "summary_table"]
