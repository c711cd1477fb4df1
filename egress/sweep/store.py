"""The results store of a sweep: one small table per finished task, written
atomically, and a record per failed task (see :mod:`egress.sweep`)."""

from __future__ import annotations

import json
import os
import time
import traceback
import uuid
from pathlib import Path

import pandas as pd

from .tasks import Task


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



__all__ = ["finished_keys", "load_failures", "load_results", "results_dir", "write_result"]
