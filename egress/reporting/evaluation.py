"""The report of a policy evaluation: answer first, then whether to trust it, then detail.

A traffic engineer forwards this page to people who read the top of it. So it
opens with:

1. **the summary**: the question, and per policy the answer with its 95 %
   interval and whether it is conclusive (the interval excludes zero), in
   words, with the vehicle-hours saved and the change in clearance time;
2. **the validity box**: whether every run passed the physical invariants,
   teleports (more than 1 % of vehicles is not a valid result), vehicles
   still inside at the end of the window or never inserted (they count with
   their time so far), identical replications, and the calibration fit
   against observations where the demand was calibrated;
3. **each policy in words** (what the signs say, where they stand, which
   ramps), from the policy file and the network's street names;

then the tables (savings, engineering measures, queues at lot exits and
ramps), ramp throughput over time, and maps per 15-minute slice. Every number
comes from runs that passed the invariants; units follow
:func:`egress.units.units`, times are clock times.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import units
from ..config.scenario import load_scenario
from ..engine.invariants import TELEPORT_LIMIT
from ..policies.file import load_policies
from ..policies.measures import LABELS, format_change, format_value
from . import maps
from .html import esc, fig_png, figure, p, text_table
from .plots import pyplot


def _read(folder: Path, name: str) -> pd.DataFrame:
    path = folder / f"{name}.csv"
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def _frac(f: Any) -> str:
    return "all vehicles" if f is None or (isinstance(f, float) and math.isnan(f)) \
        else f"{f:.0%} of drivers follow the signs"


def _same(col: pd.Series, f: Any) -> pd.Series:
    if f is None or (isinstance(f, float) and math.isnan(f)):
        return col.isna()
    return (col - f).abs() < 1e-9


def _interval(m: float, lo: float, hi: float, unit: str = "min", digits: int = 1) -> str:
    if math.isnan(m):
        return "–"
    if math.isnan(lo):
        return f"{m:+,.{digits}f} {unit} (one replication: no interval)"
    return f"{m:+,.{digits}f} {unit} [{lo:+,.{digits}f}, {hi:+,.{digits}f}]"


class Study:
    """What an evaluation folder holds, read once."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.info = json.loads((folder / "evaluation.json").read_text())
        self.table = _read(folder, "table")
        self.savings = _read(folder, "savings")
        self.runs = _read(folder, "runs")
        self.measures = _read(folder, "measures")
        self.places = _read(folder, "places")
        self.throughput = _read(folder, "throughput")
        self.invalid = _read(folder, "invalid_runs")
        self.scenarios = {}
        for path in self.info.get("scenarios", []):
            try:
                s = load_scenario(path, check_network=False)
                self.scenarios[s.name] = s
            except Exception:  # noqa: BLE001 - a report describes what it can
                continue
        self.policies = {}
        pf = self.info.get("policy_file")
        net = next((s.network for s in self.scenarios.values()), None)
        if pf and Path(pf).is_file():
            try:  # with the network: places given by coordinates are snapped
                self.policies = load_policies(pf, net)
            except Exception:  # noqa: BLE001 - a report describes what it can
                self.policies = {}

    def end(self, scenario: str) -> float | None:
        s = self.scenarios.get(scenario)
        return s.simulation.end if s else None

    def event_end(self, scenario: str) -> float | None:
        s = self.scenarios.get(scenario)
        ev = s.demand.event if s else None
        return ev.profile.end if ev is not None else None

    def streets(self, scenario: str) -> dict[str, str]:
        """Edge id -> street name, from the scenario's GIS layer."""
        feats = maps.read_layer(self.folder / "gis" / scenario / "edges_baseline.geojson")
        return {f["properties"]["edge"]: f["properties"].get("name") or "" for f in feats}


# --------------------------------------------------------------------------- summary


