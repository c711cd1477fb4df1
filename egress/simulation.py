"""Running a scenario in SUMO: ``egress simulate``.

:func:`simulate` writes a self-describing run folder and runs the ``sumo``
binary on it with SUMO's built-in outputs (no per-step TraCI loop)::

    run.sumocfg          opens in sumo-gui; ``sumo -c run.sumocfg`` re-runs it
    edgedata.add.xml     the edge-statistics definition
    tripinfo.xml         per-vehicle trips, unfinished vehicles included
    edgedata.xml         per-edge statistics per interval
    vehroutes.xml        routes with the time each edge was left
    statistics.xml       vehicle and teleport counts
    sumo.log             SUMO's messages
    trips.parquet        tidy per-vehicle table (see egress.outputs.read_tripinfo)
    edges.parquet        tidy per-edge-interval table (read_edgedata)
    summary.json         counts, mean travel time, inputs, seed and versions

(``.csv`` instead of ``.parquet`` when the scenario asks for CSV.) Paths in
the configuration are relative to the run folder.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__, outputs, sumo
from .errors import SumoError
from .scenario import Scenario, load_scenario

log = logging.getLogger(__name__)

#: Share of teleported vehicles above which a run is flagged as invalid.
TELEPORT_LIMIT = 0.01


@dataclass
class RunResult:
    """What one simulation produced.

    Attributes
    ----------
    run_dir : pathlib.Path
    config : pathlib.Path
        The ``.sumocfg`` of the run.
    trips : pandas.DataFrame
        Per-vehicle trips (:func:`egress.outputs.read_tripinfo`).
    edges : pandas.DataFrame
        Per-edge, per-interval statistics (:func:`egress.outputs.read_edgedata`).
    summary : dict
        Counts and means, see :func:`summarize`.
    """

    run_dir: Path
    config: Path
    trips: pd.DataFrame
    edges: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return format_summary(self.summary)


def simulate(scenario: Scenario | str | Path, out: str | Path | None = None, *,
             seed: int | None = None, meso: bool | None = None,
             progress: bool = True) -> RunResult:
    """Simulate a scenario with SUMO and collect its outputs.

    Parameters
    ----------
    scenario : Scenario, str or pathlib.Path
        A loaded scenario or the path of a scenario file.
    out : str or pathlib.Path, optional
        Run folder; default the scenario's ``outputs.dir``.
    seed : int, optional
        Overrides ``simulation.seed``.
    meso : bool, optional
        Overrides ``simulation.mode`` (True: mesoscopic, False: microscopic).
    progress : bool, default True
        Show a progress bar of simulated time (on a terminal).

    Returns
    -------
    RunResult

    Raises
    ------
    ScenarioError
        If the scenario is invalid.
    SumoError
        If SUMO fails; the message ends with SUMO's own error.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    changes: dict[str, Any] = {}
    if seed is not None:
        changes["seed"] = seed
    if meso is not None:
        changes["mode"] = "meso" if meso else "micro"
    if changes:
        scenario = scenario.with_simulation(**changes)
    run_dir = Path(out) if out is not None else scenario.output_dir
    run_dir.mkdir(parents=True, exist_ok=True)

    routes = list(scenario.routes)
    if not routes:
        from .demand import build_demand

        routes = list(build_demand(scenario, run_dir / "demand",
                                   seed=scenario.simulation.seed).routes)
    config = write_config(scenario, run_dir, routes)
    started = time.perf_counter()
    run_sumo(config, scenario.simulation.begin, scenario.simulation.end, progress=progress)
    wall = time.perf_counter() - started
    return collect(scenario, run_dir, config, wall)


def write_config(scenario: Scenario, run_dir: Path, routes: list[Path]) -> Path:
    """Write ``run.sumocfg`` and ``edgedata.add.xml`` into `run_dir`.

    Returns
    -------
    pathlib.Path
        The configuration file.
    """
    sim = scenario.simulation
    add = ET.Element("additional")
    ET.SubElement(add, "edgeData", id="edges", period=_num(sim.edgedata_period),
                  begin=_num(sim.begin), end=_num(sim.end), file="edgedata.xml")
    _write_xml(add, run_dir / "edgedata.add.xml")

    def rel(p: Path) -> str:
        return os.path.relpath(Path(p).resolve(), run_dir.resolve())

    sections: dict[str, dict[str, str]] = {
        "input": {
            "net-file": rel(scenario.network),
            "route-files": ",".join(rel(r) for r in routes),
            "additional-files": "edgedata.add.xml",
        },
        "time": {"begin": _num(sim.begin), "end": _num(sim.end),
                 "step-length": _num(sim.step_length)},
        "processing": {"time-to-teleport": _num(sim.time_to_teleport)},
        "random_number": {"seed": str(sim.seed)},
        "output": {
            "tripinfo-output": "tripinfo.xml",
            "tripinfo-output.write-unfinished": "true",
            "vehroute-output": "vehroutes.xml",
            "vehroute-output.exit-times": "true",
            "statistic-output": "statistics.xml",
        },
        "report": {"duration-log.statistics": "true", "step-log.period": "100"},
        "mesoscopic": {"mesosim": "true" if sim.meso else "false"},
    }
    root = ET.Element("configuration")
    for section, options in sections.items():
        sec = ET.SubElement(root, section)
        for key, value in options.items():
            ET.SubElement(sec, key, value=value)
    config = run_dir / "run.sumocfg"
    _write_xml(root, config)
    return config


