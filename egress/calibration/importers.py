"""Importers: real observation products into the observations format.

Two kinds of product are read, each into a table that
:func:`egress.calibration.observations.read_observations` accepts (segments by
their WGS84 end points, map-matched when a calibration reads them):

:func:`import_probe_speeds`
    Probe-speed segment products (NPMRDS, INRIX, HERE style): a segment list
    (id, road, direction, end points, length) and speeds or travel times per
    segment and period (hourly in NPMRDS' evening extracts).
:func:`import_counts`
    Detector counts given by station coordinates and direction (WSDOT
    TRACFLOW style loop exports: station, road, direction NB/SB/EB/WB,
    lat/lon, date, hour, volume, flag). A station becomes a short segment
    (:data:`STATION_SEGMENT` m) starting at its point and heading in its
    direction, so that map matching picks the carriageway of that direction;
    its count is the vehicles entering that edge. Points whose values are
    interpolations between detectors, not measurements, are skipped
    (:func:`interpolated_stations`).

Both choose days (dates and/or weekdays) and hours, and average each
segment's value per period over the chosen days:

* the row's value is the **mean over the days**, ``days`` the number of days;
* its sd is the **day-to-day sd** (sample sd of the days' values), since a
  simulated evening is compared with the mean as one more evening would be;
* with fewer than :data:`MIN_DAYS` days a sample sd says little (two values
  can agree by chance), so such a row's sd is at least the **pooled sd**:
  the median sd of the same segment's rows with enough days, else of all
  rows with enough days (for counts and travel times as a share of the
  value, for speeds in km/h), else the format's default;
* every sd is at least a **floor**: :data:`SPEED_SD_FLOOR` km/h for speeds
  (about the tenth percentile of NPMRDS TMC-hours' spread over the six normal
  SODO nights of May 2018, 2.1 km/h: below it, a few nights agreeing is luck,
  not precision), ``sqrt(count)`` for counts (the Poisson noise of counting
  arrivals) and :data:`TRAVEL_TIME_SD_FLOOR` of a travel time.

The output interval defaults to the product's period; a shorter one that
divides it (``interval=900`` for an hourly product) splits each period into
``k`` rows. A count is then the period's count × interval / period, the flow
taken as even within the period; speeds and travel times keep the period's
mean. Each split row's sd is scaled so that the period still weighs as one
observation in the objective: ``sd × sqrt(k)`` for speeds and travel times,
``sd / sqrt(k)`` for counts (``sd / k`` for the share, times ``sqrt(k)``).

Units come from the column names (``speed_kmh``, ``speed_mph``,
``speed(miles/hour)``, ``miles``, ``length_km``, ``travel_time_seconds``, ...)
or from `speed_unit` / `length_unit`; a bare ``speed`` or ``length`` column
needs the unit given (NPMRDS calls mph ``speed``, other products km/h).
Times are local clock times as the product gives them; the rows' ``begin``
and ``end`` are ``HH:MM`` on the day of the period's start.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import limits
from ..errors import InputError
from ..files import atomic_csv
from .observations import default_sd
from .products import (
    COORD_NAMES,
    DIRECTION,
    KMH_PER_MPH,
    METRES,
    ROAD,
    SEGMENT_ID,
    SPEED_UNITS,
    STATION_ID,
    TIME_UNITS,
    Selection,
    find_column,
    hhmm,
    length_column,
    period_times,
    read_product,
    rows_per_period,
    unit_column,
)

log = logging.getLogger(__name__)

#: Fewest days whose sample sd a row uses on its own (see the module docstring).
MIN_DAYS = 3

#: Floors of a row's sd: km/h for speeds, a share of the value for travel times
#: (counts: the square root of the count).
SPEED_SD_FLOOR = 2.0
TRAVEL_TIME_SD_FLOOR = 0.03

#: Length (m) of the segment a detector station becomes: from its point onwards
#: in its direction, long enough to have a heading, short enough to stay on the
#: edge the station is on (or reach just into the next one).
STATION_SEGMENT = 30.0

#: Most a station's value may differ from the straight line through its
#: neighbours' (in milepost) for it to count as on that line (vehicles per
#: period; volumes come rounded to 0.1 veh/h).
COLLINEAR_TOLERANCE = 0.5
#: Fewest periods a run of stations must lie on a straight line in, at every
#: one of them, to count as interpolated.
COLLINEAR_PERIODS = 3

#: Compass bearing (degrees clockwise from north) of each direction word.
BEARINGS = {"N": 0.0, "NB": 0.0, "NORTH": 0.0, "NORTHBOUND": 0.0,
            "E": 90.0, "EB": 90.0, "EAST": 90.0, "EASTBOUND": 90.0,
            "S": 180.0, "SB": 180.0, "SOUTH": 180.0, "SOUTHBOUND": 180.0,
            "W": 270.0, "WB": 270.0, "WEST": 270.0, "WESTBOUND": 270.0}


# --------------------------------------------------------------------------- result


@dataclass
class Imported:
    """An imported observations table and what the import did.

    Attributes
    ----------
    table : pandas.DataFrame
        In the observations format (segments by coordinates, times ``HH:MM``).
    notes : list of str
        What was skipped and how the sds were set, one sentence each.
    """

    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def write(self, path: str | Path) -> Path:
        """Write the table as CSV."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_csv(self.table, path)

    def summary(self) -> str:
        """Rows, segments, days per row and median sd per quantity, in one line."""
        t = self.table
        if not len(t):
            return "no rows"
        days = t["days"].to_numpy(dtype=float)
        parts = [f"{len(t)} rows, {t['segment'].nunique()} segments, "
                 f"{t['begin'].iloc[0]}-{t['end'].iloc[-1]}, days per row "
                 f"{days.min():.0f}-{np.median(days):.0f}-{days.max():.0f} (min-median-max)"]
        for kind, unit in (("speed", "km/h"), ("count", "veh"), ("travel_time", "s")):
            if kind in t.columns:
                parts.append(f"median {kind} {t[kind].median():.1f} {unit}, "
                             f"median sd {t[f'{kind}_sd'].median():.1f} {unit}")
        return "; ".join(parts)


