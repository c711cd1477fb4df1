"""Observed segment speeds, counts and travel times, and their simulated twins.

Table format
------------
A CSV (``.csv``) or Parquet (``.parquet``) file, one row per segment and
interval. Columns (only ``begin``, ``end``, a segment and one value are
required):

``segment``
    A label for the segment (optional; default the edge ids).
``edges``
    One SUMO edge id, or several consecutive edge ids separated by spaces,
    in driving order.
``start_lon, start_lat, end_lon, end_lat``
    Instead of ``edges``: the segment's start and end in WGS84, as
    probe-speed products (TMC or map-provider segments) give them. egress
    map-matches the part of the segment that lies in the model onto directed
    edges (see :func:`egress.network.matching.match_part`); what happens to
    segments that do not match is described under *Map matching* below.
``segment_length``
    Optional, with coordinates: the segment's length along the road (m), as
    the product gives it; the matched share is measured against it (default:
    the straight distance between the end points).
``begin, end``
    The interval, seconds after midnight or ``"HH:MM[:SS]"``. It must lie in
    the simulation window and, for the simulated value to be aggregated
    exactly like the observation, start and end on the edge-statistics grid
    (``simulation.begin + k × simulation.edgedata_period``).
``speed``
    Space-mean speed over the segment, km/h.
``count``
    Vehicles entering the segment's first edge in the interval.
``travel_time``
    Seconds to traverse the whole segment.
``speed_sd, count_sd, travel_time_sd``
    Optional standard deviations (same units). Defaults: 5 km/h;
    ``max(5, 0.1 × count)`` vehicles; ``max(10 s, 0.1 × travel_time)``.
``weight``
    Optional extra weight (>= 0, default 1) of the row in the objective.
``days``
    Optional: the number of days the row's values average (an integer >= 1;
    the standard deviations are then the day-to-day spread). Kept for the
    record; the objective does not use it.
``road, direction``
    Optional text: the segment's road and direction as the product names
    them (e.g. ``I-5``, ``NORTHBOUND``). With coordinates, map matching
    prefers a path on a road of that name (where a viaduct runs over a
    surface street, the name is all that tells them apart).

The importers (:mod:`egress.calibration.importers`) write this format from
probe-speed products and detector counts.

Map matching
------------
A row given by coordinates whose segment cannot be matched, or matches with
too small a share of its length, is **dropped** with one warning line
naming the row, the segment and why; rows that match the same edges in the
same interval are **merged** into one (mean, and an sd that holds their
own and their disagreement), with one warning line. With ``strict=True``
either is an error instead. :attr:`Observations.matches` reports every
coordinate row (see :mod:`egress.calibration.matched`), and
:func:`egress.calibration.matched.write_matched_segments` writes it as a
table and a map. Two rows that name the same edges themselves (column
``edges``) and interval are an error.

Simulated values are aggregated exactly like the observations from SUMO's
edgeData (:func:`egress.calibration.aggregate.simulated_values`).
"""


from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import limits
from ..config.schema import time_or_none
from ..errors import InputError, MissingFileError, Problems
from ..files import PARQUET, read_table
from ..network import car_link, read_net
from .aggregate import simulated_values
from .matched import Matcher, merge_rows

log = logging.getLogger(__name__)

#: Observed quantities and their units.
QUANTITIES = {"speed": "km/h", "count": "veh", "travel_time": "s"}


#: Columns of a clean observations table (:attr:`Observations.table`).
COLUMNS = ["segment", "edges", "begin", "end", "speed", "count", "travel_time",
           "speed_sd", "count_sd", "travel_time_sd", "weight", "length", "free_speed",
           "matched_share", "segment_length", "days", "road", "direction"]

#: Columns of the clean table that are derived from the network, not written back.
_DERIVED = ("length", "free_speed", "matched_share")


_COORDS = ["start_lon", "start_lat", "end_lon", "end_lat"]


_KNOWN = {"segment", "edges", "begin", "end", *QUANTITIES, *(f"{k}_sd" for k in QUANTITIES),
          "weight", *_COORDS, "segment_length", "days", "road", "direction"}


#: The highest value each quantity may take (:mod:`egress.limits`).
_HIGHEST = {"speed": limits.SPEED_MAX_KMH, "count": float(limits.VEHICLES_MAX),
            "travel_time": limits.TIME_MAX}
#: Problems listed in one error at most; the rest are counted.
MAX_PROBLEMS = 50

#: What :meth:`_Rows._edges` returns for a row whose segment is dropped.
_DROPPED = ("<dropped>",)