def run_sumo(config: Path, begin: float, end: float, *, progress: bool = True) -> None:
    """Run ``sumo -c config``, showing simulated time as a progress bar.

    SUMO's messages go to ``sumo.log`` beside the configuration. Without a
    progress bar on screen SUMO writes them to the file itself; with one
    they pass through this process, which reads the simulated time from
    SUMO's step log.

    Raises
    ------
    SumoError
        If SUMO exits with an error (the message quotes SUMO's last errors).
    """
    from tqdm import tqdm

    config = Path(config)
    log_path = config.parent / "sumo.log"
    cmd = [sumo.binary("sumo"), "-c", config.name]
    env = {**os.environ, "SUMO_HOME": str(sumo.sumo_home())}
    bar = tqdm(total=round(end - begin), unit="sim s", desc="simulating",
               disable=None if progress else True, leave=False)
    with open(log_path, "wb") as log_file:
        if bar.disable:
            code = subprocess.run(cmd, cwd=config.parent, stdout=log_file,
                                  stderr=subprocess.STDOUT, env=env, check=False).returncode
        else:
            code = _follow(cmd, config.parent, env, log_file, bar, begin)
    bar.close()
    if code != 0:
        text = log_path.read_bytes().decode(errors="replace").replace("\r", "\n")
        raise SumoError(f"sumo failed on {config} (exit {code}): {sumo.error_tail(text)}")


def _follow(cmd: list[str], cwd: Path, env: dict[str, str], log_file, bar, begin: float) -> int:
    """Run `cmd`, copying its output to `log_file` and its step log to `bar`."""
    step = re.compile(rb"Step #(\d+(?:\.\d+)?)")
    done = 0
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env)
    assert proc.stdout is not None
    while chunk := proc.stdout.read1(65536):
        log_file.write(chunk)
        found = step.findall(chunk)
        if found:
            now = round(float(found[-1]) - begin)
            if now > done:
                bar.update(now - done)
                done = now
    return proc.wait()


def collect(scenario: Scenario, run_dir: Path, config: Path, wall: float | None = None
            ) -> RunResult:
    """Parse a finished run folder into tables and a summary, and save them."""
    trips = outputs.read_tripinfo(run_dir / "tripinfo.xml")
    edges = outputs.read_edgedata(run_dir / "edgedata.xml")
    stats = outputs.read_statistics(run_dir / "statistics.xml")
    summary = summarize(trips, stats)
    summary.update({
        "scenario": str(scenario.path),
        "name": scenario.name,
        "seed": scenario.simulation.seed,
        "mode": scenario.simulation.mode,
        "begin": scenario.simulation.begin,
        "end": scenario.simulation.end,
        "wall_seconds": wall,
        "versions": versions(),
    })
    ext = scenario.output_format
    for name, table in (("trips", trips), ("edges", edges)):
        path = run_dir / f"{name}.{ext}"
        if ext == "csv":
            table.to_csv(path, index=False)
        else:
            table.to_parquet(path, index=False)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return RunResult(run_dir, config, trips, edges, summary)


def summarize(trips: pd.DataFrame, stats: dict[str, float]) -> dict[str, Any]:
    """Counts and mean travel time of a run.

    Returns
    -------
    dict
        ``loaded, inserted, arrived, running (still driving at the end),
        waiting (never inserted), teleports, teleport_share,
        mean_travel_time`` (s, insertion delay included, over all inserted
        vehicles; unfinished ones count with their time so far),
        ``mean_depart_delay`` (s) and ``valid`` (False when teleports exceed
        :data:`TELEPORT_LIMIT` of the inserted vehicles).
    """
    inserted = int(stats.get("inserted", len(trips)))
    teleports = int(stats.get("teleports", 0))
    share = teleports / inserted if inserted else 0.0
    return {
        "loaded": int(stats.get("loaded", len(trips))),
        "inserted": inserted,
        "arrived": int(trips["finished"].sum()),
        "running": int(stats.get("running", (~trips["finished"]).sum())),
        "waiting": int(stats.get("waiting", 0)),
        "teleports": teleports,
        "teleport_share": share,
        "collisions": int(stats.get("collisions", 0)),
        "mean_travel_time": float(trips["travel_time"].mean()) if len(trips) else float("nan"),
        "mean_depart_delay": float(trips["depart_delay"].mean()) if len(trips) else float("nan"),
        "valid": share <= TELEPORT_LIMIT,
    }


def format_summary(s: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    lines = [
        f"vehicles: {s['inserted']} inserted, {s['arrived']} arrived, "
        f"{s['running']} still running at the end, {s['waiting']} never inserted",
        f"teleports: {s['teleports']} ({100 * s['teleport_share']:.2f}% of inserted)"
        + ("" if s["valid"] else
           f"  WARNING: above {100 * TELEPORT_LIMIT:.0f}%; gridlock, not a valid result"),
        f"mean travel time (insertion delay included): {s['mean_travel_time'] / 60:.1f} min "
        f"(mean wait to be inserted {s['mean_depart_delay'] / 60:.1f} min)",
    ]
    if s.get("run_dir"):
        lines.append(f"run folder: {s['run_dir']}")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    """Versions of egress, SUMO and Python, recorded with every result."""
    return {"egress": __version__, "sumo": sumo.version(), "python": platform.python_version(),
            "platform": sys.platform}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _write_xml(root: ET.Element, path: Path) -> None:
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)
