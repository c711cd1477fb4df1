"""egress: event egress traffic studies with a calibrated SUMO simulation.

The public API mirrors the command line: each ``egress`` command is a thin
layer over one of these functions.

The names below are imported from their modules on first use, so that
``import egress.sweep`` (what every Dask worker does before its first task)
or ``egress --help`` does not pay for SciPy, plotting and the calibration
code it does not need.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
    EgressError,
    InputError,
    InvalidRunError,
    MissingFileError,
    NetworkError,
    RunError,
    ScenarioError,
    SumoError,
)

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_LAZY = {
    "CalibrationResult": "calibration",
    "calibrate": "calibration",
    "calibration_problem": "calibration",
    "plain_calibration_problem": "calibration",
    "EvaluationResult": "evaluation",
    "evaluate_policy": "evaluation",
    "build_network": "network",
    "build_osm": "network",
    "observe": "calibration",
    "read_observations": "calibration",
    "Policy": "policies",
    "PolicyError": "policies",
    "load_policies": "policies",
    "write_report": "report",
    "Scenario": "config.scenario",
    "load_scenario": "config.scenario",
    "RunResult": "simulation",
    "simulate": "simulation",
    "Sweep": "sweep",
    "SweepError": "sweep",
    "SweepResult": "sweep",
    "load_results": "sweep",
    "load_sweep": "sweep",
    "run_sweep": "sweep",
    "summarize": "sweep",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors
    from .calibration import CalibrationResult, calibrate, observe, read_observations
    from .config.scenario import Scenario, load_scenario
    from .evaluation import EvaluationResult, evaluate_policy
    from .network import build_network, build_osm
    from .policies import Policy, PolicyError, load_policies
    from .report import write_report
    from .simulation import RunResult, simulate
    from .sweep import (
        Sweep,
        SweepError,
        SweepResult,
        load_results,
        load_sweep,
        run_sweep,
        summarize,
    )


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
    "CalibrationResult",
    "calibrate",
    "observe",
    "read_observations",
    "EgressError",
    "EvaluationResult",
    "InputError",
    "InvalidRunError",
    "MissingFileError",
    "NetworkError",
    "Policy",
    "PolicyError",
    "RunError",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SumoError",
    "__version__",
    "build_network",
    "build_osm",
    "evaluate_policy",
    "load_policies",
    "load_scenario",
    "simulate",
    "Sweep",
    "SweepError",
    "SweepResult",
    "load_results",
    "load_sweep",
    "run_sweep",
    "summarize",
    "write_report",
]
