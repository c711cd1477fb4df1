"""Output folders: what a folder holds, and whether a command may write there.

Every command that writes a folder of results (``simulate``, ``observe``,
``calibrate``, ``evaluate-policy``, ``sweep``) checks its ``--out`` here before
anything runs, so that a mistake never costs a simulation and never destroys
results:

* the path is not empty (``--out ''`` would write into the working folder),
  not an existing file, and can be written (the nearest existing folder is
  probed by creating and removing a file, which also holds for read-only file
  systems and for the superuser);
* it is not the folder an input lives in (a run folder's outputs, deleted
  before every run, would sit beside the scenario);
* it does not hold another command's results: each command's folder is
  recognised by its marker files (:func:`folder_kind`), and
  ``calibrate --resume --out <a simulate run folder>`` is refused instead of
  overwriting the run's ``summary.json``.

``egress report`` uses the same :func:`folder_kind` to decide what to describe.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import InputError

#: Folder kind -> the command that writes it.
WRITERS = {"run": "simulate", "calibration": "calibrate", "evaluation": "evaluate-policy",
           "sweep": "sweep", "observations": "observe"}
#: Command -> the kind of folder it writes.
KIND_OF = {command: kind for kind, command in WRITERS.items()}


def folder_kind(folder: str | Path) -> str | None:
    """What a folder holds, from its marker files.

    Returns
    -------
    str or None
        ``"sweep"`` (``sweep.json`` or ``results/``), ``"evaluation"``
        (``evaluation.json``), ``"calibration"`` (``state.json``,
        ``convergence.csv`` or ``fit.csv``), ``"run"`` (``summary.json`` with
        ``run.sumocfg``), ``"observations"`` (``truth.od.csv``); None for
        anything else (an empty or new folder).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    if (folder / "results").is_dir() or (folder / "sweep.json").is_file():
        return "sweep"
    if (folder / "evaluation.json").is_file():
        return "evaluation"
    if any((folder / n).is_file() for n in ("state.json", "convergence.csv", "fit.csv")):
        return "calibration"
    if (folder / "summary.json").is_file() and (folder / "run.sumocfg").is_file():
        return "run"
    if (folder / "truth.od.csv").is_file():
        return "observations"
    return None


def _writable(path: Path) -> str | None:
    """None if files can be created at `path` (a folder to be), else the reason."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, so {path} cannot be a folder"
    try:
        fd, name = tempfile.mkstemp(dir=probe, prefix=".egress-probe-")
    except OSError as exc:
        return f"{probe} is not writable ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(name)
    return None


def check_output(path: str | Path | None, *, flag: str = "--out", kind: str = "dir",
                 inputs: Iterable[str | Path | None] = (), command: str | None = None,
                 suffixes: tuple[str, ...] = ()) -> Path | None:
    """Check an output path before anything runs.

    Parameters
    ----------
    path : str, pathlib.Path or None
        The path as given; None (the command's default) is not checked.
    flag : str
        The flag or argument that named it (for the message).
    kind : {"dir", "file"}
        Whether a folder or a file is written.
    inputs : iterable of paths
        Input files of the command: a folder may not be the folder one of them
        lives in, a file may not be one of them.
    command : str, optional
        The command writing a folder of results (``"simulate"``, ...): the
        folder may not hold another command's results.
    suffixes : tuple of str
        For a file: the endings of the files the command writes (``".html"``); an
        existing file with another ending (a scenario, a table) is not overwritten.

    Returns
    -------
    pathlib.Path or None

    Raises
    ------
    InputError
        ``--out: <problem>``.
    """
    if path is None:
        return None
    text = str(path)
    if not text.strip():
        raise InputError(flag, f"empty path; name the {'folder' if kind == 'dir' else 'file'} "
                         "to write")
    p = Path(text)
    if kind == "dir" and p.exists() and not p.is_dir():
        raise InputError(flag, f"{p} is a file, not a folder")
    if kind == "file" and p.is_dir():
        raise InputError(flag, f"{p} is a folder, not a file")
    if kind == "file" and suffixes and p.is_file() and not p.name.lower().endswith(suffixes):
        raise InputError(flag, f"{p} exists and is not a {' or '.join(suffixes)} file; it "
                         "would be overwritten")
    problem = _writable(p if kind == "dir" else p.parent)
    if problem:
        raise InputError(flag, problem)
    target = p.resolve()
    for given in inputs:
        if given is None or not str(given).strip():
            continue
        source = Path(given).resolve()
        if kind == "dir" and source.is_file() and target == source.parent:
            raise InputError(flag, f"{p} is the folder of the input {given}; its outputs would "
                             "be mixed with (and cleared beside) the inputs; name another "
                             "folder")
        if kind == "file" and target == source:
            raise InputError(flag, f"{p} is an input of the command; it would be overwritten")
    if command is not None and kind == "dir":
        found = folder_kind(p)
        wanted = KIND_OF.get(command)
        if found is not None and found != wanted:
            raise InputError(flag, f"{p} holds the results of 'egress {WRITERS[found]}' "
                             f"(a {found} folder); 'egress {command}' would overwrite them; "
                             "name another folder")
    return p


__all__ = ["KIND_OF", "WRITERS", "check_output", "folder_kind"]