def _answer(study: Study, r: pd.Series) -> str:
    m, lo, hi = r["event_saving_min"], r["event_ci_low"], r["event_ci_high"]
    name = esc(r["policy"])
    desc = study.policies.get(r["policy"])
    title = f"<b>{esc(desc.description)}</b> ({name})" if desc else f"<b>{name}</b>"
    gain = "saves" if m >= 0 else "costs"
    text = (f"{title}, {esc(_frac(r['fraction']))}: each event vehicle {gain} "
            f"<b>{abs(m):.1f} min</b>")
    if math.isnan(lo):
        verdict = "<span class='warn'>one replication: no interval, not conclusive</span>"
    else:
        text += (f" (95% interval {lo:+.1f} to {hi:+.1f} min over {r['replications']:.0f} "
                 "paired evenings)")
        verdict = ("<span class='ok'>conclusive: the interval excludes zero</span>"
                   if r["conclusive"] else
                   "<span class='warn'>not conclusive: the interval includes zero; more "
                   "replications would tell</span>")
    sv = study.savings
    ev = sv[(sv["scenario"] == r["scenario"]) & (sv["policy"] == r["policy"])
            & _same(sv["fraction"], r["fraction"]) & (sv["group"] == "event")]
    extra = []
    if len(ev) and "vehicle_hours_saved" in ev:
        e = ev.iloc[0]
        extra.append("vehicle-hours saved by all event vehicles together: " + _interval(
            e["vehicle_hours_saved"], e["vh_ci_low"], e["vh_ci_high"], "veh·h", 0))
    c = _measure(study, r, "clear_95")
    if c is not None:
        end = study.end(r["scenario"])

        def out_by(v: float) -> str:
            return f"out by {units.clock(v)}" if not math.isnan(v) else (
                f"not out by {units.clock(end)}, the end of the simulated window"
                if end is not None else "not out by the end of the simulated window")
        extra.append(f"95% of event vehicles {out_by(c['baseline_value'])} without the "
                     f"policy, {out_by(c['policy_value'])} with it")
    warn = ""
    if r.get("relies_on_teleports"):
        warn = (" <span class='badword'>Not a valid result: more than 1% of the vehicles "
                "teleported in some run (gridlock).</span>")
    return (f"<li class='answer'>{text}; {verdict}."
            + (f"<br><span class='note'>{'; '.join(extra)}.</span>" if extra else "")
            + f"{warn}</li>")


def _measure(study: Study, r: pd.Series, measure: str, group: str = "event"):
    m = study.measures
    if m.empty:
        return None
    sel = m[(m["scenario"] == r["scenario"]) & (m["policy"] == r["policy"])
            & _same(m["fraction"], r["fraction"]) & (m["group"] == group)
            & (m["measure"] == measure)]
    return sel.iloc[0] if len(sel) else None


def summary_box(study: Study) -> str:
    """The answer-first box."""
    names = list(study.scenarios) or sorted(set(study.table.get("scenario", [])))
    context = " ".join(esc(study.scenarios[n].description.split(". ")[0].rstrip(".")) + "."
                       for n in names if n in study.scenarios)
    area = next((s.venues.study_area.name for s in study.scenarios.values()
                 if s.venues is not None and s.venues.study_area is not None), "the area")
    question = (f"How many minutes does each event vehicle save between leaving its parking "
                f"lot and reaching its destination or leaving {esc(area)}, with each measure "
                "below, compared with the same evenings without it?")
    answers = "".join(_answer(study, r) for _, r in study.table.iterrows())
    return ("<div class='summary' id='summary'><h2>Summary</h2>"
            f"<p>{context}</p><p><b>Question.</b> {question}</p>"
            f"<p><b>Answer.</b></p><ul>{answers}</ul>"
            "<p class='note'>Saving = baseline − policy travel time of the same vehicles on the "
            "same simulated evening (paired); positive is faster. The 95% interval is a "
            "Student-t interval over the paired evenings.</p></div>")


# --------------------------------------------------------------------------- validity


def _item(ok: bool, text: str) -> str:
    mark = "<span class='ok'>✓</span>" if ok else "<span class='warn'>!</span>"
    return f"<li>{mark} {text}</li>"


