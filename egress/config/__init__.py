"""The configuration stage: scenario and venues files, and the demand spec,
read into typed, validated objects.

Every problem of a file is collected and reported together, each naming its
key (:mod:`.schema`). Nothing here runs a model; the one look at a network is
:func:`egress.network.checks.check_venues` (lot exits exist and reach the
boundary), done when a scenario is loaded.

Modules
-------
:mod:`.schema`
    The declarative checker for TOML tables, times.
:mod:`.venues`
    Venues, lots and the study area.
:mod:`.demand`
    The ``[demand]`` table: :class:`DemandSpec`, the departure profile.
:mod:`.supply`
    The ``[supply]`` table: signal delay, capacities and speeds by edge type,
    and the bounds a calibration may move them within.
:mod:`.scenario`
    Scenario files: :class:`Scenario`, :func:`load_scenario`.
"""

from __future__ import annotations

from .demand import BackgroundSpec, DemandSpec, DepartureProfile, EventSpec, RoutingSpec
from .scenario import Scenario, Simulation, load_scenario
from .schema import format_time, parse_time
from .supply import SupplySpec
from .venues import Lot, StudyArea, Venue, Venues, load_venues

__all__ = ["BackgroundSpec", "DemandSpec", "DepartureProfile", "EventSpec", "Lot",
           "RoutingSpec", "Scenario", "Simulation", "StudyArea", "SupplySpec", "Venue", "Venues",
           "format_time", "load_scenario", "load_venues", "parse_time"]
