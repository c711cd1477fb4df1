"""Venues, their parking facilities and the study area.

A venues file (TOML) sits next to a network and describes the places that
event traffic leaves from::

    [study_area]
    name = "SODO"
    polygon = [[-122.34, 47.60], ...]    # [lon, lat] ring, WGS84

    [[venues]]
    id = "lumen_field"
    name = "Lumen Field"
    lon = -122.3317
    lat = 47.5952

    [[venues.lots]]
    id = "lumen_event_center_garage"
    name = "Lumen Field Event Center Garage"
    capacity = 2000                      # parking spaces
    exits = ["lot_exit_edge_1", "lot_exit_edge_2"]

A lot exit is a network edge on which vehicles leaving the facility are
inserted.

Lots by coordinates
    For one's own city the edge ids are not known in advance. A lot may give
    where its exit is instead of ``exits``::

        [[venues.lots]]
        id = "north_lot"
        name = "North Lot"
        capacity = 400
        lon = -122.3321
        lat = 47.5987
        heading = 90        # optional: direction of the traffic leaving, degrees from north

    and the scenario snaps it to the nearest street edge of its network
    (:func:`snap_venues`, :mod:`egress.network.snapping`), recording what was
    snapped where in :attr:`Venues.snapped`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import limits
from ..errors import NetworkError, Problems, ScenarioError
from ..network.graph import read_net
from ..network.snapping import Snap, snap
from .schema import Field, check_table, read_toml


@dataclass(frozen=True)
class Lot:
    """A parking facility of a venue."""

    id: str
    name: str
    capacity: int
    exits: tuple[str, ...]
    lon: float | None = None
    lat: float | None = None
    heading: float | None = None


@dataclass(frozen=True)
class Venue:
    """An event venue with its parking facilities."""

    id: str
    name: str
    lon: float
    lat: float
    lots: tuple[Lot, ...] = ()

    @property
    def exits(self) -> list[str]:
        """All lot exit edges of the venue, in file order, without repeats."""
        return list(dict.fromkeys(e for lot in self.lots for e in lot.exits))

    @property
    def capacity(self) -> int:
        """Total parking spaces of the venue's facilities."""
        return sum(lot.capacity for lot in self.lots)


@dataclass(frozen=True)
class StudyArea:
    """The area in which travel times are measured (a lon/lat polygon)."""

    name: str
    polygon: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Venues:
    """Contents of a venues file."""

    path: Path
    venues: dict[str, Venue] = field(default_factory=dict)
    study_area: StudyArea | None = None
    snapped: tuple[Snap, ...] = ()

    def __getitem__(self, venue_id: str) -> Venue:
        return self.venues[venue_id]

    @property
    def lot_exits(self) -> list[str]:
        """Every lot exit edge of every venue."""
        return list(dict.fromkeys(e for v in self.venues.values() for e in v.exits))


_VENUE = {
    "id": Field("str", required=True),
    "name": Field("str", required=True),
    "lon": Field("float", required=True, check=limits.within(-180, 180)),
    "lat": Field("float", required=True, check=limits.within(-90, 90)),
    "lots": Field("list", default=[]),
}
_LOT = {
    "id": Field("str", required=True),
    "name": Field("str", required=True),
    "capacity": Field("int", required=True,
                      check=limits.within(0, limits.VEHICLES_MAX, lo_open=True,
                                          what="cars")),
    "exits": Field("list"),
    "lon": Field("float", check=limits.within(-180, 180)),
    "lat": Field("float", check=limits.within(-90, 90)),
    "heading": Field("float", check=limits.within(-360, 360)),
}
_AREA = {"name": Field("str", default="study area"), "polygon": Field("list", required=True)}