def validity_box(study: Study) -> str:
    """Checks a reader needs before trusting the answer."""
    info, runs = study.info, study.runs
    bad = int(info.get("invalid_runs", 0))
    pairs = runs[runs["group"] == "all"] if len(runs) else runs
    total = len(pairs) + (len(pairs[["scenario", "replication"]].drop_duplicates())
                          if len(pairs) else 0) + bad
    items = [_item(bad == 0, f"{total - bad:.0f} of {total:.0f} simulation runs passed every "
                   "physical invariant (each vehicle counted once, times in order and inside "
                   "the window, teleports attributed)" + (
                       f"; {bad} broke one and their pairs are left out" if bad else ""))]
    allv = runs[runs["group"] == "all"] if len(runs) else runs
    if len(allv):
        n = allv["vehicles"].mean()
        tb, tp = allv["teleports_baseline"].mean(), allv["teleports_policy"].mean()
        worst = max(allv["teleports_baseline"].max(), allv["teleports_policy"].max()) / n
        items.append(_item(worst <= TELEPORT_LIMIT,
                           f"teleports (SUMO moving vehicles stuck for "
                           f"{_teleport_wait(study)}): {tb:,.0f} per baseline run and "
                           f"{tp:,.0f} per policy run on average, at most {worst:.1%} of "
                           f"{n:,.0f} vehicles in one run (above {TELEPORT_LIMIT:.0%} a run "
                           "relies on gridlock being cleared by SUMO and is not a valid "
                           "result)"))
        inside = (allv["inside_at_end_baseline"] + allv["not_inserted_baseline"]).mean()
        inside_p = (allv["inside_at_end_policy"] + allv["not_inserted_policy"]).mean()
        share = max(inside, inside_p) / n
        items.append(_item(share < 0.01,
                           f"vehicles still in the network or not yet out of their lot at the "
                           f"end of the window: {inside:,.0f} per baseline run, {inside_p:,.0f} "
                           f"per policy run ({share:.1%}); they count with their time so far, "
                           "so their real times are longer"))
    same = [k for k, v in (info.get("identical_replications") or {}).items() if v]
    if same:
        items.append(_item(False, "the baseline replications of " + ", ".join(same)
                           + " are identical runs: the intervals measure nothing of the "
                           "evening's variability"))
    items.append(_calibration_item(info))
    mode = info.get("mode")
    if mode == "meso":
        items.append(_item(True, "mesoscopic simulation (queues per edge): fit for ramp "
                           "diversions and signs; lane and signal measures need micro runs"))
    return ("<div class='validity' id='validity'><h2>Can the answer be trusted?</h2>"
            f"<ul>{''.join(items)}</ul></div>")


def _teleport_wait(study: Study) -> str:
    waits = {s.simulation.time_to_teleport for s in study.scenarios.values()}
    return units.duration(min(waits)) if waits else "5 min"


def _calibration_item(info: dict) -> str:
    od = info.get("od")
    if not od:
        return _item(False, "calibration: the demand is the scenario's own OD, not fitted to "
                     "observations in this study, so no fit against observed speeds or counts "
                     "is shown")
    summary = Path(od).parent / "summary.json"
    try:
        best = json.loads(summary.read_text()).get("best", {})
        rmse, r2 = best.get("rmse_kmh"), best.get("r2")
        return _item(True, f"calibration: demand fitted to observations; segment speeds "
                     f"within {units.speed(rmse / 3.6):.1f} {units.speed_unit()} RMSE, "
                     f"R² {r2:.2f}")
    except (OSError, ValueError, TypeError, AttributeError):
        return _item(False, "calibration: a calibrated OD was used, but its fit (summary.json "
                     "beside it) was not found")


# --------------------------------------------------------------------------- policies


def _names(ids: list[str], streets: dict[str, str]) -> str:
    out = list(dict.fromkeys(streets.get(i) or i for i in ids))
    return ", ".join(out) if out else "–"


def describe(policy, streets: dict[str, str]) -> str:
    """One policy in words, with street names."""
    k, prm = policy.kind, policy.params
    if k == "combination":
        return "Together: " + "; ".join(f"{q.description}" for q in policy.parts) + "."
    if k == "ramp_diversion":
        dest = f" bound for {_names(prm['destinations'], streets)}" if prm.get(
            "destinations") else ""
        return (f"Message signs on {_names(prm['signs'], streets)} advise "
                f"{', '.join(prm.get('vtypes') or ['event'])} drivers{dest} to take "
                f"{_names([prm['to_ramp']], streets)} instead of "
                f"{_names([prm['from_ramp']], streets)}.")
    if k == "alternate_route":
        avoid = f", avoiding {_names(prm['avoid'], streets)}" if prm.get("avoid") else ""
        return (f"Message signs on {_names(prm['signs'], streets)} advise drivers to go via "
                f"{_names(prm['via'], streets)}{avoid}.")
    if k == "hov_opening":
        edges = [lane.rsplit("_", 1)[0] for lane in prm.get("lanes", [])]
        return (f"{len(prm.get('lanes', []))} HOV lanes on {_names(edges, streets)} open to "
                f"{', '.join(prm.get('allow') or ['all cars'])}.")
    return policy.description + "."


