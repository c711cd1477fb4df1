"""Policy files, message signs and network patches on tiny hand-made networks."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import (
    ROOT,
    write_file,
    write_plain_net,
    write_routes,
)
from conftest import (
    TWO_ROUTE_POLICIES as POLICIES,
)
from conftest import (
    write_routes_scenario as write_scenario,
)

from egress.errors import InputError, PolicyError
from egress.network import build_network, read_net
from egress.policies import evaluate_policy, load_policies


def test_policy_file_loads_and_resolves_combinations(tmp_path, two_routes):
    pf = write_file(tmp_path / "p.toml", POLICIES)
    policies = load_policies(pf, two_routes)
    assert list(policies) == ["to_b", "via_b", "both"]
    assert policies["to_b"].params["vtypes"] == ["event"]
    assert [p.name for p in policies["both"].leaves()] == ["to_b", "via_b"]
    assert policies["both"].uses_signs


def test_every_problem_named_with_policy_and_key(tmp_path, two_routes):
    structure = write_file(tmp_path / "p.toml", """
        [[policies]]
        name = "combo"
        description = "x"
        kind = "combination"
        policies = ["ghost"]

        [[policies]]
        name = "odd"
        description = "x"
        kind = "teleport"

        [[policies]]
        name = "nodesc"
        kind = "hov_opening"
        lanes = ["s_a_0"]
        """)
    with pytest.raises(PolicyError) as err:
        load_policies(structure, two_routes)
    msg = str(err.value)
    assert msg.startswith(str(structure))
    assert "policy 'combo'.policies: unknown policy 'ghost'" in msg
    assert "policy 'odd'.kind: must be one of" in msg
    assert "policy 'nodesc'.description: required key missing" in msg
    ids = write_file(tmp_path / "q.toml", """
        [[policies]]
        name = "bad"
        description = "x"
        kind = "ramp_diversion"
        signs = ["nowhere"]
        from_ramp = "s_a"
        to_ramp = "ramp_q"

        [[policies]]
        name = "hov"
        description = "x"
        kind = "hov_opening"
        lanes = ["s_a_7"]
        """)
    with pytest.raises(PolicyError) as err:
        load_policies(ids, two_routes)
    msg = str(err.value)
    assert "q.toml: 3 problems" in msg
    assert "policy 'bad'.signs: edge 'nowhere' is not in net.net.xml" in msg
    assert "policy 'bad'.to_ramp: edge 'ramp_q' is not in net.net.xml" in msg
    assert "policy 'hov'.lanes: lane 's_a_7' is not in net.net.xml" in msg


def test_policy_leaving_vehicles_without_route(tmp_path, two_routes):
    write_routes(tmp_path / "r.rou.xml", 20, 3)
    scen = write_scenario(tmp_path, two_routes, 300)
    pf = write_file(tmp_path / "p.toml", """
        [[policies]]
        name = "dead_end"
        description = "via a dead end"
        kind = "alternate_route"
        signs = ["o_s"]
        via = ["s_b", "b_z"]
        """)
    with pytest.raises(PolicyError, match=r"p.toml: policy 'dead_end': \d+ vehicle\(s\) passing "
                       r"sign 'o_s' bound for 'd_x' would be left without a route"):
        evaluate_policy(scen, "dead_end", [0.5], 1, policy_file=pf, out=tmp_path / "o",
                        progress=False)
    pf2 = write_file(tmp_path / "p2.toml", """
        [[policies]]
        name = "cut"
        description = "remove the link to ramp A"
        kind = "lane_use"
        remove_connections = [{from = "o_s", to = "s_a"}]
        """)
    with pytest.raises(PolicyError, match=r"policy 'cut': \d+ vehicle\(s\) left without a "
                       r"route, e.g. \d+ from 'o_s' to 's_a'"):
        evaluate_policy(scen, "cut", [0.5], 1, policy_file=pf2, out=tmp_path / "o2",
                        progress=False)


def test_bad_fraction_and_unknown_policy(tmp_path, two_routes):
    write_routes(tmp_path / "r.rou.xml", 5, 3)
    scen = write_scenario(tmp_path, two_routes, 100)
    pf = write_file(tmp_path / "p.toml", POLICIES)
    with pytest.raises(InputError, match=r"fractions: 1.5 is not between 0 and 1"):
        evaluate_policy(scen, "to_b", [0.3, 1.5], 1, policy_file=pf, progress=False)
    with pytest.raises(PolicyError, match=r"unknown policy 'to_bb' \(did you mean 'to_b'\?\)"):
        evaluate_policy(scen, "to_bb", [0.3], 1, policy_file=pf, progress=False)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "egress.cli", "-q", "evaluate-policy",
                           *map(str, args)], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("extra, fragments", [
    (["--policy", "nope"], ["p.toml", "unknown policy 'nope'"]),
    (["--policy", "to_b", "--fractions", "0.3,-0.1"], ["fractions: -0.1 is not between 0 and 1"]),
    (["--policy", "to_b", "--fractions", "x"], ["--fractions: expected numbers"]),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, two_routes, extra, fragments):
    write_routes(tmp_path / "r.rou.xml", 5, 3)
    scen = write_scenario(tmp_path, two_routes, 100)
    pf = write_file(tmp_path / "p.toml", POLICIES)
    proc = _cli(scen, "--policy-file", pf, "--out", tmp_path / "o", *extra)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("evaluating")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for f in fragments:
        assert f in errors[0], errors[0]


def test_cli_edge_not_in_network(tmp_path, two_routes):
    write_routes(tmp_path / "r.rou.xml", 5, 3)
    scen = write_scenario(tmp_path, two_routes, 100)
    pf = write_file(tmp_path / "p.toml", POLICIES.replace('to_ramp = "s_b"',
                                                          'to_ramp = "cherry"'))
    proc = _cli(scen, "--policy-file", pf, "--policy", "to_b", "--out", tmp_path / "o")
    assert proc.returncode == 2
    assert "policy 'to_b'.to_ramp: edge 'cherry' is not in net.net.xml" in proc.stderr


@pytest.fixture(scope="session")
def hov_net(tmp_path_factory) -> Path:
    """A 2 km road with two lanes; the left lane (index 1) is HOV only."""
    folder = tmp_path_factory.mktemp("hov")
    net = write_plain_net(folder, {"a": (0, 0), "b": (1000, 0), "c": (2000, 0)},
                          [("ab", "a", "b", 2, 25), ("bc", "b", "c", 2, 25)])
    edg = folder / "net.edg.xml"
    root = ET.fromstring(edg.read_text())
    for el in root:
        ET.SubElement(el, "lane", index="1", allow="hov")
    edg.write_text(ET.tostring(root, encoding="unicode"))
    return build_network(folder, net)


def test_hov_opening_patches_lane_permissions_in_the_run(tmp_path, hov_net):
    base = read_net(hov_net)
    assert not base.getEdge("ab").getLane(1).allows("passenger")
    write_file(tmp_path / "r.rou.xml", """
        <routes>
          <vType id="event"/>
          <flow id="ev_f" type="event" begin="0" end="200" period="2" departLane="best">
            <route edges="ab bc"/></flow>
        </routes>""")
    scen = write_scenario(tmp_path, hov_net, 400)
    pf = write_file(tmp_path / "p.toml", """
        [[policies]]
        name = "open_hov"
        description = "HOV lanes open to all cars"
        kind = "hov_opening"
        lanes = ["ab_1", "bc_1"]
        """)
    res = evaluate_policy(scen, "open_hov", [0.3], 1, policy_file=pf, out=tmp_path / "o",
                          progress=False)
    run = tmp_path / "o" / "tiny" / "open_hov" / "all" / "r0"
    cfg = ET.parse(run / "run.sumocfg").getroot()
    net_file = (run / cfg.find("net-file").get("value")).resolve()
    assert net_file != hov_net.resolve() and net_file.parent.name == "infrastructure"
    patched = read_net(net_file)
    for e in ("ab", "bc"):
        lane = patched.getEdge(e).getLane(1)
        assert lane.allows("passenger") and lane.allows("hov")
    baseline_cfg = ET.parse(tmp_path / "o" / "tiny" / "baseline" / "r0" / "run.sumocfg")
    assert baseline_cfg.getroot().find("net-file").get("value").endswith("net.net.xml")
    # the policy runs once (it does not depend on compliance) and the baseline is unchanged
    assert res.table["fraction"].isna().all()
    assert (tmp_path / "o" / "tiny" / "open_hov" / "infrastructure" / "patch.edg.xml").is_file()
