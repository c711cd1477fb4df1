"""A small declarative checker for TOML tables.

Each key is described by a :class:`Field`; :func:`check_table` walks a parsed
TOML table, converts values, fills defaults and records every problem (wrong
type, missing required key, unknown key with a "did you mean" hint) in a
:class:`~egress.errors.Problems` collector instead of stopping at the first.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import limits
from ..errors import InputError, MissingFileError, Problems

_MISSING = object()


@dataclass(frozen=True)
class Field:
    """One key of a table.

    Parameters
    ----------
    kind : str
        ``"int"``, ``"float"``, ``"str"``, ``"bool"``, ``"time"`` (seconds or
        ``"HH:MM[:SS]"``), ``"path"``, ``"paths"`` (a path or a list of paths),
        ``"list"`` (any list) or ``"table"`` (a nested table, kept as a dict).
    required : bool
    default : object
        Value used when the key is absent (ignored when `required`).
    check : callable, optional
        ``check(value) -> str | None``; a returned string is a problem.
    doc : str
        One line describing the key.
    """

    kind: str
    required: bool = False
    default: Any = None
    check: Callable[[Any], str | None] | None = None
    doc: str = ""


def read_toml(path: Path, what: str, error: type[InputError] = InputError) -> dict[str, Any]:
    """Parse a TOML file named by the user.

    Raises
    ------
    MissingFileError
        If `path` is not a file (``"<path>: <what> not found"``).
    InputError
        Of type `error`, if the file is not valid TOML (naming the line).
    """
    if not path.is_file():
        raise MissingFileError(path, what)
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise error(str(path), f"malformed TOML: {exc}") from None
    except UnicodeDecodeError:
        raise error(str(path), "not a text file") from None


def parse_time(value: Any) -> float:
    """Convert seconds or ``"HH:MM[:SS]"`` (hours may exceed 23) to seconds.

    Raises
    ------
    ValueError
        If the value is neither.
    """
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?\s*", value)
        if m:
            h, mnt, sec = int(m[1]), int(m[2]), float(m[3] or 0)
            if mnt < 60 and sec < 60:
                return h * 3600.0 + mnt * 60.0 + sec
    raise ValueError(value)


def time_or_none(value: Any) -> float | None:
    """Seconds from a finite number or a ``"HH:MM[:SS]"`` string (or a number as text);
    None for anything else (blank, NaN, infinite, true/false, other text)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                seconds = parse_time(text)
            except ValueError:
                return None
    else:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            return None
    return seconds if math.isfinite(seconds) else None


def format_time(seconds: float) -> str:
    """Format seconds after midnight as ``HH:MM:SS``."""
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def positive(v: Any) -> str | None:
    return limits.finite(v) or (None if v > 0 else f"must be > 0, got {v}")


def non_negative(v: Any) -> str | None:
    return limits.finite(v) or (None if v >= 0 else f"must be >= 0, got {v}")


def fraction(v: Any) -> str | None:
    return limits.finite(v) or (None if 0 <= v <= 1 else f"must be between 0 and 1, got {v}")


def one_of(*choices: str) -> Callable[[Any], str | None]:
    def _check(v: Any) -> str | None:
        return None if v in choices else f"must be one of {', '.join(choices)}, got {v!r}"
    return _check


def _number(kind: str, integral: bool):
    def convert(value: Any, base: Path) -> Any:
        ok = isinstance(value, int) if integral else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            raise TypeError(kind)
        if not integral and not math.isfinite(value):
            # NaN and ±inf are valid TOML but never a valid setting: they would
            # run and turn every result into NaN or an empty demand
            raise TypeError("a finite number")
        return value if integral else float(value)
    return convert


def _of_type(kind: type, what: str):
    def convert(value: Any, base: Path) -> Any:
        if not isinstance(value, kind):
            raise TypeError(what)
        return value
    return convert


def _time_value(value: Any, base: Path) -> float:
    try:
        seconds = parse_time(value)
    except ValueError:
        raise TypeError('a time in seconds or "HH:MM[:SS]"') from None
    if limits.time_of_day(seconds):
        raise TypeError(f'a time between 0 and {format_time(limits.TIME_MAX)[:5]} '
                        '(seconds or "HH:MM[:SS]")')
    return seconds


def _is_path(value: Any) -> bool:
    """A non-empty string the file system can take: no NUL character, no name longer
    than 255 bytes (checking such a path raises instead of saying it is missing)."""
    return (isinstance(value, str) and bool(value.strip()) and "\0" not in value
            and all(len(part.encode("utf-8", "replace")) <= 255 for part in Path(value).parts))


def _path_value(value: Any, base: Path) -> Path:
    if not _is_path(value):
        raise TypeError("a path string")
    return (base / value).resolve()


def _paths_value(value: Any, base: Path) -> list[Path]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(_is_path(i) for i in items):
        raise TypeError("a path or a list of paths")
    return [(base / i).resolve() for i in items]


#: Field kind -> ``convert(value, base)``, raising TypeError naming what was expected.
_CONVERTERS: dict[str, Callable[[Any, Path], Any]] = {
    "int": _number("an integer", integral=True),
    "float": _number("a number", integral=False),
    "str": _of_type(str, "a string"),
    "bool": _of_type(bool, "true or false"),
    "time": _time_value,
    "path": _path_value,
    "paths": _paths_value,
    "list": _of_type(list, "a list"),
    "table": _of_type(dict, "a table"),
}


def _convert(kind: str, value: Any, base: Path) -> Any:
    return _CONVERTERS[kind](value, base)


def check_table(table: Any, fields: dict[str, Field], where: str, problems: Problems,
                base: Path) -> dict[str, Any]:
    """Check one table against `fields`; return converted values.

    Parameters
    ----------
    table : object
        The parsed TOML value (should be a dict).
    fields : dict
        Key name -> :class:`Field`.
    where : str
        Dotted name of the table for messages (``""`` for the top level).
    problems : Problems
        Collector that receives every problem.
    base : pathlib.Path
        Folder that relative paths are resolved against.

    Returns
    -------
    dict
        Every key of `fields` with its converted value or default; a key whose
        value was invalid maps to its default.
    """
    prefix = f"{where}." if where else ""
    if not isinstance(table, dict):
        problems.add(f"{where or 'file'}: expected a table, got {type(table).__name__}")
        table = {}
    out: dict[str, Any] = {}
    for key in table:
        if key not in fields:
            hint = difflib.get_close_matches(key, list(fields), n=1)
            extra = f" (did you mean {prefix}{hint[0]}?)" if hint else ""
            problems.add(f"{prefix}{key}: unknown key{extra}")
    for key, f in fields.items():
        if key not in table:
            if f.required:
                problems.add(f"{prefix}{key}: required key missing")
            out[key] = f.default
            continue
        try:
            value = _convert(f.kind, table[key], base)
        except TypeError as exc:
            problems.add(f"{prefix}{key}: expected {exc.args[0]}, got {table[key]!r}")
            out[key] = f.default
            continue
        if f.check is not None:
            msg = f.check(value)
            if msg:
                problems.add(f"{prefix}{key}: {msg}")
        out[key] = value
    return out
