"""egress: event egress traffic studies with a calibrated SUMO simulation.

The public API mirrors the command line: each ``egress`` command is a thin
layer over one of these functions.
"""

__version__ = "0.1.0"

from .calibration import CalibrationResult, calibrate
from .errors import (
    EgressError,
    InputError,
    MissingFileError,
    NetworkError,
    ScenarioError,
    SumoError,
)
from .evaluation import EvaluationResult, evaluate_policy
from .network import build_network, build_osm
from .observations import observe, read_observations
from .policies import Policy, PolicyError, load_policies
from .report import write_report
from .scenario import Scenario, load_scenario
from .simulation import RunResult, simulate
from .sweep import Sweep, SweepError, SweepResult, load_results, load_sweep, run_sweep, summarize

__all__ = [
    "CalibrationResult",
    "calibrate",
    "observe",
    "read_observations",
    "EgressError",
    "EvaluationResult",
    "InputError",
    "MissingFileError",
    "NetworkError",
    "Policy",
    "PolicyError",
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
