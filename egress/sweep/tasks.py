"""Sweep tasks and their keys: one simulation each, named by the SHA-256 of
everything its result depends on (see :mod:`egress.sweep`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import sumo
from .._version import __version__


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


def _make_task(event, scen, calib: str, od: Path | None, policy_name: str, policy,
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


def tasks_table(tasks: Iterable[Task]) -> pd.DataFrame:
    """One row per task (parameters and key)."""
    return pd.DataFrame([t.params() for t in tasks])



__all__ = ["Task", "file_digest", "input_files", "policy_definition", "task_key", "tasks_table"]
