"""Running a scenario in SUMO: ``egress simulate``.

:func:`simulate` builds the scenario's demand when it has no route files,
and runs it through the run engine (:func:`egress.engine.run.run`), which writes a
self-describing run folder::

    run.sumocfg          opens in sumo-gui; ``sumo -c run.sumocfg`` re-runs it
    edgedata.add.xml     the edge-statistics definition
    vehroutes.xml        routes with the time each edge was left
    tripinfo.xml         SUMO's per-vehicle trip summaries
    edgedata.xml         per-edge statistics per interval
    statistics.xml       vehicle and teleport counts, the options SUMO ran with
    sumo.log             SUMO's messages
    vehicles.parquet     one row per vehicle: travel time, how it ended, teleports
                         (see egress.engine.vehicles)
    edges.parquet        one row per edge and interval (space-mean speed, ...)
    summary.json         state (complete / invalid / failed), counts, checks,
                         scenario, seed, mode and versions
    measures.csv         engineering measures per vehicle kind: clearance 95/100 %,
                         delay against free flow, median and p95 time to leave,
                         vehicle-hours (egress.engine.measures); valid runs only
    places.csv           per lot exit and ramp: longest and mean queue, vehicles out
    throughput.csv       vehicles leaving each ramp and lot exit per 15 min and kind
    gis/                 GeoJSON layers in WGS84 for QGIS: edges.geojson (speed per
                         15-minute slice), lots, venues, study_area

(``.csv`` instead of ``.parquet`` when the scenario asks for CSV.) Paths in
the configuration are relative to the run folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .. import units
from ..config.scenario import Scenario, load_scenario
from ..demand import build_demand
from ..demand.build import check_od_files
from ..errors import RunError
from ..folders import check_output
from ..network import check_route_files, study_area_edges
from ..network.gis import edge_features, edge_geometry, venue_features, write_geojson
from .config import RunConfig
from .measures import (
    driven_free_flow,
    first_edges,
    group_measures,
    place_flows,
    places,
    queue_summary,
    slice_speeds,
)
from .run import RunResult, begin_state, fail_state, format_summary, run
from .vehicles import KINDS


@dataclass
class SimulationResult:
    """What :func:`simulate` produced.

    Attributes
    ----------
    run_dir : pathlib.Path
    config : pathlib.Path
        The ``.sumocfg`` of the run.
    vehicles : pandas.DataFrame
        One row per vehicle (:func:`egress.engine.vehicles.vehicle_table`,
        with SUMO's route length, waiting time, time loss and speed factor).
    edges : pandas.DataFrame
        Per-edge, per-interval statistics (:func:`egress.engine.outputs.read_edgedata`).
    summary : dict
        State, counts and checks (:func:`egress.engine.run.summarize`) and
        the scenario.
    valid : bool
        The outputs passed every physical invariant.
    """

    run_dir: Path
    config: Path
    vehicles: pd.DataFrame
    edges: pd.DataFrame
    summary: dict[str, Any]
    valid: bool = True

    def __str__(self) -> str:
        return format_summary(self.summary)


def simulate(scenario: Scenario | str | Path, out: str | Path | None = None, *,
             seed: int | None = None, mode: str | None = None,
             progress: bool = True) -> SimulationResult:
    """Simulate a scenario with SUMO and collect its checked outputs.

    Parameters
    ----------
    scenario : Scenario, str or pathlib.Path
        A loaded scenario or the path of a scenario file.
    out : str or pathlib.Path, optional
        Run folder; default the scenario's ``outputs.dir``.
    seed : int, optional
        Overrides ``simulation.seed`` (the demand's draws and SUMO's seed).
    mode : {"micro", "meso"}, optional
        Overrides ``simulation.mode``.
    progress : bool, default True
        Show a progress bar of simulated time (on a terminal).

    Returns
    -------
    SimulationResult
        Check ``valid`` (or ``summary["state"]``) before using its numbers.

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
    if mode is not None:
        changes["mode"] = mode
    if changes:
        scenario = scenario.with_simulation(**changes)
    run_dir = Path(out) if out is not None else scenario.output_dir
    check_output(run_dir, flag="--out" if out is not None else "outputs.dir",
                 inputs=[scenario.path], command="simulate")
    extra = {"command": "simulate", "scenario": str(scenario.path), "name": scenario.name}
    routes = list(scenario.routes)
    if routes:
        check_route_files(scenario.network, routes)
    else:
        check_od_files(scenario)
    # from here on the folder's earlier results are stale: cleared, and the folder marked
    # running, then failed if anything below fails (its demand included)
    begin_state(run_dir, extra)
    try:
        if not routes:
            routes = list(build_demand(scenario, run_dir / "demand",
                                       seed=scenario.simulation.seed).routes)
        config = RunConfig.from_scenario(scenario, run_dir, routes, tripinfo=True)
        inside = study_area_edges(scenario.network, scenario.venues)
        result = run(config, inside=inside, progress=progress, keep_records=True,
                     table_format=scenario.output_format, extra=extra)
    except RunError:
        raise  # run() has recorded the failure with SUMO's log
    except (Exception, KeyboardInterrupt) as exc:
        fail_state(run_dir, exc if str(exc) else type(exc).__name__, extra)
        raise
    summary = {**result.summary(), "scenario": str(scenario.path), "name": scenario.name}
    if result.valid:
        write_run_measures(result, scenario, inside)
    return SimulationResult(run_dir, config.file, result.vehicles, result.edges, summary,
                     result.valid)


def write_run_measures(result: RunResult, scenario: Scenario, inside: frozenset[str]
                       ) -> dict[str, Path]:
    """measures.csv, places.csv, throughput.csv and the GIS layers of a valid run."""
    cfg = result.config
    watch = places(scenario.network, scenario.venues)
    records = result.records or []
    ff = driven_free_flow(records, result.vehicles, watch.free_flow, inside)
    v = result.vehicles.set_index("vehicle")
    rows = [{"kind": k, **group_measures(v[v["kind"] == k], ff)}
            for k in KINDS if (v["kind"] == k).any()]
    queues, flows = place_flows(records, result.vehicles, watch, begin=cfg.begin, end=cfg.end,
                                origins=first_edges(cfg.routes))
    out = {"measures": cfg.run_dir / "measures.csv", "places": cfg.run_dir / "places.csv",
           "throughput": cfg.run_dir / "throughput.csv"}
    pd.DataFrame(rows).to_csv(out["measures"], index=False)
    summary = queue_summary(queues)
    summary["vehicles_out"] = summary["place"].map(
        flows.groupby("place")["vehicles"].sum()).fillna(0) if len(flows) else 0
    summary.to_csv(out["places"], index=False)
    flows.to_csv(out["throughput"], index=False)
    gis = cfg.run_dir / "gis"
    geometry = edge_geometry(cfg.network)
    speeds = slice_speeds([result.edges], cfg.begin) if result.edges is not None else None
    if speeds is not None and not speeds.empty:
        # the unit is the layer's: also on the edges no vehicle drove (no speeds)
        speeds = speeds.reindex(speeds.index.union(geometry.index))
        speeds["speed_unit"] = units.speed_unit()
    out["edges_layer"] = write_geojson(gis / "edges.geojson",
                                       edge_features(geometry, speeds), "edges")
    for name, feats in venue_features(geometry, scenario.venues).items():
        out[name] = write_geojson(gis / f"{name}.geojson", feats, name)
    return out
