"""Units and times as people read them: SI or US customary, clock times past midnight.

egress computes and stores everything in SI (metres, seconds, m/s), as SUMO
does; the tables name their unit in the column (``speed`` m/s, ``*_min``
minutes, ``*_vh`` vehicle-hours). What is *shown* — the CLI's lines, the
report, the GIS layers' speed fields — follows one setting:

``"si"`` (the default)
    km/h and km. The default because SUMO, OpenStreetMap and the tables are
    metric, so nothing shown differs from what is stored but the scale.
``"us"``
    mph and miles, for US traffic engineers.

Set it with :func:`set_units` (a notebook), the CLI's ``--units si|us``, or the
environment variable ``EGRESS_UNITS``. Importers of observations convert from
the source's unit with :func:`to_si` (``mph`` and ``mi`` among them).

Times are seconds after midnight of the event day; a window that runs past
midnight goes on counting (``25:00`` is 01:00 the next day).
:func:`clock` writes them as ``01:00 (+1 day)``, never as ``25:00:00``.
"""

from __future__ import annotations

import math
import os

#: The unit systems.
SYSTEMS = ("si", "us")
#: Metres per mile, and m/s per mph / per km/h.
MILE = 1609.344
MPH = MILE / 3600
KMH = 1000 / 3600

#: Factors to SI of the units importers accept (speed in m/s, length in m, time in s).
TO_SI = {"m/s": 1.0, "km/h": KMH, "kmh": KMH, "kph": KMH, "mph": MPH, "m": 1.0, "km": 1000.0,
         "mi": MILE, "mile": MILE, "miles": MILE, "ft": 0.3048, "s": 1.0, "min": 60.0,
         "h": 3600.0}

_state = {"system": None}


def set_units(system: str) -> None:
    """Show speeds and distances in ``"si"`` (km/h, km) or ``"us"`` (mph, miles)."""
    system = str(system).lower()
    if system not in SYSTEMS:
        raise ValueError(f"units must be one of {', '.join(SYSTEMS)}, got {system!r}")
    _state["system"] = system


def units() -> str:
    """The unit system in force: :func:`set_units`, else ``EGRESS_UNITS``, else ``"si"``."""
    if _state["system"]:
        return _state["system"]
    env = os.environ.get("EGRESS_UNITS", "").strip().lower()
    return env if env in SYSTEMS else "si"


def speed_unit() -> str:
    return "mph" if units() == "us" else "km/h"


def distance_unit() -> str:
    return "mi" if units() == "us" else "km"


def speed(ms: float) -> float:
    """A speed in m/s in the display unit."""
    return ms / (MPH if units() == "us" else KMH)


def distance(m: float) -> float:
    """A length in metres in the display unit."""
    return m / (MILE if units() == "us" else 1000.0)


def to_si(value: float, unit: str) -> float:
    """A value given in `unit` (:data:`TO_SI`) in SI."""
    try:
        return value * TO_SI[unit.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown unit {unit!r}; known: {', '.join(TO_SI)}") from None


def clock(seconds: float, *, seconds_too: bool = False, day: bool = True) -> str:
    """Seconds after midnight as a clock time: ``23:41``, ``01:00 (+1 day)``
    (without the day with ``day=False``, for axis ticks)."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = int(round(seconds))
    days, s = divmod(s, 86400)
    text = f"{s // 3600:02d}:{s // 60 % 60:02d}" + (f":{s % 60:02d}" if seconds_too else "")
    if not day:
        return text
    return text + (f" (+{days} day)" if days == 1 else f" (+{days} days)" if days else "")


def window(begin: float, end: float) -> str:
    """A time window: ``21:30–01:00 (+1 day), 3 h 30 min``."""
    return f"{clock(begin)}–{clock(end)}, {duration(end - begin)}"


def duration(seconds: float) -> str:
    """A length of time: ``45 min``, ``3 h 30 min``, ``1.5 min``."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    m = seconds / 60
    if abs(m) < 10:
        return f"{m:.1f} min"
    if abs(m) < 120:
        return f"{m:.0f} min"
    h, rest = divmod(int(round(m)), 60)
    return f"{h} h {rest} min" if rest else f"{h} h"


def count(n: float) -> str:
    """A number of vehicles (a mean over replications is rounded): ``14,960``."""
    if n is None or not math.isfinite(n):
        return "–"
    return f"{n:,.0f}"


__all__ = ["SYSTEMS", "TO_SI", "clock", "count", "distance", "distance_unit", "duration",
           "set_units", "speed", "speed_unit", "to_si", "units", "window"]