# --------------------------------------------------------------------------- averaging


def _average(rec: pd.DataFrame, name: str, label: str) -> pd.DataFrame:
    """Mean, day-to-day sd and days per (key, start) over the records' days."""
    dup = rec.duplicated(["key", "day", "start"])
    if dup.any():
        r = rec.loc[dup].iloc[0]
        raise InputError(name, f"{label} {r['key']} has more than one row on {r['day']} at "
                         f"{hhmm(r['start'])}")
    g = rec.groupby(["key", "start"], sort=True)["value"]
    out = pd.DataFrame({"value": g.mean(), "sd": g.std(ddof=1), "days": g.count()})
    return out.reset_index()


def _spread(avg: pd.DataFrame, kind: str) -> tuple[np.ndarray, int]:
    """Each row's sd (see the module docstring) and how many rows had too few days."""
    value = avg["value"].to_numpy(dtype=float)
    sd = avg["sd"].to_numpy(dtype=float)
    enough = avg["days"].to_numpy() >= MIN_DAYS
    relative = kind != "speed"
    spread = pd.Series(sd / value if relative else sd)
    per_key = spread[enough].groupby(avg["key"][enough]).median()
    overall = float(spread[enough].median()) if enough.any() else math.nan
    pooled = avg["key"].map(per_key).fillna(overall).to_numpy(dtype=float)
    pooled = pooled * value if relative else pooled
    pooled = np.where(np.isfinite(pooled), pooled, default_sd(kind, value))
    sd = np.where(enough, sd, np.fmax(sd, pooled))
    if kind == "speed":
        floor = np.full(len(sd), SPEED_SD_FLOOR)
    elif kind == "count":
        floor = np.sqrt(np.maximum(value, 1.0))
    else:
        floor = TRAVEL_TIME_SD_FLOOR * value
    return np.fmax(sd, floor), int((~enough).sum())


