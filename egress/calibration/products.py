"""Reading real observation products: columns, units, times and the choice of days.

Shared by the importers (:mod:`egress.calibration.importers`). Products name
their columns in many ways; :func:`find_column` takes the first of a list of
usual names, :func:`unit_column` reads a unit from a column's name
(``speed_kmh``, ``speed (mph)``, ``speed(miles/hour)``, ``travel_time_seconds``)
and :func:`period_times` the day and start of each record from ``date`` and
``hour`` or from a timestamp. :class:`Selection` is the choice of dates,
weekdays and hours.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.schema import time_or_none
from ..errors import InputError, MissingFileError
from ..files import read_table

#: Metres per mile and per kilometre, and km/h per mph.
MILE = 1609.344
KM = 1000.0
KMH_PER_MPH = MILE / 1000.0

#: Weekday names as :class:`Selection` reads them (Monday first).
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

#: Unit words in column names (``speed_kmh``, ``speed(miles/hour)``) and what they mean.
SPEED_UNITS = {"mph": "mph", "mi/h": "mph", "miles/hour": "mph", "km/h": "km/h",
               "kmh": "km/h", "kph": "km/h", "km/hour": "km/h"}
LENGTH_UNITS = {"mi": "mi", "mile": "mi", "miles": "mi", "km": "km", "m": "m",
                "meters": "m", "metres": "m"}
TIME_UNITS = {"s": "s", "sec": "s", "seconds": "s", "min": "min", "minutes": "min"}
#: Metres per length unit.
METRES = {"mi": MILE, "km": KM, "m": 1.0}

#: Usual names of the columns a product's table has, tried in this order.
SEGMENT_ID = ("tmc", "tmc_code", "segment", "segment_id", "xd", "xd_id", "id")
STATION_ID = ("station", "station_id", "detector", "detector_id", "site", "site_id", "id")
ROAD = ("road", "roadname", "road_name", "route")
DIRECTION = ("direction", "dir")
COORD_NAMES = {"start_lon": ("start_lon", "start_longitude", "start_lng"),
               "start_lat": ("start_lat", "start_latitude"),
               "end_lon": ("end_lon", "end_longitude", "end_lng"),
               "end_lat": ("end_lat", "end_latitude")}

# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Selection:
    """Which days and hours of a product to use (None: all).

    Attributes
    ----------
    dates : frozenset of datetime.date or None
    weekdays : frozenset of int or None
        Monday = 0.
    hours : frozenset of int or None
        Start hours 0-23 of the periods to keep (hour 22 = 22:00-22:59).
    window : (float, float) or None
        Begin and end (s after midnight) of a simulation window: only output
        rows wholly inside it are kept (with a shorter interval than the
        product's period, a period the window cuts keeps its inside part).
    """

    dates: frozenset | None = None
    weekdays: frozenset | None = None
    hours: frozenset | None = None
    window: tuple[float, float] | None = None

    @classmethod
    def parse(cls, dates=None, weekdays=None, hours=None, window=None) -> Selection:
        """From text (``"2018-05-07,2018-05-08"``, ``"Tue-Thu"``, ``"21-23"``,
        window ``"21:30-24:00"``) or sequences; every problem in one
        :class:`InputError`."""
        problems: list[str] = []
        sel = cls(_parse_list(dates, _date, "dates", problems),
                  _parse_list(weekdays, _weekday, "weekdays", problems, ranges=True),
                  _parse_list(hours, _hour, "hours", problems, ranges=True),
                  _window(window, problems))
        if problems:
            raise InputError("selection", problems)
        return sel

    def inside(self, begin: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Which output rows (their begin and end, s) lie in the window."""
        if self.window is None:
            return np.ones(len(begin), dtype=bool)
        return (begin >= self.window[0] - 1e-6) & (end <= self.window[1] + 1e-6)

    def mask(self, day: pd.Series, start: pd.Series) -> np.ndarray:
        """Which records (their day and start time, s) the selection keeps."""
        keep = np.ones(len(day), dtype=bool)
        if self.dates is not None:
            keep &= day.isin(self.dates).to_numpy()
        if self.weekdays is not None:
            keep &= np.isin([d.weekday() for d in day], list(self.weekdays))
        if self.hours is not None:
            keep &= np.isin((start.to_numpy() // 3600).astype(int), list(self.hours))
        return keep

    def describe(self) -> str:
        parts = []
        if self.dates is not None:
            parts.append("dates " + ",".join(str(d) for d in sorted(self.dates)))
        if self.weekdays is not None:
            parts.append("weekdays " + ",".join(WEEKDAYS[d] for d in sorted(self.weekdays)))
        if self.hours is not None:
            parts.append("hours " + ",".join(str(h) for h in sorted(self.hours)))
        if self.window is not None:
            parts.append(f"window {hhmm(self.window[0])}-{hhmm(self.window[1])}")
        return "; ".join(parts) or "every day and hour"


def _window(value, problems: list[str]) -> tuple[float, float] | None:
    """(begin, end) in s from ``"21:30-24:00"`` (or seconds) or a pair; None for None."""
    if value is None:
        return None
    parts = value.split("-") if isinstance(value, str) else list(value)
    times = [time_or_none(v) for v in parts] if len(parts) == 2 else [None]
    if any(t is None for t in times) or times[0] >= times[1]:
        problems.append(f"window: expected BEGIN-END such as 21:30-24:00, got {value!r}")
        return None
    return times[0], times[1]


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _weekday(text: str) -> int:
    key = text[:3].title()
    if key not in WEEKDAYS:
        raise ValueError(text)
    return WEEKDAYS.index(key)


def _hour(text: str) -> int:
    h = int(text)
    if not 0 <= h <= 23:
        raise ValueError(text)
    return h


def _parse_list(value, parse, name: str, problems: list[str], ranges: bool = False):
    """A set of parsed items from ``"a,b"`` (``"a-b"`` ranges where allowed) or a
    sequence; None for None."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    out = set()
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            if ranges and re.fullmatch(r"[^-]+-[^-]+", text):
                a, b = (parse(x.strip()) for x in text.split("-"))
                if b < a:
                    raise ValueError(text)
                out.update(range(a, b + 1))
            else:
                out.add(parse(text))
        except ValueError:
            problems.append(f"{name}: cannot read {text!r}")
    if not out and not problems:
        problems.append(f"{name}: empty")
    return frozenset(out)


# --------------------------------------------------------------------------- reading


def read_product(source, what: str) -> tuple[pd.DataFrame, str]:
    """A table from a CSV/Parquet path or a DataFrame, columns normalised
    (stripped, lower case)."""
    if isinstance(source, pd.DataFrame):
        df, name = source.copy(), what
    else:
        path = Path(source)
        if not path.is_file():
            raise MissingFileError(path, what)
        name = str(path)
        df = read_table(path, what, skipinitialspace=True)
    df.columns = [re.sub(r"\s+", " ", str(c).strip().lower()) for c in df.columns]
    return df, name


def find_column(df: pd.DataFrame, name: str, choices: tuple[str, ...], what: str,
                required: bool = True) -> str | None:
    """The first of `choices` that is a column of `df` (an error naming the file
    when none is and the column is `required`; else None)."""
    for c in choices:
        if c in df.columns:
            return c
    if required:
        raise InputError(name, f"no {what} column; expected one of {', '.join(choices)}")
    return None


def unit_column(df: pd.DataFrame, name: str, stem: str, units: dict[str, str],
                given: str | None, flag: str, bare: str | None = None
                ) -> tuple[str | None, str | None]:
    """The first column named `stem` with an optional unit (``speed_kmh``,
    ``speed (mph)``, ``speed(miles/hour)``) and its unit: the name's, else
    `given` (the user's flag), else `bare`; a name and a flag that disagree
    are an error."""
    pattern = re.compile(rf"{stem}[\s_]*\(?\s*([a-z/]*)\s*\)?")
    for c in df.columns:
        m = pattern.fullmatch(c)
        if not m:
            continue
        named = units.get(m[1]) if m[1] else None
        if m[1] and named is None:
            continue  # e.g. speed_limit: not a speed measurement
        unit = units.get(given.lower().replace(" ", ""), given) if given else bare
        if named and given and named != unit:
            raise InputError(name, f"column {c!r} is in {named}, but {flag} says {unit}")
        if not (named or unit):
            raise InputError(name, f"column {c!r} has no unit in its name; give {flag} "
                             f"({' or '.join(sorted(set(units.values())))})")
        return c, named or unit
    return None, None


def period_times(df: pd.DataFrame, name: str) -> tuple[pd.Series, pd.Series, float]:
    """Each record's day, start (s after midnight) and the product's period (s):
    from ``date`` and ``hour`` (period one hour) or a timestamp column."""
    if "date" in df.columns and "hour" in df.columns:
        try:
            day = pd.to_datetime(df["date"].astype(str), format="%Y-%m-%d").dt.date
            hour = pd.to_numeric(df["hour"], errors="raise")
        except (ValueError, TypeError) as exc:
            raise InputError(name, f"date/hour: {exc}") from None
        bad = ~hour.between(0, 23) | (hour != hour.round())
        if bad.any():
            raise InputError(name, f"line {int(np.flatnonzero(bad)[0]) + 2}: hour "
                             f"{str(df['hour'].iloc[int(np.flatnonzero(bad)[0])])!r} is not 0-23")
        return day, hour.astype(float) * 3600.0, 3600.0
    col = find_column(df, name, ("measurement_tstamp", "timestamp", "datetime", "time"),
                      "time (date and hour, or a timestamp)")
    try:
        stamp = pd.to_datetime(df[col])
    except (ValueError, TypeError) as exc:
        raise InputError(name, f"{col}: {exc}") from None
    start = (stamp - stamp.dt.normalize()).dt.total_seconds()
    steps = np.diff(np.unique(start.to_numpy()))
    period = float(steps.min()) if len(steps) else 3600.0
    if period <= 0 or 3600.0 % period > 1e-6 and period % 3600.0 > 1e-6:
        raise InputError(name, f"{col}: cannot tell the product's period ({period:g} s)")
    return stamp.dt.date, start, period


def rows_per_period(period: float, interval: float | None) -> int:
    """How many rows each period becomes (`interval` must divide `period`)."""
    if interval is None:
        return 1
    k = period / float(interval)
    if interval <= 0 or abs(k - round(k)) > 1e-9 or round(k) < 1:
        raise InputError("interval", f"must divide the product's period of {period:g} s, "
                         f"got {interval!r}")
    return int(round(k))


def hhmm(seconds: float) -> str:
    """``HH:MM`` (``HH:MM:SS`` off the minute) of seconds after midnight; 24:00 for
    midnight at the end of the day."""
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s // 60 % 60:02d}" + (f":{s % 60:02d}" if s % 60 else "")


def length_column(df: pd.DataFrame, name: str, given: str | None
                  ) -> tuple[str | None, str | None]:
    """The segment length's column and unit: ``miles``, ``km``, ``meters`` or
    ``length`` with a unit (``length_km``) or with `given`."""
    for c in df.columns:
        if c in ("miles", "kilometers", "km", "meters", "metres"):
            unit = LENGTH_UNITS.get(c, "km" if c == "kilometers" else None)
            if given and LENGTH_UNITS.get(given, given) != unit:
                raise InputError(name, f"column {c!r} is in {unit}, but --length-unit says "
                                 f"{given}")
            return c, unit
    return unit_column(df, name, "length", LENGTH_UNITS, given, "--length-unit")



__all__ = ["COORD_NAMES", "DIRECTION", "KM", "KMH_PER_MPH", "LENGTH_UNITS", "METRES", "MILE",
           "ROAD", "SEGMENT_ID", "SPEED_UNITS", "STATION_ID", "Selection", "TIME_UNITS",
           "WEEKDAYS", "find_column", "hhmm", "length_column", "period_times", "read_product",
           "rows_per_period", "unit_column"]
