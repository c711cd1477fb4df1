"""Evaluation with common random numbers: real SUMO runs on the two-route network."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from conftest import (
    ROOT,
    write_file,
    write_routes,
)
from conftest import (
    TWO_ROUTE_POLICIES as POLICIES,
)
from conftest import (
    write_routes_scenario as write_scenario,
)

from egress.engine.vehicles import leave_index as _leave_index
from egress.network import read_net
from egress.policies import evaluate_policy
from egress.stats import mean_ci


def test_mean_ci_against_a_known_sample():
    # mean 3, s = sqrt(2.5), t(0.975, 4) = 2.7764451
    m, lo, hi = mean_ci([1, 2, 3, 4, 5])
    half = 2.7764451 * math.sqrt(2.5) / math.sqrt(5)
    assert m == 3
    assert lo == pytest.approx(3 - half, abs=1e-6)
    assert hi == pytest.approx(3 + half, abs=1e-6)
    assert mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    m, lo, hi = mean_ci([4.0])
    assert m == 4.0 and math.isnan(lo) and math.isnan(hi)


def test_leaving_the_study_area_ends_travel_time():
    inside = frozenset({"a", "b"})
    # leaves on b -> c: the exit time of b (index 1) is when it leaves
    assert _leave_index(["a", "b", "c", "d"], inside) == 1
    # starting outside, entering and leaving
    assert _leave_index(["c", "a", "d", "b"], inside) == 1
    # arrives inside, or never enters: no leaving
    assert _leave_index(["a", "b"], inside) is None
    assert _leave_index(["c", "d"], inside) is None


@pytest.fixture(scope="module")
def diversion(tmp_path_factory, two_routes):
    """Free-flowing demand (one vehicle per 4 s), the diversion at p = 0, 0.5 and 1."""
    folder = tmp_path_factory.mktemp("diversion")
    write_routes(folder / "r.rou.xml", 240, 4.0)
    scen = write_scenario(folder, two_routes, 1300)
    pf = write_file(folder / "p.toml", POLICIES)
    return evaluate_policy(scen, "to_b", [0.0, 0.5, 1.0], 2, policy_file=pf,
                           out=folder / "out", progress=False, workers=2)


def row(result, fraction):
    t = result.table
    return t[np.isclose(t["fraction"], fraction)].iloc[0]


def test_diversion_moves_the_expected_share(diversion):
    assert row(diversion, 0.0)["realised_compliance"] == 0
    assert 0.38 <= row(diversion, 0.5)["realised_compliance"] <= 0.62
    assert row(diversion, 1.0)["realised_compliance"] == 1
    # every event vehicle passes the sign towards ramp A: all are eligible
    assert row(diversion, 1.0)["eligible"] == 160
    run = diversion.out / "tiny" / "to_b" / "f1.00" / "r0"
    routes = {v.get("id"): (v.findall(".//route") or [None])[-1].get("edges")
              for v in ET.parse(run / "vehroutes.xml").getroot().iter("vehicle")}
    assert all("s_b" in r for v, r in routes.items() if v.startswith("ev_"))
    assert not any("s_b" in r for v, r in routes.items() if v.startswith("bg_"))


def test_diversion_changes_travel_times_as_hand_calculated(diversion, two_routes):
    # free flow: a complier drives the longer way over ramp B, losing at least
    # (extra length / speed); event vehicles lose p times that on average.
    net = read_net(two_routes)
    length = {e.getID(): e.getLength() for e in net.getEdges()}
    extra = (length["s_b"] + length["b_d"] - length["s_a"] - length["a_d"]) / 13.9 / 60
    full = row(diversion, 1.0)
    assert -3 * extra < full["compliers_saving_min"] < -0.8 * extra
    assert full["event_saving_min"] == pytest.approx(full["compliers_saving_min"])
    half = row(diversion, 0.5)
    share = half["realised_compliance"]
    assert half["event_saving_min"] == pytest.approx(share * full["event_saving_min"], rel=0.35)
    # background traffic is not slowed by a few vehicles leaving its route
    assert abs(full["background_saving_min"]) < 0.2 * extra


def test_null_policy_saves_exactly_zero(diversion):
    null = row(diversion, 0.0)
    assert null["event_saving_min"] == 0.0
    assert null["background_saving_min"] == 0.0
    runs = diversion.runs
    zero = runs[np.isclose(runs["fraction"], 0.0)]
    assert (zero["saving_min"].dropna() == 0.0).all()
    assert len(zero["replication"].unique()) == 2


def test_every_vehicle_counted_and_outputs_written(diversion):
    out = diversion.out
    for name in ("table.csv", "savings.csv", "runs.csv", "evaluation.json", "savings.png",
                 "savings_vs_compliance.png", "speed_change_tiny_to_b.png"):
        assert (out / name).is_file(), name
    vehicles = pd.read_csv(out / "tiny" / "baseline" / "r0" / "vehicles.csv")
    assert len(vehicles) == 240
    inputs = out / "tiny" / "to_b" / "f0.50" / "r0" / "inputs"
    add = ET.parse(inputs / "signs.add.xml").getroot()
    rerouter = add.find("rerouter")
    assert rerouter.get("probability") == "0.5" and rerouter.get("edges") == "o_s"
    assert rerouter.get("vTypes").startswith("event~to_b~")
    assert rerouter.find("interval/routeProbReroute") is not None
    # fraction 0: no rerouter at all, so the run is the baseline's
    assert ET.parse(out / "tiny" / "to_b" / "f0.00" / "r0" / "inputs" / "signs.add.xml"
                    ).getroot().find("rerouter") is None


def test_realised_compliance_within_3_points_over_2000_vehicles(tmp_path, two_routes):
    write_routes(tmp_path / "r.rou.xml", 3200, 0.6, event_every=20)
    scen = write_scenario(tmp_path, two_routes, 2400, seed=11)
    pf = write_file(tmp_path / "p.toml", POLICIES)
    res = evaluate_policy(scen, "to_b", [0.3], 1, policy_file=pf, out=tmp_path / "o",
                          progress=False, mode="meso")
    r = res.table.iloc[0]
    assert r["eligible"] > 2000
    assert abs(r["realised_compliance"] - 0.3) <= 0.03


@pytest.mark.slow
@pytest.mark.sumo
def test_sodo_deployed_pair_on_the_small_event(tmp_path):
    scen = ROOT / "scenarios" / "sodo-small-event.toml"
    pf = ROOT / "scenarios" / "sodo-policies.toml"
    res = evaluate_policy(scen, "cherry_st_nb,spokane_st_sb,deployed_pair", [0.3], 1,
                          policy_file=pf, out=tmp_path / "o", mode="meso", progress=False)
    t = res.table.set_index("policy")
    assert set(t.index) == {"cherry_st_nb", "spokane_st_sb", "deployed_pair"}
    assert (t["eligible"] > 0).all()
    assert t["realised_compliance"].between(0.2, 0.4).all()
    assert t["event_saving_min"].notna().all()
    assert (res.out / "savings.png").is_file()


@pytest.mark.parametrize("mode", ["micro", "meso"])
def test_edgedata_output_does_not_change_the_run(tmp_path, two_routes, mode):
    """A run without the edgeData output (as sweep tasks run) moves every
    vehicle exactly as the run with it, signs and rerouting included."""
    from egress import engine
    from egress.config.scenario import load_scenario
    from egress.policies import load_policies, prepare_variant

    write_routes(tmp_path / "r.rou.xml", 240, 4.0)
    scen = load_scenario(write_scenario(tmp_path, two_routes, 1300)).with_simulation(mode=mode)
    policy = load_policies(write_file(tmp_path / "p.toml", POLICIES))["to_b"]
    v = prepare_variant(policy, 0.5, scen.network, list(scen.routes), tmp_path / "inputs",
                        begin=0, end=1300)
    routes = {}
    for edgedata in (True, False):
        cfg = engine.RunConfig.from_scenario(
            scen, tmp_path / f"edgedata-{edgedata}", v.routes, network=v.network,
            additional=tuple(v.additional), edgedata_period=300 if edgedata else None)
        res = engine.run(cfg)
        assert res.valid and res.mode == mode
        assert (cfg.run_dir / "edgedata.xml").is_file() == edgedata
        assert (cfg.run_dir / "edgedata.add.xml").is_file() == edgedata
        text = (cfg.run_dir / "vehroutes.xml").read_text()
        routes[edgedata] = text[text.index("<routes"):]
    assert routes[True] == routes[False]
    assert 'reason="' in routes[True]          # some vehicles followed the sign