def _rows(avg: pd.DataFrame, info: pd.DataFrame, kind: str, period: float, k: int,
          sel: Selection) -> pd.DataFrame:
    """The observations rows: each averaged period split into `k` intervals, those
    inside the selection's window."""
    value = avg["value"].to_numpy(dtype=float)
    sd = avg["sd_final"].to_numpy(dtype=float)
    if kind == "count":  # vehicles in a part of the period; the period weighs as one
        value, sd = value / k, sd / math.sqrt(k)
    else:
        sd = sd * math.sqrt(k)
    step = period / k
    parts = []
    for j in range(k):
        begin = avg["start"].to_numpy(dtype=float) + j * step
        parts.append(pd.DataFrame({"key": avg["key"].to_numpy(), "b": begin, kind: value,
                                   f"{kind}_sd": sd, "days": avg["days"].to_numpy()}))
    rows = pd.concat(parts, ignore_index=True).sort_values(["b", "key"], kind="stable")
    rows = rows.loc[sel.inside(rows["b"].to_numpy(), rows["b"].to_numpy() + step)]
    rows = rows.merge(info, left_on="key", right_index=True, how="left")
    rows["begin"] = [hhmm(b) for b in rows["b"]]
    rows["end"] = [hhmm(b + step) for b in rows["b"]]
    cols = ["segment", "road", "direction", "begin", "end", kind, f"{kind}_sd", "days",
            "start_lon", "start_lat", "end_lon", "end_lat", "segment_length"]
    out = rows[cols].reset_index(drop=True)
    out[[kind, f"{kind}_sd"]] = out[[kind, f"{kind}_sd"]].round(3)
    out["segment_length"] = out["segment_length"].round(1)
    return out


def _finish(rec: pd.DataFrame, info: pd.DataFrame, kind: str, period: float,
            interval: float | None, sel: Selection, name: str, notes: list[str]) -> Imported:
    """Average the selected records and write the rows (shared by both importers)."""
    if not len(rec):
        raise InputError(name, "no data in the chosen days and hours")
    label = "station" if kind == "count" else "segment"
    avg = _average(rec, name, label)
    avg["sd_final"], few = _spread(avg, kind)
    if few:
        notes.append(f"{few} of {len(avg)} rows average fewer than {MIN_DAYS} days: their sd "
                     "is at least the pooled sd of rows with more days")
    table = _rows(avg, info, kind, period, rows_per_period(period, interval), sel)
    if not len(table):
        raise InputError(name, f"no row lies wholly inside the window ({sel.describe()}); "
                         "a shorter interval keeps the part of a period inside it")
    return Imported(table, notes)


# --------------------------------------------------------------------------- probe speeds


def _segment_info(seg: pd.DataFrame, name: str, length_unit: str | None) -> pd.DataFrame:
    """Per segment id: label, road, direction, end points, length (m)."""
    sid = find_column(seg, name, SEGMENT_ID, "segment id")
    coords = {k: find_column(seg, name, v, k) for k, v in COORD_NAMES.items()}
    lcol, lunit = length_column(seg, name, length_unit)
    info = pd.DataFrame({"segment": seg[sid].astype(str).str.strip()})
    for k, c in coords.items():
        info[k] = pd.to_numeric(seg[c], errors="coerce")
    for k, choices in (("road", ROAD), ("direction", DIRECTION)):
        c = find_column(seg, name, choices, k, required=False)
        info[k] = seg[c].fillna("").astype(str).str.strip() if c else ""
    info["segment_length"] = pd.to_numeric(seg[lcol], errors="coerce") * METRES[lunit] \
        if lcol else math.nan
    if info["segment"].duplicated().any():
        raise InputError(name, f"segment {info['segment'][info['segment'].duplicated()].iloc[0]}"
                         " is listed more than once")
    return info.set_index(info["segment"], drop=False)


