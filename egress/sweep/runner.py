"""Running a sweep on Dask: a local cluster by default, an existing one by
address; finished tasks are skipped, failed ones retried (:func:`run_sweep`)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import limits
from ..engine import versions
from ..errors import SchedulerError
from ..limits import check_value
from ..progress import bar as progress_bar
from ..progress import note as progress_note
from .analysis import savings
from .file import Sweep, load_sweep
from .store import _write_failure, finished_keys, load_results, results_dir, write_result
from .tasks import Task
from .worker import run_task

log = logging.getLogger(__name__)

#: Seconds to wait for an unreachable scheduler.
CONNECT_TIMEOUT = 3.0


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

    def savings(self) -> pd.DataFrame:
        """:func:`egress.sweep.analysis.savings` of the results."""
        return savings(self.results())

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
    started = time.perf_counter()
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    if isinstance(scheduler, str):
        probe_scheduler(scheduler)  # before anything is written
    if workers is not None:
        check_value(limits.workers, workers, "workers")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # sweep.json records a finished run: from here on the folder's earlier one is stale
    (out / "sweep.json").unlink(missing_ok=True)
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
        bar = progress_bar(progress, total=len(sweep.tasks), initial=skipped, unit="task",
                           desc="sweep", smoothing=0.1)
        with _connect(scheduler, workers, len(pending)) as client:
            dashboard = dashboard_link(client)
            if dashboard:
                log.info("Dask dashboard: %s", dashboard)
                progress_note(f"Dask dashboard (live view of the workers): {dashboard}",
                              progress)
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


def dashboard_link(client) -> str | None:
    """The address of the Dask dashboard of `client`'s cluster (None without one).

    A local cluster serves it on a free port of this machine; a cluster's
    scheduler serves it where it runs (by default port 8787).
    """
    try:
        if "dashboard" not in (client.scheduler_info().get("services") or {}):
            return None  # the scheduler serves none (e.g. without bokeh)
        link = client.dashboard_link
    except Exception:  # noqa: BLE001 - no dashboard to point at
        return None
    return str(link) if link else None


_ADDRESS = re.compile(r"(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9a-fA-F:]+\]|[^\s/:\[\]]+)"
                      r"(?::(?P<port>\d{1,5}))?/?")


def probe_scheduler(address: str) -> None:
    """Check a Dask scheduler address and that something listens there.

    A plain TCP connection is tried first, so an unreachable scheduler is one line of
    bad input before any output is written, and no half-built Dask client is left
    to complain when it is garbage-collected.

    Raises
    ------
    SchedulerError
        If the address is malformed or nothing answers within :data:`CONNECT_TIMEOUT`.
    """
    m = _ADDRESS.fullmatch(address.strip())
    scheme = (m["scheme"] or "tcp") if m else None
    if m is None or scheme not in ("tcp", "tls") or m["port"] is None \
            or not 0 < int(m["port"]) < 65536:
        raise SchedulerError(f"--scheduler: {address!r} is not a Dask scheduler address "
                             "(expected tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786)")
    host = m["host"].strip("[]")
    try:
        with socket.create_connection((host, int(m["port"])), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise SchedulerError(f"cannot reach the Dask scheduler at {address} within "
                             f"{CONNECT_TIMEOUT:.0f} s ({type(exc).__name__}); is `dask "
                             "scheduler` running there?") from None


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
    info = {"sweep": str(sweep.path), "name": sweep.name, "description": sweep.description,
            "events": [dataclasses.asdict(e) for e in sweep.events],
            "scheduler": scheduler if isinstance(scheduler, str | None) else "client",
            "tasks": result.tasks, "skipped": result.skipped, "finished": result.finished,
            "failed": result.failed, "seconds": result.seconds,
            "stored": len(finished_keys(out)), "versions": versions()}
    (out / "sweep.json").write_text(json.dumps(info, indent=2, default=str) + "\n")



__all__ = ["CONNECT_TIMEOUT", "SweepResult", "run_sweep"]
