"""Documented limits of every user-facing value, and the checks that apply them.

A value a user types (a TOML key, a table cell, a command-line flag) is checked
here, in one place, before anything runs: a seed SUMO would silently replace,
a demand that cannot fit in memory, a period of zero that would divide by
zero, a NaN that would turn every result into NaN. The schema of the TOML
files (:mod:`egress.config.schema`) and the command line (:mod:`egress.cli`)
both call these functions, so the same value gets the same answer wherever it
is given.

Each check returns ``None`` when the value is fine, or a short message that
names the problem (the caller prefixes the file and key, or the flag).

The limits are deliberately generous: they stop nonsense and values that
would exhaust the machine, not unusual studies.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import InputError

#: Largest seed SUMO accepts (``--seed`` is a signed 32-bit integer); larger
#: seeds are rejected by SUMO, which then runs on its default seed.
SEED_MAX = 2**31 - 1
#: Latest time of day a window or an event may use, s after midnight (two
#: days: an evening's window may run past midnight, "24:30").
TIME_MAX = 48 * 3600.0
#: Most vehicles one simulated evening may hold (OD total, attendance's cars,
#: background trips): about 1 GB of route and output tables in SUMO and pandas.
VEHICLES_MAX = 2_000_000
#: Most people an event may have (the largest stadiums hold about 250,000).
ATTENDANCE_MAX = 1_000_000
#: Most background trips per hour.
TRIPS_PER_HOUR_MAX = 1_000_000.0
#: Most replications, calibration simulations, sweep retries or observed
#: segments a command may ask for; each costs at least one SUMO run.
RUNS_MAX = 10_000
#: Most workers (SUMO processes at a time) a local run may start.
WORKERS_MAX = 256
#: Shortest period or interval (s) an aggregation may use.
PERIOD_MIN = 1.0
#: Fastest observed speed, km/h (a typo such as mph in m/s, or 1e12, is not a speed).
SPEED_MAX_KMH = 400.0
#: Most OD intervals in a simulation window (``demand.interval``): the OD table holds
#: a row per zone pair and interval, so 1-second intervals over an evening would hold
#: tens of millions of rows.
OD_INTERVALS_MAX = 200
#: Most edge-statistics intervals in a window (``simulation.edgedata_period``), for the
#: same reason (a row per edge and interval).
EDGEDATA_INTERVALS_MAX = 2000
#: Longest name (scenario, sweep, event, policy) used as a folder name.
NAME_MAX = 100

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def finite(v: Any) -> str | None:
    """A number must be finite: NaN or ±inf would propagate into every result."""
    try:
        ok = math.isfinite(float(v))
    except (TypeError, ValueError, OverflowError):
        return f"expected a number, got {v!r}"
    return None if ok else f"must be a finite number, got {v}"


def _fmt(x: float) -> str:
    """A bound or value as typed: integers in full (2147483647, not 2.14748e+09)."""
    if float(x).is_integer() and abs(x) < 1e18:
        return str(int(x))
    return f"{x:g}"


def within(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           what: str = "") -> Any:
    """A check that a finite number lies in ``[lo, hi]`` (``(lo, hi]`` with `lo_open`).

    Parameters
    ----------
    lo, hi : float, optional
        Bounds; None leaves that side open.
    lo_open : bool
        Exclude `lo` itself (a period or a divisor must be > 0).
    what : str
        Why the upper bound exists, added to the message (``"SUMO's seed range"``).
    """

    def check(v: Any) -> str | None:
        msg = finite(v)
        if msg:
            return msg
        if lo is not None and (v <= lo if lo_open else v < lo):
            return f"must be {'>' if lo_open else '>='} {_fmt(lo)}, got {_fmt(v)}"
        if hi is not None and v > hi:
            why = f" ({what})" if what else ""
            return f"must be at most {_fmt(hi)}{why}, got {_fmt(v)}"
        return None

    return check


#: A seed SUMO can use.
seed = within(0, SEED_MAX, what="SUMO's seed range")
#: A time of day in the window a scenario may simulate.
time_of_day = within(0, TIME_MAX, what="48:00, two days")
#: A period or an interval that divides a window.
period = within(PERIOD_MIN, TIME_MAX, what="48 hours")
#: A positive number of runs (replications, budget, segments).
runs = within(1, RUNS_MAX, what="each costs a simulation")
#: A number of workers.
workers = within(1, WORKERS_MAX)


def name(v: Any) -> str | None:
    """A name used as a folder name must stay inside its folder.

    Letters, digits, ``.``, ``_``, ``+`` and ``-``, starting with a letter or a
    digit: no ``/``, no ``..``, nothing hidden, nothing empty.
    """
    if not isinstance(v, str):
        return f"expected a name, got {v!r}"
    if not _NAME.fullmatch(v) or ".." in v or len(v) > NAME_MAX:
        return (f"{v!r} cannot be a folder name (use letters, digits, '.', '_', '-'; at most "
                f"{NAME_MAX} characters, no '/' or '..')")
    return None


def check_value(check: Any, v: Any, where: str) -> None:
    """Raise :class:`~egress.errors.InputError` (``where: message``) if `check` fails.

    For values given to the Python API rather than read from a file.
    """
    msg = check(v)
    if msg:
        raise InputError(where, msg)


__all__ = ["ATTENDANCE_MAX", "EDGEDATA_INTERVALS_MAX", "NAME_MAX", "OD_INTERVALS_MAX",
           "PERIOD_MIN", "RUNS_MAX", "SEED_MAX", "SPEED_MAX_KMH", "TIME_MAX", "TRIPS_PER_HOUR_MAX",
           "VEHICLES_MAX", "WORKERS_MAX", "check_value", "finite", "name", "period", "runs",
           "seed", "time_of_day", "within", "workers"]
