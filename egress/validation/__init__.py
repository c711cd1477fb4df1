"""Model against reality: a simulation compared with real observations.

A fit to observations the model made itself is a unit test; the figure that
counts is the fit to what was measured in the street. This stage compares a
finished run with a real observations table (probe speeds, detector counts;
see :mod:`egress.calibration.importers`), by road class, and draws it.

Modules
-------
:mod:`.compare`
    One row per observation: observed and simulated speed and count, the
    segment's road class.
:mod:`.metrics`
    Speed RMSE and R², mean speeds by class, the GEH share of counts.
:mod:`.figures`
    Observed-vs-simulated speed scatter by road class; maps of a speed
    change (an event night against normal nights), observed and simulated
    side by side.
:mod:`.validate`
    :func:`validate`: a run folder against an observations file, written
    next to the run (``validation.csv``, ``validation.json``,
    ``validation.png``); what ``egress validate`` runs.
"""

from __future__ import annotations

from .compare import compare
from .metrics import by_class, fit_statistics
from .validate import Validation, validate

__all__ = ["Validation", "by_class", "compare", "fit_statistics", "validate"]
