"""Travel demand: event egress and background traffic over S2 cells, to SUMO routes.

The ``[demand]`` table of a scenario describes the evening::

    [demand]
    interval = 900                  # s, length of an OD interval
    # od = ["calibrated.od.csv"]    # extra OD tables (CSV or tazRelation XML)
    # destinations = "dest.csv"     # event destination shares (replaces gravity)
    # places = "places.csv"         # places for the gravity models
    beta = 0.04                     # 1/km, distance decay of event destinations

    [demand.event]
    venue = "lumen_field"           # id in the venues file
    attendance = 68000
    car_share = 0.55                # attendees who came by car
    occupancy = 2.5                 # persons per car
    end = "22:00"                   # end of the event
    lots = { lumen_north_lot = 0 }  # optional capacity overrides per lot id

    [demand.event.profile]          # departure curve (defaults shown)
    early = 0.05                    # share leaving before the end ...
    early_window = 1800             # ... uniformly in this many s before it
    mode = 1080                     # s after the end: the peak of departures
    shape = 3.0                     # gamma shape (> 1); larger = more peaked
    tail = 5400                     # s after the end: nobody leaves later

    [demand.background]
    scale = 1.0                     # 1.0 = the documented normal evening
    trips_per_hour = 9000           # vehicles per hour in the 21:00-22:00 hour
    through_share = 0.75            # share of boundary-to-boundary trips
    beta = 0.03                     # 1/km, distance decay of background trips

    [demand.routing]
    random_factor = 1.3             # edge costs x U[1, random_factor)
    alternatives = 64               # perturbed cost copies (egress.routing)

Models
------
Departure profile (:class:`DepartureProfile`)
    A share ``early`` of the event's cars leaves uniformly in the
    ``early_window`` seconds before the end; the rest after the end following
    a gamma distribution with shape ``k`` and its mode at ``mode`` seconds
    (scale ``mode / (k - 1)``), truncated at ``tail`` seconds and
    renormalised. With the defaults (k = 3, mode 18 min) the mean is 27 min
    after the end and 96 % of the post-event departures fall within 60 min.
    Interval shares are exact differences of the cumulative distribution,
    so they sum to 1.
Event vehicles
    ``round(attendance × car_share / occupancy)``, spread over the OD
    intervals by the profile as whole cars per interval (largest remainder).
Event destinations (:func:`gravity_destinations`)
    Attraction of place *j* ∝ ``population_j × exp(-beta × d_j)``, *d* the
    great-circle distance in km from the venue, over the packaged table of 58
    Puget Sound places (``egress/data/puget_sound_places.csv``, 2020 Census;
    see ``egress/data/README.md``). With ``beta = 0.04``/km and Lumen
    Field this sends about 34 % north, 28 % east, 31 % south and 7 % west
    (bearing quadrants from the venue). A place in a cell that holds network
    edges feeds that internal zone; every other place becomes an external
    zone. A user table (``demand.destinations``: CSV with ``share`` and either
    ``token`` or ``lon``/``lat``) replaces the gravity model.
Lots
    A venue's cars are split over its lots in proportion to capacity
    (largest remainder, so never above a lot's capacity) and each lot's cars
    evenly over its exit edges. More cars than spaces is an error naming
    ``demand.event.attendance``. ``demand.event.lots`` overrides capacities
    (0 closes a lot).
Background (:func:`background_od`)
    A normal evening: ``trips_per_hour × scale`` vehicles in the 21:00 hour,
    other hours scaled by :data:`HOURLY_FACTORS` (a typical urban weekday
    curve). A share ``through_share`` are through trips between external
    zones on opposite sides of the study area (the angle at the study area's
    centre between the two places is at least 120°) with weight
    ``P_i × P_j × exp(-beta × d_ij)``: the I-5 / SR 99 traffic that event
    traffic merges into. The rest is local traffic to, from and within the
    internal cells (40 % / 40 % / 20 %), internal cells weighted by their
    number of edges, external places by population, both with the same
    distance decay.

    The default level, 9,000 vehicles per hour entering the SODO network at
    21:00-22:00, is derived from WSDOT counts: I-5 through the area carries
    about 250,000 vehicles a day and SR 99 about 80,000; at 3.6 % of daily
    traffic in that hour that is about 9,000 + 2,900 vehicles per hour, of
    which the modelled boundary (mainline plus arterials) sees roughly
    three quarters once the traffic that bypasses the area on I-90 / the
    West Seattle Bridge is taken off.

Trips and routes
    The OD table is turned into individual trips by this module's own sampler
    (not od2trips) so that lot assignment survives into the trips and the
    vehicle count per interval is exactly the rounded OD total of that
    interval (:func:`integerize`: round the interval total, then largest
    remainder over the OD cells). Each trip starts on a lot exit (event) or
    on a source edge of its origin zone drawn by the zone's weights, and ends
    on a sink edge of its destination zone. Event departures are drawn from
    the profile within the interval (inverse CDF), background ones uniformly.
    Every vehicle's draws (departure, lot, edges, route, speed factor) are
    hashed from the seed, its OD row and its number within the row
    (:func:`vehicle_draws`), so a vehicle keeps them when other rows change.
    Routes come from :mod:`egress.routing` (cheapest paths over
    ``alternatives`` randomly perturbed copies of the free-flow edge costs,
    the copy chosen by the vehicle's draw), each vehicle carries its own
    ``speedFactor`` from its vType's distribution, so the route file is
    fixed before the simulation and a scenario re-runs bit for bit; SUMO's
    rerouting device is left to the policies. ``trips.xml`` holds the same
    trips unrouted, for users who prefer duarouter.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._schema import Field, check_table, fraction, non_negative, positive
from .errors import InputError, MissingFileError, Problems, ScenarioError
from .od import KINDS, read_kinded_od
from .routing import route_vehicles

log = logging.getLogger(__name__)

#: Kinds of demand, in the order their vehicles are numbered.

#: The packaged places table (see ``egress/data/README.md``).
PLACES = Path(__file__).parent / "data" / "puget_sound_places.csv"

#: Vehicle id prefix per kind.
PREFIX = {"event": "ev_", "background": "bg_"}

#: Relative traffic per hour of the day (hour after midnight, may exceed 23)
#: compared with the 21:00-22:00 hour: a typical urban weekday profile
#: (hourly shares of daily traffic of about 7.0, 5.3, 4.3, 3.8, 3.0, 2.0,
#: 1.2, 0.8 % from 18:00 to 02:00). Hours outside the table use the nearest.
HOURLY_FACTORS = {18: 1.84, 19: 1.39, 20: 1.13, 21: 1.0, 22: 0.79, 23: 0.53,
                  24: 0.32, 25: 0.21}

#: Minimum angle (degrees) at the study area's centre between the two ends
#: of a through trip.
THROUGH_ANGLE = 120.0

#: Local background split: external->internal, internal->external, internal->internal.
LOCAL_SPLIT = (0.4, 0.4, 0.2)

#: The vehicle types written into the trips and routes files.
VTYPES = {
    "event": {"id": "event", "vClass": "passenger", "speedFactor": "normc(1.0,0.1,0.2,2.0)",
              "sigma": "0.5", "color": "1,0.2,0.2"},
    "background": {"id": "background", "vClass": "passenger",
                   "speedFactor": "normc(1.0,0.1,0.2,2.0)", "sigma": "0.5",
                   "color": "0.75,0.75,0.75"},
}

#: Departure attributes per kind. Event cars start from standstill at the
#: start of their lot exit edge; while the edge is full they wait to be
#: inserted, and that wait (``departDelay``) is part of their travel time.
DEPART = {
    "event": {"departLane": "best", "departPos": "base", "departSpeed": "0"},
    "background": {"departLane": "best", "departPos": "base", "departSpeed": "max"},
}


def _at_least_one(v: float) -> str | None:
    return None if v >= 1 else f"must be >= 1, got {v}"


def _above_one(v: float) -> str | None:
    return None if v > 1 else f"must be > 1, got {v}"


#: Keys of the ``[demand]`` table added by this module (merged into the
#: scenario schema by :mod:`egress.scenario`).
DEMAND_FIELDS: dict[str, Field] = {
    "interval": Field("float", default=900.0, check=positive, doc="s per OD interval"),
    "od": Field("paths", default=[], doc="extra OD tables (CSV or tazRelation XML)"),
    "event": Field("table", doc="the event whose traffic leaves"),
    "background": Field("table", doc="normal evening traffic"),
    "destinations": Field("path", doc="event destination shares (CSV), replaces gravity"),
    "places": Field("path", doc="places (name, lon, lat, population) for the gravity models"),
    "beta": Field("float", default=0.04, check=non_negative,
                  doc="1/km, distance decay of event destinations"),
    "routing": Field("table", default={}, doc="route choice (egress.routing)"),
}

_EVENT = {
    "venue": Field("str", required=True, doc="venue id in the venues file"),
    "attendance": Field("int", required=True, check=positive),
    "car_share": Field("float", default=0.55, check=fraction),
    "occupancy": Field("float", default=2.5, check=_at_least_one),
    "end": Field("time", required=True),
    "profile": Field("table", default={}),
    "lots": Field("table", default={}),
}
_PROFILE = {
    "early": Field("float", default=0.05, check=fraction),
    "early_window": Field("float", default=1800.0, check=positive),
    "mode": Field("float", default=1080.0, check=positive),
    "shape": Field("float", default=3.0, check=_above_one),
    "tail": Field("float", default=5400.0, check=positive),
}
_BACKGROUND = {
    "scale": Field("float", default=1.0, check=non_negative),
    "trips_per_hour": Field("float", default=9000.0, check=non_negative),
    "through_share": Field("float", default=0.75, check=fraction),
    "beta": Field("float", default=0.03, check=non_negative),
}
_ROUTING = {
    "random_factor": Field("float", default=1.3, check=_at_least_one),
    "alternatives": Field("int", default=64, check=positive),
}


# --------------------------------------------------------------------------- profile

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


# --------------------------------------------------------------------------- places, gravity

def load_places(path: str | Path | None = None) -> pd.DataFrame:
    """Read a places table (``name, lon, lat, population``; more columns are kept).

    Parameters
    ----------
    path : str or pathlib.Path, optional
        A CSV file; default the packaged Puget Sound table.

    Raises
    ------
    MissingFileError, InputError
    """
    if path is None:
        df = pd.read_csv(PLACES)
        source = "egress/data/puget_sound_places.csv"
    else:
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(path, "places file")
        df = pd.read_csv(path)
        source = str(path)
    problems = Problems(source)
    missing = [c for c in ("name", "lon", "lat", "population") if c not in df.columns]
    if missing:
        problems.add(f"missing column(s) {', '.join(missing)}")
        problems.raise_if_any(InputError)
    for i, row in df.iterrows():
        lon, lat, pop = (pd.to_numeric(row[c], errors="coerce")
                         for c in ("lon", "lat", "population"))
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            problems.add(f"row {i + 2} ({row['name']}): lon/lat out of range")
        if not pop >= 0:
            problems.add(f"row {i + 2} ({row['name']}): population must be >= 0")
    problems.raise_if_any(InputError)
    return df.astype({"lon": float, "lat": float, "population": float})


def _haversine_km(lon1, lat1, lon2, lat2) -> np.ndarray:
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0088 * np.arcsin(np.sqrt(a))


def _bearing(lon1, lat1, lon2, lat2) -> np.ndarray:
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    y = np.sin(lon2 - lon1) * np.cos(lat2)
    x = np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * np.cos(lon2 - lon1)
    return np.degrees(np.arctan2(y, x)) % 360.0


def _direction(bearing: np.ndarray) -> np.ndarray:
    return np.array(["N", "E", "S", "W"])[(((np.asarray(bearing) + 45.0) % 360) // 90).astype(int)]


def gravity_destinations(places: pd.DataFrame, lon: float, lat: float,
                         beta: float = 0.04) -> pd.DataFrame:
    """Share of trips from a point to each place: ``population × exp(-beta × km)``.

    Parameters
    ----------
    places : pandas.DataFrame
        ``name, lon, lat, population`` (see :func:`load_places`).
    lon, lat : float
        The origin (the venue).
    beta : float
        Distance decay, 1/km.

    Returns
    -------
    pandas.DataFrame
        The places with ``distance_km``, ``bearing`` (degrees from north),
        ``direction`` (N/E/S/W quadrant) and ``share`` (sums to 1).
    """
    df = places.copy()
    df["distance_km"] = _haversine_km(lon, lat, df["lon"].to_numpy(), df["lat"].to_numpy())
    df["bearing"] = _bearing(lon, lat, df["lon"].to_numpy(), df["lat"].to_numpy())
    df["direction"] = _direction(df["bearing"].to_numpy())
    weight = df["population"].to_numpy() * np.exp(-beta * df["distance_km"].to_numpy())
    if weight.sum() <= 0:
        raise InputError("places", "no place has a population > 0")
    df["share"] = weight / weight.sum()
    return df


def direction_splits(destinations: pd.DataFrame) -> dict[str, float]:
    """Sum the ``share`` of destinations per ``direction`` (N, E, S, W)."""
    s = destinations.groupby("direction")["share"].sum()
    return {d: float(s.get(d, 0.0)) for d in "NESW"}


# --------------------------------------------------------------------------- integers

def largest_remainder(values: Sequence[float], total: int) -> np.ndarray:
    """Round non-negative `values` to integers that sum to `total`.

    Each value gets its floor; the remaining units go to the largest
    fractional parts (ties to the earlier value), so no value is rounded by
    more than one away from its proportional share.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return np.zeros(0, dtype=int)
    s = v.sum()
    scaled = v * (total / s) if s > 0 else np.zeros_like(v)
    base = np.floor(scaled).astype(int)
    rest = int(total - base.sum())
    if rest > 0:
        order = np.argsort(-(scaled - base), kind="stable")
        base[order[:rest]] += 1
    return base


