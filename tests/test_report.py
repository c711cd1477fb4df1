"""egress report: one self-contained HTML file for a run, calibration or sweep folder."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from conftest import build_fork_net, fake_runner, write_file, write_study

from egress import cli
from egress.engine import simulate
from egress.errors import ReportError
from egress.reporting import write_report
from egress.sweep import run_sweep


def _self_contained(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>")
    srcs = re.findall(r'src="([^"]+)"', text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in text and "<script" not in text


@pytest.fixture(scope="module")
def fork_net(tmp_path_factory):
    return build_fork_net(tmp_path_factory.mktemp("fork"))


def test_sweep_report(tmp_path, fork_net):
    from distributed import Client

    study = write_study(tmp_path, fork_net)
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None,
                set_as_default=False) as client:
        run_sweep(study, tmp_path / "out", scheduler=client, progress=False, runner=fake_runner)
    path = write_report(tmp_path / "out")
    text = path.read_text()
    _self_contained(text)
    for part in ("<h2>Sweep</h2>", "Savings per event vehicle", "divert", "95%",
                 "<h2>Scenario details</h2>", "fork", "sweep file", "Inputs and versions"):
        assert part in text


def test_run_report(tmp_path, straight_net):
    write_file(tmp_path / "r.rou.xml", """
        <routes><vehicle id="v" depart="0"><route edges="ab bc"/></vehicle></routes>""")
    scen = write_file(tmp_path / "s.toml", f"""
        name = "straight"
        description = "one car on a straight road"
        [network]
        file = "{straight_net}"
        [simulation]
        begin = 0
        end = 400
        [demand]
        routes = ["r.rou.xml"]
        """)
    simulate(scen, tmp_path / "run", progress=False)
    out = write_report(tmp_path / "run", tmp_path / "mail" / "r.html")
    text = out.read_text()
    _self_contained(text)
    assert "Simulation run" in text and "one car on a straight road" in text
    assert "sumo" in text   # versions


def test_calibration_folder_gets_scatter_and_convergence(tmp_path):
    folder = tmp_path / "calib"
    folder.mkdir()
    pd.DataFrame({"objective": [5.0, 3.0, 3.5, 2.0]}).to_csv(folder / "convergence.csv",
                                                             index=False)
    pd.DataFrame({"observed": [30, 40, 50.0], "prior": [25, 45, 40.0],
                  "best": [29, 41, 48.0]}).to_csv(folder / "fit.csv", index=False)
    (folder / "summary.json").write_text(json.dumps({"method": "spsa", "budget": 4,
                                                     "versions": {"egress": "0.1.0"}}))
    text = write_report(folder).read_text()
    _self_contained(text)
    assert "<h2>Calibration</h2>" in text and text.count("data:image/png") == 2


def test_nothing_to_report_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(ReportError):
        write_report(tmp_path)
    assert cli.main(["report", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
