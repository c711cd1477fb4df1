"""Batch sweeps on Dask: ``egress sweep``.

A sweep file (TOML) lists events, policies, compliance fractions and seeds
(and optionally calibration variants); :func:`run_sweep` expands it into
independent simulation *tasks* and runs them on Dask distributed: an
in-process ``LocalCluster`` by default, or an existing cluster given by its
scheduler address. Example::

    name = "sodo-sweep"
    description = "Deployed diversions, large and small events"
    policy_file = "sodo-policies.toml"
    policies = ["cherry_nb", "spokane_sb", "both"]
    fractions = [0.1, 0.3, 0.5]
    seeds = [1, 2, 3, 4, 5]         # or: replications = 5 (seeds 0..4)
    mode = "meso"                   # optional: overrides every scenario's mode
    retries = 2                     # a failed task is tried 1 + retries times
    keep_runs = false               # keep SUMO run folders in OUT/runs/<key>/

    [[events]]
    name = "large"
    scenario = "sodo-large-event.toml"
    attendance = 68000              # optional overrides of the scenario's demand:
    end = "22:00"                   #   demand.event.attendance, demand.event.end,
    background = 1.0                #   demand.background.scale

    [[calibrations]]                # optional; default one variant "prior"
    name = "calibrated"
    od = "../runs/calibration/calibrated.od.csv"   # OD the demand is built from

Instead of the product of ``policies × fractions × seeds`` a sweep may list
its runs explicitly (``[[runs]]`` with ``event``, ``policy``, ``fraction``,
``seed`` and optional ``calibration``). Either way the baseline of every
(event, calibration, seed) is added once and shared by all policies: the
pairing baseline − variant happens in :func:`summarize`, not in the tasks.
A policy without message signs does not depend on the compliance fraction
and runs once per seed (fraction empty).

Tasks and keys
--------------
A task is one SUMO simulation: the baseline or one policy variant of one
event at one fraction and seed. Its *key* is the SHA-256 of everything the
result depends on: the contents of the scenario file and of every file it
references (network, venues, route files, OD and destination tables), the
resolved definition of the policy, the calibration's OD file, the task's
parameters, and the egress and SUMO versions. A worker re-hashes its input
files before running (once per file version: it remembers the digest of a
file by its inode, size and change times) and refuses to run on files that
differ from the ones the client hashed (a stale copy on a cluster node).

Store
-----
::

    OUT/sweep.toml                     copy of the sweep file
    OUT/tasks.csv                      every task: key and parameters
    OUT/results/key=<hash>/part.parquet   one small table per finished task
    OUT/failures/key=<hash>.json       error, traceback and attempts of a failed task
    OUT/runs/<hash>/                   SUMO run folders (only with keep_runs): inputs,
                                       vehroutes, statistics, sumo.log, vehicles table
    OUT/sweep.json                     inputs, counts and versions of the last run

The client writes each part to a temporary name and renames it, so a part
is either complete or absent; rerunning the same sweep skips every key that
has a part. Demand built from an OD is cached per worker machine (in
``$EGRESS_CACHE`` or the system temp folder) and shared by the baseline and
the variants of the same event and seed.

A result part has one row per vehicle group (``event``, ``background``,
``all``): vehicles, mean travel time (minutes, measured as in
:mod:`egress.evaluation`: from the moment a vehicle is ready to leave to its
arrival or to leaving the study area), how vehicles ended, teleports,
vehicles addressed by and complying with signs, and wall times.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import stat
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__, sumo
from .config.schema import Field, check_table, non_negative, one_of, positive, read_toml
from .errors import EgressError, InputError, InvalidRunError, Problems

log = logging.getLogger(__name__)

#: Policy name of the baseline tasks.
BASELINE = "baseline"
#: Calibration variant used when a sweep names none.
PRIOR = "prior"
#: Vehicle groups of a result table.
GROUPS = ("event", "background", "all")
#: Seconds to wait for an unreachable scheduler.
CONNECT_TIMEOUT = 3.0

_TOP = {
    "name": Field("str", required=True),
    "description": Field("str", default=""),
    "policy_file": Field("path", doc="policy file (TOML)"),
    "policies": Field("list", default=[]),
    "fractions": Field("list", default=[]),
    "seeds": Field("list"),
    "replications": Field("int", check=positive),
    "mode": Field("str", check=one_of("micro", "meso")),
    "retries": Field("int", default=2, check=non_negative),
    "keep_runs": Field("bool", default=False),
    "events": Field("list", required=True),
    "calibrations": Field("list", default=[]),
    "runs": Field("list"),
}
_EVENT = {
    "name": Field("str", required=True),
    "scenario": Field("path", required=True),
    "attendance": Field("int", check=positive, doc="demand.event.attendance"),
    "end": Field("time", doc="demand.event.end"),
    "background": Field("float", check=non_negative, doc="demand.background.scale"),
}
_CALIBRATION = {
    "name": Field("str", required=True),
    "od": Field("path", doc="OD table the demand is built from"),
}
_RUN = {
    "event": Field("str", required=True),
    "policy": Field("str", required=True),
    "fraction": Field("float"),
    "seed": Field("int", required=True, check=non_negative),
    "calibration": Field("str", default=PRIOR),
}


class SweepError(InputError):
    """A sweep file is invalid, or a sweep could not run."""


class SchedulerError(EgressError, ConnectionError):
    """The Dask scheduler could not be reached."""


# --------------------------------------------------------------------------- the sweep file


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
class Task:
    """One simulation of a sweep.

    Attributes
    ----------
    key : str
        SHA-256 (hex) of the task's full inputs, see the module docstring.
    event, calibration, policy : str
        ``policy`` is :data:`BASELINE` for the baseline.
    fraction : float or None
        Compliance fraction (None for the baseline and for policies without signs).
    seed : int
    scenario : pathlib.Path
    overrides : dict
        Scenario keys (``demand.event.attendance`` ...) and values.
    od : pathlib.Path or None
        OD table of the calibration variant.
    policy_file : pathlib.Path or None
    mode : str or None
        Simulation mode override.
    digests : dict
        Role -> SHA-256 of every input file (checked again on the worker).
    """

    key: str
    event: str
    calibration: str
    policy: str
    fraction: float | None
    seed: int
    scenario: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    od: Path | None = None
    policy_file: Path | None = None
    mode: str | None = None
    digests: dict[str, str] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        """The task's parameters as JSON-able values (one row of ``tasks.csv``)."""
        return {"key": self.key, "event": self.event, "calibration": self.calibration,
                "policy": self.policy, "fraction": self.fraction, "seed": self.seed,
                "scenario": str(self.scenario), "overrides": json.dumps(self.overrides),
                "od": str(self.od) if self.od else None, "mode": self.mode}


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

    events = _events(top["events"] or [], problems, base)
    calibrations = _calibrations(top["calibrations"] or [], problems, base)
    scenarios = _scenarios(events, problems)
    policies = _policies(top, events, scenarios, problems)
    runs = _runs(top, events, calibrations, policies, problems, base)
    problems.raise_if_any(SweepError)

    digests = _Digests()
    tasks: dict[str, Task] = {}
    for event_name, calib, policy, fraction, seed in runs:
        event = events[event_name]
        scen = scenarios[event_name]
        for pol, frac in ((BASELINE, None), (policy, fraction)):
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
        if v["name"] is None:
            continue
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
    from .config.scenario import load_scenario

    out = {}
    for i, (name, event) in enumerate(events.items()):
        try:
            scen = apply_overrides(load_scenario(event.scenario), event.overrides())
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
    from .policies import check_against_network, load_policies

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
          problems: Problems, base: Path) -> list[tuple]:
    """(event, calibration, policy or None, fraction, seed) of every requested run."""
    grid = any(top[k] for k in ("policies", "fractions")) or top["seeds"] is not None \
        or top["replications"] is not None
    if top["runs"] is not None:
        if grid:
            problems.add("runs: give either [[runs]] or policies/fractions/seeds, not both")
        out = []
        for i, table in enumerate(top["runs"]):
            v = check_table(table, _RUN, f"runs[{i}]", problems, base)
            where = f"runs[{i}]"
            if v["event"] is not None and v["event"] not in events:
                problems.add(f"{where}.event: unknown event {v['event']!r}")
            if v["calibration"] not in calibrations:
                problems.add(f"{where}.calibration: unknown calibration {v['calibration']!r}")
            pol = v["policy"]
            frac = v["fraction"]
            if pol == BASELINE:
                pol, frac = None, None
            elif pol in policies:
                if policies[pol].uses_signs:
                    if frac is None:
                        problems.add(f"{where}.fraction: policy {pol!r} uses message signs "
                                     "and needs a fraction")
                    elif msg := _fraction(frac):
                        problems.add(f"{where}.fraction: {msg}")
                else:
                    frac = None
            out.append((v["event"], v["calibration"], pol, frac, v["seed"]))
        return out
    seeds = top["seeds"]
    if seeds is None and top["replications"] is None:
        problems.add("seeds: give seeds = [...] or replications = N")
        seeds = []
    elif seeds is not None and top["replications"] is not None:
        problems.add("replications: give seeds or replications, not both")
    elif seeds is None:
        seeds = list(range(top["replications"]))
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            problems.add(f"seeds: {s!r} is not a non-negative integer")
    if len(set(map(repr, seeds))) != len(seeds):
        problems.add("seeds: duplicate seeds")
    fractions = top["fractions"] or []
    for f in fractions:
        if msg := _fraction(f):
            problems.add(f"fractions: {msg}")
    for p in top["policies"] or []:
        if not isinstance(p, str):
            problems.add(f"policies: expected policy names, got {p!r}")
    signs = [p for p in top["policies"] or [] if p in policies and policies[p].uses_signs]
    if signs and not fractions:
        problems.add(f"fractions: required for policies with message signs ({', '.join(signs)})")
    out = []
    for ev, cal, seed in product(events, calibrations, seeds):
        out.append((ev, cal, None, None, seed))
        for p in top["policies"] or []:
            if p not in policies:
                continue
            for f in (fractions if policies[p].uses_signs else [None]):
                out.append((ev, cal, p, None if f is None else float(f), seed))
    return out


