"""Finding and running SUMO's programs and tools.

SUMO comes from the ``eclipse-sumo`` wheel; a ``SUMO_HOME`` that the user set
explicitly takes precedence. Programs run as plain subprocesses with their
built-in outputs (no per-step TraCI loop), with explicit seeds, and a failure
raises :class:`~egress.errors.SumoError` carrying the tail of SUMO's own error
output.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import SumoError

log = logging.getLogger(__name__)

#: Lines of SUMO's error output quoted in a :class:`SumoError`.
_TAIL_LINES = 3


@functools.cache
def sumo_home() -> Path:
    """Return the SUMO installation in use.

    ``SUMO_HOME`` from the environment wins when set; otherwise the folder of
    the ``eclipse-sumo`` wheel.

    Returns
    -------
    pathlib.Path
    """
    env = os.environ.get("SUMO_HOME")
    if env:
        return Path(env)
    try:
        import sumo  # the eclipse-sumo wheel
    except ImportError as exc:  # pragma: no cover - a broken install
        raise SumoError(
            "SUMO not found: install the eclipse-sumo package or set SUMO_HOME"
        ) from exc
    return Path(sumo.SUMO_HOME)


def binary(name: str) -> str:
    """Return the path of SUMO program `name` (``sumo``, ``netconvert``, ...).

    Parameters
    ----------
    name : str
        Program name without extension.

    Returns
    -------
    str
    """
    exe = name + (".exe" if sys.platform == "win32" else "")
    path = sumo_home() / "bin" / exe
    if path.is_file():
        return str(path)
    found = shutil.which(name)
    if found:
        return found
    raise SumoError(f"SUMO program {name!r} not found in {sumo_home() / 'bin'}")


def tool(relative: str) -> Path:
    """Return the path of a script in SUMO's ``tools`` folder."""
    path = sumo_home() / "tools" / relative
    if not path.is_file():
        raise SumoError(f"SUMO tool {relative!r} not found in {sumo_home() / 'tools'}")
    return path


@functools.cache
def version() -> str:
    """Return the SUMO version string, e.g. ``'1.28.0'`` (asked once per process)."""
    out = subprocess.run(
        [binary("sumo"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    first = out.splitlines()[0] if out else ""
    return first.rsplit(" ", 1)[-1] if first else "unknown"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SUMO_HOME", str(sumo_home()))
    return env


def run(args: list[str], *, what: str | None = None, cwd: str | Path | None = None,
        log_file: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run a SUMO program or tool and raise :class:`SumoError` if it fails.

    Parameters
    ----------
    args : list of str
        Command line; ``args[0]`` is a program name (``"sumo"``), a path, or
        a ``.py`` tool path (run with this Python).
    what : str, optional
        What is being run, for the error message (defaults to the program).
    cwd : path, optional
        Working directory.
    log_file : path, optional
        Where to keep SUMO's stdout and stderr; by default they are captured.

    Returns
    -------
    subprocess.CompletedProcess
    """
    cmd = list(map(str, args))
    if cmd[0].endswith(".py"):
        cmd = [sys.executable, *cmd]
    elif os.sep not in cmd[0]:
        cmd[0] = binary(cmd[0])
    label = what or Path(cmd[1] if cmd[0] == sys.executable else cmd[0]).name
    log.debug("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env=_env(), check=False)
    if log_file is not None:
        Path(log_file).write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = error_tail(proc.stderr or proc.stdout)
        raise SumoError(f"{label} failed (exit {proc.returncode}): {tail}")
    return proc


def error_tail(text: str, lines: int = _TAIL_LINES) -> str:
    """Return the last error lines of SUMO's output, joined on one line."""
    rows = [r.strip() for r in text.splitlines() if r.strip()]
    errors = [r for r in rows if r.startswith(("Error", "error", "Quitting"))] or rows
    tail = [r for r in errors if not r.startswith("Quitting")] or errors
    return " | ".join(tail[-lines:]) or "no error output"
