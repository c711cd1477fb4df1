"""The ``[demand]`` table of a scenario: its schema and the typed, validated spec.

What the keys mean, and the models that turn them into trips, are documented
in :mod:`egress.demand`. Here the table is checked (every problem named by its
key, all reported together) and turned into a :class:`DemandSpec`:

* ``routes``: ready SUMO route or trip files (then nothing is built);
* ``interval``, ``od``, ``destinations``, ``places``, ``beta``: the OD grid
  and the tables the models read;
* ``[demand.event]`` (:class:`EventSpec`, with its :class:`DepartureProfile`),
  ``[demand.background]`` (:class:`BackgroundSpec`) and ``[demand.routing]``
  (:class:`RoutingSpec`).

The departure profile
    A share ``early`` of the event's cars leaves uniformly in the
    ``early_window`` seconds before the end; the rest after the end following
    a gamma distribution with shape ``k`` and its mode at ``mode`` seconds
    (scale ``mode / (k - 1)``), truncated at ``tail`` seconds and
    renormalised. With the defaults (k = 3, mode 18 min) the mean is 27 min
    after the end and 96 % of the post-event departures fall within 60 min.
    Interval shares are exact differences of the cumulative distribution,
    so they sum to 1.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import limits
from ..errors import Problems, ScenarioError
from .schema import Field, check_table, fraction

#: Keys of the ``[demand]`` table added by this module (merged into the
#: scenario schema by :mod:`egress.config.scenario`).
DEMAND_FIELDS: dict[str, Field] = {
    "interval": Field("float", default=900.0, check=limits.period, doc="s per OD interval"),
    "od": Field("paths", default=[], doc="extra OD tables (CSV or tazRelation XML)"),
    "event": Field("table", doc="the event whose traffic leaves"),
    "background": Field("table", doc="normal evening traffic"),
    "destinations": Field("path", doc="event destination shares (CSV), replaces gravity"),
    "places": Field("path", doc="places (name, lon, lat, population) for the gravity models"),
    "beta": Field("float", default=0.04, check=limits.within(0, 10),
                  doc="1/km, distance decay of event destinations (10/km: all within a "
                  "few hundred metres)"),
    "routing": Field("table", default={}, doc="route choice (egress.demand.routing)"),
}


_EVENT = {
    "venue": Field("str", required=True, doc="venue id in the venues file"),
    "attendance": Field("int", required=True,
                        check=limits.within(0, limits.ATTENDANCE_MAX, lo_open=True,
                                            what="people")),
    "car_share": Field("float", default=0.55, check=fraction),
    "occupancy": Field("float", default=2.5, check=limits.within(1, 60)),
    "end": Field("time", required=True),
    "profile": Field("table", default={}),
    "lots": Field("table", default={}),
}


_PROFILE = {
    "early": Field("float", default=0.05, check=fraction),
    "early_window": Field("float", default=1800.0, check=limits.period),
    "mode": Field("float", default=1080.0, check=limits.period),
    "shape": Field("float", default=3.0, check=limits.within(1, 1000, lo_open=True)),
    "tail": Field("float", default=5400.0, check=limits.period),
}


_BACKGROUND = {
    "scale": Field("float", default=1.0, check=limits.within(0, 100)),
    "trips_per_hour": Field("float", default=9000.0,
                            check=limits.within(0, limits.TRIPS_PER_HOUR_MAX,
                                                what="trips per hour")),
    "through_share": Field("float", default=0.75, check=fraction),
    "beta": Field("float", default=0.03, check=limits.within(0, 10)),
}


_ROUTING = {
    "random_factor": Field("float", default=1.3, check=limits.within(1, 100)),
    "alternatives": Field("int", default=64, check=limits.within(1, 1000)),
}


@dataclass(frozen=True)
class DepartureProfile:
    """When an event's cars leave, relative to the end of the event.

    Parameters
    ----------
    end : float
        End of the event (s after midnight).
    early : float
        Share of cars leaving uniformly in the `early_window` before the end.
    early_window : float
        s before the end.
    mode : float
        s after the end at which post-event departures peak.
    shape : float
        Gamma shape (> 1).
    tail : float
        s after the end beyond which nobody leaves (the gamma is truncated
        there and renormalised).
    """

    end: float
    early: float = 0.05
    early_window: float = 1800.0
    mode: float = 1080.0
    shape: float = 3.0
    tail: float = 5400.0

    @property
    def scale(self) -> float:
        """Gamma scale (s) that puts the mode at :attr:`mode`."""
        return self.mode / (self.shape - 1.0)

    @property
    def support(self) -> tuple[float, float]:
        """First and last possible departure (s after midnight)."""
        return self.end - self.early_window, self.end + self.tail

    def cdf(self, t: Any) -> np.ndarray:
        """Share of cars gone by time `t` (s after midnight)."""
        from scipy.stats import gamma

        x = np.asarray(t, dtype=float) - self.end
        early = np.clip((x + self.early_window) / self.early_window, 0.0, 1.0)
        dist = gamma(self.shape, scale=self.scale)
        bulk = dist.cdf(np.clip(x, 0.0, self.tail)) / dist.cdf(self.tail)
        return self.early * early + (1.0 - self.early) * bulk

    def shares(self, bounds: Sequence[float]) -> np.ndarray:
        """Share of cars leaving in each interval between consecutive `bounds`."""
        return np.diff(self.cdf(np.asarray(bounds, dtype=float)))

    def quantile(self, u: Any) -> np.ndarray:
        """Inverse of :meth:`cdf` (to 0.1 s)."""
        lo, hi = self.support
        grid = np.linspace(lo, hi, int(round((hi - lo) * 10)) + 1)
        values = self.cdf(grid)
        return np.interp(np.asarray(u, dtype=float), values, grid)


@dataclass(frozen=True)
class EventSpec:
    """A validated ``[demand.event]`` table."""

    venue: str
    attendance: int
    car_share: float
    occupancy: float
    profile: DepartureProfile
    lots: dict[str, int]          # lot id -> capacity (overrides applied)
    exits: dict[str, tuple[str, ...]]  # lot id -> exit edges

    @property
    def vehicles(self) -> int:
        """``round(attendance × car_share / occupancy)``."""
        return int(math.floor(self.attendance * self.car_share / self.occupancy + 0.5))


@dataclass(frozen=True)
class BackgroundSpec:
    """A validated ``[demand.background]`` table (see :func:`egress.demand.background_od`)."""

    scale: float = 1.0
    trips_per_hour: float = 9000.0
    through_share: float = 0.75
    beta: float = 0.03


@dataclass(frozen=True)
class RoutingSpec:
    """A validated ``[demand.routing]`` table (see :mod:`egress.demand.routing`)."""

    random_factor: float = 1.3
    alternatives: int = 64

    def kwargs(self) -> dict[str, Any]:
        """As keyword arguments of :func:`egress.demand.routing.route_vehicles`."""
        return {"random_factor": self.random_factor, "alternatives": self.alternatives}


@dataclass(frozen=True)
class DemandSpec:
    """The ``[demand]`` table of a scenario, validated.

    Attributes
    ----------
    routes : tuple of pathlib.Path
        Ready route or trip files; when given, nothing is built.
    interval : float
        s per OD interval.
    od : tuple of pathlib.Path
        Extra OD tables.
    event : EventSpec or None
    background : BackgroundSpec or None
    destinations, places : pathlib.Path or None
    beta : float
        1/km, distance decay of event destinations.
    routing : RoutingSpec
    table : dict
        The table as parsed, kept to apply overrides (:meth:`with_overrides`).
    """

    routes: tuple[Path, ...] = ()
    interval: float = 900.0
    od: tuple[Path, ...] = ()
    event: EventSpec | None = None
    background: BackgroundSpec | None = None
    destinations: Path | None = None
    places: Path | None = None
    beta: float = 0.04
    routing: RoutingSpec = field(default_factory=RoutingSpec)
    table: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def builds(self) -> bool:
        """True when the demand is built from OD tables (no route files)."""
        return not self.routes

    def with_overrides(self, overrides: Mapping[str, Any], venues, source: str | Path
                       ) -> DemandSpec:
        """The spec with dotted keys (``"demand.event.attendance"`` ...) replaced,
        validated again.

        Raises
        ------
        ScenarioError
            If a key's table is missing, or a new value is invalid.
        """
        table = copy.deepcopy(dict(self.table))
        for key, value in overrides.items():
            parts = key.split(".")[1:]
            node = table
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise ScenarioError(str(source), f"{key}: the scenario has no "
                                        f"[{'.'.join(key.split('.')[:-1])}] table to override")
                node = node[p]
            node[parts[-1]] = value
        return check_demand(table, venues, source)


def check_demand(table: Mapping[str, Any], venues, source: str | Path) -> DemandSpec:
    """Validate the converted ``[demand]`` table of a scenario, nested tables included.

    Parameters
    ----------
    table : dict
        The ``[demand]`` table with the keys of :data:`DEMAND_FIELDS` and
        ``routes`` converted (paths resolved); nested tables raw.
    venues : egress.config.venues.Venues or None
    source : path
        The scenario file (for messages and relative paths).

    Returns
    -------
    DemandSpec

    Raises
    ------
    ScenarioError
        Listing every problem, each naming its key (``demand.event.attendance:
        must be > 0, got -5``).
    """
    problems = Problems(source)
    base = Path(source).parent
    get = {k: table.get(k, f.default) for k, f in DEMAND_FIELDS.items()}
    routes = tuple(table.get("routes") or ())
    event = _event(get["event"], venues, problems, base) if get["event"] is not None else None
    background = None
    if get["background"] is not None:
        background = BackgroundSpec(**check_table(get["background"], _BACKGROUND,
                                                  "demand.background", problems, base))
    routing = RoutingSpec(**check_table(get["routing"] or {}, _ROUTING, "demand.routing",
                                        problems, base))
    for key in ("destinations", "places"):
        if get[key] is not None and not Path(get[key]).is_file():
            problems.add(f"demand.{key}: {get[key]} not found")
    for i, p in enumerate(get["od"] or []):
        if not Path(p).is_file():
            problems.add(f"demand.od[{i}]: {p} not found")
    if not routes and event is None and background is None and not get["od"] and not problems:
        problems.add("demand: nothing to build; give demand.event, demand.background "
                     "or demand.od (or demand.routes)")
    problems.raise_if_any(ScenarioError)
    return DemandSpec(routes, float(get["interval"]), tuple(get["od"] or ()), event, background,
                      get["destinations"], get["places"], float(get["beta"]), routing,
                      dict(table))


def _event(raw: Any, venues, problems: Problems, base: Path) -> EventSpec | None:
    """The ``[demand.event]`` table as an :class:`EventSpec` (None when it has problems)."""
    found = len(problems.items)
    e = check_table(raw, _EVENT, "demand.event", problems, base)
    p = check_table(e["profile"] or {}, _PROFILE, "demand.event.profile", problems, base)
    if p["mode"] is not None and p["tail"] is not None and p["mode"] >= p["tail"]:
        problems.add("demand.event.profile.mode: must be less than demand.event.profile.tail")
    lots: dict[str, int] = {}
    exits: dict[str, tuple[str, ...]] = {}
    venue = None
    if e["venue"] is not None:
        if venues is None:
            problems.add("demand.event.venue: the scenario names no venues file "
                         "(network.venues)")
        elif e["venue"] not in venues.venues:
            known = ", ".join(sorted(venues.venues)) or "none"
            problems.add(f"demand.event.venue: unknown venue {e['venue']!r} (known: {known})")
        else:
            venue = venues[e["venue"]]
            lots = {lot.id: lot.capacity for lot in venue.lots}
            exits = {lot.id: lot.exits for lot in venue.lots}
            if not lots:
                problems.add(f"demand.event.venue: venue {venue.id!r} has no lots")
    for lot_id, cap in (e["lots"] or {}).items():
        where = f"demand.event.lots.{lot_id}"
        if (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0
                or cap > limits.VEHICLES_MAX):
            problems.add(f"{where}: expected a capacity (integer >= 0), got {cap!r}")
        elif venue is not None and lot_id not in lots:
            problems.add(f"{where}: venue {venue.id!r} has no lot {lot_id!r} "
                         f"(lots: {', '.join(lots)})")
        elif venue is not None:
            lots[lot_id] = cap
    if len(problems.items) > found:
        return None
    event = EventSpec(e["venue"], e["attendance"], e["car_share"], e["occupancy"],
                      DepartureProfile(end=e["end"], **p), lots, exits)
    capacity = sum(lots.values())
    if event.vehicles > capacity:
        problems.add(
            f"demand.event.attendance: {event.attendance} attendees × car_share "
            f"{event.car_share} / occupancy {event.occupancy} = {event.vehicles} cars, "
            f"but the lots of {event.venue!r} hold {capacity}")
        return None
    return event


__all__ = ["BackgroundSpec", "DEMAND_FIELDS", "DemandSpec", "DepartureProfile", "EventSpec",
           "RoutingSpec", "check_demand"]
