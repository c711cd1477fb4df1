"""Origin-destination (OD) tables between zones.

A tidy OD table is a :class:`pandas.DataFrame` with the columns
:data:`OD_COLUMNS`:

``origin``, ``destination``
    Zone tokens (S2 cells, see :mod:`egress.network.zones`), strings.
``begin``, ``end``
    The interval in seconds after midnight, ``begin < end``.
``trips``
    Trips from origin to destination starting in the interval; a
    non-negative float (fractions are allowed until trips are sampled).

Intervals may differ between rows but must not overlap unless identical
(0-900 and 900-1800 are fine, 0-900 and 600-1500 are not); an
(origin, destination, interval) appears at most once.

Files are CSV (``.csv``, these columns with a header) or SUMO's tazRelation
data format (``.xml``), which od2trips reads with ``--tazrelation-files``::

    <data>
        <interval id="0-900" begin="0" end="900">
            <tazRelation from="54906a9c" to="54906ab4" count="12.5"/>
        </interval>
    </data>

Both are written with full float precision, so CSV -> XML -> CSV is exact.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

from .. import limits
from ..config.schema import time_or_none
from ..errors import InputError, MissingFileError, Problems
from ..files import read_table
from .vehicles import KINDS

log = logging.getLogger(__name__)

#: Columns of a tidy OD table.
OD_COLUMNS = ["origin", "destination", "begin", "end", "trips"]

#: Problems listed in one error at most; the rest are counted.
MAX_PROBLEMS = 100


_QUOTE = {'"': "&quot;"}


def _fmt(value: float) -> str:
    """Shortest text that reads back as the same float (``"900"`` for 900.0)."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _interval_name(begin: Any, end: Any) -> str:
    try:
        return f"{float(begin):g}-{float(end):g}"
    except (TypeError, ValueError):
        return f"{begin}-{end}"




def _zone_set(zones: Any) -> set[str] | None:
    if zones is None:
        return None
    if hasattr(zones, "tokens"):  # an egress.network.zones.Zones
        zones = zones.tokens
    return {str(z) for z in zones}


def _finish(problems: Problems) -> None:
    if len(problems.items) > MAX_PROBLEMS:
        extra = len(problems.items) - MAX_PROBLEMS
        problems.items = problems.items[:MAX_PROBLEMS] + [f"... and {extra} more problems"]
    problems.raise_if_any(InputError)


