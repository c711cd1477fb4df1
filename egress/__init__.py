"""egress: event egress traffic studies with a calibrated SUMO simulation.

The public API mirrors the command line: each ``egress`` command is a thin
layer over one of these functions, and everything a notebook needs is here.
The package follows the stages of the pipeline::

    config      scenario, venues and demand files, validated into typed objects
    network     networks, their car graph, geometry, map matching, S2 zones
    demand      OD tables, demand models, sampling, routing
    engine      one SUMO run: configuration, run, vehicle table, invariants
    calibration fitting the OD and supply to observations; importers of real ones
    validation  a run against real observations, by road class
    policies    measures, their SUMO inputs, paired evaluation
    sweep       batches of runs on Dask
    reporting   figures and the HTML report

The names below are imported from their modules on first use, so that
``import egress.sweep`` (what every Dask worker does before its first task)
or ``egress --help`` does not pay for SciPy, plotting and the calibration
code it does not need.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    EgressError,
    InputError,
    InvalidRunError,
    MissingFileError,
    NetworkError,
    PolicyError,
    RunError,
    ScenarioError,
    SumoError,
    SweepError,
)

#: Public name -> the module that defines it.
_LAZY = {
    "Scenario": "config.scenario",
    "load_scenario": "config.scenario",
    "load_venues": "config.venues",
    "build_network": "network.build",
    "build_osm": "network.build",
    "read_net": "network.graph",
    "write_zones": "network.zones",
    "format_zones": "network.zones",
    "build_demand": "demand.build",
    "build_od": "demand.build",
    "read_od": "demand.od",
    "RunConfig": "engine.config",
    "RunResult": "engine.run",
    "run": "engine.run",
    "format_summary": "engine.run",
    "SimulationResult": "engine.simulate",
    "simulate": "engine.simulate",
    "CalibrationResult": "calibration.driver",
    "calibrate": "calibration.driver",
    "ModelNoise": "calibration.metamodel",
    "calibration_problem": "calibration.problem",
    "plain_calibration_problem": "calibration.problem",
    "read_observations": "calibration.observations",
    "Imported": "calibration.importers",
    "import_counts": "calibration.importers",
    "import_probe_speeds": "calibration.importers",
    "write_matched_segments": "calibration.matched",
    "observe": "calibration.synthetic",
    "Validation": "validation.validate",
    "validate": "validation.validate",
    "format_validation": "validation.validate",
    "Policy": "policies.file",
    "load_policies": "policies.file",
    "EvaluationResult": "policies.comparison",
    "format_table": "policies.comparison",
    "headline": "policies.comparison",
    "evaluate_policy": "policies.evaluation",
    "format_measures": "policies.measures",
    "format_run_measures": "engine.measures",
    "set_units": "units",
    "Sweep": "sweep.file",
    "load_sweep": "sweep.file",
    "SweepResult": "sweep.runner",
    "run_sweep": "sweep.runner",
    "load_results": "sweep.store",
    "savings": "sweep.analysis",
    "format_savings": "sweep.analysis",
    "plot_demand_scenarios": "reporting.plots",
    "write_report": "reporting.report",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors
    from .calibration.driver import CalibrationResult, calibrate
    from .calibration.importers import Imported, import_counts, import_probe_speeds
    from .calibration.matched import write_matched_segments
    from .calibration.metamodel import ModelNoise
    from .calibration.observations import read_observations
    from .calibration.problem import calibration_problem, plain_calibration_problem
    from .calibration.synthetic import observe
    from .config.scenario import Scenario, load_scenario
    from .config.venues import load_venues
    from .demand.build import build_demand, build_od
    from .demand.od import read_od
    from .engine.config import RunConfig
    from .engine.measures import format_run_measures
    from .engine.run import RunResult, format_summary, run
    from .engine.simulate import SimulationResult, simulate
    from .network.build import build_network, build_osm
    from .network.graph import read_net
    from .network.zones import format_zones, write_zones
    from .policies.comparison import EvaluationResult, format_table, headline
    from .policies.evaluation import evaluate_policy
    from .policies.file import Policy, load_policies
    from .policies.measures import format_measures
    from .reporting.plots import plot_demand_scenarios
    from .reporting.report import write_report
    from .sweep.analysis import format_savings, savings
    from .sweep.file import Sweep, load_sweep
    from .sweep.runner import SweepResult, run_sweep
    from .sweep.store import load_results
    from .units import set_units
    from .validation.validate import Validation, format_validation, validate


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'egress' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "__version__", "build_demand", "build_network", "build_od", "build_osm", "calibrate",
    "calibration_problem", "CalibrationResult", "EgressError", "evaluate_policy",
    "EvaluationResult", "format_measures", "format_run_measures", "format_savings",
    "format_summary", "format_table", "format_validation", "format_zones",
    "headline", "import_counts", "import_probe_speeds", "Imported", "InputError",
    "InvalidRunError", "load_policies", "load_results", "load_scenario",
    "load_sweep", "load_venues", "MissingFileError", "ModelNoise", "NetworkError", "observe",
    "plain_calibration_problem", "plot_demand_scenarios", "Policy", "PolicyError", "read_net",
    "read_observations", "read_od", "run", "run_sweep", "RunConfig", "RunError", "RunResult",
    "savings", "Scenario", "ScenarioError", "simulate", "SimulationResult", "SumoError", "Sweep",
    "SweepError", "SweepResult", "set_units", "validate", "Validation",
    "write_matched_segments", "write_report", "write_zones",
]
