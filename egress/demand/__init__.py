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
    alternatives = 64               # perturbed cost copies (egress.demand.routing)

Models
------
Departure profile
    When the event's cars leave: see :class:`egress.config.demand.DepartureProfile`.
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
    interval (:func:`integerize`: round the interval total, give every OD
    cell its floor and the units left to the cells with the largest
    fractional part less a draw hashed from the seed and the cell, so that
    a cell of 0.4 trips gets its trip about 40 % of the time whatever its
    place in the table). Each trip starts on a lot exit (event) or
    on a source edge of its origin zone drawn by the zone's weights, and ends
    on a sink edge of its destination zone. Event departures are drawn from
    the profile within the interval (inverse CDF), background ones uniformly.
    Every vehicle's draws (departure, lot, edges, route, speed factor) are
    hashed from the seed, its OD row and its number within the row
    (:func:`vehicle_draws`), so a vehicle keeps them when other rows change.
    Routes come from :mod:`egress.demand.routing` (cheapest paths over
    ``alternatives`` randomly perturbed copies of the free-flow edge costs,
    the copy chosen by the vehicle's draw), each vehicle carries its own
    ``speedFactor`` from its vType's distribution, so the route file is
    fixed before the simulation and a scenario re-runs bit for bit; SUMO's
    rerouting device is left to the policies. ``trips.xml`` holds the same
    trips unrouted, for users who prefer duarouter.

Modules
-------
:mod:`.od`
    OD tables: reading (CSV, tazRelation), validating, writing.
:mod:`.models`
    Places and gravity destinations, the event OD, the background OD.
:mod:`.sampling`
    Whole trips per OD cell, every vehicle's own draws, the vehicles.
:mod:`.routing`
    Routes with random alternatives.
:mod:`.vehicles`
    Vehicle types, departure attributes, trip files.
:mod:`.build`
    A scenario's OD (:func:`build_od`) and its trips and routes
    (:func:`build_demand`).

The ``[demand]`` table itself is read and checked by
:mod:`egress.config.demand`.
"""

from __future__ import annotations

from .build import DemandOD, DemandResult, build_demand, build_od
from .models import (
    HOURLY_FACTORS,
    background_od,
    direction_splits,
    event_od,
    extend_background,
    gravity_destinations,
    largest_remainder,
    load_places,
    read_destinations,
)
from .od import read_od, write_od
from .routing import Router, route_vehicles, vehicle_routes
from .sampling import STREAMS, integerize, row_draws, sample_trips, vehicle_draws
from .vehicles import VTYPES, write_trips

__all__ = [
    "DemandOD", "DemandResult", "HOURLY_FACTORS", "Router", "STREAMS", "VTYPES",
    "background_od", "build_demand", "build_od", "direction_splits", "event_od",
    "extend_background", "gravity_destinations", "integerize", "largest_remainder", "load_places",
    "read_destinations",
    "read_od", "route_vehicles", "row_draws", "sample_trips", "vehicle_draws", "vehicle_routes",
    "write_od",
    "write_trips",
]
