"""Shared by the hostile-input tests (test_hostile.py) and the fuzz suite (test_fuzz.py).

A *workspace* is a copy of ``tests/data/hostile/`` (a tiny prebuilt network, its
venues, a valid scenario, policy file, sweep file, OD table and observations) in a
temporary folder; a test breaks one thing in it and runs the command line in-process
(:func:`run_cli`: ``egress.cli.main``, stdout and stderr captured), so hundreds of
cases cost seconds.

Every case must be refused before any SUMO program starts: :func:`no_sumo` makes a
SUMO program start raise :class:`SumoStarted`, which the command line does not catch,
so a case that gets that far shows as such instead of running a simulation.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import ROOT

import egress.sumo
from egress import cli

DATA = ROOT / "tests" / "data" / "hostile"


class SumoStarted(BaseException):
    """A SUMO program was about to start (the input passed every check)."""


def _refuse(name: str, *args, **kwargs):
    raise SumoStarted(name)


@contextlib.contextmanager
def no_sumo():
    """Within the block, starting any SUMO program raises :class:`SumoStarted`."""
    saved = egress.sumo.binary
    egress.sumo.binary = _refuse
    try:
        yield
    finally:
        egress.sumo.binary = saved


@dataclass
class Result:
    code: int | None
    out: str
    err: str
    sumo_started: bool = False

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(argv: list[Any], sumo: bool = False) -> Result:
    """Run ``egress ARGV`` in-process, with SUMO refused unless `sumo`; its exit code
    and output."""
    out, err = io.StringIO(), io.StringIO()
    started = False
    guard = contextlib.nullcontext() if sumo else no_sumo()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), guard:
        try:
            code = cli.main(["-q", *map(str, argv)])
        except SystemExit as exc:  # argparse: --help, or a flag it refused
            code = exc.code
        except SumoStarted:
            code, started = None, True
    return Result(code, out.getvalue(), err.getvalue(), started)


def assert_refused(result: Result, *fragments: str) -> None:
    """Exit 2, exactly one line on stderr, no traceback, naming every fragment."""
    assert not result.sumo_started, "a SUMO program started before the input was refused"
    assert result.code == 2, (result.code, result.err)
    assert "Traceback" not in result.err and "Exception ignored" not in result.err, result.err
    assert len(result.lines) == 1, result.err
    for f in fragments:
        assert f in result.lines[0], (f, result.lines[0])


#: Files whose presence would present a folder as holding finished results.
FINISHED = ("evaluation.json", "sweep.json", "calibrated.od.csv", "fit.csv", "truth.od.csv",
            "measures.csv", "report.html")


def assert_nothing_complete(folder: Path, before: set[Path] = frozenset()) -> None:
    """No new file under `folder` presents a result as complete: no ``summary.json``
    whose state is ``complete``, none of :data:`FINISHED`."""
    if not folder.exists():
        return
    for path in folder.rglob("*"):
        if path in before or not path.is_file():
            continue
        assert path.name not in FINISHED, path
        if path.name == "summary.json":
            try:
                state = json.loads(path.read_text()).get("state")
            except (ValueError, AttributeError):
                state = None
            assert state != "complete", path


# --------------------------------------------------------------------------- TOML


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def dump_toml(data: dict, prefix: str = "") -> str:
    """Write a dict as TOML (tables as sections, lists of tables as [[arrays]])."""
    lines = []
    for k, v in data.items():
        if not isinstance(v, dict) and not _is_table_array(v):
            lines.append(f"{json.dumps(k)} = {_toml_value(v)}")
    for k, v in data.items():
        name = f"{prefix}.{json.dumps(k)}" if prefix else json.dumps(k)
        if isinstance(v, dict):
            lines.append(f"\n[{name}]")
            lines.append(dump_toml(v, name))
        elif _is_table_array(v):
            for item in v:
                lines.append(f"\n[[{name}]]")
                lines.append(dump_toml(item, name))
    return "\n".join(line for line in lines if line != "") + "\n"


_DELETE = object()


def edit(data: dict, changes: dict[str, Any]) -> dict:
    """A deep copy of `data` with dotted keys set (``"simulation.begin"``; a number
    indexes a list: ``"venues.0.lots.0.capacity"``); :data:`DELETE` removes a key."""
    data = json.loads(json.dumps(data))
    for key, value in changes.items():
        parts = key.split(".")
        node: Any = data
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        last = int(parts[-1]) if isinstance(node, list) else parts[-1]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return data


DELETE = _DELETE


# --------------------------------------------------------------------------- workspace


class Workspace:
    """A copy of the valid inputs in `folder` and helpers that break one of them."""

    def __init__(self, folder: Path):
        self.dir = folder / "in"
        shutil.copytree(DATA, self.dir)
        self.out = folder / "out"
        self.n = 0

    def __getattr__(self, name: str) -> Path:
        files = {"scen": "scenario.toml", "venues": "venues.toml", "net": "tiny.net.xml",
                 "pol": "policies.toml", "sweep": "sweep.toml", "od": "od.csv",
                 "obs": "observations.csv"}
        if name in files:
            return self.dir / files[name]
        raise AttributeError(name)

    def write(self, name: str, content: str | bytes) -> Path:
        """A file in the inputs folder."""
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def toml(self, base: str, changes: dict[str, Any], name: str | None = None) -> Path:
        """`base` (a TOML file of the workspace) with dotted keys changed."""
        self.n += 1
        data = tomllib.loads((self.dir / base).read_text())
        name = name or f"{Path(base).stem}-{self.n}.toml"
        return self.write(name, dump_toml(edit(data, changes)))

    def scen_with(self, changes: dict[str, Any]) -> Path:
        return self.toml("scenario.toml", changes)

    def venues_with(self, changes: dict[str, Any]) -> Path:
        venues = self.toml("venues.toml", changes)
        return self.scen_with({"network.venues": venues.name})

    def sweep_with(self, changes: dict[str, Any]) -> Path:
        return self.toml("sweep.toml", changes)

    def policies_with(self, changes: dict[str, Any]) -> Path:
        return self.toml("policies.toml", changes)

    def od_with(self, rows: list[str], header: str = "origin,destination,begin,end,trips,kind"
                ) -> Path:
        self.n += 1
        return self.write(f"od-{self.n}.csv", "\n".join([header, *rows]) + "\n")

    def scen_with_od(self, rows: list[str]) -> Path:
        return self.scen_with({"demand.od": [self.od_with(rows).name]})

    def folder(self, name: str, files: dict[str, str]) -> Path:
        """A folder holding `files` (name -> text), e.g. another command's results."""
        path = self.dir.parent / name
        path.mkdir(parents=True, exist_ok=True)
        for n, text in files.items():
            (path / n).write_text(text)
        return path