def integerize(od: pd.DataFrame) -> np.ndarray:
    """Integer trips per OD row: each (kind, interval) total rounded half up,
    then spread over its rows by :func:`largest_remainder`."""
    counts = np.zeros(len(od), dtype=int)
    keys = ["kind", "begin"] if "kind" in od.columns else ["begin"]
    for _, idx in od.groupby(keys, sort=True).indices.items():
        trips = od["trips"].to_numpy()[idx]
        counts[idx] = largest_remainder(trips, int(math.floor(trips.sum() + 0.5)))
    return counts


# --------------------------------------------------------------------------- scenario spec

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
class DemandSpec:
    """The ``[demand]`` table of a scenario, validated."""

    interval: float
    od: list[Path]
    event: EventSpec | None
    background: dict[str, float] | None
    destinations: Path | None
    places: Path | None
    beta: float
    routing: dict[str, Any]


def check_demand(scenario) -> DemandSpec:
    """Validate the ``[demand]`` table of a scenario, nested tables included.

    Parameters
    ----------
    scenario : egress.scenario.Scenario

    Returns
    -------
    DemandSpec

    Raises
    ------
    ScenarioError
        Listing every problem, each naming its key (``demand.event.attendance:
        must be > 0, got -5``).
    """
    d = scenario.demand
    problems = Problems(scenario.path)
    base = Path(scenario.path).parent
    get = {k: d.get(k, f.default) for k, f in DEMAND_FIELDS.items()}
    event = None
    if get["event"] is not None:
        e = check_table(get["event"], _EVENT, "demand.event", problems, base)
        p = check_table(e["profile"] or {}, _PROFILE, "demand.event.profile", problems, base)
        if p["mode"] is not None and p["tail"] is not None and p["mode"] >= p["tail"]:
            problems.add("demand.event.profile.mode: must be less than demand.event.profile.tail")
        lots: dict[str, int] = {}
        exits: dict[str, tuple[str, ...]] = {}
        venue = None
        if e["venue"] is not None:
            if scenario.venues is None:
                problems.add("demand.event.venue: the scenario names no venues file "
                             "(network.venues)")
            elif e["venue"] not in scenario.venues.venues:
                known = ", ".join(sorted(scenario.venues.venues)) or "none"
                problems.add(f"demand.event.venue: unknown venue {e['venue']!r} "
                             f"(known: {known})")
            else:
                venue = scenario.venues[e["venue"]]
                lots = {lot.id: lot.capacity for lot in venue.lots}
                exits = {lot.id: lot.exits for lot in venue.lots}
                if not lots:
                    problems.add(f"demand.event.venue: venue {venue.id!r} has no lots")
        for lot_id, cap in (e["lots"] or {}).items():
            where = f"demand.event.lots.{lot_id}"
            if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
                problems.add(f"{where}: expected a capacity (integer >= 0), got {cap!r}")
            elif venue is not None and lot_id not in lots:
                problems.add(f"{where}: venue {venue.id!r} has no lot {lot_id!r} "
                             f"(lots: {', '.join(lots)})")
            elif venue is not None:
                lots[lot_id] = cap
        if not problems:
            profile = DepartureProfile(end=e["end"], **p)
            event = EventSpec(e["venue"], e["attendance"], e["car_share"], e["occupancy"],
                              profile, lots, exits)
            capacity = sum(lots.values())
            if event.vehicles > capacity:
                problems.add(
                    f"demand.event.attendance: {event.attendance} attendees × car_share "
                    f"{event.car_share} / occupancy {event.occupancy} = {event.vehicles} cars, "
                    f"but the lots of {event.venue!r} hold {capacity}")
    background = None
    if get["background"] is not None:
        background = check_table(get["background"], _BACKGROUND, "demand.background",
                                 problems, base)
    routing = check_table(get["routing"] or {}, _ROUTING, "demand.routing", problems, base)
    for key in ("destinations", "places"):
        if get[key] is not None and not Path(get[key]).is_file():
            problems.add(f"demand.{key}: {get[key]} not found")
    for i, p in enumerate(get["od"] or []):
        if not Path(p).is_file():
            problems.add(f"demand.od[{i}]: {p} not found")
    if event is None and background is None and not get["od"] and not problems:
        problems.add("demand: nothing to build; give demand.event, demand.background "
                     "or demand.od (or demand.routes)")
    problems.raise_if_any(ScenarioError)
    return DemandSpec(float(get["interval"]), list(get["od"] or []), event, background,
                      get["destinations"], get["places"], float(get["beta"]), routing)