def default_sd(kind: str, value: np.ndarray) -> np.ndarray:
    """Standard deviation used when a row gives none (see the module docstring)."""
    value = np.asarray(value, dtype=float)
    if kind == "speed":
        return np.full(value.shape, 5.0)
    if kind == "count":
        return np.maximum(5.0, 0.1 * value)
    return np.maximum(10.0, 0.1 * value)


@dataclass
class Observations:
    """A validated observations table.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns :data:`COLUMNS`: ``edges`` a tuple of edge ids, times in s,
        ``speed`` km/h, ``count`` veh, ``travel_time`` s (NaN where not
        observed), standard deviations filled with their defaults, ``length``
        (m) and ``free_speed`` (km/h) of the segment, ``matched_share`` (NaN
        for rows that name their edges), the optional record columns.
    source : str
    matches : pandas.DataFrame
        The matching report: one row per coordinate-given row, columns
        :data:`egress.calibration.matched.REPORT_COLUMNS` (status kept,
        merged or dropped, and why).
    """

    table: pd.DataFrame
    source: str = "observations"
    matches: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __len__(self) -> int:
        return len(self.table)

    def values(self, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices of the rows observing `kind`, their values and weights (w / sd²)."""
        t = self.table
        idx = np.flatnonzero(t[kind].notna().to_numpy())
        val = t[kind].to_numpy(dtype=float)[idx]
        sd = t[f"{kind}_sd"].to_numpy(dtype=float)[idx]
        w = t["weight"].to_numpy(dtype=float)[idx] / sd ** 2
        return idx, val, w

    @property
    def dropped(self) -> pd.DataFrame:
        """The report's rows that were dropped (could not be matched)."""
        m = self.matches
        return m.loc[m["status"] == "dropped"] if "status" in m.columns else m.iloc[0:0]

    @property
    def n_values(self) -> int:
        """Number of observed values (speeds + counts + travel times)."""
        return int(sum(self.table[k].notna().sum() for k in QUANTITIES))


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix.lower() not in (".csv", *PARQUET):
        raise InputError(str(path), "unknown observations file type; expected .csv or .parquet")
    return read_table(path, "observations table (header with begin, end, edges or "
                      "start_lon, start_lat, end_lon, end_lat, and speed, count or "
                      "travel_time)", dtype=str, keep_default_na=False, skipinitialspace=True)


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or \
        (isinstance(v, str) and v.strip() == "")


def _number(v: Any) -> float | None:
    if _blank(v) or isinstance(v, bool):
        return None
    try:
        x = float(v.strip() if isinstance(v, str) else v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None




def read_observations(path: str | Path, net, *, window: tuple[float, float] | None = None,
                      period: float | None = None, grid_start: float | None = None,
                      strict: bool = False) -> Observations:
    """Read and validate an observations file (see the module docstring).

    Parameters
    ----------
    path : str or pathlib.Path
        ``.csv`` or ``.parquet``.
    net : sumolib.net.Net or path
        The network the segments refer to.
    window : (begin, end), optional
        The simulation window; intervals must lie inside it.
    period : float, optional
        The edge-statistics period; intervals must start and end on the grid
        ``grid_start + k × period`` (default ``grid_start`` = window begin).
    strict : bool
        Make a segment that cannot be map-matched (or only with too small a
        share), and rows that match the same edges and interval, errors
        instead of dropping (merging) them with a warning.

    Returns
    -------
    Observations

    Raises
    ------
    MissingFileError
        If the file does not exist.
    InputError
        Naming the file and, for each problem, the line (CSV line number,
        header = line 1) and column: unknown edge, non-consecutive segment,
        bad or inverted times, intervals outside the window or off the grid,
        negative or non-numeric values, rows without any value, duplicate
        edges and interval; with `strict`, unmatched coordinates and rows
        matching the same edges too. Also when every row was dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "observations file")
    df = _read_table(path)
    return validate_observations(df, net, source=str(path), window=window, period=period,
                                 grid_start=grid_start, strict=strict)


def observed_end(path: str | Path) -> float | None:
    """The latest interval end of an observations file (s), without validating or
    map-matching it (None when the file gives no readable end; reading it in
    full reports why)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        df = _read_table(path)
    except InputError:
        return None
    df.columns = [str(c).strip() for c in df.columns]
    ends = [time_or_none(v) for v in df["end"]] if "end" in df.columns else []
    ends = [e for e in ends if e is not None]
    return max(ends) if ends else None


def validate_observations(df: pd.DataFrame, net, *, source: str = "observations",
                          window: tuple[float, float] | None = None,
                          period: float | None = None, grid_start: float | None = None,
                          strict: bool = False) -> Observations:
    """Validate an observations table already in memory; see :func:`read_observations`."""
    if not hasattr(net, "getEdge"):
        net = read_net(net)
    problems = Problems(source)
    df = df.copy()
    df.columns = [str(c).strip() for c in df.columns]
    _check_columns(df, problems)
    problems.raise_if_any(InputError)
    if grid_start is None and window is not None:
        grid_start = window[0]
    rows = _Rows(net, problems, window, period, grid_start, "edges" in df.columns,
                 all(c in df.columns for c in _COORDS), strict)
    for pos, rec in enumerate(df.to_dict("records")):
        rows.add(pos, rec)
    if len(problems.items) > MAX_PROBLEMS:
        extra = len(problems.items) - MAX_PROBLEMS
        problems.items = problems.items[:MAX_PROBLEMS] + [f"... and {extra} more problems"]
    problems.raise_if_any(InputError)
    kept = rows.merged(source)
    report = rows.matcher.table()
    dropped = int((report["status"] == "dropped").sum())
    if not kept:
        raise InputError(source, f"no observations left: all {dropped} rows dropped, their "
                         "segments cannot be map-matched (see the warnings)" if dropped
                         else "no observations")
    _warn_dropped(source, report)
    table = _table(kept)
    if len(report):
        log.info("%s: map-matched %d of %d coordinate rows (%d dropped, %d merged)", source,
                 len(report) - dropped, len(report), dropped,
                 int((report["status"] == "merged").sum()))
    return Observations(table, source, report)


def _warn_dropped(source: str, report: pd.DataFrame) -> None:
    """One warning line per dropped row: the row, its segment and why."""
    for r in report.loc[report["status"] == "dropped"].itertuples():
        log.warning("%s: line %d (segment %s): dropped, cannot be map-matched: %s", source,
                    r.row, r.segment, r.why)


def _check_columns(df: pd.DataFrame, problems: Problems) -> None:
    """The columns a table needs, and no unknown ones."""
    if "begin" not in df.columns or "end" not in df.columns:
        problems.add("missing column(s) " + ", ".join(c for c in ("begin", "end")
                                                        if c not in df.columns))
    if "edges" not in df.columns and not all(c in df.columns for c in _COORDS):
        problems.add("needs a column 'edges' or the columns " + ", ".join(_COORDS))
    if not any(k in df.columns for k in QUANTITIES):
        problems.add("needs at least one of the columns " + ", ".join(QUANTITIES))
    for c in df.columns:
        if c not in _KNOWN:
            problems.add(f"unknown column {c!r}")


class _Rows:
    """Checks the rows of an observations table one by one, collecting the good
    ones and every problem (each naming its CSV line)."""

    def __init__(self, net, problems: Problems, window, period, grid_start,
                 has_edges: bool, has_coords: bool, strict: bool = False):
        self.net, self.problems = net, problems
        self.window, self.period, self.grid_start = window, period, grid_start
        self.has_edges, self.has_coords, self.strict = has_edges, has_coords, strict
        self.rows: list[dict] = []
        self.matcher = Matcher(net)
        self._seen: dict[tuple, int] = {}
        self._same: dict[tuple, list[int]] = {}
        self._succ: dict[str, set[str]] = {}

    def add(self, pos: int, rec: dict) -> None:
        """Check one record (table row `pos`) and keep it if it has no problem."""
        where = f"line {pos + 2}"
        label = str(rec.get("segment")).strip() if not _blank(rec.get("segment")) else None
        edges, share = self._edges(where, pos, rec, label)
        interval = self._interval(where, rec)
        values = self._values(where, rec)
        extras = self._extras(where, rec)
        if edges is None or interval is None or values is None or extras is None \
                or edges is _DROPPED:
            return
        b, e = interval
        key = (edges, b, e)
        if key in self._seen:
            first = self.rows[self._seen[key]]
            if self.strict or (math.isnan(share) and math.isnan(first["matched_share"])):
                how = "matches the same edges as" if not math.isnan(share) else "duplicate of"
                self.problems.add(f"{where}: {how} line {first['_line']} (segment "
                                  f"{' '.join(edges)}, interval {b:g}-{e:g})")
                return
            self._same.setdefault(key, [self._seen[key]]).append(len(self.rows))
        else:
            self._seen[key] = len(self.rows)
        lengths = [self.net.getEdge(x).getLength() for x in edges]
        limits = [self.net.getEdge(x).getSpeed() for x in edges]
        length = float(sum(lengths))
        free = length / sum(L / v for L, v in zip(lengths, limits, strict=True)) * 3.6
        self.rows.append({"segment": label or " ".join(edges), "edges": edges, "begin": b,
                          "end": e, **values, **extras, "length": length, "free_speed": free,
                          "matched_share": share, "_line": pos + 2})

    def merged(self, source: str) -> list[dict]:
        """The kept rows, those matching the same edges and interval merged into one
        (:func:`egress.calibration.matched.merge_rows`), with one warning per set of
        segments merged (naming their lines in every interval)."""
        gone: set[int] = set()
        out = list(self.rows)
        said: dict[tuple, list[str]] = {}
        for key, idx in self._same.items():
            group = [_with_default_sds(self.rows[i]) for i in idx]
            lines = [r["_line"] for r in group]
            out[idx[0]] = merge_rows(group, QUANTITIES)
            gone.update(idx[1:])
            self.matcher.merged(lines)
            labels = tuple(dict.fromkeys(r["segment"] for r in group))
            said.setdefault((labels, key[0]), []).append("+".join(map(str, lines)))
        for (labels, edges), lines in said.items():
            log.warning("%s: segments %s match the same edges (%s): merged into one row in "
                        "each of %d interval(s) (lines %s; mean, sd from their own and their "
                        "spread)", source, ", ".join(labels), " ".join(edges), len(lines),
                        ", ".join(lines))
        return [r for i, r in enumerate(out) if i not in gone]

    def _successors(self, eid: str) -> set[str]:
        if eid not in self._succ:
            self._succ[eid] = {e.getID() for e, conns in
                               self.net.getEdge(eid).getOutgoing().items() if car_link(conns)}
        return self._succ[eid]

    def _edges(self, where: str, pos: int, rec: dict, label: str | None
               ) -> tuple[tuple[str, ...] | None, float]:
        """The row's edges (None on a problem, :data:`_DROPPED` for a segment that
        cannot be matched) and matched share: given (share NaN), or map-matched
        from its coordinates."""
        raw = rec.get("edges") if self.has_edges else None
        if not _blank(raw):
            edges = tuple(str(raw).split())
            unknown = [e for e in edges if not self.net.hasEdge(e)]
            for e in unknown:
                self.problems.add(f"{where}: edges: unknown edge {e!r}")
            if unknown:
                return None, math.nan
            for a, b in zip(edges[:-1], edges[1:], strict=True):
                if b not in self._successors(a):
                    self.problems.add(f"{where}: edges: not consecutive, no car connection "
                                      f"from {a!r} to {b!r}")
                    return None, math.nan
            return edges, math.nan
        if not self.has_coords:
            self.problems.add(f"{where}: edges missing")
            return None, math.nan
        pts = [_number(rec.get(c)) for c in _COORDS]
        if any(p is None for p in pts):
            bad = [c for c, p in zip(_COORDS, pts, strict=True) if p is None]
            self.problems.add(f"{where}: no edges and no valid {', '.join(bad)}")
            return None, math.nan
        given = _number(rec.get("segment_length"))
        road = None if _blank(rec.get("road")) else str(rec.get("road")).strip()
        m = self.matcher.match(pos + 2, label or "", pts, given if given and given > 0 else None,
                               road)
        if m.ok:
            return m.edges, m.share
        if self.strict:
            self.problems.add(f"{where}: cannot map-match segment ({pts[0]:.6f},{pts[1]:.6f})"
                              f"->({pts[2]:.6f},{pts[3]:.6f}): {m.why}")
            return None, math.nan
        return _DROPPED, math.nan

    def _interval(self, where: str, rec: dict) -> tuple[float, float] | None:
        """The row's interval: times in order, in the window, on the edgeData grid."""
        b, e = time_or_none(rec.get("begin")), time_or_none(rec.get("end"))
        bad = [col for col, val in (("begin", b), ("end", e)) if val is None]
        for col in bad:
            self.problems.add(f"{where}: {col} {rec.get(col)!r} is not a time")
        if bad:
            return None
        problem = None
        if b >= e:
            problem = f"interval {b:g}-{e:g} is inverted (begin must be < end)"
        elif self.window is not None and (b < self.window[0] or e > self.window[1]):
            problem = (f"interval {b:g}-{e:g} is outside the simulation window "
                       f"{self.window[0]:g}-{self.window[1]:g}")
        elif self.period is not None and self.grid_start is not None:
            off = [(t - self.grid_start) / self.period for t in (b, e)]
            if any(abs(o - round(o)) > 1e-6 for o in off):
                problem = (f"interval {b:g}-{e:g} is not on the edge-statistics grid "
                           f"({self.grid_start:g} + k × {self.period:g} s)")
        if problem:
            self.problems.add(f"{where}: {problem}")
            return None
        return b, e

    def _values(self, where: str, rec: dict) -> dict[str, float] | None:
        """The observed values (NaN where not given); at least one."""
        values, ok = {}, True
        for kind in QUANTITIES:
            v = rec.get(kind)
            if _blank(v):
                values[kind] = math.nan
                continue
            x = _number(v)
            if x is None:
                self.problems.add(f"{where}: {kind} {v!r} is not a number")
                ok = False
            elif x < 0 or (kind != "count" and x == 0):
                self.problems.add(f"{where}: {kind} {v!r} must be "
                                  f"{'>= 0' if kind == 'count' else '> 0'}")
                ok = False
            elif x > _HIGHEST[kind]:
                self.problems.add(f"{where}: {kind} {v!r} is more than "
                                  f"{_HIGHEST[kind]:,.0f} {QUANTITIES[kind]} (egress.limits)")
                ok = False
            values[kind] = x if x is not None else math.nan
        if ok and all(math.isnan(v) for v in values.values()):
            self.problems.add(f"{where}: no value; give speed, count or travel_time")
            ok = False
        return values if ok else None

    def _extras(self, where: str, rec: dict) -> dict[str, Any] | None:
        """Standard deviations (NaN: the default), the weight (default 1) and the
        record columns."""
        extras, ok = _record(where, rec, self.problems), True
        for col, default in (("speed_sd", math.nan), ("count_sd", math.nan),
                             ("travel_time_sd", math.nan), ("weight", 1.0)):
            v = rec.get(col)
            if _blank(v):
                extras[col] = default
                continue
            x = _number(v)
            if x is None or x < 0 or (col != "weight" and x == 0):
                self.problems.add(f"{where}: {col} {v!r} must be a number "
                                  f"{'>= 0' if col == 'weight' else '> 0'}")
                ok = False
            extras[col] = x if x is not None else math.nan
        return extras if ok and extras.pop("_ok") else None


def _record(where: str, rec: dict, problems: Problems) -> dict[str, Any]:
    """The record columns: segment length, days, road, direction (``_ok``: valid)."""
    out: dict[str, Any] = {"_ok": True, "road": "", "direction": ""}
    for col in ("road", "direction"):
        if not _blank(rec.get(col)):
            out[col] = str(rec.get(col)).strip()
    for col, integer in (("segment_length", False), ("days", True)):
        v = rec.get(col)
        x = _number(v)
        if _blank(v):
            out[col] = math.nan
        elif x is None or x <= 0 or (integer and x != int(x)):
            problems.add(f"{where}: {col} {v!r} must be "
                         f"{'an integer >= 1' if integer else 'a number > 0'}")
            out["_ok"] = False
        else:
            out[col] = x
    return out


def _with_default_sds(row: dict) -> dict:
    """`row` with the default standard deviation where it gives none."""
    row = dict(row)
    for kind in QUANTITIES:
        if math.isnan(row[f"{kind}_sd"]) and not math.isnan(row[kind]):
            row[f"{kind}_sd"] = float(default_sd(kind, np.array([row[kind]]))[0])
    return row


def _table(rows: list[dict]) -> pd.DataFrame:
    """The clean table: default standard deviations filled, sorted by time and segment."""
    table = pd.DataFrame(rows, columns=COLUMNS)
    for kind in QUANTITIES:
        sd = table[f"{kind}_sd"].to_numpy(dtype=float).copy()
        miss = np.isnan(sd)
        sd[miss] = default_sd(kind, table[kind].to_numpy(dtype=float))[miss]
        table[f"{kind}_sd"] = sd
    return table.sort_values(["begin", "segment"], kind="stable").reset_index(drop=True)


def write_observations(obs: Observations | pd.DataFrame, path: str | Path) -> Path:
    """Write observations as CSV or Parquet (by suffix), edges space-separated."""
    table = obs.table if isinstance(obs, Observations) else obs
    out = table.drop(columns=[c for c in _DERIVED if c in table.columns]).copy()
    out["edges"] = [" ".join(e) if isinstance(e, tuple | list) else e for e in out["edges"]]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        out.to_csv(path, index=False)
    else:
        out.to_parquet(path, index=False)
    return path


__all__ = ["COLUMNS", "QUANTITIES", "Observations", "default_sd", "observed_end",
           "read_observations", "simulated_values", "validate_observations",
           "write_observations"]
