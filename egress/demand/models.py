"""Demand models: the places people drive to, the event's OD, normal evening traffic.

See the package docstring (:mod:`egress.demand`) for the models: gravity
destinations over places, the event OD shaped by the departure profile
(:class:`egress.config.demand.DepartureProfile`), the background OD.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.demand import DepartureProfile
from ..errors import InputError, MissingFileError, Problems
from ..files import read_table
from ..network.zones import cell_center, cell_of, is_token

#: The packaged places table (see ``egress/data/README.md``).
PLACES = Path(__file__).parents[1] / "data" / "puget_sound_places.csv"


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
        df = read_table(path, "places file (name, lon, lat, population)")
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
        if not (pop >= 0 and math.isfinite(pop)):
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


def extend_background(od: pd.DataFrame, until: float) -> pd.DataFrame:
    """An OD table's background traffic carried on past its end, to `until`.

    Each later hour repeats the table's last hour of background rows (same
    pairs, same split within the hour), scaled by the ratio of
    :data:`HOURLY_FACTORS` of the two hours: a calibrated evening keeps its
    pattern and follows the usual late-evening decline (a 19:00-24:00
    calibration serves an event that clears by 25:00). Event rows are not
    extended.

    Parameters
    ----------
    od : pandas.DataFrame
        ``origin, destination, begin, end, trips`` and ``kind``; its intervals
        must tile its last hour.
    until : float
        New end, s after midnight; a whole number of hours after the table's end.

    Returns
    -------
    pandas.DataFrame
        `od` with the added rows.
    """
    bg = od.loc[od["kind"] == "background"]
    end = float(bg["end"].max())
    hours = (until - end) / 3600.0
    if hours <= 0:
        return od
    if not float(hours).is_integer():
        raise InputError("extend_background", f"until ({until:g} s) must be whole hours "
                         f"after the table's end ({end:g} s)")
    last = bg.loc[bg["begin"] >= end - 3600.0]
    frames = [od]
    for k in range(1, int(hours) + 1):
        shift = 3600.0 * k
        factor = hourly_rate(end - 3600.0 + shift, end + shift) / hourly_rate(end - 3600.0, end)
        frames.append(last.assign(begin=last["begin"] + shift, end=last["end"] + shift,
                                  trips=last["trips"] * factor))
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
    path = Path(path)
    df = read_table(path, "destinations file (token or lon, lat, and share)",
                    dtype={"token": str})
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
        if not (share >= 0 and math.isfinite(share)):
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


__all__ = ["HOURLY_FACTORS", "PLACES", "background_od", "direction_splits", "event_od",
           "extend_background",
           "gravity_destinations", "hourly_rate", "largest_remainder", "load_places",
           "read_destinations"]