# --------------------------------------------------------------------------- OD models

def _bounds(lo: float, hi: float, anchor: float, step: float) -> np.ndarray:
    """Interval bounds on the grid ``anchor + k × step`` covering [lo, hi]."""
    k0 = math.floor((lo - anchor) / step + 1e-9)
    k1 = math.ceil((hi - anchor) / step - 1e-9)
    return anchor + step * np.arange(k0, max(k1, k0 + 1) + 1)


def event_od(profile: DepartureProfile, vehicles: float, origin: str,
             destinations: dict[str, float], bounds: Sequence[float]) -> pd.DataFrame:
    """OD rows of an event: vehicles × interval share × destination share.

    Parameters
    ----------
    profile : DepartureProfile
    vehicles : float
        Cars leaving the venue.
    origin : str
        Token of the venue's zone.
    destinations : dict
        Destination token -> share (sums to 1).
    bounds : sequence of float
        Interval bounds (s).

    The cars are first spread over the intervals as whole numbers
    (:func:`largest_remainder` of ``vehicles × share``), so every interval's
    OD total is an integer and the event's total is exactly ``vehicles``.

    Returns
    -------
    pandas.DataFrame
        ``origin, destination, begin, end, trips, kind`` (kind "event"),
        rows with zero trips dropped.
    """
    shares = profile.shares(bounds)
    per_interval = largest_remainder(shares, int(math.floor(vehicles + 0.5)))
    rows = []
    for k, n in enumerate(per_interval):
        if n <= 0:
            continue
        for token, share in destinations.items():
            if share > 0:
                rows.append((origin, token, float(bounds[k]), float(bounds[k + 1]),
                             n * share, "event"))
    return pd.DataFrame(rows, columns=["origin", "destination", "begin", "end", "trips", "kind"])


