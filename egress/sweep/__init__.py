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
:mod:`egress.policies.evaluation`: from the moment a vehicle is ready to leave to its
arrival or to leaving the study area), how vehicles ended, teleports,
vehicles addressed by and complying with signs, and wall times.

Modules
-------
:mod:`.file`
    The sweep file: :func:`load_sweep`, :class:`Sweep`.
:mod:`.tasks`
    :class:`Task` and its key.
:mod:`.worker`
    :func:`run_task`: one task on a worker.
:mod:`.store`
    The results store: :func:`load_results`.
:mod:`.runner`
    :func:`run_sweep` on Dask.
:mod:`.analysis`
    Paired savings from the results: :func:`savings`.
"""

from __future__ import annotations

from .analysis import format_savings, savings
from .file import Event, Sweep, load_sweep
from .runner import SweepResult, run_sweep
from .store import finished_keys, load_failures, load_results
from .tasks import Task, file_digest, input_files, task_key
from .worker import KIND_GROUPS, cache_dir, run_task

__all__ = ["Event", "KIND_GROUPS", "Sweep", "SweepResult", "Task", "cache_dir", "file_digest",
           "finished_keys", "format_savings", "input_files", "load_failures", "load_results",
           "load_sweep", "run_sweep", "run_task", "savings", "task_key"]
