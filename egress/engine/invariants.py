"""Physical invariants every run's outputs must pass before a number is shown.

:func:`check_vehicles` and :func:`check_edges` return one message per
broken invariant (empty when all hold). A run that breaks one is *invalid*:
it is reported with the reasons and never averaged into a result.

Checked on the vehicle table (:mod:`egress.engine.vehicles`):

* every vehicle id appears once, and the table holds every vehicle SUMO
  loaded for the window (SUMO's ``loaded`` may also count some of the
  vehicles due before the window, which it discards, and some due at or
  after its end, which it reads ahead);
* the vehicles SUMO inserted are exactly those not marked ``not_inserted``,
  and the ones it saw arrive are exactly those with an arrival time;
* every time is finite; ``begin <= ready < end``; ``depart >= ready``;
  ``ready <= end of travel <= end of the window``; a leaving or arrival time
  is not before the insertion; so ``0 <= travel_time <= window``;
* the teleports SUMO counted are all attributed to vehicles.

Checked on the edge table: speeds finite and non-negative where vehicles
were sampled, sampled seconds and counts non-negative.

Not an invariant but a limit on what counts as a result:
:data:`TELEPORT_LIMIT`. A run that needs teleports to clear is flagged
(``relies_on_teleports``) and every table that uses it says so.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .vehicles import STATUSES

#: Share of inserted vehicles teleported above which a run relies on
#: teleports (gridlock resolved by SUMO, not by traffic) and is not a valid result.
TELEPORT_LIMIT = 0.01

#: Tolerance (s) for comparing times SUMO wrote with two decimals.
_EPS = 1e-6


def _some(table: pd.DataFrame, mask: np.ndarray, what: str, column: str | None = None) -> str:
    """``"3 vehicles <what> (e.g. ev_1: -12.5)"``."""
    n = int(mask.sum())
    first = table.loc[mask].iloc[0]
    value = f": {first[column]}" if column else ""
    return f"{n} vehicle{'s' if n != 1 else ''} {what} (e.g. {first['vehicle']}{value})"


def check_vehicles(table: pd.DataFrame, statistics: Mapping[str, float], *, begin: float,
                   end: float, skipped: int = 0, after_end: int = 0) -> list[str]:
    """Broken invariants of a run's vehicle table (see the module docstring).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`egress.engine.vehicles.vehicle_table`.
    statistics : dict
        :func:`egress.engine.outputs.read_statistics` of the same run.
    begin, end : float
        The simulated window.
    skipped : int
        Vehicles of the route files due before `begin` (SUMO loads and
        discards them).
    after_end : int
        Vehicles of the route files due at or after `end` (SUMO may have
        read some of them ahead).

    Returns
    -------
    list of str
        One message per broken invariant; empty when all hold.
    """
    problems: list[str] = []
    dup = table["vehicle"].duplicated(keep=False).to_numpy()
    if dup.any():
        problems.append(_some(table, dup, "counted more than once"))
    loaded = statistics.get("loaded")
    if loaded is not None and not len(table) <= int(loaded) <= len(table) + skipped + after_end:
        problems.append(f"SUMO loaded {int(loaded)} vehicles but {len(table)} are counted"
                        + (f" (+{skipped} due before the window)" if skipped else "")
                        + (f" (+ up to {after_end} due after it)" if after_end else ""))
    bad_status = ~table["status"].isin(STATUSES).to_numpy()
    if bad_status.any():
        problems.append(_some(table, bad_status, "with an unknown status", "status"))
    inserted = statistics.get("inserted")
    on_net = int((table["status"] != "not_inserted").sum())
    if inserted is not None and on_net != int(inserted):
        problems.append(f"SUMO inserted {int(inserted)} vehicles but {on_net} are counted as "
                        "inserted")
    running = statistics.get("running")
    arrived = int(table["arrival"].notna().sum())
    if inserted is not None and running is not None and arrived != int(inserted - running):
        problems.append(f"SUMO saw {int(inserted - running)} vehicles arrive but {arrived} have "
                        "an arrival time")
    for col in ("ready", "end", "travel_time"):
        bad = ~np.isfinite(table[col].to_numpy(dtype=float))
        if bad.any():
            problems.append(_some(table, bad, f"with a {col.replace('_', ' ')} that is not a "
                                  "finite number", col))
    ready = table["ready"].to_numpy(dtype=float)
    stop = table["end"].to_numpy(dtype=float)
    depart = table["depart"].to_numpy(dtype=float)
    tt = table["travel_time"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        checks = [
            ((ready < begin - _EPS) | (ready >= end + _EPS), "due outside the window", "ready"),
            (tt < -_EPS, "with a negative travel time", "travel_time"),
            (tt > end - begin + _EPS, "with a travel time longer than the window",
             "travel_time"),
            (stop > end + _EPS, "ending after the window", "end"),
            (depart < ready - _EPS, "inserted before they were due", "depart"),
            (stop < depart - _EPS, "arriving or leaving before they were inserted", "end"),
        ]
    for mask, what, col in checks:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            problems.append(_some(table, mask, what, col))
    inserted_nan = (table["status"] != "not_inserted").to_numpy() & np.isnan(depart)
    if inserted_nan.any():
        problems.append(_some(table, inserted_nan, "on the network without an insertion time"))
    total = statistics.get("teleports")
    attributed = int(table["teleports"].sum())
    if total is not None and attributed != int(total):
        problems.append(f"SUMO counted {int(total)} teleports but {attributed} are attributed "
                        "to vehicles")
    return problems


def check_edges(edges: pd.DataFrame) -> list[str]:
    """Broken invariants of an edgeData table (:func:`egress.engine.outputs.read_edgedata`)."""
    problems = []
    sampled = edges["sampled_seconds"].to_numpy(dtype=float)
    speed = edges["speed"].to_numpy(dtype=float)
    busy = sampled > 0
    bad = busy & ~(np.isfinite(speed) & (speed >= 0))
    if bad.any():
        first = edges.loc[bad].iloc[0]
        problems.append(f"{int(bad.sum())} edge intervals with vehicles but no valid speed "
                        f"(e.g. {first['edge']} at {first['begin']:.0f} s: {first['speed']})")
    for col in ("sampled_seconds", "entered", "left"):
        neg = edges[col].to_numpy(dtype=float) < 0
        if neg.any():
            problems.append(f"{int(neg.sum())} edge intervals with negative {col}")
    return problems


def teleport_share(statistics: Mapping[str, float]) -> float:
    """Teleports per inserted vehicle."""
    inserted = statistics.get("inserted", 0)
    return float(statistics.get("teleports", 0)) / inserted if inserted else 0.0