def hourly_rate(begin: float, end: float) -> float:
    """Mean of :data:`HOURLY_FACTORS` over [begin, end) (seconds after midnight)."""
    total, t = 0.0, begin
    hours = sorted(HOURLY_FACTORS)
    while t < end - 1e-9:
        h = int(t // 3600)
        nxt = min(end, (h + 1) * 3600.0)
        factor = HOURLY_FACTORS[min(max(h, hours[0]), hours[-1])]
        total += factor * (nxt - t)
        t = nxt
    return total / (end - begin)


def background_od(zones, bounds: Sequence[float], *, trips_per_hour: float = 9000.0,
                  scale: float = 1.0, through_share: float = 0.75, beta: float = 0.03,
                  ) -> pd.DataFrame:
    """OD rows of a normal evening between the zones (see the module docstring).

    Parameters
    ----------
    zones : egress.network.zones.Zones
        Zones with external places (their ``population``).
    bounds : sequence of float
        Interval bounds (s).
    trips_per_hour, scale, through_share, beta : float
        See ``[demand.background]``.

    Returns
    -------
    pandas.DataFrame
        ``origin, destination, begin, end, trips, kind`` (kind "background").
    """
    t = zones.table
    has_src = t["token"].map(lambda z: bool(zones.sources.get(z))).to_numpy()
    has_snk = t["token"].map(lambda z: bool(zones.sinks.get(z))).to_numpy()
    ext = (t["kind"] == "external").to_numpy()
    internal = ~ext
    mass = np.where(ext, t["population"].fillna(0).to_numpy(), t["n_edges"].to_numpy())
    lon, lat = t["lon"].to_numpy(), t["lat"].to_numpy()
    dist = _haversine_km(lon[:, None], lat[:, None], lon[None, :], lat[None, :])
    base = mass[:, None] * mass[None, :] * np.exp(-beta * dist)
    base *= has_src[:, None] & has_snk[None, :]
    np.fill_diagonal(base, 0.0)

    parts: list[tuple[np.ndarray, float]] = []
    if internal.any():
        clon, clat = lon[internal].mean(), lat[internal].mean()
    else:
        clon, clat = lon.mean(), lat.mean()
    b = np.radians(_bearing(clon, clat, lon, lat))
    cos_angle = np.cos(b[:, None] - b[None, :])
    through = base * (ext[:, None] & ext[None, :]) * (
        cos_angle <= math.cos(math.radians(THROUGH_ANGLE)))
    local = [base * (ext[:, None] & internal[None, :]),
             base * (internal[:, None] & ext[None, :]),
             base * (internal[:, None] & internal[None, :])]
    local_w = [w for w, m in zip(LOCAL_SPLIT, local, strict=True) if m.sum() > 0]
    parts.append((through, through_share if through.sum() > 0 else 0.0))
    for m, w in zip(local, LOCAL_SPLIT, strict=True):
        if m.sum() > 0:
            parts.append((m, (1 - through_share) * w / sum(local_w)))
    total_w = sum(w for _, w in parts)
    if total_w <= 0:
        raise InputError("background demand", "no pair of zones can exchange trips "
                         "(no external places and fewer than two usable internal zones)")
    share = sum(m / m.sum() * (w / total_w) for m, w in parts if w > 0)
    oi, di = np.nonzero(share > 1e-6)
    share_flat = share[oi, di] / share[oi, di].sum()
    tokens = t["token"].to_numpy()
    frames = []
    for a, z in zip(bounds[:-1], bounds[1:], strict=True):
        vehicles = trips_per_hour * scale * hourly_rate(a, z) * (z - a) / 3600.0
        frames.append(pd.DataFrame({"origin": tokens[oi], "destination": tokens[di],
                                    "begin": float(a), "end": float(z),
                                    "trips": vehicles * share_flat, "kind": "background"}))
    return pd.concat(frames, ignore_index=True)


def read_destinations(path: str | Path) -> pd.DataFrame:
    """Read a user destination table: ``share`` and ``token`` or ``lon``/``lat``.

    Returns
    -------
    pandas.DataFrame
        ``token`` (may be empty where lon/lat given), ``lon``, ``lat``, ``share``
        normalised to sum 1.

    Raises
    ------
    InputError
        Naming each bad row.
    """
    from .network.zones import cell_center, cell_of, is_token

    path = Path(path)
    df = pd.read_csv(path, dtype={"token": str})
    problems = Problems(path)
    if "share" not in df.columns:
        problems.add("missing column 'share'")
    if "token" not in df.columns and not {"lon", "lat"} <= set(df.columns):
        problems.add("needs a 'token' column or 'lon' and 'lat' columns")
    problems.raise_if_any(InputError)
    rows = []
    for i, row in df.iterrows():
        where = f"row {i + 2}"
        share = pd.to_numeric(row["share"], errors="coerce")
        if not share >= 0:
            problems.add(f"{where}: share must be a number >= 0, got {row['share']!r}")
            continue
        token = row.get("token")
        if isinstance(token, str) and token.strip():
            if not is_token(token.strip()):
                problems.add(f"{where}: {token!r} is not a level-13 cell token")
                continue
            lon, lat = cell_center(token.strip())
        else:
            try:
                lon, lat = float(row["lon"]), float(row["lat"])
                cell_of(lon, lat)
            except (KeyError, TypeError, ValueError, InputError):
                problems.add(f"{where}: no token and no valid lon/lat")
                continue
        rows.append((lon, lat, float(share)))
    if rows and sum(r[2] for r in rows) <= 0:
        problems.add("shares sum to 0")
    if not rows and not problems:
        problems.add("no rows")
    problems.raise_if_any(InputError)
    out = pd.DataFrame(rows, columns=["lon", "lat", "share"])
    out["share"] /= out["share"].sum()
    out["name"] = [f"{path.name}:{i + 2}" for i in range(len(out))]
    out["population"] = out["share"]
    return out


# --------------------------------------------------------------------------- build OD

@dataclass
class DemandOD:
    """The OD demand of a scenario before sampling.

    Attributes
    ----------
    od : pandas.DataFrame
        ``origin, destination, begin, end, trips, kind``.
    zones : egress.network.zones.Zones
    spec : DemandSpec
    destinations : pandas.DataFrame or None
        The event's destination places with ``token, share, direction, ...``.
    splits : dict
        Share of event trips per direction (N/E/S/W) from the venue.
    """

    od: pd.DataFrame
    zones: Any
    spec: DemandSpec
    destinations: pd.DataFrame | None = None
    splits: dict[str, float] = field(default_factory=dict)


def build_od(scenario, spec: DemandSpec | None = None) -> DemandOD:
    """Build the zones and the OD table of a scenario (no trips, no routes).

    Parameters
    ----------
    scenario : egress.scenario.Scenario
    spec : DemandSpec, optional
        From :func:`check_demand` (computed when not given).

    Returns
    -------
    DemandOD

    Raises
    ------
    ScenarioError, InputError
    """
    from .network import read_net
    from .network.zones import build_zones, cell_of, edge_cells

    spec = spec or check_demand(scenario)
    net = read_net(scenario.network)
    venues = scenario.venues
    places = load_places(spec.places)
    dest = None
    if spec.event is not None:
        venue = venues[spec.event.venue]
        if spec.destinations is not None:
            dest = read_destinations(spec.destinations)
            dest["distance_km"] = _haversine_km(venue.lon, venue.lat, dest["lon"], dest["lat"])
            dest["bearing"] = _bearing(venue.lon, venue.lat, dest["lon"], dest["lat"])
            dest["direction"] = _direction(dest["bearing"].to_numpy())
        else:
            dest = gravity_destinations(places, venue.lon, venue.lat, spec.beta)
        dest["token"] = [cell_of(lo, la) for lo, la in zip(dest["lon"], dest["lat"], strict=True)]

    # Lot exit -> venue zone. A lot shared by two venues (listed under both)
    # belongs to the event's venue, else to the first venue listing it.
    lot_zone: dict[str, str] = {}
    venue_zone: dict[str, str] = {}
    if venues is not None:
        order = sorted(venues.venues.values(),
                       key=lambda v: spec.event is None or v.id != spec.event.venue)
        for v in order:
            venue_zone[v.id] = cell_of(v.lon, v.lat)
            for edge in v.exits:
                lot_zone.setdefault(edge, venue_zone[v.id])

    # Places in cells that hold edges feed internal zones; the rest are external.
    internal = set(edge_cells(net, lot_zone)["token"]) | set(venue_zone.values())
    ext = places.assign(token=[cell_of(lo, la) for lo, la in
                               zip(places["lon"], places["lat"], strict=True)])
    external = ext.loc[~ext["token"].isin(internal), ["token", "population"]]
    if dest is not None:
        extra = dest.loc[~dest["token"].isin(internal) & ~dest["token"].isin(external["token"]),
                         ["token"]].assign(population=0.0)
        external = pd.concat([external, extra], ignore_index=True)
    zones = build_zones(net, lot_zone, external if len(external) else None)
    zones.venue_zones.update(venue_zone)

    frames = []
    sim = scenario.simulation
    splits: dict[str, float] = {}
    if spec.event is not None:
        prof = spec.event.profile
        lo, hi = prof.support
        outside = float(prof.cdf(sim.begin) + 1.0 - prof.cdf(sim.end))
        if outside > 0.005:
            log.warning("%.1f%% of the event's departures fall outside the simulation "
                        "window (demand.event.end vs simulation.begin/end)", 100 * outside)
        bounds = _bounds(lo, hi, sim.begin, spec.interval)
        shares = dest.groupby("token", sort=True)["share"].sum()
        origin = zones.venue_zone(spec.event.venue)
        frames.append(event_od(prof, spec.event.vehicles, origin, shares.to_dict(), bounds))
        splits = direction_splits(dest)
    if spec.background is not None:
        bg = spec.background
        bounds = _bounds(sim.begin, sim.end, sim.begin, spec.interval)
        frames.append(background_od(zones, bounds, trips_per_hour=bg["trips_per_hour"],
                                    scale=bg["scale"], through_share=bg["through_share"],
                                    beta=bg["beta"]))
    for path in spec.od:
        frames.append(read_kinded_od(path, zones))
    return DemandOD(_tidy(pd.concat(frames, ignore_index=True)), zones, spec, dest, splits)


def _tidy(od: pd.DataFrame) -> pd.DataFrame:
    return od.loc[od["trips"] > 0].sort_values(["kind", "begin", "origin", "destination"],
                                               kind="stable").reset_index(drop=True)


def _replace_od(built: DemandOD, path: str | Path) -> DemandOD:
    """`built` with its OD table replaced by the OD file at `path`."""
    od = _tidy(read_kinded_od(path, built.zones))
    event = built.spec.event
    if event is not None:
        zone = built.zones.venue_zone(event.venue)
        counts = integerize(od)
        cars = int(counts[((od["kind"] == "event") & (od["origin"] == zone)).to_numpy()].sum())
        if cars > sum(event.lots.values()):
            raise InputError(str(path), f"{cars} event cars leave {event.venue!r} but its lots "
                             f"hold {sum(event.lots.values())}")
    return dataclasses.replace(built, od=od)



def _lot_plan(event: EventSpec, n: int) -> list[tuple[str, str]]:
    """(lot id, exit edge) for `n` cars: by capacity, then evenly over exits."""
    ids = list(event.lots)
    caps = [event.lots[i] for i in ids]
    if n > sum(caps):
        raise ScenarioError("demand.event", f"demand.event.attendance: {n} cars but the lots of "
                            f"{event.venue!r} hold {sum(caps)}")
    per_lot = largest_remainder(caps, n)
    plan = []
    for lot_id, k in zip(ids, per_lot, strict=True):
        exits = event.exits[lot_id]
        plan += [(lot_id, exits[j % len(exits)]) for j in range(int(k))]
    return plan


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
#: Independent draws of a vehicle (see :func:`vehicle_draws`).
STREAMS = ("time", "lot", "from", "to", "route", "speed")


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective scramble of 64-bit integers."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def vehicle_draws(od: pd.DataFrame, counts: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Uniform draws in [0, 1) for every vehicle, one per :data:`STREAMS`.

    The draws of the k-th vehicle of an OD row depend only on the seed, the
    row's kind, origin, destination and interval, and k: they are a hash
    (SplitMix64) of these, not a position in a random stream. So when a
    calibration changes some rows' trips, every other vehicle keeps its
    departure time, lot, edges, route and speed factor (common random
    numbers down to the vehicle), and two ODs differ in their simulations
    only where their trips differ.
    """
    cols = [c for c in ("kind", "origin", "destination", "begin") if c in od.columns]
    row_keys = pd.util.hash_pandas_object(od[cols], index=False).to_numpy(dtype=np.uint64)
    rows = np.repeat(np.arange(len(od)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    k = (np.arange(len(rows)) - first).astype(np.uint64)
    with np.errstate(over="ignore"):
        keys = _mix(row_keys[rows] ^ _mix((k + np.uint64(1)) * _GOLDEN))
        out = {}
        for i, name in enumerate(STREAMS):
            base = _mix(np.uint64(int(seed) % 2**64) * _GOLDEN + np.uint64(i + 1))
            out[name] = (_mix(keys ^ base) >> np.uint64(11)).astype(float) * 2.0 ** -53
    return out


def _pick(table: dict[str, float], u: np.ndarray, exclude: set[str] = frozenset()
          ) -> np.ndarray:
    """Edges drawn by weight (inverse CDF of the sorted table at `u`)."""
    items = [(e, w) for e, w in sorted(table.items()) if e not in exclude]
    if not items:
        items = sorted(table.items())
    edges = np.array([e for e, _ in items], dtype=object)
    w = np.array([w for _, w in items], dtype=float)
    w = w if w.sum() > 0 else np.ones(len(w))
    cum = np.cumsum(w) / w.sum()
    return edges[np.minimum(np.searchsorted(cum, u, side="right"), len(edges) - 1)]


def _speed_factors(kinds: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Each vehicle's speed factor from its vType's ``normc(mean, dev, lo, hi)``
    (a normal distribution truncated to [lo, hi]) at the draw `u`."""
    from scipy.special import ndtr, ndtri

    out = np.ones(len(u))
    for kind in np.unique(kinds):
        spec = VTYPES.get(kind, VTYPES["background"])["speedFactor"]
        mean, dev, lo, hi = (float(v) for v in spec[spec.index("(") + 1:-1].split(","))
        sel = kinds == kind
        a, b = ndtr((lo - mean) / dev), ndtr((hi - mean) / dev)
        out[sel] = mean + dev * ndtri(a + u[sel] * (b - a))
    return np.round(out, 4)


def sample_trips(od: pd.DataFrame, zones, *, event: EventSpec | None = None,
                 lot_exits: Sequence[str] = (), seed: int = 42) -> pd.DataFrame:
    """Turn an OD table into one row per vehicle.

    Parameters
    ----------
    od : pandas.DataFrame
        ``origin, destination, begin, end, trips, kind``.
    zones : egress.network.zones.Zones
    event : EventSpec, optional
        Event rows (kind "event") from the event venue's zone start on its
        lot exits (see the module docstring) and follow its profile.
    lot_exits : sequence of str
        Edges never used as the start of a background trip.
    seed : int

    Returns
    -------
    pandas.DataFrame
        ``id, kind, depart, origin, destination, from, to, lot, speed_factor,
        route_draw, od_row`` sorted by departure; ids ``ev_000001``,
        ``bg_000001``, ... in departure order per kind. ``route_draw`` in
        [0, 1) picks the vehicle's route among its pair's alternatives
        (:func:`egress.routing.route_vehicles`); ``od_row`` is the position
        of the vehicle's row in `od`.
    """
    counts = integerize(od)
    draws = vehicle_draws(od, counts, seed)
    rows = np.repeat(np.arange(len(od)), counts)
    veh = od.iloc[rows][["kind", "origin", "destination", "begin", "end"]].reset_index(drop=True)
    n = len(veh)
    u = draws["time"]
    depart = veh["begin"].to_numpy() + u * (veh["end"] - veh["begin"]).to_numpy()
    frm = np.empty(n, dtype=object)
    lot = np.full(n, "", dtype=object)
    venue_zone = zones.venue_zone(event.venue) if event is not None else None
    is_event = ((veh["kind"] == "event") & (veh["origin"] == venue_zone)).to_numpy()
    if is_event.any():
        prof = event.profile
        a, b = veh["begin"].to_numpy()[is_event], veh["end"].to_numpy()[is_event]
        fa, fb = prof.cdf(a), prof.cdf(b)
        depart[is_event] = np.clip(prof.quantile(fa + u[is_event] * (fb - fa)), a, b - 0.1)
        # The plan lists lot slots lot by lot; cars take them in the order of
        # their lot draw, so a car keeps its lot when others come or go.
        plan = _lot_plan(event, int(is_event.sum()))
        slot = np.empty(len(plan), dtype=int)
        slot[np.argsort(draws["lot"][is_event], kind="stable")] = np.arange(len(plan))
        lot[is_event] = [plan[k][0] for k in slot]
        frm[is_event] = [plan[k][1] for k in slot]
    skip = set(lot_exits)
    for origin, idx in sorted(veh.loc[~is_event].groupby("origin").indices.items()):
        src = zones.sources.get(origin) or {}
        if not src:
            raise InputError("OD", f"origin zone {origin} has no source edges")
        frm[idx] = _pick(src, draws["from"][idx], skip)
    to = np.empty(n, dtype=object)
    for dest, idx in sorted(veh.groupby("destination").indices.items()):
        snk = zones.sinks.get(dest) or {}
        if not snk:
            raise InputError("OD", f"destination zone {dest} has no sink edges")
        to[idx] = _pick(snk, draws["to"][idx])
    veh["depart"] = np.round(depart, 2)
    veh["from"], veh["to"], veh["lot"] = frm, to, lot
    veh["speed_factor"] = _speed_factors(veh["kind"].to_numpy(dtype=object), draws["speed"])
    veh["route_draw"] = draws["route"]
    veh["od_row"] = rows
    veh = veh.drop(columns=["begin", "end"])
    veh["_k"] = veh["kind"].map({k: i for i, k in enumerate(KINDS)}).fillna(len(KINDS))
    veh = veh.sort_values(["depart", "_k", "from", "to"], kind="stable").reset_index(drop=True)
    seq = veh.groupby("kind").cumcount() + 1
    veh.insert(0, "id", [f"{PREFIX.get(k, k + '_')}{i:06d}"
                         for k, i in zip(veh["kind"], seq, strict=True)])
    return veh.drop(columns="_k")


# --------------------------------------------------------------------------- files

def vtype_lines() -> list[str]:
    """The ``<vType>`` elements of :data:`VTYPES`, indented for a route file."""
    return ["    <vType " + " ".join(f'{k}="{v}"' for k, v in vt.items()) + "/>"
            for vt in VTYPES.values()]


def vehicle_attributes(kind: str) -> tuple[str, str]:
    """The vType id and the departure attributes (:data:`DEPART`, as XML
    attribute text) of a vehicle of `kind`."""
    depart = DEPART.get(kind, DEPART["background"])
    return (kind if kind in VTYPES else "background",
            " ".join(f'{k}="{v}"' for k, v in depart.items()))


def write_trips(vehicles: pd.DataFrame, path: str | Path) -> Path:
    """Write vehicles (from :func:`sample_trips`) as a SUMO trips file with vTypes."""
    path = Path(path)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<routes>", *vtype_lines()]
    attrs = {k: vehicle_attributes(k) for k in vehicles["kind"].unique()}
    for kind, vid, dep, frm, to in zip(vehicles["kind"], vehicles["id"], vehicles["depart"],
                                       vehicles["from"], vehicles["to"], strict=True):
        vtype, extra = attrs[kind]
        lines.append(f'    <trip id="{vid}" type="{vtype}" depart="{dep:.2f}" '
                     f'from="{frm}" to="{to}" {extra}/>')
    lines.append("</routes>")
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class DemandResult:
    """What :func:`build_demand` wrote.

    Attributes
    ----------
    od : pandas.DataFrame
        ``origin, destination, begin, end, trips, kind``.
    vehicles : dict
        Routed vehicles per kind.
    routes : list of pathlib.Path
        Route files the simulation loads (vTypes included).
    files : dict
        Name -> path of every written file.
    splits : dict
        Event trips per direction from the venue (N/E/S/W shares).
    unrouted : int
        Trips without a car path (dropped).
    seconds : dict
        Wall time of the steps: "od" (zones and OD table), "trips and
        tables" (sampling, the trips file and the tables), "routes".
    """

    od: pd.DataFrame
    vehicles: dict[str, int]
    routes: list[Path]
    files: dict[str, Path]
    splits: dict[str, float] = field(default_factory=dict)
    unrouted: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def build_demand(scenario, out: str | Path, seed: int | None = None,
                 od: str | Path | None = None) -> DemandResult:
    """Build a scenario's OD demand, trips and routes.

    Parameters
    ----------
    scenario : egress.scenario.Scenario
        Load with :func:`egress.scenario.load_scenario`.
    out : str or pathlib.Path
        Folder to write into (created): ``od.csv`` (with a ``kind`` column),
        ``od.tazrel.xml``, ``zones.taz.xml``, ``zones.csv``,
        ``destinations.csv`` (event only), ``vehicles.csv`` (one row per
        trip, see :func:`sample_trips`),
        ``trips.xml`` and ``routes.rou.xml`` (vTypes included).
    seed : int, optional
        Default ``scenario.simulation.seed``.
    od : str or pathlib.Path, optional
        An OD file that replaces the scenario's OD table, e.g. the
        ``calibrated.od.csv`` of :func:`egress.calibration.calibrate` (CSV
        with a ``kind`` column, or tazRelation XML as background traffic).
        Zones, lots, departure profile and routing still come from the
        scenario.

    Returns
    -------
    DemandResult

    Raises
    ------
    ScenarioError, InputError, SumoError
    """
    from . import od as odmod

    seed = scenario.simulation.seed if seed is None else int(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    built = build_od(scenario)
    if od is not None:
        built = _replace_od(built, od)
    zones, od = built.zones, built.od
    t1 = time.perf_counter()
    lot_exits = scenario.venues.lot_exits if scenario.venues is not None else []
    vehicles = sample_trips(od, zones, event=built.spec.event, lot_exits=lot_exits, seed=seed)
    files: dict[str, Path] = {"trips": write_trips(vehicles, out / "trips.xml"),
                              "routes": out / "routes.rou.xml"}
    files["od"] = out / "od.csv"
    od.to_csv(files["od"], index=False)
    total = od.groupby(["origin", "destination", "begin", "end"], as_index=False,
                       sort=True)["trips"].sum()
    files["tazrel"] = odmod.write_tazrelation(total[list(odmod.OD_COLUMNS)],
                                              out / "od.tazrel.xml")
    files["taz"] = zones.write_taz(out / "zones.taz.xml")
    files["zones"] = out / "zones.csv"
    zones.table.to_csv(files["zones"], index=False)
    if built.destinations is not None:
        files["destinations"] = out / "destinations.csv"
        built.destinations.to_csv(files["destinations"], index=False)
    files["vehicles"] = out / "vehicles.csv"
    vehicles.to_csv(files["vehicles"], index=False)
    t2 = time.perf_counter()
    unrouted_ids = route_vehicles(scenario.network, vehicles, files["routes"], seed=seed,
                                  **built.spec.routing)
    t3 = time.perf_counter()
    unrouted = len(unrouted_ids)
    if unrouted:
        pairs = vehicles.loc[vehicles["id"].isin(unrouted_ids), ["from", "to"]]
        first = pairs.iloc[0]
        log.warning("%d of %d trips could not be routed and were dropped (%d origin-destination "
                    "edge pairs without a car path, e.g. %s -> %s)", unrouted, len(vehicles),
                    len(pairs.drop_duplicates()), first["from"], first["to"])
    counts = vehicles["kind"].value_counts()
    result = DemandResult(
        od=od, vehicles={k: int(counts.get(k, 0)) for k in KINDS}, routes=[files["routes"]],
        files=files, splits=built.splits, unrouted=unrouted,
        seconds={"od": t1 - t0, "trips and tables": t2 - t1, "routes": t3 - t2})
    log.info("demand: %s vehicles (%s) in %.1f s", len(vehicles),
             ", ".join(f"{k} {v}" for k, v in result.vehicles.items()), t3 - t0)
    return result


__all__ = [
    "DEMAND_FIELDS", "DemandOD", "DemandResult", "DemandSpec", "DepartureProfile", "EventSpec",
    "HOURLY_FACTORS", "background_od", "build_demand", "build_od", "check_demand",
    "direction_splits", "event_od", "gravity_destinations", "integerize", "largest_remainder",
    "load_places", "read_destinations", "sample_trips", "STREAMS", "vehicle_draws",
    "write_trips",
]