def _probe_values(spd: pd.DataFrame, name: str, info: pd.DataFrame, quantity: str,
                  speed_unit: str | None) -> pd.Series:
    """Each record's speed (km/h) or travel time (s), from whichever column holds it."""
    scol, sunit = unit_column(spd, name, "speed", SPEED_UNITS, speed_unit, "--speed-unit")
    tcol, tunit = unit_column(spd, name, "travel_time", TIME_UNITS, None, "", bare="s")
    length = spd["key"].map(info["segment_length"]).to_numpy(dtype=float)
    speed = tt = None
    if scol:
        speed = pd.to_numeric(spd[scol], errors="coerce") * (KMH_PER_MPH if sunit == "mph"
                                                             else 1.0)
    if tcol:
        tt = pd.to_numeric(spd[tcol], errors="coerce") * (60.0 if tunit == "min" else 1.0)
    if quantity == "speed":
        if speed is not None:
            return speed
        if tt is not None:
            return length / tt * 3.6
    else:
        if tt is not None:
            return tt
        if speed is not None:
            return length / (speed / 3.6)
    raise InputError(name, "no speed or travel time column (e.g. speed_kmh, speed_mph, "
                     "travel_time_seconds)")


def import_probe_speeds(segments, speeds, *, dates=None, weekdays=None, hours=None,
                        window=None, interval: float | None = None, quantity: str = "speed",
                        speed_unit: str | None = None, length_unit: str | None = None
                        ) -> Imported:
    """Import a probe-speed segment product (NPMRDS, INRIX, HERE style).

    Parameters
    ----------
    segments : path or DataFrame
        The segment list: id (``tmc``, ``tmc_code``, ``segment``, ``xd``, ...),
        end points (``start_lat``/``start_latitude``, ...), optional road,
        direction and length (``miles``, ``length_km``, ...).
    speeds : path or DataFrame
        Speeds and/or travel times per segment id and period: ``date`` and
        ``hour``, or a timestamp (``measurement_tstamp``).
    dates, weekdays, hours : str or sequence, optional
        The selection (:class:`Selection`), e.g. ``"2018-05-07,2018-05-08"``,
        ``"Tue-Thu"``, ``"21-23"``; default everything.
    window : str or (float, float), optional
        A simulation window (``"21:30-24:00"``): only rows wholly inside it.
    interval : float, optional
        Seconds per output row (must divide the product's period; default the period).
    quantity : {"speed", "travel_time"}
        What the rows observe. Not both: a product's travel time is its
        length over its speed, one measurement that would count twice.
    speed_unit, length_unit : str, optional
        ``mph`` or ``km/h``; ``mi``, ``km`` or ``m``: needed for bare
        ``speed`` / ``length`` columns, checked against named ones.

    Returns
    -------
    Imported
        Rows per segment and interval: mean over the chosen days, day-to-day
        sd, ``days`` (see the module docstring).

    Raises
    ------
    InputError, MissingFileError
    """
    if quantity not in ("speed", "travel_time"):
        raise InputError("quantity", f"must be speed or travel_time, got {quantity!r}")
    sel = Selection.parse(dates, weekdays, hours, window)
    seg, seg_name = read_product(segments, "segment list")
    spd, name = read_product(speeds, "speed table")
    info = _segment_info(seg, seg_name, length_unit)
    spd["key"] = spd[find_column(spd, name, SEGMENT_ID, "segment id")].astype(str).str.strip()
    day, start, period = period_times(spd, name)
    rec = pd.DataFrame({"key": spd["key"], "day": day, "start": start,
                        "value": _probe_values(spd, name, info, quantity, speed_unit)})
    notes: list[str] = []
    rec = rec.loc[sel.mask(rec["day"], rec["start"])]
    unknown = ~rec["key"].isin(info.index)
    if unknown.any():
        notes.append(f"{int(unknown.sum())} values of {rec.loc[unknown, 'key'].nunique()} "
                     "segments missing from the segment list skipped")
    placed = info[list(COORD_NAMES)].notna().all(axis=1)
    nowhere = rec["key"].isin(info.index[~placed])
    if nowhere.any():
        notes.append(f"{int(nowhere.sum())} values of segments without end points skipped")
    bad = ~np.isfinite(rec["value"].to_numpy(dtype=float)) | (rec["value"] <= 0)
    if bad.any():
        notes.append(f"{int(bad.sum())} empty or non-positive values skipped")
    rec = rec.loc[~unknown & ~nowhere & ~bad]
    out = _finish(rec, info, quantity, period, interval, sel, name, notes)
    log.info("%s: %s (%s)", name, out.summary(), sel.describe())
    return out


