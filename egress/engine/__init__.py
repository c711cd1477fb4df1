"""The run engine: configure SUMO, run it, read what happened, check it.

Every command that simulates goes through here, so a run is configured in
one place (:mod:`.config`), a vehicle's travel time has one definition
(:mod:`.vehicles`) and every run's outputs pass the same physical invariants
(:mod:`.invariants`) before any number of it is used (:mod:`.run`).

Modules
-------
:mod:`.config`
    :class:`RunConfig` and the one writer of ``run.sumocfg``.
:mod:`.supply`
    Supply parameters (signal delay, capacities, speeds by edge type) as SUMO
    options and an additional file.
:mod:`.process`
    The ``sumo`` process, with a progress bar of simulated time.
:mod:`.outputs`
    SUMO's outputs as SUMO wrote them (tripinfo, edgeData, vehroutes,
    statistics, the teleports in its log).
:mod:`.vehicles`
    The vehicle table: the one definition of travel time.
:mod:`.invariants`
    The physical invariants of a run's outputs.
:mod:`.run`
    :func:`run`: one run, start to checked result.
:mod:`.simulate`
    :func:`simulate`: a scenario (its demand built when needed) through the
    engine (``egress simulate``).
"""

from __future__ import annotations

from .config import MAX_SEED, MODES, RunConfig, write_config
from .invariants import TELEPORT_LIMIT, check_edges, check_vehicles
from .run import RunResult, collect, format_summary, read_state, run, versions
from .simulate import SimulationResult, simulate
from .vehicles import KINDS, STATUSES, read_departures, vehicle_kind, vehicle_table

__all__ = [
    "KINDS", "MAX_SEED", "MODES", "RunConfig", "RunResult", "STATUSES", "TELEPORT_LIMIT",
    "SimulationResult", "check_edges", "check_vehicles", "collect", "format_summary",
    "read_departures", "read_state", "run", "simulate", "vehicle_kind", "vehicle_table",
    "versions", "write_config",
]