def apply_overrides(scenario, overrides: dict[str, Any]):
    """A copy of `scenario` with demand keys (``demand.event.attendance`` ...) replaced.

    Parameters
    ----------
    scenario : egress.config.scenario.Scenario
    overrides : dict
        Dotted ``demand.…`` keys and values.

    Returns
    -------
    egress.config.scenario.Scenario

    Raises
    ------
    ScenarioError
        If a table the key goes into is missing from the scenario, or a new
        value is invalid.
    """
    return scenario.with_demand(overrides)

# --------------------------------------------------------------------------- keys


class _Digests:
    """SHA-256 of files, each file read once."""

    def __init__(self) -> None:
        self._cache: dict[Path, str] = {}

    def __call__(self, path: Path) -> str:
        path = Path(path).resolve()
        if path not in self._cache:
            self._cache[path] = file_digest(path)
        return self._cache[path]


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a file's contents."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_files(scenario, od: Path | None = None) -> dict[str, Path]:
    """Every file a scenario's simulation reads, by role.

    The scenario file, network, venues file, route files and the demand's
    OD, destination and place tables (and a calibration's OD table).
    """
    files: dict[str, Path] = {"scenario": Path(scenario.path), "network": Path(scenario.network)}
    if scenario.venues is not None:
        files["venues"] = Path(scenario.venues.path)
    for i, r in enumerate(scenario.routes):
        files[f"routes[{i}]"] = Path(r)
    for i, p in enumerate(scenario.demand.od):
        files[f"demand.od[{i}]"] = Path(p)
    for k in ("destinations", "places"):
        if getattr(scenario.demand, k) is not None:
            files[f"demand.{k}"] = Path(getattr(scenario.demand, k))
    if od is not None:
        files["calibration.od"] = Path(od)
    return files


