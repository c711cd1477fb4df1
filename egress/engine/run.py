"""One SUMO run, start to checked result: :func:`run`.

:func:`run` writes the configuration (:func:`egress.engine.config.write_config`),
runs SUMO, reads what happened into typed tables and checks them against the
physical invariants (:mod:`egress.engine.invariants`). The run folder records
its state in ``summary.json``:

``running``
    written before anything of a new run is written (:func:`begin_state`; by
    :func:`egress.simulate` before the demand is built); outputs of an earlier
    run in the folder are deleted first, so nothing stale survives a failure;
``complete``
    the run finished and its outputs passed every invariant;
``invalid``
    the run finished but broke an invariant (the reasons are listed);
``failed``
    SUMO failed (its last error is quoted), or a step before it did.

With the state it records the digest of the run's inputs (``inputs``,
:func:`inputs_digest`) and what the caller adds (``command``, ``scenario``).

A :class:`RunResult` that is not valid must not be averaged into a result;
callers report it with its reasons instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import sumo
from .._version import __version__
from ..errors import RunError
from ..files import atomic_json
from . import outputs
from .config import OUTPUTS, RunConfig, sumo_options, write_config
from .invariants import TELEPORT_LIMIT, check_edges, check_vehicles, teleport_share
from .process import run_sumo
from .vehicles import read_departures, skipped_before_begin, vehicle_table

log = logging.getLogger(__name__)

#: The run folder's record of its state, counts and checks.
SUMMARY = "summary.json"
#: Tables written into a run folder (with the extension of the chosen format).
TABLES = ("vehicles", "edges")
#: What egress derives from a valid run (engineering measures; with ``gis/``).
DERIVED = ("measures.csv", "places.csv", "throughput.csv",
           # written into the run folder by egress validate: they describe this run only
           "validation.csv", "validation.json", "validation.png")


@dataclass
class RunResult:
    """What one run produced, checked.

    Attributes
    ----------
    config : RunConfig
    vehicles : pandas.DataFrame
        One row per vehicle (:func:`egress.engine.vehicles.vehicle_table`).
    edges : pandas.DataFrame or None
        Per edge and interval (:func:`egress.engine.outputs.read_edgedata`);
        None when the run wrote no edgeData.
    statistics : dict
        SUMO's counts (:func:`egress.engine.outputs.read_statistics`).
    mode : str
        The mode SUMO ran in, read from its output (``"micro"``/``"meso"``).
    seed : int
        The seed SUMO used, read from its output.
    problems : list of str
        Broken invariants; empty for a valid run.
    skipped : int
        Vehicles of the route files due before the window (discarded by SUMO).
    sumo_seconds, read_seconds : float
        Wall time of SUMO and of reading and checking its outputs.
    records : list of tuple or None
        The raw vehroutes (:func:`egress.engine.outputs.vehroute_records`),
        kept when :func:`run` was asked to.
    """

    config: RunConfig
    vehicles: pd.DataFrame
    edges: pd.DataFrame | None
    statistics: dict[str, float]
    mode: str
    seed: int
    problems: list[str] = field(default_factory=list)
    skipped: int = 0
    sumo_seconds: float = math.nan
    read_seconds: float = math.nan
    records: list[tuple] | None = None

    @property
    def run_dir(self) -> Path:
        return self.config.run_dir

    @property
    def valid(self) -> bool:
        """True when the outputs passed every invariant."""
        return not self.problems

    @property
    def teleports(self) -> int:
        return int(self.statistics.get("teleports", 0))

    @property
    def teleport_share(self) -> float:
        return teleport_share(self.statistics)

    @property
    def relies_on_teleports(self) -> bool:
        """More than :data:`TELEPORT_LIMIT` of the inserted vehicles teleported."""
        return self.teleport_share > TELEPORT_LIMIT

    def summary(self) -> dict[str, Any]:
        """Counts, checks, mode, seed and versions (what ``summary.json`` holds)."""
        return summarize(self)

    def __str__(self) -> str:
        return format_summary(self.summary())


def run(config: RunConfig, *, departures: pd.DataFrame | None = None,
        inside: frozenset[str] | None = None, progress: bool = False, keep_records: bool = False,
        table_format: str | None = None, tables: tuple[str, ...] = TABLES,
        extra: dict[str, Any] | None = None) -> RunResult:
    """Run SUMO for `config` and return its checked outputs.

    Parameters
    ----------
    config : RunConfig
    departures : pandas.DataFrame, optional
        ``vehicle, vtype, ready`` of the run's vehicles
        (:func:`egress.engine.vehicles.read_departures`); default: read from
        the route files.
    inside : frozenset of str, optional
        Study-area edges (travel times end when a vehicle leaves them); None:
        the whole network.
    progress : bool, default False
        A progress bar of simulated time.
    keep_records : bool, default False
        Keep the raw vehroutes in :attr:`RunResult.records`.
    table_format : {"parquet", "csv"}, optional
        Write tables into the run folder in this format.
    tables : tuple of str, default ("vehicles", "edges")
        Which tables to write.
    extra : dict, optional
        More fields for ``summary.json`` (scenario, name, ...).

    Returns
    -------
    RunResult
        Check :attr:`RunResult.valid` before using its numbers.

    Raises
    ------
    SumoError
        If SUMO fails (the folder's state is then ``failed``).
    InputError
        If a route file cannot give every vehicle a planned departure.
    """
    if departures is None:
        departures = read_departures(config.routes)
    extra = dict(extra or {})
    begin_state(config.run_dir, extra)
    write_config(config)
    extra.setdefault("inputs", inputs_digest(config))
    _write_state(config.run_dir, {"state": "running", **extra})
    started = time.perf_counter()
    try:
        run_sumo(config.file, config.begin, config.end, progress=progress)
    except RunError as exc:
        fail_state(config.run_dir, exc, extra)
        raise
    sumo_seconds = time.perf_counter() - started
    result = collect(config, departures, inside=inside, keep_records=keep_records)
    result.sumo_seconds = sumo_seconds
    if table_format is not None:
        write_tables(result, table_format, tables)
    _write_state(config.run_dir, {**result.summary(), **extra})
    if not result.valid:
        log.warning("%s: invalid run: %s", config.run_dir, "; ".join(result.problems))
    return result


def collect(config: RunConfig, departures: pd.DataFrame, *,
            inside: frozenset[str] | None = None, keep_records: bool = False) -> RunResult:
    """Read a finished run folder into a checked :class:`RunResult`."""
    t0 = time.perf_counter()
    stats = outputs.read_statistics(config.output("statistics"))
    records = outputs.vehroute_records(config.output("vehroutes"))
    teleports = outputs.read_teleports(config.output("log"))
    vehicles = vehicle_table(departures, records, begin=config.begin, end=config.end,
                             inside=inside, teleports=teleports)
    skipped = skipped_before_begin(departures, config.begin)
    after_end = int((departures["ready"] >= config.end).sum())
    problems = check_vehicles(vehicles, stats, begin=config.begin, end=config.end,
                              skipped=skipped, after_end=after_end)
    edges = None
    if config.edgedata_period is not None:
        edges = outputs.read_edgedata(config.output("edgedata"))
        problems += check_edges(edges)
    if config.tripinfo:
        vehicles = _with_tripinfo(vehicles, outputs.read_tripinfo(config.output("tripinfo")))
    mode = "meso" if stats.get("meso") else "micro"
    if mode != config.mode:
        problems.append(f"SUMO ran {mode} but the run asked for {config.mode}")
    seed = stats.get("seed", math.nan)
    if seed != config.seed:
        problems.append(f"SUMO ran with seed {seed:.0f} but the run asked for {config.seed}")
    result = RunResult(config, vehicles, edges, stats, mode,
                       int(seed) if math.isfinite(seed) else -1, problems, skipped,
                       records=records if keep_records else None)
    result.read_seconds = time.perf_counter() - t0
    return result


def _with_tripinfo(vehicles: pd.DataFrame, trips: pd.DataFrame) -> pd.DataFrame:
    """SUMO's route length, waiting time, time loss and speed factor per vehicle."""
    cols = ["route_length", "waiting_time", "time_loss", "speed_factor"]
    return vehicles.merge(trips[["vehicle", *cols]], on="vehicle", how="left")


def write_tables(result: RunResult, fmt: str, tables: tuple[str, ...] = TABLES
                 ) -> dict[str, Path]:
    """Write the vehicle (and edge) tables into the run folder as Parquet or CSV."""
    paths = {}
    for name in tables:
        table = result.vehicles if name == "vehicles" else result.edges
        if table is None:
            continue
        path = result.run_dir / f"{name}.{fmt}"
        if fmt == "csv":
            table.to_csv(path, index=False)
        else:
            table.to_parquet(path, index=False)
        paths[name] = path
    return paths


def _clear(run_dir: Path, keep: tuple[str, ...] = ()) -> None:
    """Delete the outputs of an earlier (or a failed) run in `run_dir`, but `keep`:
    nothing stale or half-written may survive."""
    if not run_dir.is_dir():
        return
    names = [*OUTPUTS.values(), SUMMARY, *DERIVED, *(f"{t}.{ext}" for t in TABLES
                                                      for ext in ("parquet", "csv"))]
    for name in names:
        if name not in keep:
            (run_dir / name).unlink(missing_ok=True)
    if (run_dir / "gis").is_dir():
        shutil.rmtree(run_dir / "gis")


def inputs_digest(config: RunConfig) -> str:
    """A digest of everything a run reads: its SUMO options and the contents of
    its network, route and additional files (recorded as ``inputs`` in
    ``summary.json``, so a folder says which inputs its results belong to)."""
    h = hashlib.sha256(json.dumps(sumo_options(config), sort_keys=True).encode())
    for path in (config.network, *config.routes, *config.additional):
        h.update(Path(path).read_bytes())
    return h.hexdigest()


def begin_state(run_dir: Path, extra: dict[str, Any] | None = None) -> None:
    """Mark a run folder ``running`` and delete the outputs of an earlier run in it.

    Called before anything of a new run is written (its demand included), so a
    run that fails at any step leaves no earlier result looking current.
    """
    _clear(Path(run_dir))
    _write_state(Path(run_dir), {"state": "running", **(extra or {})})


def fail_state(run_dir: Path, error: BaseException | str,
               extra: dict[str, Any] | None = None) -> None:
    """Mark a run folder ``failed`` with the error, its outputs cleared (the log kept)."""
    _clear(Path(run_dir), keep=(OUTPUTS["log"],))
    _write_state(Path(run_dir), {"state": "failed", "error": str(error), **(extra or {})})


def _write_state(run_dir: Path, record: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_json(run_dir / SUMMARY, record, indent=2)


def read_state(run_dir: str | Path) -> dict[str, Any] | None:
    """The ``summary.json`` of a run folder (None if there is none)."""
    path = Path(run_dir) / SUMMARY
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def summarize(result: RunResult) -> dict[str, Any]:
    """The run's record: state, counts by status, teleports, checks, mode, seed, versions.

    Returns
    -------
    dict
        ``state`` (``complete`` or ``invalid``), ``problems``, ``loaded``,
        ``inserted``, one count per status (``arrived, left_area,
        inside_at_end, not_inserted``), ``skipped_before_begin``,
        ``teleports``, ``teleported_vehicles``, ``teleport_share``,
        ``relies_on_teleports``, ``mean_travel_time`` (s, over every
        vehicle), ``mode``, ``seed``, ``begin``, ``end``, ``sumo_seconds``,
        ``versions``.
    """
    v = result.vehicles
    status = v["status"].value_counts()
    out: dict[str, Any] = {
        "state": "complete" if result.valid else "invalid",
        "problems": list(result.problems),
        "loaded": int(len(v)),
        "inserted": int((v["status"] != "not_inserted").sum()),
        **{s: int(status.get(s, 0)) for s in ("arrived", "left_area", "inside_at_end",
                                               "not_inserted")},
        "skipped_before_begin": result.skipped,
        "teleports": result.teleports,
        "teleported_vehicles": int((v["teleports"] > 0).sum()),
        "teleport_share": result.teleport_share,
        "relies_on_teleports": result.relies_on_teleports,
        "mean_travel_time": float(v["travel_time"].mean()) if len(v) else math.nan,
        "mode": result.mode, "seed": result.seed,
        "begin": result.config.begin, "end": result.config.end,
        "sumo_seconds": result.sumo_seconds,
        "versions": versions(),
    }
    return out


def format_summary(s: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    lines = []
    if s.get("state") == "invalid":
        lines.append("INVALID RUN (no number of it is a result): " + "; ".join(s["problems"]))
    lines += [
        f"vehicles: {s['loaded']} due, {s['arrived']} arrived, {s['left_area']} left the study "
        f"area, {s['inside_at_end']} still inside at the end, {s['not_inserted']} never got "
        "onto the network",
        f"teleports: {s['teleports']} ({100 * s['teleport_share']:.2f}% of inserted vehicles)"
        + (f"  WARNING: above {100 * TELEPORT_LIMIT:.0f}%: the run relies on teleports, "
           "not a valid result" if s["relies_on_teleports"] else ""),
        f"mean travel time (from the planned departure, so the wait to get onto the network "
        f"counts): {s['mean_travel_time'] / 60:.1f} min; mode {s['mode']}, seed {s['seed']}",
    ]
    if s.get("run_dir"):
        lines.append(f"run folder: {s['run_dir']}")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    """Versions of egress, SUMO and Python, recorded with every result."""
    return {"egress": __version__, "sumo": sumo.version(), "python": platform.python_version(),
            "platform": sys.platform}