# --------------------------------------------------------------------------- counts


def _flags_ok(flags: pd.Series, good: str) -> np.ndarray:
    """Which flag values mark good data (`good` a regular expression; blank = good)."""
    pattern = re.compile(good)

    def text(v) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v).strip()

    return np.array([t == "" or bool(pattern.fullmatch(t)) for t in map(text, flags)])


def _station_info(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Per station key: label, road, direction, its short segment's end points."""
    lat = pd.to_numeric(df[find_column(df, name, ("lat", "latitude"), "latitude")],
                        errors="coerce")
    lon = pd.to_numeric(df[find_column(df, name, ("lon", "lng", "longitude"), "longitude")],
                        errors="coerce")
    dcol = find_column(df, name, DIRECTION, "direction")
    rcol = find_column(df, name, ROAD, "road", required=False)
    outside = (lat.abs() > 90) | (lon.abs() > 180)
    if outside.any():
        i = int(np.flatnonzero(outside.to_numpy())[0])
        raise InputError(name, f"line {i + 2}: station {df['station'].iloc[i]!r} at lat "
                         f"{lat.iloc[i]:g}, lon {lon.iloc[i]:g} is not on the Earth")
    mcol = find_column(df, name, ("milepost", "mp", "postmile"), "milepost",
                       required=False)
    mp = (pd.to_numeric(df[mcol], errors="coerce") if mcol
          else pd.Series(np.nan, index=df.index))
    first = pd.DataFrame({"key": df["key"], "station": df["station"], "lat": lat, "lon": lon,
                          "milepost": mp,
                          "direction": df[dcol].astype(str).str.strip(),
                          "road": df[rcol].fillna("").astype(str).str.strip() if rcol else ""}
                         ).drop_duplicates("key").set_index("key", drop=False)
    words = first["direction"].str.upper().str.replace(r"[^A-Z]", "", regex=True)
    unknown = sorted(set(first["direction"][~words.isin(list(BEARINGS))]))
    if unknown:
        raise InputError(name, f"direction {unknown[0]!r} is not one of NB, SB, EB, WB "
                         "(or N, S, E, W, NORTHBOUND, ...)")
    bearing = np.radians(words.map(BEARINGS).to_numpy(dtype=float))
    dn, de = STATION_SEGMENT * np.cos(bearing), STATION_SEGMENT * np.sin(bearing)
    several = first.groupby("station")["key"].transform("count") > 1
    info = pd.DataFrame({
        "segment": np.where(several, first["station"] + " " + first["direction"],
                            first["station"]),
        "road": first["road"], "direction": first["direction"],
        "start_lon": first["lon"], "start_lat": first["lat"],
        "end_lon": first["lon"] + de / (111_320.0 * np.cos(np.radians(first["lat"]))),
        "end_lat": first["lat"] + dn / 111_320.0, "segment_length": STATION_SEGMENT,
        "milepost": first["milepost"]}, index=first.index)
    return info


def interpolated_stations(rec: pd.DataFrame, info: pd.DataFrame) -> list[str]:
    """Stations whose values are interpolated between detectors, not measured.

    Traffic data systems fill fixed milepost points between their detectors
    by interpolating linearly in milepost (WSDOT TRACFLOW's "Volume per Hour
    GP" export does). Such a point's value is not the flow where it lies:
    between two detectors with a ramp in between, the flow steps at the ramp
    while the interpolation runs straight across it. Three or more stations
    of one road and direction, consecutive in milepost, whose values lie on
    one straight line in milepost (within :data:`COLLINEAR_TOLERANCE`) in
    every period where all have a value, and in at least
    :data:`COLLINEAR_PERIODS` of them, are such points; measured values never
    line up so in every period. In the Seattle 2018 loop export, I-5 SB MP
    164.0-165.5 and SR 99 NB and SB MP 30.5-32.0 are.

    Parameters
    ----------
    rec : pandas.DataFrame
        Records: ``key`` (station and direction), ``day``, ``start``, ``value``.
    info : pandas.DataFrame
        Per key (index): ``road``, ``direction``, ``milepost`` (NaN: unknown)
        and ``segment`` (the station's name in the output).

    Returns
    -------
    list of str
        The interpolated stations' ``segment`` names, in milepost order.
    """
    if "milepost" not in info or info["milepost"].isna().all():
        return []
    wide = rec.pivot_table(index=["day", "start"], columns="key", values="value",
                           aggfunc="mean")
    found: list[str] = []
    for _, grp in info.dropna(subset=["milepost"]).groupby(["road", "direction"], sort=True):
        keys = [k for k in grp.sort_values("milepost").index if k in wide.columns]
        mp = info.loc[keys, "milepost"].to_numpy(dtype=float)
        marked = np.zeros(len(keys), dtype=bool)
        for i in range(1, len(keys) - 1):
            v = wide[keys[i - 1:i + 2]].dropna().to_numpy(dtype=float)
            if len(v) < COLLINEAR_PERIODS or not mp[i - 1] < mp[i] < mp[i + 1]:
                continue
            share = (mp[i] - mp[i - 1]) / (mp[i + 1] - mp[i - 1])
            line = v[:, 0] + share * (v[:, 2] - v[:, 0])
            if np.all(np.abs(v[:, 1] - line) <= COLLINEAR_TOLERANCE):
                marked[i - 1:i + 2] = True
        found += [str(info.loc[k, "segment"]) for k, m in zip(keys, marked, strict=True) if m]
    return found


def import_counts(counts, *, dates=None, weekdays=None, hours=None, window=None,
                  interval: float | None = None, good_flags: str = r"1+",
                  keep_interpolated: bool = False) -> Imported:
    """Import detector counts given by station coordinates and direction.

    Parameters
    ----------
    counts : path or DataFrame
        One row per station, direction and period: station id (``station``,
        ``detector``, ``site``, ...), ``direction`` (NB/SB/EB/WB, N/S/E/W,
        NORTHBOUND, ...), ``lat``, ``lon``, ``date`` and ``hour`` (or a
        timestamp), ``volume`` (vehicles per hour; or ``count``: vehicles in
        the period), optional ``road`` and ``flag``.
    dates, weekdays, hours : str or sequence, optional
        The selection (:class:`Selection`).
    window : str or (float, float), optional
        A simulation window (``"21:30-24:00"``): only rows wholly inside it.
    interval : float, optional
        Seconds per output row (must divide the product's period; default the period).
    good_flags : str
        Regular expression a flag must match in full for its value to be used
        (blank flags are good). The default ``1+`` is TRACFLOW's: one digit
        per loop, 1 good (0 bad, 2 suspect).
    keep_interpolated : bool
        Keep the stations whose values are interpolated between detectors
        (:func:`interpolated_stations`, found with a ``milepost`` column);
        by default they are skipped and named in the notes.

    Returns
    -------
    Imported
        Counts (vehicles in each interval) per station and interval: mean over
        the chosen days, day-to-day sd, ``days``; each station a
        :data:`STATION_SEGMENT` m segment from its point in its direction.

    Raises
    ------
    InputError, MissingFileError
    """
    sel = Selection.parse(dates, weekdays, hours, window)
    df, name = read_product(counts, "counts table")
    try:
        re.compile(good_flags)
    except re.error as exc:
        raise InputError("good_flags", f"not a regular expression ({exc})") from None
    df["station"] = df[find_column(df, name, STATION_ID, "station id")].astype(str).str.strip()
    dcol = find_column(df, name, DIRECTION, "direction")
    df["key"] = df["station"] + "|" + df[dcol].astype(str).str.strip()
    day, start, period = period_times(df, name)
    rec = pd.DataFrame({"key": df["key"], "day": day, "start": start,
                        "value": _vehicles(df, name, period)})
    notes: list[str] = []
    chosen, good = sel.mask(rec["day"], rec["start"]), _good(df, good_flags)
    if (chosen & ~good).any():
        notes.append(f"{int((chosen & ~good).sum())} flagged values skipped (flag not "
                     f"matching {good_flags!r})")
    keep = chosen & good
    info = _station_info(df, name)
    nowhere = keep & rec["key"].isin(info.index[info[["start_lon", "start_lat"]].isna()
                                                .any(axis=1)]).to_numpy()
    if nowhere.any():
        notes.append(f"{int(nowhere.sum())} values of stations without coordinates skipped")
    value = rec["value"].to_numpy(dtype=float)
    if not keep_interpolated:
        lined = interpolated_stations(rec.loc[keep], info)
        if lined:
            skip = rec["key"].isin(info.index[info["segment"].isin(lined)]).to_numpy()
            notes.append(f"{len(lined)} stations skipped, their values interpolated between "
                         f"detectors (on one straight line in milepost in every period): "
                         f"{', '.join(lined)}")
            keep = keep & ~skip
    huge = np.flatnonzero(np.isfinite(value) & (value > limits.VEHICLES_MAX))
    if len(huge):
        raise InputError(name, f"line {huge[0] + 2}: {value[huge[0]]:g} vehicles in one "
                         f"period, more than {limits.VEHICLES_MAX:,} (egress.limits)")
    bad = keep & ~nowhere & ~(np.isfinite(value) & (value >= 0))
    if bad.any():
        notes.append(f"{int(bad.sum())} empty or negative values skipped")
    out = _finish(rec.loc[keep & ~nowhere & ~bad], info, "count", period, interval, sel,
                  name, notes)
    log.info("%s: %s (%s)", name, out.summary(), sel.describe())
    return out


def _vehicles(df: pd.DataFrame, name: str, period: float) -> pd.Series:
    """Vehicles per record's period: from a rate (``volume``, veh/h) or a count."""
    rate = find_column(df, name, ("volume", "flow", "veh_per_hour", "vehicles_per_hour"),
                       "volume", required=False)
    col = rate or find_column(df, name, ("count", "vehicles"), "volume (veh/h) or count")
    return pd.to_numeric(df[col], errors="coerce") * (period / 3600.0 if rate else 1.0)


def _good(df: pd.DataFrame, good_flags: str) -> np.ndarray:
    """Which records' flags mark good data (all, without a flag column)."""
    fcol = next((c for c in ("flag", "data_flag", "quality", "status") if c in df.columns),
                None)
    return np.ones(len(df), dtype=bool) if fcol is None else _flags_ok(df[fcol], good_flags)


__all__ = ["BEARINGS", "COLLINEAR_PERIODS", "COLLINEAR_TOLERANCE", "Imported", "MIN_DAYS",
           "SPEED_SD_FLOOR", "STATION_SEGMENT", "Selection", "TRAVEL_TIME_SD_FLOOR",
           "import_counts", "import_probe_speeds", "interpolated_stations"]