def policy_definition(policy) -> dict[str, Any]:
    """A JSON-able description of a resolved policy (combinations expanded)."""
    return {"name": policy.name, "kind": policy.kind,
            "params": json.loads(json.dumps(policy.params, sort_keys=True, default=str)),
            "parts": [policy_definition(p) for p in policy.parts]}


def task_key(params: dict[str, Any], digests: dict[str, str],
             policy: dict[str, Any] | None = None,
             versions: dict[str, str] | None = None) -> str:
    """SHA-256 of a task's full inputs.

    Parameters
    ----------
    params : dict
        Event, overrides, calibration, policy name, fraction, seed, mode.
    digests : dict
        Role -> SHA-256 of each input file.
    policy : dict, optional
        The policy's definition (:func:`policy_definition`).
    versions : dict, optional
        Default: egress and SUMO versions in use.

    Returns
    -------
    str
        64 hex digits.
    """
    versions = versions or {"egress": __version__, "sumo": sumo.version()}
    blob = json.dumps({"params": params, "files": digests, "policy": policy,
                       "versions": versions}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _make_task(event: Event, scen, calib: str, od: Path | None, policy_name: str, policy,
               fraction: float | None, seed: int, mode: str | None, policy_file: Path | None,
               digest: Callable[[Path], str]) -> Task:
    files = input_files(scen, od)
    digests = {role: digest(p) for role, p in files.items()}
    overrides = event.overrides()
    params = {"event": event.name, "calibration": calib, "policy": policy_name,
              "fraction": fraction, "seed": seed, "mode": mode, "overrides": overrides}
    definition = policy_definition(policy) if policy is not None else None
    key = task_key(params, digests, definition)
    return Task(key, event.name, calib, policy_name, fraction, seed, event.scenario,
                overrides, od, policy_file if policy is not None else None, mode, digests)


# --------------------------------------------------------------------------- one task


def run_task(task: Task, keep_dir: str | Path | None = None) -> pd.DataFrame:
    """Run one task (on a worker) and return its result table.

    Parameters
    ----------
    task : Task
    keep_dir : path, optional
        Keep the SUMO run folder in ``keep_dir/<key>``; by default it goes in
        a temporary folder that is removed afterwards.

    Returns
    -------
    pandas.DataFrame
        One row per vehicle group (:data:`GROUPS`).

    Raises
    ------
    SweepError
        If the input files differ from the ones the task was made for.
    EgressError
        From the scenario, policy, demand or SUMO.
    """
    started = time.perf_counter()
    if keep_dir is not None:
        work = Path(keep_dir) / task.key
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    else:
        work = Path(tempfile.mkdtemp(prefix=f"egress-task-{task.key[:12]}-"))
    try:
        table = _simulate(task, work, save=keep_dir is not None)
    finally:
        if keep_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    table["task_seconds"] = time.perf_counter() - started
    return table


def _scenario_for(task: Task):
    from .config.scenario import load_scenario

    scen = apply_overrides(load_scenario(task.scenario, check_network=False), task.overrides)
    changes: dict[str, Any] = {"seed": task.seed}
    if task.mode is not None:
        changes["mode"] = task.mode
    return scen.with_simulation(**changes)


_DIGESTS: dict[tuple, str] = {}


def _worker_digest(path: Path) -> str | None:
    """:func:`file_digest` of `path`, None if it is not a file; memoised per
    process by the file's identity (device, inode, size, modification and
    status-change times), so a worker hashes each input once, and again
    after it changes."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    ident = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if ident not in _DIGESTS:
        if len(_DIGESTS) >= 256:
            _DIGESTS.clear()
        _DIGESTS[ident] = file_digest(path)
    return _DIGESTS[ident]


def _check_inputs(task: Task, scen) -> None:
    files = input_files(scen, task.od)
    problems = Problems(f"task {task.key[:12]} ({task.event}, {task.policy})")
    for role, path in files.items():
        want = task.digests.get(role)
        digest = _worker_digest(path)
        if digest is None:
            problems.add(f"{role}: {path} not found on this worker")
        elif want is not None and digest != want:
            problems.add(f"{role}: {path} differs from the file the sweep was started with")
    for role in set(task.digests) - set(files):
        problems.add(f"{role}: no longer named by the scenario")
    problems.raise_if_any(SweepError)


def _simulate(task: Task, work: Path, save: bool = False) -> pd.DataFrame:
    """The adapter from a task to a SUMO run and its per-group table.

    Builds on :mod:`egress.policies` (variant inputs) and on the run engine
    (:mod:`egress.engine`), so travel times are measured by the same
    definition and checked by the same invariants as everywhere else. A task
    reads no edge speeds, so SUMO writes no edgeData; the per-vehicle table
    is written to the run folder only with `save` (a kept run).

    Raises
    ------
    InvalidRunError
        If the run's outputs break a physical invariant (the task fails).
    """
    from . import engine
    from .network import study_area_edges
    from .policies import load_policies, prepare_variant

    scen = _scenario_for(task)
    _check_inputs(task, scen)
    sim = scen.simulation
    routes = list(scen.routes) or _cached_demand(task, scen)
    vehicles, vtypes, departures = _read_demand(routes)
    network, additional, signs = scen.network, [], []
    if task.policy != BASELINE:
        policy = load_policies(task.policy_file)[task.policy]
        v = prepare_variant(policy, task.fraction, scen.network, routes, work / "inputs",
                            begin=sim.begin, end=sim.end, demand=(vehicles, vtypes))
        network, routes, additional, signs = v.network, v.routes, v.additional, v.signs
    config = engine.RunConfig.from_scenario(scen, work / "run", routes, network=network,
                                            additional=tuple(additional), edgedata_period=None)
    res = engine.run(config, departures=departures,
                     inside=study_area_edges(scen.network, scen.venues),
                     table_format=scen.output_format if save else None, tables=("vehicles",))
    if not res.valid:
        raise InvalidRunError(str(config.run_dir), res.problems)
    veh = res.vehicles.set_index("vehicle")
    rerouters = {r for s in signs for r in s.rerouters}
    addressed = {v for s in signs for v in s.vehicles}
    rows = []
    for group in GROUPS:
        g = veh if group == "all" else veh[veh["kind"] == group]
        status = g["status"].value_counts()
        rows.append({
            "group": group, "vehicles": len(g),
            "mean_travel_time_min": float(g["travel_time"].mean() / 60) if len(g) else math.nan,
            "arrived": int(status.get("arrived", 0)),
            "left_area": int(status.get("left_area", 0)),
            "inside_at_end": int(status.get("inside_at_end", 0)),
            "not_inserted": int(status.get("not_inserted", 0)),
            "teleported": int((g["teleports"] > 0).sum()),
            "addressed": int(g.index.isin(list(addressed)).sum()),
            "complied": int(g["rerouted_by"].isin(rerouters).sum()) if rerouters else 0,
        })
    table = pd.DataFrame(rows)
    for k, v in {**task.params(), "teleports": res.teleports,
                 "relies_on_teleports": res.relies_on_teleports, "sumo_mode": res.mode,
                 "sumo_seconds": res.sumo_seconds, "egress_version": __version__,
                 "sumo_version": sumo.version()}.items():
        table[k] = v
    table["fraction"] = table["fraction"].astype(float)
    return table


_DEMAND: dict[tuple, tuple[dict, dict, pd.DataFrame]] = {}


def _read_demand(routes: list[Path]) -> tuple[dict, dict, pd.DataFrame]:
    """:func:`egress.policies.read_demand` and the planned departures
    (:func:`egress.engine.read_departures`), memoised per worker process for
    the last few route-file sets (the tasks of a sweep share a handful)."""
    from .engine import read_departures
    from .policies import read_demand

    key = tuple((str(r), os.stat(r).st_mtime_ns, os.stat(r).st_size) for r in routes)
    if key not in _DEMAND:
        while len(_DEMAND) >= 4:
            _DEMAND.pop(next(iter(_DEMAND)))
        vehicles, vtypes = read_demand(routes)
        _DEMAND[key] = (vehicles, vtypes, read_departures(routes))
    return _DEMAND[key]


def cache_dir() -> Path:
    """Where workers cache built demand (``$EGRESS_CACHE`` or the temp folder)."""
    env = os.environ.get("EGRESS_CACHE")
    if env:
        return Path(env)
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"egress-cache-{uid}"


def _cached_demand(task: Task, scen) -> list[Path]:
    """Route files of the task's demand, built once per machine and shared.

    The demand of a task depends on its scenario files, overrides,
    calibration OD and seed, not on the policy, so the baseline and all its
    variants share one build.
    """
    from .demand import build_demand

    params = {"overrides": task.overrides, "seed": task.seed,
              "files": {k: v for k, v in task.digests.items()}}
    key = task_key(params, {}, None)
    folder = cache_dir() / "demand" / key[:32]
    done = folder / "routes.rou.xml"
    if not done.is_file():
        tmp = folder.with_name(f"{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
        kwargs: dict[str, Any] = {"seed": task.seed}
        if task.od is not None:
            kwargs["od"] = task.od
        try:
            build_demand(scen, tmp, **kwargs)
            folder.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, folder)
            except OSError:  # another worker finished first: use its build
                log.debug("demand %s built concurrently", key[:12])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return [done]


# --------------------------------------------------------------------------- the store


def results_dir(out: str | Path) -> Path:
    return Path(out) / "results"


def finished_keys(out: str | Path) -> set[str]:
    """Keys of the tasks whose result part is in the store."""
    root = results_dir(out)
    if not root.is_dir():
        return set()
    return {p.parent.name[4:] for p in root.glob("key=*/part.parquet")}


def write_result(out: str | Path, key: str, table: pd.DataFrame) -> Path:
    """Write one task's table to ``OUT/results/key=<key>/part.parquet`` atomically."""
    folder = results_dir(out) / f"key={key}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".part-{uuid.uuid4().hex}.tmp"
    table.to_parquet(tmp, index=False)
    final = folder / "part.parquet"
    os.replace(tmp, final)
    failure = Path(out) / "failures" / f"key={key}.json"
    failure.unlink(missing_ok=True)
    return final


def _write_failure(out: Path, task: Task, exc: BaseException, attempts: int) -> Path:
    folder = out / "failures"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"key={task.key}.json"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    record = {**task.params(), "error": type(exc).__name__, "message": str(exc),
              "traceback": tb[-4000:], "attempts": attempts,
              "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def load_results(out: str | Path) -> pd.DataFrame:
    """All finished tasks' tables of a sweep folder, as one DataFrame.

    Parameters
    ----------
    out : str or pathlib.Path
        The sweep's output folder.

    Returns
    -------
    pandas.DataFrame
        One row per task and vehicle group; empty if nothing finished.
    """
    import pyarrow.dataset as ds

    parts = sorted(results_dir(out).glob("key=*/part.parquet"))
    if not parts:
        return pd.DataFrame(columns=["key", "event", "calibration", "policy", "fraction",
                                     "seed", "group", "mean_travel_time_min"])
    table = ds.dataset([str(p) for p in parts], format="parquet").to_table()
    return table.to_pandas()


def load_failures(out: str | Path) -> pd.DataFrame:
    """Failed tasks of a sweep folder (one row each: parameters, error, attempts)."""
    rows = [json.loads(p.read_text()) for p in sorted((Path(out) / "failures").glob("*.json"))]
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
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
    from .evaluation import mean_ci

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
    order = {g: i for i, g in enumerate(GROUPS)}
    table["_g"] = table["group"].map(order)
    return table.sort_values(["event", "calibration", "policy", "fraction", "_g"]) \
        .drop(columns="_g").reset_index(drop=True)


def format_summary(table: pd.DataFrame, group: str = "event") -> str:
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


# --------------------------------------------------------------------------- running


@dataclass
class SweepResult:
    """What :func:`run_sweep` did.

    Attributes
    ----------
    out : pathlib.Path
    tasks : int
        Tasks in the sweep.
    skipped : int
        Already finished before this run.
    finished : int
        Finished in this run.
    failed : list of str
        Keys of the tasks that failed after their retries.
    seconds : float
        Wall time of this run.
    """

    out: Path
    tasks: int
    skipped: int
    finished: int
    failed: list[str]
    seconds: float

    def results(self) -> pd.DataFrame:
        """:func:`load_results` of the sweep folder."""
        return load_results(self.out)

    def summary(self) -> pd.DataFrame:
        """:func:`summarize` of the results."""
        return summarize(self.results())

    def __str__(self) -> str:
        return (f"{self.tasks} tasks: {self.skipped} already done, {self.finished} run now, "
                f"{len(self.failed)} failed ({self.seconds:.1f} s); results in "
                f"{results_dir(self.out)}")


def run_sweep(sweep: Sweep | str | Path, out: str | Path, scheduler=None,
              workers: int | None = None, progress: bool = True, *,
              retries: int | None = None,
              runner: Callable[..., pd.DataFrame] | None = None) -> SweepResult:
    """Run a sweep on Dask, skipping tasks whose results are already stored.

    Parameters
    ----------
    sweep : Sweep, str or pathlib.Path
        A loaded sweep or a sweep file.
    out : str or pathlib.Path
        Output folder (results store, failures, task list).
    scheduler : str or distributed.Client, optional
        Address of a running Dask scheduler (``tcp://host:8786``), or a
        connected Client; default: an in-process ``LocalCluster``.
    workers : int, optional
        Workers of the local cluster (default: CPUs, at most the number of
        pending tasks), each one thread of this process running one SUMO
        process at a time. Ignored with a scheduler.
    progress : bool, default True
        Progress bar with counts and ETA.
    retries : int, optional
        Overrides the sweep's ``retries``.
    runner : callable, optional
        ``runner(task, keep_dir) -> DataFrame``; default :func:`run_task`.

    Returns
    -------
    SweepResult

    Raises
    ------
    SweepError
        Invalid sweep file.
    SchedulerError
        If the scheduler cannot be reached within :data:`CONNECT_TIMEOUT` seconds.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sweep.path, out / "sweep.toml")
    sweep.table().to_csv(out / "tasks.csv", index=False)
    retries = sweep.retries if retries is None else int(retries)
    runner = runner or run_task
    keep = str((out / "runs").resolve()) if sweep.keep_runs else None

    done = finished_keys(out)
    pending = [t for t in sweep.tasks if t.key not in done]
    skipped = len(sweep.tasks) - len(pending)
    failed: list[str] = []
    finished = 0
    if pending:
        bar = tqdm(total=len(sweep.tasks), initial=skipped, unit="task", desc="sweep",
                   disable=None if progress else True, smoothing=0.1)
        with _connect(scheduler, workers, len(pending)) as client:
            finished, failed = _execute(client, pending, out, runner, keep, retries, bar)
        bar.close()
    result = SweepResult(out, len(sweep.tasks), skipped, finished, failed,
                         time.perf_counter() - started)
    _record(sweep, out, result, scheduler)
    log.info("%s", result)
    return result


def _execute(client, pending: list[Task], out: Path, runner, keep: str | None, retries: int,
             bar) -> tuple[int, list[str]]:
    from distributed import as_completed

    attempts: dict[str, int] = {}
    owner: dict[str, Task] = {}

    def submit(task: Task):
        attempts[task.key] = attempts.get(task.key, 0) + 1
        dask_key = f"egress-{task.key[:16]}-{attempts[task.key]}-{uuid.uuid4().hex[:8]}"
        owner[dask_key] = task
        return client.submit(runner, task, keep, key=dask_key, pure=False)

    futures = as_completed([submit(t) for t in pending], loop=client.loop)
    finished, failed = 0, []
    for future in futures:
        task = owner.pop(future.key)
        try:
            table = future.result()
        except Exception as exc:  # noqa: BLE001 - any task error is recorded, not raised
            if attempts[task.key] <= retries:
                log.info("task %s failed (%s: %s); retrying", task.key[:12],
                         type(exc).__name__, exc)
                futures.add(submit(task))
            else:
                _write_failure(out, task, exc, attempts[task.key])
                failed.append(task.key)
                log.warning("task %s (%s, %s, fraction %s, seed %s) failed after %d "
                            "attempt(s): %s", task.key[:12], task.event, task.policy,
                            task.fraction, task.seed, attempts[task.key], exc)
                bar.set_postfix(failed=len(failed))
            future.release()
            continue
        write_result(out, task.key, table)
        future.release()
        finished += 1
        bar.update()
    return finished, failed


class _connect:
    """Context manager: a Dask client to a scheduler address, a Client, or a LocalCluster."""

    def __init__(self, scheduler, workers: int | None, pending: int):
        self.scheduler, self.workers, self.pending = scheduler, workers, pending
        self.cluster = None
        self.client = None
        self.own = True

    def __enter__(self):
        from distributed import Client, LocalCluster

        if self.scheduler is not None and not isinstance(self.scheduler, str):
            self.own = False
            self.client = self.scheduler
            return self.client
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=f"{CONNECT_TIMEOUT}s",
                                     set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise SchedulerError(f"cannot reach the Dask scheduler at {self.scheduler} "
                                     f"within {CONNECT_TIMEOUT:.0f} s ({type(exc).__name__}); "
                                     "is `dask scheduler` running there?") from None
            return self.client
        n = self.workers or min(os.cpu_count() or 1, self.pending)
        # a task's work is a SUMO process: the workers are threads of this
        # process, which start at once and share its imports and caches
        self.cluster = LocalCluster(n_workers=max(1, n), threads_per_worker=1, processes=False,
                                    dashboard_address=":0", silence_logs=logging.ERROR)
        self.client = Client(self.cluster, set_as_default=False)
        return self.client

    def __exit__(self, *exc) -> None:
        if self.own and self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _record(sweep: Sweep, out: Path, result: SweepResult, scheduler) -> None:
    from .engine import versions

    info = {"sweep": str(sweep.path), "name": sweep.name, "description": sweep.description,
            "events": [dataclasses.asdict(e) for e in sweep.events],
            "scheduler": scheduler if isinstance(scheduler, str | None) else "client",
            "tasks": result.tasks, "skipped": result.skipped, "finished": result.finished,
            "failed": result.failed, "seconds": result.seconds,
            "stored": len(finished_keys(out)), "versions": versions()}
    (out / "sweep.json").write_text(json.dumps(info, indent=2, default=str) + "\n")


def tasks_table(tasks: Iterable[Task]) -> pd.DataFrame:
    """One row per task (parameters and key)."""
    return pd.DataFrame([t.params() for t in tasks])


__all__ = ["BASELINE", "GROUPS", "SchedulerError", "Sweep", "SweepError", "SweepResult", "Task",
           "apply_overrides", "file_digest", "finished_keys", "format_summary", "input_files",
           "load_failures", "load_results", "load_sweep", "run_sweep",
           "run_task", "summarize", "task_key", "write_result"]
