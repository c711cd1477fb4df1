"""egress: event egress traffic studies with a calibrated SUMO simulation.

The public API mirrors the command line: each ``egress`` command is a thin
layer over one of these functions.
"""

__version__ = "0.1.0"

from .errors import (
    EgressError,
    InputError,
    MissingFileError,
    NetworkError,
    ScenarioError,
    SumoError,
)
from .network import build_network, build_osm
from .scenario import Scenario, load_scenario
from .simulation import RunResult, simulate

__all__ = [
    "EgressError",
    "InputError",
    "MissingFileError",
    "NetworkError",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SumoError",
    "__version__",
    "build_network",
    "build_osm",
    "load_scenario",
    "simulate",
]
