"""The command line: thin commands, one-line errors with exit code 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, write_file

EGRESS = [sys.executable, "-m", "egress.cli"]

#: These tests run egress (and so SUMO) in a subprocess.
pytestmark = pytest.mark.sumo


def run(*args, cwd=None):
    return subprocess.run([*EGRESS, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def assert_user_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_help_for_every_command():
    top = run("--help")
    assert top.returncode == 0
    commands = re.findall(r"^    (\S+)", top.stdout, flags=re.M)
    assert {"build-network", "simulate"} <= set(commands)
    for cmd in commands:
        assert run(cmd, "--help").returncode == 0, cmd


def test_missing_scenario(tmp_path):
    assert_user_error(run("simulate", tmp_path / "nope.toml"), "nope.toml", "not found")


def test_malformed_toml(tmp_path):
    bad = write_file(tmp_path / "bad.toml", "name = \n")
    assert_user_error(run("simulate", bad), "bad.toml", "malformed TOML")


def test_unknown_and_mistyped_keys(tmp_path, straight_net):
    s = write_file(tmp_path / "s.toml", f"""
        name = "x"
        [network]
        file = "{straight_net}"
        [simulation]
        begin = 0
        end = "late"
        seeed = 4
        [demand]
        routes = []
        """)
    assert_user_error(run("simulate", s), "s.toml", "simulation.end: expected a time",
                      "simulation.seeed: unknown key (did you mean simulation.seed?)")


def test_bad_arguments_are_one_line():
    assert_user_error(run("simulate", "--seed", "x", "s.toml"), "invalid int value")
    assert_user_error(run("frobnicate"), "invalid choice")


def test_route_through_an_unknown_edge_is_bad_input(tmp_path, straight_net):
    write_file(tmp_path / "r.rou.xml", """
        <routes><vehicle id="v" depart="0"><route edges="ab nowhere"/></vehicle></routes>""")
    s = write_file(tmp_path / "s.toml", f"""
        name = "x"
        [network]
        file = "{straight_net}"
        [simulation]
        begin = 0
        end = 100
        [demand]
        routes = ["r.rou.xml"]
        """)
    proc = run("simulate", s, "--out", tmp_path / "run")
    assert_user_error(proc, "r.rou.xml: edge 'nowhere' (vehicle 'v') not in net.net.xml")
    assert not (tmp_path / "run").exists()  # nothing started


def test_sumo_failure_quotes_sumo_with_its_own_exit_code(tmp_path, straight_net):
    write_file(tmp_path / "r.rou.xml", """
        <routes><vType id="t" accel="-1"/>
        <vehicle id="v" type="t" depart="0"><route edges="ab bc"/></vehicle></routes>""")
    s = write_file(tmp_path / "s.toml", f"""
        name = "x"
        [network]
        file = "{straight_net}"
        [simulation]
        begin = 0
        end = 100
        [demand]
        routes = ["r.rou.xml"]
        """)
    proc = run("simulate", s, "--out", tmp_path / "run")
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "run failed: sumo failed" in lines[0] and "accel" in lines[0], lines[0]
    assert (tmp_path / "run" / "sumo.log").is_file()  # SUMO's whole output kept
    state = (tmp_path / "run" / "summary.json").read_text()
    assert '"state": "failed"' in state


def test_simulate_prints_summary(tmp_path, straight_net):
    write_file(tmp_path / "r.rou.xml", """
        <routes><vehicle id="v" depart="0"><route edges="ab bc"/></vehicle></routes>""")
    s = write_file(tmp_path / "s.toml", f"""
        name = "x"
        [network]
        file = "{straight_net}"
        [simulation]
        begin = 0
        end = 400
        [demand]
        routes = ["r.rou.xml"]
        """)
    proc = run("simulate", s, "--out", tmp_path / "run", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert "1 due, 1 arrived, 0 left the study area, 0 still inside at the end" in proc.stdout
    assert "teleports: 0" in proc.stdout


def test_build_network_cli(tmp_path):
    folder = Path(tmp_path / "n")
    write_file(folder / "n.nod.xml",
               '<nodes><node id="a" x="-122.33" y="47.59"/><node id="b" x="-122.32" y="47.59"/>'
               "</nodes>")
    write_file(folder / "n.edg.xml", '<edges><edge id="ab" from="a" to="b"/></edges>')
    proc = run("build-network", folder)
    assert proc.returncode == 0, proc.stderr
    assert (folder / "n.net.xml").is_file()
    assert_user_error(run("build-network"), "give a folder")


@pytest.mark.parametrize("target", ["demo", "test"])
def test_readme_commands_are_the_makefile_targets(target):
    readme = (ROOT / "README.md").read_text()
    assert f"make {target}" in readme
    assert re.search(rf"^{target}:", (ROOT / "Makefile").read_text(), flags=re.M)


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)
