"""Writing files safely: atomic replacement, JSON of numpy values, XML as SUMO reads it.

A result file is written to a temporary name beside it and renamed, so a
reader sees either the old file or the complete new one, never half of it.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputError, MissingFileError


def jsonable(v: Any) -> Any:
    """A JSON-able stand-in for a numpy scalar or any other object (its text)."""
    if hasattr(v, "item"):
        return v.item()
    return str(v)


def atomic_json(path: str | Path, data: Any, indent: int = 1) -> Path:
    """Write `data` as JSON to `path` atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent, default=jsonable) + "\n")
    os.replace(tmp, path)
    return path


def atomic_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as CSV to `path` atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def num(x: float) -> str:
    """A number as SUMO reads it: ``3600`` rather than ``3600.0``."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def write_xml(root: ET.Element, path: str | Path) -> Path:
    """Write an element tree, indented, with an XML declaration."""
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)
    return Path(path)


#: Suffixes read as Parquet by :func:`read_table`; anything else is read as CSV.
PARQUET = (".parquet", ".pq")


def _a(what: str) -> str:
    """`what` with its indefinite article ("an OD file", "a SUMO network")."""
    return f"{'an' if what[:1].lower() in 'aeiou' else 'a'} {what}"


def check_text_file(path: str | Path, what: str = "file") -> Path:
    """Check that a file named by the user exists, is not empty and is UTF-8 text.

    Raises
    ------
    MissingFileError
        If it does not exist (``<path>: <what> not found``).
    InputError
        If it is empty, binary (holds NUL bytes) or not UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, what)
    data = path.read_bytes()
    if not data.strip():
        raise InputError(str(path), f"empty file; expected {_a(what)}")
    if b"\0" in data[:65536]:
        raise InputError(str(path), f"binary file; expected {_a(what)} (text)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text (byte {exc.start}); expected "
                         f"{_a(what)}") from None
    return path


def check_xml_root(path: str | Path, roots: tuple[str, ...], what: str,
                   error: type[InputError] = InputError) -> Path:
    """Check that a file named by the user is text and XML whose root element is one of
    `roots` (a trips file given as a network, a CSV given as an OSM extract, ...).

    Raises
    ------
    MissingFileError, InputError
        Of type `error` for the wrong root or malformed XML.
    """
    path = check_text_file(path, what)
    root = None
    try:
        for _, elem in ET.iterparse(path, events=("start",)):
            root = elem.tag
            break
    except ET.ParseError as exc:
        raise error(str(path), f"not {_a(what)}: malformed XML ({exc})") from None
    if root not in roots:
        raise error(str(path), f"not {_a(what)}: its root element is <{root}>, expected "
                    + " or ".join(f"<{r}>" for r in roots))
    return path


def read_table(path: str | Path, what: str = "table", **csv: Any) -> pd.DataFrame:
    """Read a table named by the user: CSV (UTF-8 text) or Parquet (by suffix).

    The one place where user tables are opened, so that a missing, empty,
    binary, undecodable or malformed file is one named line of bad input
    whatever the table is for.

    Parameters
    ----------
    path : str or pathlib.Path
    what : str
        What the table is, for messages (``"OD file"``).
    **csv
        Passed to :func:`pandas.read_csv`.

    Raises
    ------
    MissingFileError, InputError
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, what)
    if path.suffix.lower() in PARQUET:
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds
            raise InputError(str(path), f"unreadable Parquet {what} ({type(exc).__name__})"
                             ) from None
    check_text_file(path, what)
    try:
        df = pd.read_csv(path, encoding="utf-8", **csv)
    except pd.errors.EmptyDataError:
        raise InputError(str(path), f"empty file; expected {_a(what)} with a header"
                         ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(str(path), f"malformed CSV ({_one_line(str(exc))})") from None
    if "index_col" not in csv and not isinstance(df.index, pd.RangeIndex):
        # pandas makes the first column an index when rows have one field more than the
        # header: the columns would be shifted by one
        raise InputError(str(path), f"malformed CSV: rows with more fields than the "
                         f"header's {len(df.columns)}")
    return df


def _one_line(text: str) -> str:
    return " ".join(text.split())


__all__ = ["PARQUET", "atomic_csv", "atomic_json", "check_text_file", "jsonable", "num",
           "read_table", "write_xml"]
