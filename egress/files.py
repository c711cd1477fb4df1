"""Writing files safely: atomic replacement, JSON of numpy values, XML as SUMO reads it.

A result file is written to a temporary name beside it and renamed, so a
reader sees either the old file or the complete new one, never half of it.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputError, MissingFileError


def jsonable(v: Any) -> Any:
    """A JSON-able stand-in for a numpy scalar or any other object (its text)."""
    if hasattr(v, "item"):
        return v.item()
    return str(v)


def json_text(data: Any, indent: int = 1) -> str:
    """`data` as the JSON text :func:`atomic_json` writes."""
    return json.dumps(data, indent=indent, default=jsonable) + "\n"


def atomic_json(path: str | Path, data: Any, indent: int = 1) -> Path:
    """Write `data` as JSON to `path` atomically."""
    return atomic_text(path, json_text(data, indent))


def atomic_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def atomic_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as CSV to `path` atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


class BackgroundWriter:
    """Files written one after the other, in the order asked, by a thread of their own.

    Renaming a new file over an old one, as the atomic writes here do, makes
    ext4 (mounted as by default, ``auto_da_alloc``) write the new file's
    data out before the rename: 3-4 ms per file where it was measured,
    even for a few bytes. A calibration replaces two files after every
    simulation (its state and convergence table), and a corridor simulation
    takes 0.2 s; in this thread the wait overlaps the next simulation.

    A request holds its data as it was when made (pass a snapshot: a text,
    a new table), so the files are those a synchronous write would give,
    only later. A request that fails raises its error at the next request,
    at :meth:`wait` or at :meth:`close`.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="egress-writer")
        self._pending: deque[Future] = deque()

    def submit(self, write: Callable[..., Any], *args: Any) -> None:
        """Call ``write(*args)`` once every earlier request is done."""
        self._finished(wait=False)
        self._pending.append(self._pool.submit(write, *args))

    def wait(self) -> None:
        """Wait for every request made so far."""
        self._finished(wait=True)

    def close(self) -> None:
        """Wait for every request and stop the thread."""
        try:
            self.wait()
        finally:
            self._pool.shutdown()

    def _finished(self, wait: bool) -> None:
        """Drop the requests done (all of them with `wait`), raising the first error."""
        while self._pending and (wait or self._pending[0].done()):
            self._pending.popleft().result()


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


__all__ = ["PARQUET", "BackgroundWriter", "atomic_csv", "atomic_json", "atomic_text",
           "check_text_file", "json_text", "jsonable", "num", "read_table", "write_xml"]
