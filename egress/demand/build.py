"""Building a scenario's demand: zones and OD table, then trips and routes.

:func:`build_od` turns a scenario's demand spec into zones and an OD table;
:func:`build_demand` samples its vehicles, routes them and writes the files a
run loads.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..config.demand import DemandSpec
from ..config.schema import format_time
from ..errors import InputError, ScenarioError
from ..files import check_text_file, read_table
from ..network import read_net
from ..network.zones import build_zones, cell_of, edge_cells
from . import od as odmod
from .models import (
    _bearing,
    _bounds,
    _direction,
    _haversine_km,
    background_od,
    direction_splits,
    event_od,
    gravity_destinations,
    load_places,
    read_destinations,
)
from .od import read_kinded_od
from .routing import route_vehicles
from .sampling import integerize, sample_trips
from .vehicles import KINDS, write_trips

log = logging.getLogger(__name__)

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
    scenario : egress.config.scenario.Scenario
    spec : DemandSpec, optional
        Default: the scenario's.

    Returns
    -------
    DemandOD

    Raises
    ------
    ScenarioError, InputError
    """
    spec = spec or scenario.demand
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
        if outside > 0.999:
            raise ScenarioError(str(scenario.path), "demand.event.end: the event's cars leave "
                                f"between {format_time(lo)} and {format_time(hi)}, outside "
                                f"the simulation window {format_time(sim.begin)}-"
                                f"{format_time(sim.end)}")
        if outside > 0.005:
            log.warning("%.1f%% of the event's departures fall outside the simulation "
                        "window (demand.event.end vs simulation.begin/end)", 100 * outside)
        bounds = _bounds(lo, hi, sim.begin, spec.interval)
        shares = dest.groupby("token", sort=True)["share"].sum()
        origin = zones.venue_zone(spec.event.venue)
        # cut to the window like an OD file's rows: an interval that runs past the
        # window's end would overlap the same interval of a file cut to that end
        frames.append(clip_to_window(
            event_od(prof, spec.event.vehicles, origin, shares.to_dict(), bounds),
            sim.begin, sim.end, "demand.event"))
        splits = direction_splits(dest)
    if spec.background is not None:
        bg = spec.background
        bounds = _bounds(sim.begin, sim.end, sim.begin, spec.interval)
        frames.append(background_od(zones, bounds, trips_per_hour=bg.trips_per_hour,
                                    scale=bg.scale, through_share=bg.through_share,
                                    beta=bg.beta))
    for path in spec.od:
        frames.append(clip_to_window(read_kinded_od(path, zones), sim.begin, sim.end, path))
    return DemandOD(_tidy(pd.concat(frames, ignore_index=True)), zones, spec, dest, splits)


def clip_to_window(od: pd.DataFrame, begin: float, end: float,
                   source: str | Path = "OD table") -> pd.DataFrame:
    """The part of an OD table that departs in the window [`begin`, `end`).

    An OD table may cover a longer evening than the scenario that uses it
    (the calibrated 19:00-26:00 background serves the large event's window
    of 21:30-26:00): rows wholly outside the window are left out, and a row
    that straddles a window bound keeps its trips in proportion to the
    overlap (departures are uniform within a row's interval), its interval
    cut to the window.

    Raises
    ------
    InputError
        If no row of the table departs in the window.
    """
    if od.empty:
        return od  # nothing outside the window (an empty demand is named where it is built)
    lo = od["begin"].clip(lower=begin)
    hi = od["end"].clip(upper=end)
    keep = (hi > lo).to_numpy()
    if not keep.any():
        raise InputError(str(source), f"every OD row lies outside the simulation window "
                         f"{format_time(begin)}-{format_time(end)} (its rows run from "
                         f"{format_time(od['begin'].min())} to {format_time(od['end'].max())})")
    share = ((hi - lo) / (od["end"] - od["begin"]))[keep]
    out = od.loc[keep].assign(begin=lo[keep], end=hi[keep], trips=od["trips"][keep] * share)
    if (~keep).any() or (share < 1).any():
        log.info("%s: %d of %d OD rows depart outside the window %g-%g s and were left out, "
                 "%d cut to it", source, int((~keep).sum()), len(od), begin, end,
                 int((share < 1).sum()))
    return out.reset_index(drop=True)


def check_od_files(scenario, od: str | Path | None = None) -> None:
    """Check a scenario's OD files (and an OD that replaces them) before anything is
    built or written: each must be a readable text table (not missing, empty, binary,
    undecodable or malformed) with a row that departs in the simulation window. Problems of
    single rows are named when the demand is built, together with unknown zones, which
    only the built zones can tell.

    Raises
    ------
    MissingFileError, InputError
        Naming the file, or that every row lies outside the window.
    """
    for path in [*scenario.demand.od, *([od] if od is not None else [])]:
        if Path(path).suffix.lower() == ".csv":
            read_table(path, "OD file")  # missing, empty, binary, undecodable, malformed
        else:
            check_text_file(path, "OD file")
        try:
            table = read_kinded_od(path)
        except InputError:
            continue  # a row's problems are named with the zones' when the demand is built
        clip_to_window(table, scenario.simulation.begin, scenario.simulation.end, path)


def _tidy(od: pd.DataFrame) -> pd.DataFrame:
    # an empty part (an event of 0 cars) would otherwise leave the columns as objects
    od = od.astype({"begin": float, "end": float, "trips": float})
    return od.loc[od["trips"] > 0].sort_values(["kind", "begin", "origin", "destination"],
                                               kind="stable").reset_index(drop=True)


def _replace_od(built: DemandOD, path: str | Path, sim, seed: int) -> DemandOD:
    """`built` with its OD table replaced by the OD file at `path` (its part in the
    simulation window `sim`, see :func:`clip_to_window`); `seed` rounds its trips
    as the sampler will."""
    od = _tidy(clip_to_window(read_kinded_od(path, built.zones), sim.begin, sim.end, path))
    event = built.spec.event
    if event is not None:
        zone = built.zones.venue_zone(event.venue)
        counts = integerize(od, seed)
        cars = int(counts[((od["kind"] == "event") & (od["origin"] == zone)).to_numpy()].sum())
        if cars > sum(event.lots.values()):
            raise InputError(str(path), f"{cars} event cars leave {event.venue!r} but its lots "
                             f"hold {sum(event.lots.values())}")
    return dataclasses.replace(built, od=od)


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
    scenario : egress.config.scenario.Scenario
        Load with :func:`egress.config.scenario.load_scenario`.
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
        ``calibrated.od.csv`` of :func:`egress.calibration.driver.calibrate` (CSV
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
    seed = scenario.simulation.seed if seed is None else int(seed)
    check_od_files(scenario, od)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    built = build_od(scenario)
    if od is not None:
        built = _replace_od(built, od, scenario.simulation, seed)
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
                                  **built.spec.routing.kwargs())
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



__all__ = ["DemandOD", "DemandResult", "build_demand", "build_od", "clip_to_window"]
