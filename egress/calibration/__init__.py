"""The calibration stage: fitting the OD demand to observed speeds, counts and
travel times (``egress calibrate``), and synthetic observations (``egress observe``).

Modules
-------
:mod:`.observations`
    The observations table: reading, validating, map matching segments given
    by coordinates (dropping and merging what real products need).
:mod:`.matched`
    The matching report: which coordinate rows were kept, merged or dropped
    and why; ``matched_segments.csv`` and its map.
:mod:`.aggregate`
    The simulated twin of each observed value, from SUMO's edgeData.
:mod:`.products`, :mod:`.importers`
    Real observation products (probe speeds per segment, detector counts per
    station) into the observations table: ``egress observations import-...``.
:mod:`.metrics`
    Fit statistics: speed RMSE, R², GEH.
:mod:`.problem`
    What a calibration needs (:class:`Problem`): :func:`calibration_problem`,
    :func:`plain_calibration_problem`.
:mod:`.runs`
    One evaluation of an OD: sample, route, simulate, aggregate.
:mod:`.metamodel`
    The objective and the physics-informed metamodel (no egress imports).
:mod:`.spsa`
    The SPSA baseline (no egress imports).
:mod:`.driver`
    :func:`calibrate`: the budget, resume, the search, the outputs.
:mod:`.figures`
    Observed vs simulated scatter (speeds, counts, travel times), convergence.
:mod:`.synthetic`
    Synthetic observations of a "true" OD and a perturbed prior.
"""

from __future__ import annotations

from .driver import METHODS, CalibrationResult, calibrate
from .metamodel import ModelNoise, Targets
from .metrics import fit_metrics, geh
from .observations import Observations, read_observations, simulated_values, write_observations
from .problem import (
    Problem,
    TazZones,
    calibration_problem,
    plain_calibration_problem,
    read_prior,
    scenario_problem,
)
from .runs import Evaluation, evaluate, run_od
from .synthetic import observe, perturb_od

__all__ = [
    "CalibrationResult", "Evaluation", "METHODS", "ModelNoise", "Observations", "Problem",
    "Targets", "TazZones", "calibrate", "calibration_problem", "evaluate", "fit_metrics", "geh",
    "observe", "perturb_od", "plain_calibration_problem", "read_observations", "read_prior",
    "run_od", "scenario_problem", "simulated_values", "write_observations",
]