def validate_od(df: pd.DataFrame, source: str, zones: Iterable[str] | None = None, *,
                rows: Sequence[str] | None = None) -> pd.DataFrame:
    """Check an OD table and return a clean copy.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns :data:`OD_COLUMNS` (others are dropped). Values may still be
        strings (as read from a file); times may be seconds or ``"HH:MM[:SS]"``.
    source : str
        Name of the file or object, for the error message.
    zones : iterable of str or Zones, optional
        Known zone tokens; origins and destinations must be among them.
    rows : sequence of str, optional
        How to name each row in messages; default ``"line N"`` with N the
        line of a CSV file with a header (position + 2).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`OD_COLUMNS` with dtypes str, str, float, float,
        float; sorted by begin, origin, destination; a fresh RangeIndex.

    Raises
    ------
    InputError
        Listing every problem, each naming its row: missing columns, missing
        or unknown zones, bad times, inverted intervals (begin >= end),
        overlapping intervals, trips that are not finite non-negative
        numbers, duplicate (origin, destination, interval) rows.
    """
    problems = Problems(source)
    if not isinstance(df, pd.DataFrame):
        raise InputError(source, f"expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in OD_COLUMNS if c not in df.columns]
    if missing:
        problems.add(f"missing column(s) {', '.join(missing)} "
                     f"(expected {', '.join(OD_COLUMNS)})")
        problems.raise_if_any(InputError)
    known = _zone_set(zones)
    names = list(rows) if rows is not None else [f"line {i + 2}" for i in range(len(df))]
    out = _clean_fast(df, known)
    if out is not None:
        _check_overlaps(out, names, problems)
        _check_duplicates(out, names, problems)
        _check_total(out, problems)
        _finish(problems)
        return _sorted(out)

    rows_ok = [_row(rec, names[pos], known, problems)
               for pos, rec in enumerate(df[OD_COLUMNS].itertuples(index=False, name=None))]
    out = pd.DataFrame([r for r, _ in rows_ok], columns=OD_COLUMNS).astype(
        {"origin": object, "destination": object, "begin": float, "end": float,
         "trips": float})
    good = [pos for pos, (_, ok) in enumerate(rows_ok) if ok]
    _check_overlaps(out.iloc[good], names, problems)
    _check_duplicates(out.iloc[good], names, problems)
    _check_total(out, problems)
    _finish(problems)
    return _sorted(out)


def _row(rec: tuple, where: str, known: set[str] | None, problems: Problems
         ) -> tuple[tuple, bool]:
    """One OD row, checked: its clean values (NaN or "" where bad) and whether its
    keys and interval are usable for the checks across rows."""
    o, d, b, e, t = rec
    ok = True
    zs = []
    for col, z in (("origin", o), ("destination", d)):
        if z is None or (isinstance(z, float) and math.isnan(z)) or str(z).strip() == "":
            problems.add(f"{where}: {col} missing")
            ok = False
            zs.append("")
            continue
        z = str(z).strip()
        if known is not None and z not in known:
            problems.add(f"{where}: {col} {z!r} is not a known zone")
        zs.append(z)
    bt, et = time_or_none(b), time_or_none(e)
    for col, raw, val in (("begin", b, bt), ("end", e, et)):
        if val is None:
            problems.add(f"{where}: {col} {raw!r} is not a time in seconds")
            ok = False
    for col, val in (("begin", bt), ("end", et)):
        if val is not None and limits.time_of_day(val):
            problems.add(f"{where}: {col} {limits.time_of_day(val)}")
            ok = False
    if bt is not None and et is not None and bt >= et:
        problems.add(f"{where}: interval {_interval_name(bt, et)} is inverted "
                     "(begin must be < end)")
        ok = False
    tv = _trips(t)
    if isinstance(tv, str):
        problems.add(f"{where}: trips {tv}")
        tv = math.nan
    values = (zs[0], zs[1], bt if bt is not None else math.nan,
              et if et is not None else math.nan, tv)
    return values, ok


def _sorted(out: pd.DataFrame) -> pd.DataFrame:
    out = out.sort_values(["begin", "origin", "destination"], kind="mergesort")
    out["origin"] = out["origin"].astype(str)
    out["destination"] = out["destination"].astype(str)
    return out.reset_index(drop=True)


def _clean_fast(df: pd.DataFrame, known: set[str] | None) -> pd.DataFrame | None:
    """The table's columns as :func:`validate_od` returns them when every row
    is already well-typed and valid on its own (vectorised); None otherwise,
    and the row-by-row check then names each problem."""
    cols = {}
    for col in ("origin", "destination"):
        z = df[col]
        if pd.api.types.infer_dtype(z, skipna=False) != "string":
            return None
        z = z.astype(object)
        if (z.str.strip() != z).any() or (z == "").any():
            return None
        if known is not None and not z.isin(known).all():
            return None
        cols[col] = z.to_numpy()
    for col in ("begin", "end", "trips"):
        v = df[col]
        if not pd.api.types.is_numeric_dtype(v) or pd.api.types.is_bool_dtype(v):
            return None
        cols[col] = v.to_numpy(dtype=float)
        if not np.isfinite(cols[col]).all():
            return None
    if (cols["trips"] < 0).any() or (cols["begin"] >= cols["end"]).any() \
            or (cols["trips"] > limits.VEHICLES_MAX).any() or (cols["begin"] < 0).any() \
            or (cols["end"] > limits.TIME_MAX).any():
        return None
    return pd.DataFrame({"origin": pd.Series(cols["origin"], dtype=object),
                         "destination": pd.Series(cols["destination"], dtype=object),
                         "begin": cols["begin"], "end": cols["end"], "trips": cols["trips"]})


def _trips(value: Any) -> float | str:
    """The trips value, or a string describing what is wrong with it."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return "missing"
    if isinstance(value, bool):
        return f"{value!r} is not a number"
    try:
        t = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return f"{value!r} is not a number"
    if not math.isfinite(t):
        return "missing" if math.isnan(t) and not isinstance(value, str) else \
            f"{value!r} is not finite"
    if t < 0:
        return f"{value!r} is negative"
    if t > limits.VEHICLES_MAX:
        return f"{value!r} is more than {limits.VEHICLES_MAX:,} (the most vehicles a run holds)"
    return t


def _check_total(df: pd.DataFrame, problems: Problems) -> None:
    """The whole table must fit in one run (:data:`egress.limits.VEHICLES_MAX`)."""
    total = float(np.nansum(df["trips"].to_numpy(dtype=float)))
    if total > limits.VEHICLES_MAX:
        problems.add(f"trips: {total:,.0f} in total, more than {limits.VEHICLES_MAX:,} (the "
                     "most vehicles one run holds)")


def _check_overlaps(df: pd.DataFrame, names: list[str], problems: Problems) -> None:
    first: dict[tuple[float, float], int] = {}
    for pos, b, e in zip(df.index, df["begin"], df["end"], strict=True):
        first.setdefault((b, e), pos)
    intervals = sorted(first)
    for i, (b1, e1) in enumerate(intervals):
        for b2, e2 in intervals[i + 1:]:
            if b2 >= e1:
                break
            problems.add(f"{names[first[(b2, e2)]]}: interval {_interval_name(b2, e2)} overlaps "
                         f"interval {_interval_name(b1, e1)} of {names[first[(b1, e1)]]}")


def _check_duplicates(df: pd.DataFrame, names: list[str], problems: Problems) -> None:
    keys = ["origin", "destination", "begin", "end"]
    dup = df[df.duplicated(keys, keep=False)]
    for _, group in dup.groupby(keys, sort=False):
        positions = list(group.index)
        o, d, b, e = (group.iloc[0][k] for k in keys)
        for pos in positions[1:]:
            problems.add(f"{names[pos]}: duplicate of {names[positions[0]]} (origin {o}, "
                         f"destination {d}, interval {_interval_name(b, e)})")


# --------------------------------------------------------------------------- reading

def read_od(path: str | Path, zones: Iterable[str] | None = None, *,
            attribute: str = "count") -> pd.DataFrame:
    """Read and validate an OD file.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.csv`` file with the :data:`OD_COLUMNS` header, or SUMO
        tazRelation data (``.xml``): ``<data><interval begin end>
        <tazRelation from to count/></interval></data>``. Other attributes
        (e.g. those written by SUMO's tools) are ignored.
    zones : iterable of str or Zones, optional
        Known zone tokens.
    attribute : str
        The tazRelation attribute holding the trips (as od2trips'
        ``--tazrelation-attribute``).

    Returns
    -------
    pandas.DataFrame
        A clean tidy table (see :func:`validate_od`).

    Raises
    ------
    MissingFileError
        If the file does not exist.
    InputError
        If it is malformed or fails :func:`validate_od`; problems name the
        CSV line, or the XML interval and from/to.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "OD file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        df, rows = _read_csv(path)
    elif suffix == ".xml":
        df, rows = _read_tazrelation(path, attribute)
    else:
        raise InputError(str(path), "unknown OD file type; expected .csv or .xml")
    return validate_od(df, str(path), zones, rows=rows)


def _read_csv(path: Path) -> tuple[pd.DataFrame, list[str]]:
    df = read_table(path, f"OD file (header {','.join(OD_COLUMNS)})", dtype=str,
                    keep_default_na=False, skipinitialspace=True)
    df.columns = [str(c).strip() for c in df.columns]
    return df, [f"line {i + 2}" for i in range(len(df))]


def _read_tazrelation(path: Path, attribute: str) -> tuple[pd.DataFrame, list[str]]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InputError(str(path), f"malformed XML ({exc})") from None
    if root.tag != "data":
        raise InputError(str(path), f"expected a <data> root with <interval> elements, "
                         f"got <{root.tag}>")
    problems = Problems(str(path))
    records, rows = [], []
    for k, interval in enumerate(root.iter("interval")):
        begin, end = interval.get("begin"), interval.get("end")
        name = f"interval {interval.get('id') or _interval_name(begin, end)}"
        for attr, val in (("begin", begin), ("end", end)):
            if val is None:
                problems.add(f"{name} (#{k + 1}): missing {attr}")
        for rel in interval.iter("tazRelation"):
            src, dst = rel.get("from"), rel.get("to")
            rows.append(f"{name} from={src} to={dst}")
            if attribute not in rel.attrib:
                problems.add(f"{rows[-1]}: missing {attribute}")
            records.append((src, dst, begin, end, rel.get(attribute)))
    problems.raise_if_any(InputError)
    return pd.DataFrame(records, columns=OD_COLUMNS), rows


# --------------------------------------------------------------------------- writing




def _kind(value: Any) -> str:
    """A CSV ``kind`` cell: blank is background (the default), anything else as text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "background"
    return str(value).strip() or "background"


def read_kinded_od(path: str | Path, zones: Iterable[str] | None = None) -> pd.DataFrame:
    """Read an OD file whose CSV may say which trips are event traffic.

    A CSV column ``kind`` (``event`` or ``background``; default background)
    is kept and each kind validated on its own; a tazRelation XML file is
    background traffic.

    Returns
    -------
    pandas.DataFrame
        :data:`OD_COLUMNS` plus ``kind``.

    Raises
    ------
    MissingFileError, InputError
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "OD file")
    if path.suffix.lower() != ".csv":
        return read_od(path, zones).assign(kind="background")
    raw = read_table(path, "OD file", dtype={"origin": str, "destination": str})
    kinds = raw["kind"].map(_kind) if "kind" in raw.columns else \
        pd.Series("background", index=raw.index)
    bad = sorted(set(kinds) - set(KINDS))
    if bad:
        raise InputError(str(path), f"kind: unknown value(s) {', '.join(bad)} "
                         f"(expected {' or '.join(KINDS)})")
    frames = [validate_od(grp, str(path), zones, rows=[f"line {i + 2}" for i in grp.index])
              .assign(kind=kind) for kind, grp in raw.groupby(kinds, sort=True)]
    if not frames:  # a header without rows: no trips
        return validate_od(raw, str(path), zones).assign(kind=pd.Series(dtype=object))
    return pd.concat(frames, ignore_index=True)


def write_od_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write an OD table as CSV (full float precision).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InputError
        If the table is invalid (see :func:`validate_od`).
    """
    path = Path(path)
    clean = validate_od(df, "OD table")
    path.parent.mkdir(parents=True, exist_ok=True)
    clean.to_csv(path, index=False)  # pandas writes the shortest round-tripping repr
    log.info("wrote %s (%d rows)", path, len(clean))
    return path


def write_tazrelation(df: pd.DataFrame, path: str | Path) -> Path:
    """Write an OD table as SUMO tazRelation data (for od2trips ``--tazrelation-files``).

    One ``<interval id="{begin:g}-{end:g}" begin end>`` per distinct
    interval, in time order, with one ``<tazRelation from to count/>`` per
    row; counts are written with full precision (``repr``), so reading the
    file back gives the same floats.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InputError
        If the table is invalid (see :func:`validate_od`).
    """
    path = Path(path)
    clean = validate_od(df, "OD table")
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", "<data>"]
    for (begin, end), group in clean.groupby(["begin", "end"], sort=True):
        lines.append(f'    <interval id="{_interval_name(begin, end)}" begin="{_fmt(begin)}" '
                     f'end="{_fmt(end)}">')
        lines.extend(f'        <tazRelation from="{o}" to="{d}" '
                     f'count="{float(t)!r}"/>'
                     for o, d, t in zip(_attr(group["origin"]), _attr(group["destination"]),
                                        group["trips"].tolist(), strict=True))
        lines.append("    </interval>")
    lines.append("</data>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log.info("wrote %s (%d rows)", path, len(clean))
    return path


def _attr(values: pd.Series) -> list[str]:
    """Strings escaped for an XML attribute in double quotes."""
    text = values.astype(str)
    if text.str.contains('[&<>"]', regex=True).any():
        return [escape(v, _QUOTE) for v in text]
    return text.tolist()


def write_od(df: pd.DataFrame, path: str | Path) -> Path:
    """Write an OD table as CSV (``.csv``) or tazRelation XML (``.xml``), by suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return write_od_csv(df, path)
    if suffix == ".xml":
        return write_tazrelation(df, path)
    raise InputError(str(path), "unknown OD file type; expected .csv or .xml")


# --------------------------------------------------------------------------- summaries

def od_totals(df: pd.DataFrame) -> pd.Series:
    """Total trips per interval.

    Returns
    -------
    pandas.Series
        Named ``trips``, indexed by (begin, end), in time order.
    """
    clean = validate_od(df, "OD table")
    return clean.groupby(["begin", "end"], sort=True)["trips"].sum()


def to_matrix(df: pd.DataFrame, begin: float, zones: Iterable[str] | None = None,
              ) -> pd.DataFrame:
    """The origin × destination matrix of the interval that starts at `begin`.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy OD table.
    begin : float
        Start of the interval (s).
    zones : iterable of str, optional
        Rows and columns to show (in this order), zero-filled; default the
        origins and destinations of the interval, sorted.

    Returns
    -------
    pandas.DataFrame
        Trips, index ``origin``, columns ``destination``, missing pairs 0.

    Raises
    ------
    InputError
        If no interval starts at `begin`.
    """
    clean = validate_od(df, "OD table")
    part = clean[clean["begin"] == float(begin)]
    if part.empty:
        starts = ", ".join(_fmt(b) for b in sorted(clean["begin"].unique())) or "none"
        raise InputError("OD table", f"no interval begins at {_fmt(begin)} "
                         f"(intervals begin at {starts})")
    matrix = part.pivot_table(index="origin", columns="destination", values="trips",
                              aggfunc="sum", fill_value=0.0)
    if zones is not None:
        order = [str(z) for z in (zones.tokens if hasattr(zones, "tokens") else zones)]
        matrix = matrix.reindex(index=order, columns=order, fill_value=0.0)
    matrix.index.name, matrix.columns.name = "origin", "destination"
    return matrix.astype(float)


__all__ = ["OD_COLUMNS", "od_totals", "read_od", "to_matrix", "validate_od", "write_od",
           "write_od_csv", "write_tazrelation"]
