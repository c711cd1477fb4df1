"""The benchmark's freeway corridor (bench/corridor.py) stays buildable and calibratable."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
from conftest import ROOT

from egress.calibration import calibrate


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corridor_builds_and_one_calibration_step_runs(tmp_path):
    """Network, zones, truth and counts are built from the source files, and a
    calibration from a prior of half the truth gets through its start, the
    replicate and one metamodel step with a better objective."""
    bench = _load("calibration")   # also puts bench/ on the path for `corridor`
    corridor = bench.corridor
    files = corridor.build(tmp_path / "corridor")
    obs = pd.read_csv(files["observations"])
    assert set(obs["segment"]) == set(corridor.DETECTORS)
    assert obs["count"].notna().all() and obs["speed"].isna().all()
    assert (obs["count"] > 0).mean() > 0.9
    truth = pd.read_csv(files["truth"]).assign(kind="background")
    prior = bench.make_prior(truth, "half")
    assert np.allclose(prior["trips"], 0.5 * truth["trips"])
    uniform = bench.make_prior(truth, "uniform")
    assert np.isclose(uniform["trips"].sum(), truth["trips"].sum())
    assert uniform["trips"].nunique() == 1
    path = tmp_path / "prior.od.csv"
    prior.drop(columns=["kind"]).to_csv(path, index=False)
    problem = corridor.problem(files, path)
    res = calibrate(problem, tmp_path / "cal", budget=3, progress=False, figures=False)
    h = res.history
    assert list(h["tag"][:2]) == ["start", "replicate"] and len(h) == 3
    assert res.best.objective < res.prior.objective
    table = problem.obs.table
    assert bench.count_nrmse(table, res.best.values) < bench.count_nrmse(table, res.prior.values)