def policies_section(study: Study) -> str:
    rows = []
    for name in dict.fromkeys(study.table.get("policy", [])):
        pol = study.policies.get(name)
        scen = next(iter(study.scenarios), "")
        if pol is None:
            rows.append(f"<li><b>{esc(name)}</b></li>")
            continue
        rows.append(f"<li><b>{esc(pol.description)}</b> <span class='note'>({esc(name)})"
                    f"</span><br>{esc(describe(pol, study.streets(scen)))}</li>")
    fr = study.info.get("fractions") or []
    comp = ("Sign policies are evaluated with " + ", ".join(f"{f:.0%}" for f in fr)
            + " of the addressed drivers following them (compliance); the others apply to "
            "every vehicle.") if fr else ""
    return f"<h2>The measures evaluated</h2><ul>{''.join(rows)}</ul>{p(comp, 'note')}"


# --------------------------------------------------------------------------- tables


def savings_table(study: Study) -> str:
    rows = []
    for _, r in study.table.iterrows():
        rows.append({
            "policy": r["policy"], "compliance": "all" if pd.isna(r["fraction"])
            else f"{r['fraction']:.0%}",
            "event vehicles, min saved each": _interval(
                r["event_saving_min"], r["event_ci_low"], r["event_ci_high"]),
            "drivers who followed the sign": _interval(
                r["compliers_saving_min"], r["compliers_ci_low"], r["compliers_ci_high"]),
            "addressed drivers who did not": _interval(
                r["noncompliers_saving_min"], r["noncompliers_ci_low"],
                r["noncompliers_ci_high"]),
            "background traffic": _interval(
                r["background_saving_min"], r["background_ci_low"], r["background_ci_high"]),
            "conclusive": "yes" if r["conclusive"] else "no",
            "followed the sign": "–" if pd.isna(r["realised_compliance"])
            else f"{r['realised_compliance']:.0%} of addressed drivers",
            "event vehicles": units.count(r["event_vehicles"]),
        })
    return ("<h2>Minutes saved per vehicle</h2>" + text_table(pd.DataFrame(rows))
            + p("Mean over paired evenings [95% interval]; positive = faster with the policy.",
                "note"))


def measures_tables(study: Study) -> str:
    if study.measures.empty:
        return ""
    parts = ["<h2>Engineering measures</h2>",
             p("Baseline and policy values are means over the paired evenings; the change is "
               "policy − baseline with its 95% interval. A clearance time not reached by the "
               "end of the simulated window is shown as 'not cleared by', never invented.",
               "note")]
    for group, title in (("event", "event vehicles"), ("compliers", "drivers who followed "
                         "the sign"), ("background", "background traffic")):
        g = study.measures[study.measures["group"] == group]
        if g.empty:
            continue
        rows = []
        for r in g.to_dict("records"):
            r = pd.Series(r)
            end = study.end(r["scenario"])
            rows.append({"policy": r["policy"],
                         "compliance": "all" if pd.isna(r["fraction"]) else f"{r['fraction']:.0%}",
                         "measure": LABELS[r["measure"]],
                         "baseline": format_value(r["measure"], r["baseline_value"], end),
                         "with the policy": format_value(r["measure"], r["policy_value"], end),
                         "change [95% interval]": format_change(r, end)})
        table = text_table(pd.DataFrame(rows))
        parts.append(f"<h3>{esc(title.capitalize())}</h3>" + (
            table if group == "event" else f"<details><summary>show</summary>{table}</details>"))
    return "".join(parts)


def places_section(study: Study, top: int = 8) -> str:
    pl = study.places
    if pl.empty:
        return ""
    q = pl[pl["measure"] == "max_queue"]
    mean = pl[pl["measure"] == "mean_queue"].set_index(["scenario", "policy", "fraction",
                                                       "place"])
    first = q[q["policy"] == q["policy"].iloc[0]]
    worst = first.sort_values("baseline_value", ascending=False).head(top)["place"]
    rows = []
    for r in q[q["place"].isin(worst)].sort_values(["place_kind", "baseline_value"],
                                                   ascending=[True, False]).to_dict("records"):
        r = pd.Series(r)
        key = (r["scenario"], r["policy"], r["fraction"], r["place"])
        mq = mean.loc[key] if key in mean.index else None
        rows.append({"where": r["label"], "kind": "lot exit" if r["place_kind"] == "lot_exit"
                     else "ramp", "policy": r["policy"],
                     "longest queue, baseline": f"{r['baseline_value']:,.0f} veh",
                     "with the policy": f"{r['policy_value']:,.0f} veh",
                     "change [95% interval]": format_change(r),
                     "mean queue, baseline → policy": "–" if mq is None else
                     f"{mq['baseline_value']:,.1f} → {mq['policy_value']:,.1f} veh"})
    fig = _throughput_figure(study)
    return ("<h2>Queues at lot exits and ramps</h2>"
            + p("A vehicle counts as queued on an edge from the moment it would have left it "
                "at the speed limit until it did; at a lot exit the cars waiting to get out of "
                "the lot count too. Means are over the whole simulated window.", "note")
            + text_table(pd.DataFrame(rows)) + (fig or ""))


