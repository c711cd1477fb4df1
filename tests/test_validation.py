"""Validation against observations: a real SUMO run on a straight road whose
speeds and counts are known by hand, compared with a made-up observed table."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from conftest import EXACT_VTYPE, write_file

from egress import engine, validate
from egress.cli import main
from egress.errors import InputError
from egress.validation import fit_statistics
from egress.validation.compare import geh

pytestmark = pytest.mark.sumo


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, straight_net):
    """Three cars at 10 m/s on a -> b -> c, leaving a at 0, 100 and 200 s;
    edge statistics every 300 s over 0-600 s."""
    folder = tmp_path_factory.mktemp("validate")
    rows = "\n".join(f'<vehicle id="v{i}" type="exact" depart="{i * 100}" departSpeed="max" '
                     f'departPos="0" arrivalPos="max"><route edges="ab bc"/></vehicle>'
                     for i in range(3))
    routes = write_file(folder / "r.rou.xml", f"<routes>{EXACT_VTYPE}\n{rows}\n</routes>")
    cfg = engine.RunConfig(folder / "run", straight_net, (routes,), 0, 600, mode="micro",
                           edgedata_period=300)
    res = engine.run(cfg)
    assert res.valid, res.problems
    return folder / "run"


def _observations(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_speeds_and_counts_against_hand_computed_values(tmp_path, straight_run):
    """Simulated: 36 km/h on both edges; 3 cars enter ab in 0-300 s, none after.
    Observed: ab 30 km/h, bc 36 km/h; ab 3 cars, then 8 cars in 300-600 s.
    RMSE = sqrt((6² + 0²) / 2), bias +3; flows 36 vs 36 veh/h (GEH 0) and
    0 vs 96 veh/h (GEH sqrt(2·96²/96) = 13.9): half the counts match."""
    obs = _observations(tmp_path / "obs.csv", [
        {"segment": "ab", "edges": "ab", "begin": 0, "end": 300, "speed": 30.0,
         "speed_sd": 3.0, "count": 3},
        {"segment": "bc", "edges": "bc", "begin": 0, "end": 300, "speed": 36.0},
        {"segment": "ab", "edges": "ab", "begin": 300, "end": 600, "count": 8},
        {"segment": "ab", "edges": "ab", "begin": 600, "end": 900, "speed": 20.0}])
    v = validate(straight_run, obs, out=tmp_path / "v", figures=False)
    t = v.table
    assert len(t) == 3  # the row after the run's end is left out
    assert t["simulated_speed"].iloc[:2].tolist() == pytest.approx([36.0, 36.0], abs=0.1)
    assert t["simulated_count"].tolist()[0] == 3 and t["simulated_count"].tolist()[2] == 0
    s = v.statistics
    assert s["speed_rows"] == 2 and s["count_rows"] == 2
    assert s["rmse_kmh"] == pytest.approx(math.sqrt(18.0), abs=0.1)
    assert s["bias_kmh"] == pytest.approx(3.0, abs=0.1)
    assert s["geh_share"] == 0.5
    assert t["geh"].iloc[2] == pytest.approx(math.sqrt(2 * 96.0), abs=0.01)
    assert set(t["road_class"]) == {"arterial"}  # untyped edges
    saved = json.loads((tmp_path / "v" / "validation.json").read_text())
    assert saved["rmse_kmh"] == pytest.approx(s["rmse_kmh"])
    # statistics over chosen hours only: none of these rows start at hour 21
    assert fit_statistics(t, hours=[21])["speed_rows"] == 0


def test_geh_by_hand():
    assert geh([100.0, 0.0, 0.0], [100.0, 0.0, 50.0]).tolist() == pytest.approx([0, 0, 10.0])


def test_validate_refuses_what_is_not_a_finished_run(tmp_path, straight_run):
    obs = _observations(tmp_path / "obs.csv", [
        {"segment": "ab", "edges": "ab", "begin": 0, "end": 300, "speed": 30.0}])
    with pytest.raises(InputError, match="holds no run"):
        validate(tmp_path, obs)
    late = _observations(tmp_path / "late.csv", [
        {"segment": "ab", "edges": "ab", "begin": 3600, "end": 3900, "speed": 30.0}])
    with pytest.raises(InputError, match="no row lies in the run's window"):
        validate(straight_run, late, figures=False, out=tmp_path / "x")
    assert main(["validate", str(tmp_path), "--observations", str(obs)]) == 2


def test_validate_command_prints_the_fit(tmp_path, straight_run, capsys):
    obs = _observations(tmp_path / "obs.csv", [
        {"segment": "ab", "edges": "ab", "begin": 0, "end": 300, "speed": 30.0}])
    assert main(["validate", str(straight_run), "--observations", str(obs),
                 "--out", str(tmp_path / "v")]) == 0
    out = capsys.readouterr().out
    assert "RMSE 6.0 km/h" in out and "arterial: observed 30.0" in out
    assert (tmp_path / "v" / "validation.png").is_file()


def test_the_run_report_shows_the_fit_and_a_rerun_clears_it(tmp_path, straight_run,
                                                            straight_net):
    """egress validate writes into the run folder by default; the run's report shows
    the fit; a new run in that folder removes it (it described the old run)."""
    import shutil

    from egress.reporting import write_report

    run = tmp_path / "run"
    shutil.copytree(straight_run, run)
    obs = _observations(tmp_path / "obs.csv", [
        {"segment": "ab", "edges": "ab", "begin": 0, "end": 300, "speed": 30.0}])
    validate(run, obs)
    text = write_report(run).read_text()
    assert "Against real observations" in text and "RMSE 6.0 km/h" in text
    cfg = engine.RunConfig(run, straight_net, (straight_run.parent / "r.rou.xml",), 0, 600,
                           mode="micro", edgedata_period=300)
    assert engine.run(cfg).valid
    assert not any((run / f"validation.{ext}").exists() for ext in ("csv", "json", "png"))