def load_venues(path: str | Path) -> Venues:
    """Read and validate a venues file.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    Venues

    Raises
    ------
    MissingFileError
        If the file does not exist.
    ScenarioError
        Listing every problem found in the file.
    """
    path = Path(path)
    data = read_toml(path, "venues file", ScenarioError)
    problems = Problems(path)
    top = check_table(data, {"study_area": Field("table"), "venues": Field("list", default=[])},
                      "", problems, path.parent)
    area = None
    if top["study_area"] is not None:
        a = check_table(top["study_area"], _AREA, "study_area", problems, path.parent)
        ring = _polygon(a["polygon"], "study_area.polygon", problems)
        area = StudyArea(a["name"], ring)
    venues: dict[str, Venue] = {}
    for i, raw in enumerate(top["venues"]):
        where = f"venues[{i}]"
        v = check_table(raw, _VENUE, where, problems, path.parent)
        lots = []
        for j, rawlot in enumerate(v["lots"]):
            lw = f"{where}.lots[{j}]"
            lot = check_table(rawlot, _LOT, lw, problems, path.parent)
            exits = lot["exits"] or []
            by_point = lot["lon"] is not None and lot["lat"] is not None
            if (lot["lon"] is None) != (lot["lat"] is None):
                problems.add(f"{lw}: give both lon and lat, or exits")
            if by_point and exits:
                problems.add(f"{lw}: give either exits or lon/lat, not both")
            elif not by_point and (not exits or not all(isinstance(e, str) for e in exits)):
                problems.add(f"{lw}.exits: expected a non-empty list of edge ids (or lon and "
                             "lat of the lot's exit)")
                exits = []
            if lot["id"] is not None and lot["id"] in {x.id for x in lots}:
                problems.add(f"{lw}.id: duplicate lot id {lot['id']!r} (its capacity would "
                             "replace the first's)")
            lots.append(Lot(lot["id"], lot["name"], lot["capacity"] or 0, tuple(exits),
                            lot["lon"], lot["lat"], lot["heading"]))
        if v["id"] in venues:
            problems.add(f"{where}.id: duplicate venue id {v['id']!r}")
        venues[v["id"]] = Venue(v["id"], v["name"], v["lon"], v["lat"], tuple(lots))
    problems.raise_if_any(ScenarioError)
    return Venues(path, venues, area)


def snap_venues(venues: Venues, network: str | Path) -> Venues:
    """`venues` with every lot given by coordinates snapped to a street edge of `network`.

    A lot exit stands on a street, so freeways and ramps are not candidates;
    with a ``heading`` only edges running that way are (module docstring).
    The same lot listed under two venues is snapped once.

    Raises
    ------
    ScenarioError
        Naming each lot that no edge fits.
    """
    if not any(lot.exits == () for v in venues.venues.values() for lot in v.lots):
        return venues
    net = read_net(network)
    problems = Problems(venues.path)
    done: dict[str, Snap] = {}
    new = {}
    for vid, venue in venues.venues.items():
        lots = []
        for lot in venue.lots:
            if lot.exits or lot.lon is None or lot.lat is None:
                lots.append(lot)
                continue
            if lot.id not in done:
                try:
                    done[lot.id] = snap(net, lot.lon, lot.lat, f"lot {lot.id!r}",
                                        heading=lot.heading)
                except NetworkError as exc:
                    problems.add(f"venue {vid} lot {lot.id}: {exc}")
                    lots.append(lot)
                    continue
            lots.append(replace(lot, exits=(done[lot.id].edge,)))
        new[vid] = replace(venue, lots=tuple(lots))
    problems.raise_if_any(ScenarioError)
    return replace(venues, venues=new, snapped=venues.snapped + tuple(done.values()))


def _polygon(raw: list, where: str, problems: Problems) -> tuple[tuple[float, float], ...]:
    ring = []
    for k, pt in enumerate(raw or []):
        ok = (isinstance(pt, list) and len(pt) == 2
              and all(isinstance(c, int | float) and not isinstance(c, bool) for c in pt))
        if not ok or not (-180 <= pt[0] <= 180 and -90 <= pt[1] <= 90):
            problems.add(f"{where}[{k}]: expected [lon, lat] in degrees, got {pt!r}")
            continue
        ring.append((float(pt[0]), float(pt[1])))
    if raw and len(ring) < 3:
        problems.add(f"{where}: a polygon needs at least 3 points")
    return tuple(ring)


__all__ = ["Lot", "StudyArea", "Venue", "Venues", "load_venues", "snap_venues"]
