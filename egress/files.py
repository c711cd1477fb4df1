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


__all__ = ["atomic_csv", "atomic_json", "jsonable", "num", "write_xml"]
