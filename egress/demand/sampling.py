"""From an OD table to vehicles: whole trips per cell, and every vehicle's own draws.

Every vehicle's draws (departure, lot, edges, route, speed factor) are
hashed from the seed, its OD row and its number within the row
(:func:`vehicle_draws`), so a vehicle keeps them when other rows change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..config.demand import EventSpec
from ..errors import InputError, ScenarioError
from .models import largest_remainder
from .vehicles import KINDS, PREFIX, VTYPES


def integerize(od: pd.DataFrame, seed: int | None = None) -> np.ndarray:
    """Integer trips per OD row: each (kind, interval) total rounded half up,
    then spread over its rows.

    Every row gets the floor of its trips, and the units left of the
    rounded total go to the rows with the largest fractional part: without
    `seed` as is (:func:`largest_remainder`, ties to the earlier row), with
    `seed` minus a uniform draw per row hashed from the seed and the row's
    kind, origin, destination and interval (:func:`row_draws`). A row then
    gets its extra trip about as often as its fractional part says, and
    keeps its decision when the OD changes unless it sits at the margin.

    Why the draw: largest remainder decides rows below a trip by their
    order alone. In an OD of many such rows (a prior spread evenly over
    32,000 rows of half a trip each) scaling some rows up by 3 % hands
    them every trip and takes every trip from the others, so two close
    ODs simulate entirely different vehicles, and a calibration's small
    steps move its simulations as far as its large ones.
    """
    counts = np.zeros(len(od), dtype=int)
    keys = ["kind", "begin"] if "kind" in od.columns else ["begin"]
    u = None if seed is None else row_draws(od, seed)
    for _, idx in od.groupby(keys, sort=True).indices.items():
        trips = od["trips"].to_numpy()[idx]
        total = int(math.floor(trips.sum() + 0.5))
        if u is None:
            counts[idx] = largest_remainder(trips, total)
            continue
        floor = np.floor(trips).astype(int)
        rest = total - int(floor.sum())
        if rest > 0:
            order = np.argsort(-((trips - floor) - u[idx]), kind="stable")
            floor[order[:rest]] += 1
        counts[idx] = floor
    return counts


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
#: Stream of the per-row draws (:func:`row_draws`), apart from the vehicles' :data:`STREAMS`.
_ROW_STREAM = 101


#: Independent draws of a vehicle (see :func:`vehicle_draws`).
STREAMS = ("time", "lot", "from", "to", "route", "speed")


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective scramble of 64-bit integers."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _row_keys(od: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each OD row's kind, origin, destination and interval start."""
    cols = [c for c in ("kind", "origin", "destination", "begin") if c in od.columns]
    return pd.util.hash_pandas_object(od[cols], index=False).to_numpy(dtype=np.uint64)


def row_draws(od: pd.DataFrame, seed: int) -> np.ndarray:
    """A uniform draw in [0, 1) per OD row, hashed from the seed and the row's
    kind, origin, destination and interval start (not its position)."""
    if not len(od):
        return np.zeros(0)
    with np.errstate(over="ignore"):
        base = _mix(np.uint64(int(seed) % 2**64) * _GOLDEN + np.uint64(_ROW_STREAM))
        return (_mix(_row_keys(od) ^ base) >> np.uint64(11)).astype(float) * 2.0 ** -53


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
    row_keys = _row_keys(od)
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
        (:func:`egress.demand.routing.route_vehicles`); ``od_row`` is the position
        of the vehicle's row in `od`.
    """
    counts = integerize(od, seed)
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
                         for k, i in zip(veh["kind"].tolist(), seq.tolist(), strict=True)])
    return veh.drop(columns="_k")



__all__ = ["STREAMS", "integerize", "row_draws", "sample_trips", "vehicle_draws"]
