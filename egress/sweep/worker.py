"""Running one sweep task on a worker: check its inputs, build (or reuse) its
demand, prepare the policy variant, run the engine, tabulate per vehicle group."""

from __future__ import annotations

import logging
import math
import os
import shutil
import stat
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from .. import engine, sumo
from .._version import __version__
from ..config.scenario import load_scenario
from ..demand import build_demand
from ..errors import InvalidRunError, Problems, SweepError
from ..network import study_area_edges
from ..policies import BASELINE, load_policies, prepare_variant, read_demand
from .tasks import Task, file_digest, input_files, task_key

log = logging.getLogger(__name__)

#: Vehicle groups of a task's result table (by kind; compliance is counted, not paired).
KIND_GROUPS = ("event", "background", "all")

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
    scen = load_scenario(task.scenario, check_network=False).with_demand(task.overrides)
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
    for group in KIND_GROUPS:
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
    key = tuple((str(r), os.stat(r).st_mtime_ns, os.stat(r).st_size) for r in routes)
    if key not in _DEMAND:
        while len(_DEMAND) >= 4:
            _DEMAND.pop(next(iter(_DEMAND)))
        vehicles, vtypes = read_demand(routes)
        _DEMAND[key] = (vehicles, vtypes, engine.read_departures(routes))
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



__all__ = ["KIND_GROUPS", "cache_dir", "run_task"]
