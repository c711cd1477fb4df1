"""Sweep files: events, policies, fractions, seeds and calibrations, validated and
expanded into tasks (:func:`load_sweep`). The file's format is described in
:mod:`egress.sweep`."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import pandas as pd

from .. import limits
from ..config.scenario import load_scenario
from ..config.schema import Field, check_table, one_of, read_toml
from ..errors import EgressError, Problems, SweepError
from ..policies import BASELINE, check_against_network, load_policies
from .tasks import Task, _Digests, _make_task

#: Calibration variant used when a sweep names none.
PRIOR = "prior"

_TOP = {
    "name": Field("str", required=True, check=limits.name),
    "description": Field("str", default=""),
    "policy_file": Field("path", doc="policy file (TOML)"),
    "policies": Field("list", default=[]),
    "fractions": Field("list", default=[]),
    "seeds": Field("list"),
    "replications": Field("int", check=limits.runs),
    "mode": Field("str", check=one_of("micro", "meso")),
    "retries": Field("int", default=2, check=limits.within(0, 100)),
    "keep_runs": Field("bool", default=False),
    "events": Field("list", required=True),
    "calibrations": Field("list", default=[]),
    "runs": Field("list"),
}


_EVENT = {
    "name": Field("str", required=True, check=limits.name),
    "scenario": Field("path", required=True),
    "attendance": Field("int", check=limits.within(0, limits.ATTENDANCE_MAX, lo_open=True),
                        doc="demand.event.attendance"),
    "end": Field("time", doc="demand.event.end"),
    "background": Field("float", check=limits.within(0, 100), doc="demand.background.scale"),
}


_CALIBRATION = {
    "name": Field("str", required=True, check=limits.name),
    "od": Field("path", doc="OD table the demand is built from"),
}


_RUN = {
    "event": Field("str", required=True),
    "policy": Field("str", required=True),
    "fraction": Field("float"),
    "seed": Field("int", required=True, check=limits.seed),
    "calibration": Field("str", default=PRIOR),
}


@dataclass(frozen=True)
class Event:
    """One event of a sweep: a scenario and overrides of its demand."""

    name: str
    scenario: Path
    attendance: int | None = None
    end: float | None = None
    background: float | None = None

    def overrides(self) -> dict[str, Any]:
        """The overrides that are set, by their scenario key."""
        out: dict[str, Any] = {}
        if self.attendance is not None:
            out["demand.event.attendance"] = self.attendance
        if self.end is not None:
            out["demand.event.end"] = self.end
        if self.background is not None:
            out["demand.background.scale"] = self.background
        return out



@dataclass(frozen=True)
class PlannedRun:
    """One run a sweep file asks for: an event, a calibration variant, a policy at a
    fraction (None: only the baseline), a seed."""

    event: str
    calibration: str
    policy: str | None
    fraction: float | None
    seed: int


@dataclass
class Sweep:
    """A validated, expanded sweep file.

    Attributes
    ----------
    path : pathlib.Path
    name, description : str
    events : list of Event
    tasks : list of Task
        Baselines first, each task once.
    retries : int
    keep_runs : bool
    """

    path: Path
    name: str
    description: str
    events: list[Event]
    tasks: list[Task]
    retries: int = 2
    keep_runs: bool = False

    def table(self) -> pd.DataFrame:
        """One row per task."""
        return pd.DataFrame([t.params() for t in self.tasks])


def load_sweep(path: str | Path) -> Sweep:
    """Read, validate and expand a sweep file.

    Every event's scenario is loaded and checked, every policy is looked up
    in the policy file and checked against each event's network, and every
    input file is hashed, before any simulation starts.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    Sweep

    Raises
    ------
    MissingFileError
    SweepError
        Listing every problem, each naming its key (``events[1].attendance:
        must be > 0, got -5``); scenario and policy problems are included.
    """
    path = Path(path)
    data = read_toml(path, "sweep file", SweepError)
    base = path.resolve().parent
    problems = Problems(path)
    top = check_table(data, _TOP, "", problems, base)
    # the lists' items, named once here; the planning below sees only usable ones
    for p in top["policies"] or []:
        if not isinstance(p, str):
            problems.add(f"policies: expected policy names, got {p!r}")
    top["policies"] = [p for p in top["policies"] or [] if isinstance(p, str)]
    for f in top["fractions"] or []:
        if msg := _fraction(f):
            problems.add(f"fractions: {msg}")
    top["fractions"] = [f for f in top["fractions"] or [] if not _fraction(f)]
    for key in ("events", "calibrations", "runs"):
        if top[key] is not None and not all(isinstance(t, dict) for t in top[key]):
            problems.add(f"{key}: expected tables ([[{key}]]), got {top[key]!r}")
            top[key] = [t for t in top[key] if isinstance(t, dict)]

    events = _events(top["events"] or [], problems, base)
    calibrations = _calibrations(top["calibrations"] or [], problems, base)
    scenarios = _scenarios(events, problems)
    policies = _policies(top, events, scenarios, problems)
    runs = _runs(top, events, calibrations, policies, problems, base)
    if len(runs) > limits.RUNS_MAX:
        problems.add(f"runs: {len(runs):,} runs, more than {limits.RUNS_MAX:,} in one sweep "
                     "(each is a simulation; split the sweep)")
    problems.raise_if_any(SweepError)

    digests = _Digests()
    tasks: dict[str, Task] = {}
    for run in runs:
        event = events[run.event]
        scen = scenarios[run.event]
        calib, seed = run.calibration, run.seed
        for pol, frac in ((BASELINE, None), (run.policy, run.fraction)):
            if pol is None:
                continue
            task = _make_task(event, scen, calib, calibrations[calib], pol,
                              policies.get(pol), frac, seed, top["mode"], top["policy_file"],
                              digests)
            tasks.setdefault(task.key, task)
    ordered = sorted(tasks.values(), key=lambda t: t.policy != BASELINE)
    return Sweep(path.resolve(), top["name"], top["description"], list(events.values()),
                 ordered, top["retries"], top["keep_runs"])


def _events(raw: list, problems: Problems, base: Path) -> dict[str, Event]:
    events: dict[str, Event] = {}
    if not raw:
        problems.add("events: give at least one [[events]] table")
    for i, table in enumerate(raw):
        v = check_table(table, _EVENT, f"events[{i}]", problems, base)
        if v["name"] is None or v["scenario"] is None:
            continue  # named by check_table
        if v["name"] in events:
            problems.add(f"events[{i}].name: duplicate event {v['name']!r}")
        if v["scenario"] is not None and not v["scenario"].is_file():
            problems.add(f"events[{i}].scenario: {v['scenario']} not found")
            continue
        events[v["name"]] = Event(v["name"], v["scenario"], v["attendance"], v["end"],
                                  v["background"])
    return events


def _calibrations(raw: list, problems: Problems, base: Path) -> dict[str, Path | None]:
    out: dict[str, Path | None] = {}
    for i, table in enumerate(raw):
        v = check_table(table, _CALIBRATION, f"calibrations[{i}]", problems, base)
        if v["name"] is None:
            continue
        if v["name"] in out:
            problems.add(f"calibrations[{i}].name: duplicate calibration {v['name']!r}")
        if v["od"] is not None:
            if not v["od"].is_file():
                problems.add(f"calibrations[{i}].od: {v['od']} not found")
        out[v["name"]] = v["od"]
    return out or {PRIOR: None}


def _scenarios(events: dict[str, Event], problems: Problems) -> dict[str, Any]:
    out = {}
    for i, (name, event) in enumerate(events.items()):
        try:
            scen = load_scenario(event.scenario).with_demand(event.overrides())
            if scen.routes and event.overrides():
                raise SweepError(str(event.scenario), "has fixed route files (demand.routes); "
                                 "attendance, end and background need a built demand")
        except EgressError as exc:
            problems.add(f"events[{i}] ({name}): {exc}")
            continue
        out[name] = scen
    return out


def _policies(top: dict, events: dict[str, Event], scenarios: dict, problems: Problems
              ) -> dict[str, Any]:
    names = set(top["policies"] or [])
    for run in top["runs"] or []:
        if isinstance(run, dict) and isinstance(run.get("policy"), str):
            names.add(run["policy"])
    names.discard(BASELINE)
    if not names:
        return {}
    if top["policy_file"] is None:
        problems.add("policy_file: required when policies are named")
        return {}
    try:
        known = load_policies(top["policy_file"])
    except EgressError as exc:
        problems.add(f"policy_file: {exc}")
        return {}
    chosen = {}
    for n in sorted(names):
        if n not in known:
            problems.add(f"policies: unknown policy {n!r} in {top['policy_file'].name} "
                         f"(known: {', '.join(known)})")
        else:
            chosen[n] = known[n]
    for name, scen in scenarios.items():
        try:
            check_against_network(chosen.values(), scen.network, str(top["policy_file"]))
        except EgressError as exc:
            problems.add(f"events ({name}): {exc}")
    return chosen


def _fraction(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
        return f"{v!r} is not a number between 0 and 1"
    return None


def _runs(top: dict, events: dict[str, Event], calibrations: dict, policies: dict,
          problems: Problems, base: Path) -> list[PlannedRun]:
    """Every run the sweep file asks for: its ``[[runs]]``, or the grid."""
    grid = any(top[k] for k in ("policies", "fractions")) or top["seeds"] is not None \
        or top["replications"] is not None
    if top["runs"] is not None:
        if grid:
            problems.add("runs: give either [[runs]] or policies/fractions/seeds, not both")
        return [r for i, table in enumerate(top["runs"])
                if (r := _listed_run(i, table, events, calibrations, policies, problems, base))]
    return _grid_runs(top, events, calibrations, policies, problems)


def _listed_run(i: int, table: Any, events: dict[str, Event], calibrations: dict,
                policies: dict, problems: Problems, base: Path) -> PlannedRun:
    """One ``[[runs]]`` table."""
    v = check_table(table, _RUN, f"runs[{i}]", problems, base)
    where = f"runs[{i}]"
    if v["event"] is not None and v["event"] not in events:
        problems.add(f"{where}.event: unknown event {v['event']!r}")
    if v["calibration"] not in calibrations:
        problems.add(f"{where}.calibration: unknown calibration {v['calibration']!r}")
    pol, frac = v["policy"], v["fraction"]
    if pol == BASELINE:
        pol, frac = None, None
    elif pol in policies:
        if not policies[pol].uses_signs:
            frac = None
        elif frac is None:
            problems.add(f"{where}.fraction: policy {pol!r} uses message signs and needs a "
                         "fraction")
        elif msg := _fraction(frac):
            problems.add(f"{where}.fraction: {msg}")
    return PlannedRun(v["event"], v["calibration"], pol, frac, v["seed"])


def _seeds(top: dict, problems: Problems) -> list:
    """The seeds of a grid: ``seeds = [...]`` or ``replications = N`` (0..N-1)."""
    seeds = top["seeds"]
    if seeds is None and top["replications"] is None:
        problems.add("seeds: give seeds = [...] or replications = N")
        return []
    if seeds is not None and top["replications"] is not None:
        problems.add("replications: give seeds or replications, not both")
    if seeds is None:
        if limits.runs(top["replications"]):
            return []  # already named by the schema; not expanded into that many runs
        seeds = list(range(top["replications"]))
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            problems.add(f"seeds: {s!r} is not a non-negative integer")
        elif msg := limits.seed(s):
            problems.add(f"seeds: {s} {msg}")
    if len(set(map(repr, seeds))) != len(seeds):
        problems.add("seeds: duplicate seeds")
    return seeds


def _grid_runs(top: dict, events: dict[str, Event], calibrations: dict, policies: dict,
               problems: Problems) -> list[PlannedRun]:
    """events × calibrations × seeds × (baseline, policies × fractions)."""
    seeds = _seeds(top, problems)
    fractions = top["fractions"]
    signs = [p for p in top["policies"] or [] if p in policies and policies[p].uses_signs]
    if signs and not fractions:
        problems.add(f"fractions: required for policies with message signs ({', '.join(signs)})")
    per_seed = 1 + sum(len(fractions) if policies[p].uses_signs else 1
                       for p in top["policies"] or [] if p in policies)
    total = len(events) * len(calibrations) * len(seeds) * per_seed
    if total > limits.RUNS_MAX:
        problems.add(f"runs: {total:,} runs, more than {limits.RUNS_MAX:,} in one sweep (each "
                     "is a simulation; split the sweep)")
        return []  # not built: counted
    out = []
    for ev, cal, seed in product(events, calibrations, seeds):
        out.append(PlannedRun(ev, cal, None, None, seed))
        for p in top["policies"] or []:
            if p not in policies:
                continue
            for f in (fractions if policies[p].uses_signs else [None]):
                out.append(PlannedRun(ev, cal, p, None if f is None else float(f), seed))
    return out



__all__ = ["Event", "PRIOR", "PlannedRun", "Sweep", "load_sweep"]
