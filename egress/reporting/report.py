"""A self-contained HTML report of a run, evaluation, calibration or sweep: ``egress report``.

:func:`write_report` looks at what a folder holds and writes one HTML file
with every figure embedded (base64 PNG), so it can be mailed on:

* a **sweep** folder (``results/``, ``sweep.json``): the sweep's events and
  counts, the savings table per policy × fraction × event with 95%
  intervals, a bar chart with CI bars, failed tasks;
* an **evaluation** folder (``evaluation.json``, ``savings.csv``): the
  policy table with CIs and the evaluation's figures;
* a **calibration** folder (``convergence.csv``, ``fit.csv``): fit
  metrics before and after, the observed-vs-simulated scatter and the
  convergence plot;
* a **run** folder (``summary.json`` with ``vehicles.*``): counts,
  teleports, the travel-time distribution and network speed over time; a run
  whose ``summary.json`` says it is not complete (running, failed, or
  invalid: it broke a physical invariant) is shown as such, with no numbers;

plus the scenario(s) behind it, any other figures in the folder, the input
files (sweep or scenario text) and the versions recorded with the results.
Folders one level down are searched too, so a study folder holding a
calibration and an evaluation gives one report with both.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import units
from .._version import __version__
from ..config.scenario import load_scenario
from ..engine import format_summary, read_state
from ..engine.measures import format_run_measures
from ..errors import MissingFileError, ReportError
from ..folders import folder_kind
from ..sweep import load_failures, load_results, savings
from .evaluation import evaluation_section
from .html import CSS, fig_png, figure, pre, table
from .html import p as _para
from .plots import pyplot

log = logging.getLogger(__name__)

_CSS = CSS
_table = table
_p = _para
_pre = pre


def _fig(fig, alt: str) -> str:
    return figure(fig_png(fig), alt)


#: Captions of the figure files an evaluation or calibration writes.
CAPTIONS = {
    "savings.png": "Minutes saved per event vehicle with 95% intervals",
    "savings_vs_compliance.png": "Minutes saved per event vehicle against the share of "
                                 "addressed drivers who followed the signs",
    "convergence.png": "Calibration: objective per simulation",
    "scatter.png": "Calibration: observed against simulated segment values (x = y line)",
    "validation.png": "Observed (real) against simulated speeds by road class (x = y line)",
}


def _png(path: Path) -> str:
    caption = CAPTIONS.get(path.name, path.stem.replace("_", " "))
    return figure(path.read_bytes(), caption)


def _versions(v: dict[str, Any] | None) -> str:
    if not v:
        return ""
    return _table(pd.DataFrame([{"software": k, "version": str(x)} for k, x in v.items()]))


def _read_table(folder: Path, stem: str) -> pd.DataFrame | None:
    for ext in ("parquet", "csv"):
        p = folder / f"{stem}.{ext}"
        if p.is_file():
            return pd.read_parquet(p) if ext == "parquet" else pd.read_csv(p)
    return None


# --------------------------------------------------------------------------- sections


def _scenario_section(paths: list[str]) -> str:
    parts = []
    for p in dict.fromkeys(paths):
        if not p or not Path(p).is_file():
            continue
        try:
            s = load_scenario(p, check_network=False)
        except Exception as exc:  # noqa: BLE001 - a report describes what it can
            parts.append(_p(f"{p}: could not be read ({exc})", "note"))
            continue
        ev, bg = s.demand.event, s.demand.background
        rows = {"scenario": s.name, "file": s.path.name, "network": Path(s.network).name,
                "simulated window": units.window(s.simulation.begin, s.simulation.end),
                "simulation": "mesoscopic (queues per edge)" if s.simulation.mode == "meso"
                else "microscopic", "first seed": s.simulation.seed}
        if ev is not None:
            rows.update({"venue": ev.venue, "attendance": f"{ev.attendance:,}",
                         "event ends": units.clock(ev.profile.end)})
        if bg is not None:
            rows["background traffic (share of a normal evening)"] = f"{bg.scale:g}"
        if s.routes:
            rows["route files"] = ", ".join(r.name for r in s.routes)
        parts.append(f"<h3>{html.escape(s.name)}</h3>" + _p(s.description))
        parts.append(_table(pd.DataFrame([{"key": k, "value": str(v)} for k, v in rows.items()
                                          if v is not None])))
        parts.append("<details><summary>scenario file</summary>"
                     + _pre(s.path.read_text()) + "</details>")
    return "<h2>Scenario details</h2>" + "".join(parts) if parts else ""


def _ci_bars(table: pd.DataFrame, label_cols: list[str], title: str):
    plt = pyplot()
    d = table.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(d) + 2), 3.8))
    x = np.arange(len(d))
    err = np.nan_to_num(np.vstack([d["saving_min"] - d["ci_low"],
                                   d["ci_high"] - d["saving_min"]]))
    ax.bar(x, d["saving_min"], yerr=err, capsize=3, color="tab:blue", alpha=0.85)
    ax.axhline(0, color="k", lw=0.8)
    labels = ["\n".join("all" if (c == "fraction" and pd.isna(r[c])) else
                        (f"{r[c]:.0%}" if c == "fraction" else str(r[c])) for c in label_cols)
              for _, r in d.iterrows()]
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("minutes saved per vehicle")
    ax.set_title(title)
    return fig


def _sweep_section(folder: Path) -> tuple[str, list[str], dict]:
    info = json.loads((folder / "sweep.json").read_text()) if (folder / "sweep.json").is_file() \
        else {}
    res = load_results(folder)
    parts = ["<h2>Sweep</h2>"]
    if not info:
        parts.append("<p class='bad'><b>Not finished: this sweep has no sweep.json</b> "
                     "(running, interrupted or stopped by an error); below are only the "
                     "tasks stored so far. Rerun the sweep to finish it.</p>")
    if info:
        parts.append(_p(f"{info.get('name', '')}: {info.get('description', '')}"))
        parts.append(_p(f"{info.get('tasks', '?')} tasks; {info.get('stored', '?')} results "
                        f"stored; {len(info.get('failed') or [])} failed in the last run "
                        f"({info.get('seconds', 0):.0f} s)."))
    if res.empty:
        parts.append(_p("No finished tasks yet.", "note"))
    else:
        table = savings(res)
        ev = table[table["group"] == "event"]
        parts.append("<h3>Savings per event vehicle (minutes, mean over seeds, 95% t-interval)"
                     "</h3>")
        cols = ["event", "calibration", "policy", "fraction", "saving_min", "ci_low",
                "ci_high", "replications", "baseline_min", "policy_min", "complied",
                "teleports"]
        parts.append(_table(ev[cols]))
        if not ev.empty:
            parts.append(_fig(_ci_bars(ev, ["event", "policy", "fraction"],
                                       "savings per event vehicle with 95% CI"), "savings"))
        others = table[table["group"] != "event"]
        if not others.empty:
            parts.append("<details><summary>background and all vehicles</summary>"
                         + _table(others[["event", "calibration", "policy", "fraction",
                                          "group", "saving_min", "ci_low", "ci_high",
                                          "replications"]]) + "</details>")
        walls = res.drop_duplicates("key")
        if {"sumo_seconds", "task_seconds"} <= set(walls.columns):
                parts.append(_p(f"SUMO time per task: median {walls['sumo_seconds'].median():.1f}"
                                f" s; task time median {walls['task_seconds'].median():.1f} s.",
                                "note"))
    failures = load_failures(folder)
    if not failures.empty:
        parts.append("<h3>Failed tasks</h3>")
        parts.append(_table(failures[["event", "policy", "fraction", "seed", "error",
                                      "message", "attempts"]]))
    scen = [e.get("scenario") for e in info.get("events", [])]
    if (folder / "sweep.toml").is_file():
        parts.append("<details><summary>sweep file</summary>"
                     + _pre((folder / "sweep.toml").read_text()) + "</details>")
    return "".join(parts), [str(s) for s in scen if s], info.get("versions") or {}


def _calibration_section(folder: Path) -> tuple[str, list[str], dict]:
    summary = json.loads((folder / "summary.json").read_text()) \
        if (folder / "summary.json").is_file() else {}
    if not summary:
        # state.json without summary.json: a calibration still running or interrupted;
        # its incumbent is not a result
        return ("<h2>Calibration</h2><p class='bad'><b>Not a result: this calibration did "
                "not finish</b> (no summary.json; resume it with --resume).</p>", [], {})
    parts = ["<h2>Calibration</h2>"]
    flat = {k: v for k, v in summary.items() if isinstance(v, int | float | str | bool)}
    if flat:
        parts.append(_table(pd.DataFrame([{"key": k, "value": str(v)}
                                          for k, v in flat.items()])))
    for key in ("prior", "best", "before", "after"):
        if isinstance(summary.get(key), dict):
            m = {k: v for k, v in summary[key].items() if isinstance(v, int | float)}
            if m:
                parts.append(f"<h3>fit: {key}</h3>" + _table(pd.DataFrame([m]), 3))
    conv = _read_table(folder, "convergence")
    if conv is not None and not (folder / "convergence.png").is_file() \
            and "objective" in conv.columns:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(range(1, len(conv) + 1), conv["objective"], "o-", ms=3, label="objective")
        ax.plot(range(1, len(conv) + 1), conv["objective"].cummin(), "-", label="best")
        ax.set_xlabel("simulation")
        ax.set_ylabel("objective")
        ax.legend()
        parts.append(_fig(fig, "convergence"))
    fit = _read_table(folder, "fit")
    if fit is not None and not (folder / "scatter.png").is_file():
        obs = next((c for c in fit.columns if c.startswith("obs")), None)
        sims = [c for c in fit.columns if c.startswith(("prior", "best", "sim"))]
        if obs and sims:
            plt = pyplot()
            fig, ax = plt.subplots(figsize=(4.5, 4.5))
            for c in sims:
                ax.scatter(fit[obs], fit[c], s=8, alpha=0.6, label=c)
            lo = float(min(fit[obs].min(), *(fit[c].min() for c in sims)))
            hi = float(max(fit[obs].max(), *(fit[c].max() for c in sims)))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.set_xlabel("observed")
            ax.set_ylabel("simulated")
            ax.legend()
            parts.append(_fig(fig, "observed vs simulated"))
    scen = [summary["scenario"]] if isinstance(summary.get("scenario"), str) else []
    return "".join(parts), scen, summary.get("versions") or {}


def _run_section(folder: Path) -> tuple[str, list[str], dict]:
    summary = read_state(folder) or {}
    scen = [summary["scenario"]] if isinstance(summary.get("scenario"), str) else []
    state = summary.get("state") or "unreadable (its summary.json is not a run's record)"
    if state != "complete":
        why = summary.get("error") or "; ".join(summary.get("problems") or []) or \
            "the run did not finish"
        return ("<h2>Simulation run</h2>"
                f"<p class='bad'><b>Not a result: this run is {html.escape(str(state))}.</b> "
                f"{html.escape(why)}</p>", scen, summary.get("versions") or {})
    parts = ["<h2>Simulation run</h2>", _pre(format_summary(summary))]
    if (folder / "measures.csv").is_file():
        parts.append("<h3>Engineering measures</h3>" + _pre(format_run_measures(
            folder / "measures.csv", summary.get("end"))))
    if (folder / "validation.json").is_file():
        parts.append(_validation_part(folder))
    trips = _read_table(folder, "vehicles")
    plt = pyplot()
    if trips is not None and not trips.empty:
        fig, ax = plt.subplots(figsize=(6, 3.3))
        for k in sorted(trips["kind"].unique()):
            ax.hist(trips.loc[trips["kind"] == k, "travel_time"] / 60, bins=40, alpha=0.6,
                    label=k)
        # a vehicle's travel time ends where it leaves the study area (or arrives in it):
        # for event vehicles this is the distribution of the time to leave
        ax.set_xlabel("time to leave the area (or arrive), from the planned departure (min)")
        ax.set_ylabel("vehicles")
        ax.legend()
        parts.append(_fig(fig, "time to leave"))
    edges = _read_table(folder, "edges")
    if edges is not None and not edges.empty:
        busy = edges[edges["sampled_seconds"] > 0]
        w = busy.groupby("begin")["sampled_seconds"].sum()
        v = (busy["speed"] * busy["sampled_seconds"]).groupby(busy["begin"]).sum() / w
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot((v.index - v.index.min()) / 60, v * 3.6, "o-", ms=3)
        ax.set_xlabel("minutes after the start")
        ax.set_ylabel("network space-mean speed (km/h)")
        parts.append(_fig(fig, "speed over time"))
    return "".join(parts), scen, summary.get("versions") or {}


def _validation_part(folder: Path) -> str:
    """What ``egress validate`` found for this run: the fit to real observations."""
    v = json.loads((folder / "validation.json").read_text())
    hours = v.get("hours")
    when = (f"{min(hours):02d}:00-{max(hours) + 1:02d}:00" if hours else "the whole window")
    nan = float("nan")
    lines = [f"observations: {v.get('observations')} ({when})",
             f"speeds: {v.get('speed_rows')} rows, RMSE {v.get('rmse_kmh', nan):.1f} km/h, "
             f"R² {v.get('r2', nan):.2f}, bias {v.get('bias_kmh', nan):+.1f} km/h"]
    for c in v.get("classes") or []:
        lines.append(f"  {c['road_class']}: observed {c['observed_kmh']:.1f}, simulated "
                     f"{c['simulated_kmh']:.1f} km/h ({c['error']:+.0%}, {c['rows']} rows)")
    if v.get("count_rows"):
        lines.append(f"counts: {v['count_rows']} hourly flows, GEH < 5 on {v['geh_share']:.0%}")
    if v.get("dropped_rows"):
        lines.append(f"{v['dropped_rows']} observation rows could not be matched onto the network")
    part = "<h3>Against real observations (egress validate)</h3>" + _pre("\n".join(lines))
    if (folder / "validation.png").is_file():
        part += _png(folder / "validation.png")
    return part


def _kind(folder: Path) -> str | None:
    kind = folder_kind(folder)
    return None if kind == "observations" else kind


_SECTIONS = {"calibration": _calibration_section, "evaluation": evaluation_section,
             "sweep": _sweep_section, "run": _run_section}
_ORDER = ("calibration", "run", "evaluation", "sweep")


def write_report(folder: str | Path, output: str | Path | None = None) -> Path:
    """Write a self-contained HTML report of a run, evaluation, calibration or sweep folder.

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder (its direct subfolders are searched too).
    output : str or pathlib.Path, optional
        HTML file to write; default ``folder/report.html``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    MissingFileError
        If the folder does not exist.
    ReportError
        If it holds no run, evaluation, calibration or sweep.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(folder, "folder")
    found: list[tuple[str, Path]] = []
    kind = _kind(folder)
    if kind:
        found.append((kind, folder))
    if kind not in ("sweep", "evaluation"):
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            k = _kind(sub)
            if k:
                found.append((k, sub))
    if not found:
        raise ReportError(str(folder), "no run, evaluation, calibration or sweep results "
                          "found here (summary.json with trips, evaluation.json, "
                          "convergence.csv or results/)")
    found.sort(key=lambda kf: _ORDER.index(kf[0]))
    sections, scenarios, versions = [], [], {}
    for k, f in found:
        try:
            body, scen, ver = _SECTIONS[k](f)
        except Exception as exc:  # noqa: BLE001 - one broken part must not sink the report
            log.warning("report: %s section of %s failed: %s", k, f, exc)
            body, scen, ver = _p(f"{k} in {f}: could not be read ({exc})", "note"), [], {}
        if f != folder:
            body = body.replace("</h2>", f" <small>({html.escape(f.name)})</small></h2>", 1)
        sections.append(body)
        scenarios += scen
        versions = versions or ver
    figures = sorted(folder.glob("*.png"))
    for _, f in found:
        if f != folder:
            figures += sorted(f.glob("*.png"))
    # the whole-window speed maps are replaced by the maps per time slice
    # (validation.png is shown with its statistics in the run's section)
    fig_html = "".join(_png(f) for f in figures if not f.name.startswith("speed_change_")
                       and f.name != "validation.png")
    names = [Path(s).stem for s in dict.fromkeys(scenarios) if s]
    title = (f"Event egress study: {', '.join(names)}" if names else
             f"egress report: {folder.resolve().name}")
    doc = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
           f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
           *sections]
    if fig_html:
        doc.append("<h2>Figures</h2>" + fig_html)
    doc.append(_scenario_section(scenarios))
    doc.append(_p(f"Made from the folder {folder.resolve().name!r}: "
                  f"{', '.join(f'{k} ({f.name})' for k, f in found)}.", "note"))
    doc.append("<h2>Inputs and versions</h2>")
    doc.append(_versions(versions or {"egress": __version__}))
    doc.append(_p("Travel times count the wait to leave a parking lot; savings are paired "
                  "differences (baseline − policy) with the same vehicles and seeds; intervals "
                  "are two-sided 95% Student-t intervals over seeds.", "note"))
    doc.append("</body></html>")
    out = Path(output) if output else folder / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(doc), encoding="utf-8")
    log.info("wrote %s", out)
    return out


__all__ = ["ReportError", "write_report"]