def _throughput_figure(study: Study, top: int = 6) -> str | None:
    t = study.throughput
    if t.empty:
        return None
    ramps = t[t["place_kind"] == "ramp"]
    base = ramps[ramps["policy"] == "baseline"]
    if base.empty:
        return None
    busiest = base.groupby("label")["vehicles"].sum().sort_values(ascending=False).head(top)
    headline = study.table.iloc[-1]
    plt = pyplot()
    cols = 3
    rows = math.ceil(len(busiest) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.0 * rows), squeeze=False, sharey=True)
    for ax, label in zip(axes.flat, busiest.index, strict=False):
        for policy, frac, style in (("baseline", None, "-"),
                                    (headline["policy"], headline["fraction"], "--")):
            sel = ramps[(ramps["label"] == label) & (ramps["policy"] == policy)
                        & _same(ramps["fraction"], frac)]
            per = sel.groupby("begin")["vehicles"].sum()
            ax.plot(per.index, per.to_numpy(), style, marker="o", ms=3,
                    label="baseline" if policy == "baseline" else f"{policy} {_short(frac)}")
        ax.set_title(label[:48], fontsize=8)
        lo, hi = ax.get_xlim()
        ticks = np.arange(np.ceil(lo / 1800) * 1800, hi, 1800)
        ax.set_xticks(ticks, [units.clock(x, day=False) for x in ticks], fontsize=7)
        ax.set_ylabel("vehicles per 15 min", fontsize=8)
    for ax in list(axes.flat)[len(busiest):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return figure(fig_png(fig), "Vehicles leaving the busiest ramps per 15 minutes (event and "
                  f"background), baseline and {headline['policy']} {_short(headline['fraction'])}"
                  ", mean over the paired evenings")


def _short(f: Any) -> str:
    return "" if f is None or (isinstance(f, float) and math.isnan(f)) else f"at {f:.0%}"


# --------------------------------------------------------------------------- maps


def maps_section(study: Study) -> str:
    parts = []
    for scen in dict.fromkeys(study.table.get("scenario", [])):
        folder = study.folder / "gis" / scen
        if not folder.is_dir():
            continue
        start = study.event_end(scen)
        over = maps.overview(folder)
        if over:
            parts.append(figure(over, f"{scen}: the study area with its main streets, the "
                                "venue, parking lot exits and message signs"))
        base = maps.slice_map(folder, "edges_baseline.geojson", "speed",
                              f"{scen}: baseline speeds per 15 minutes", start)
        if base:
            parts.append(figure(base[0], f"{scen}: space-mean speed on each street in the "
                                "baseline, mean over the evenings, one map per 15-minute "
                                "slice every half hour from the event's end"))
        for _, r in study.table[study.table["scenario"] == scen].iterrows():
            tag = "all" if pd.isna(r["fraction"]) else f"f{r['fraction']:.2f}"
            got = maps.slice_map(folder, f"edges_{r['policy']}_{tag}.geojson", "change",
                                 f"{r['policy']} {_short(r['fraction'])}: change in speed",
                                 start)
            if got:
                parts.append(figure(got[0], f"{r['policy']} {_short(r['fraction'])}: change "
                                    "in speed against the baseline (blue = faster with the "
                                    "policy), per 15-minute slice"))
    if not parts:
        return ""
    return ("<h2>Maps</h2>" + p("The same layers are in the gis/ folder as GeoJSON (WGS84) "
                                "for QGIS.", "note") + "".join(parts))


def evaluation_section(folder: Path) -> tuple[str, list[str], dict]:
    """The evaluation's part of the report: summary, validity, policies, tables, maps."""
    study = Study(folder)
    info = study.info
    head = ("<h2>Policy evaluation</h2>"
            + p(f"{len(study.table)} policy variant(s), "
                f"{', '.join(f'{k}: {v}' for k, v in (info.get('replications') or {}).items())}"
                f" paired replication(s), {info.get('mode')} simulation."))
    body = [summary_box(study), validity_box(study), policies_section(study), head,
            savings_table(study), measures_tables(study), places_section(study),
            maps_section(study)]
    return "".join(body), list(info.get("scenarios", [])), info.get("versions") or {}


__all__ = ["Study", "describe", "evaluation_section", "summary_box", "validity_box"]
