"""Progress bars that show in a terminal and in a Jupyter notebook.

tqdm's own rule (``disable=None``) shows a bar only when standard error is a
terminal. A notebook's standard error is not one, so notebooks ran 15–100
simulations without a sign of life. :func:`bar` shows a bar when progress is
wanted and the output is a terminal *or* a notebook (an IPython kernel), and
uses :mod:`tqdm.auto` there: a widget where ``ipywidgets`` is installed, text
otherwise. Logs, files and pipes get no bar.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm
from tqdm.auto import tqdm as auto_tqdm


def in_notebook() -> bool:
    """Whether the code runs in a Jupyter kernel."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except AttributeError:
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def shown(progress: bool) -> bool:
    """Whether a bar is shown: asked for, and a terminal or a notebook to show it in."""
    if not progress:
        return False
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty or in_notebook()


def bar(progress: bool, **kwargs: Any):
    """A tqdm progress bar (disabled unless :func:`shown`); `kwargs` go to tqdm."""
    cls = auto_tqdm if in_notebook() else tqdm
    return cls(disable=not shown(progress), **kwargs)


def note(message: str, progress: bool) -> None:
    """A line above any bar (e.g. the Dask dashboard's address), where bars show."""
    if shown(progress):
        tqdm.write(message, file=sys.stderr)


__all__ = ["bar", "in_notebook", "note", "shown"]
