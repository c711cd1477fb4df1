"""Replications are evenings: each draws its own demand, baseline and policies share it.

Real SUMO runs on the tiny city of conftest (a 3 x 3 grid with a signal at its
centre, two lots, an event of 400 cars and background traffic), with a policy
of every kind.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import EVENT, ROOT, write_file, write_tiny_scenario
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from egress import engine
from egress.policies import BASELINE, POLICY_KINDS, evaluate_policy, load_policies, read_demand
from egress.stats import replications_needed

POLICIES = """
[[policies]]
name = "east_ramp"
description = "Lot A traffic bound north: go east first"
kind = "ramp_diversion"
signs = ["lotA_out"]
from_ramp = "n11_n21"
to_ramp = "n11_n12"
destinations = ["n21_north"]

[[policies]]
name = "west_route"
description = "Lot A traffic bound north: go west first"
kind = "alternate_route"
signs = ["lotA_out"]
via = ["n11_n10"]
avoid = ["n11_n21"]
destinations = ["n21_north"]

[[policies]]
name = "open_lane"
description = "Open the left lane northwards to all cars"
kind = "hov_opening"
lanes = ["n11_n21_1"]

[[policies]]
name = "lanes"
description = "Cars only on the left lane eastwards"
kind = "lane_use"
lanes = [{lane = "n11_n12_1", allow = ["passenger"]}]

[[policies]]
name = "retime"
description = "Webster timing at the centre"
kind = "signal_retiming"

[[policies]]
name = "both"
description = "The east ramp and the open lane"
kind = "combination"
policies = ["east_ramp", "open_lane"]
"""


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    folder = tmp_path_factory.mktemp("city")
    scen = write_tiny_scenario(folder, EVENT, signals=True)
    text = scen.read_text().replace('end = "23:30"', 'end = "23:00"')
    scen.write_text(text + '\n[outputs]\nformat = "csv"\n')
    return scen, write_file(folder / "policies.toml", POLICIES)


def test_every_policy_kind_is_exercised(city):
    policies = load_policies(city[1])
    assert {p.kind for p in policies.values()} == set(POLICY_KINDS)


@pytest.fixture(scope="module")
def two_evenings(city, tmp_path_factory):
    scen, pf = city
    out = tmp_path_factory.mktemp("evenings")
    return evaluate_policy(scen, "east_ramp", [0.5], 2, policy_file=pf, out=out,
                           progress=False, mode="meso")


def _vehicles(folder):
    return pd.read_csv(folder / "vehicles.csv").set_index("vehicle")


def test_two_baseline_replications_differ(two_evenings):
    base = two_evenings.out / "tiny" / BASELINE
    r0, r1 = _vehicles(base / "r0"), _vehicles(base / "r1")
    common = r0.index.intersection(r1.index)
    assert len(common) > 300
    # other departure times, other travel times: a different evening
    assert not np.allclose(r0.loc[common, "ready"], r1.loc[common, "ready"])
    assert not r0["travel_time"].equals(r1["travel_time"])
    demand = two_evenings.out / "tiny" / "demand"
    a = read_demand([demand / "r0" / "routes.rou.xml"])[0]
    b = read_demand([demand / "r1" / "routes.rou.xml"])[0]
    assert sum(a[v].edges != b[v].edges for v in set(a) & set(b)) > 0


def test_baseline_and_policy_share_every_vehicles_draws(two_evenings):
    out = two_evenings.out / "tiny"
    for k in (0, 1):
        base = read_demand([out / "demand" / f"r{k}" / "routes.rou.xml"])[0]
        pol_dir = out / "east_ramp" / "f0.50" / f"r{k}" / "inputs"
        pol = read_demand(sorted(pol_dir.glob("routes*.rou.xml")))[0]
        assert base.keys() == pol.keys()
        for vid, v in base.items():
            assert (pol[vid].depart, pol[vid].edges) == (v.depart, v.edges)
            assert pol[vid].type.split("~")[0] == v.type
        b = _vehicles(out / BASELINE / f"r{k}")
        p = _vehicles(out / "east_ramp" / "f0.50" / f"r{k}")
        assert b.index.equals(p.index) and (b["ready"] == p["ready"]).all()


def test_the_pairs_say_what_they_compared(two_evenings):
    runs = two_evenings.runs
    ev = runs[runs["group"] == "event"]
    assert len(ev) == 2 and (ev["dropped"] == 0).all()
    for k, n in zip(ev["replication"], ev["vehicles"], strict=True):
        due = _vehicles(two_evenings.out / "tiny" / BASELINE / f"r{k}")
        assert n == (due["kind"] == "event").sum() > 350   # every event car due in the window
    for col in ("teleported_baseline", "inside_at_end_policy", "not_inserted_baseline"):
        assert col in runs.columns and (runs[col] >= 0).all()
    t = two_evenings.table.iloc[0]
    assert t["replications"] == 2 and t["invalid_runs"] == 0
    # a saving can never exceed the group's baseline time
    assert (runs["saving_min"].dropna() <= runs["baseline_min"][runs["saving_min"].notna()]
            ).all()


def _assert_run_invariants(folder, begin, end):
    state = engine.read_state(folder)
    assert state["state"] == "complete", (folder, state.get("problems"))
    v = pd.read_csv(folder / "vehicles.csv")
    assert v["vehicle"].is_unique
    assert v["status"].isin(engine.STATUSES).all()
    tt = v["travel_time"].to_numpy()
    assert np.isfinite(tt).all() and (tt >= 0).all() and (tt <= end - begin).all()
    assert (v["end"] >= v["ready"]).all() and (v["end"] <= end).all()
    return v


# each example is four SUMO runs: generate only, no shrinking (a failure prints its example)
@settings(max_examples=10, deadline=None, derandomize=True, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(policy=st.sampled_from(["east_ramp", "west_route", "open_lane", "lanes", "retime",
                               "both"]),
       fraction=st.sampled_from([0.0, 0.3, 1.0]),
       seed=st.integers(0, 100_000),
       mode=st.sampled_from(["micro", "meso"]))
def test_property_every_run_of_every_policy_passes_the_invariants(city, tmp_path_factory,
                                                                 policy, fraction, seed, mode):
    scen, pf = city
    text = scen.read_text()
    folder = tmp_path_factory.mktemp("prop")
    s2 = folder / "tiny.toml"
    s2.write_text(text.replace("seed = 7", f"seed = {seed}")
                  .replace('file = "net/', f'file = "{scen.parent}/net/')
                  .replace('venues = "net/', f'venues = "{scen.parent}/net/'))
    res = evaluate_policy(s2, policy, [fraction], 2, policy_file=pf, out=folder / "o",
                          progress=False, mode=mode)
    begin, end = 21.5 * 3600, 23 * 3600
    out = folder / "o" / "tiny"
    for k in (0, 1):
        b = _assert_run_invariants(out / BASELINE / f"r{k}", begin, end)
        tag = res.table.iloc[0]["fraction"]
        tag = "all" if pd.isna(tag) else f"f{tag:.2f}"
        p = _assert_run_invariants(out / policy / tag / f"r{k}", begin, end)
        assert set(b["vehicle"]) == set(p["vehicle"])
    runs = res.runs[res.runs["group"].isin(["event", "background", "all"])]
    assert runs["saving_min"].notna().all() and (runs["vehicles"] > 0).all()


def test_replications_needed_by_hand():
    # s = 1, n = 3: t(0.975, 2) = 4.303 -> half-width 2.48; for ±1 min the
    # t-quantile over sqrt(n) must fall to 1: n = 7 (t = 2.447, 2.447/sqrt(7) = 0.925)
    assert replications_needed([-1.0, 0.0, 1.0], 1.0) == 7
    assert replications_needed([2.0, 2.0, 2.0], 0.1) == 3
    assert replications_needed([1.0], 0.5) == 2


def test_target_halfwidth_adds_replications_and_says_how_many(city, tmp_path):
    scen, pf = city
    res = evaluate_policy(scen, "east_ramp", [1.0], 2, policy_file=pf, out=tmp_path / "o",
                          progress=False, mode="meso", target_halfwidth=0.001,
                          max_replications=4)
    row = res.table.iloc[0]
    assert row["replications"] == 4
    half = (row["event_ci_high"] - row["event_ci_low"]) / 2
    assert math.isfinite(half)


def test_cli_prints_whether_the_headline_is_conclusive(city, tmp_path):
    scen, pf = city
    proc = subprocess.run([sys.executable, "-m", "egress.cli", "-q", "evaluate-policy",
                           str(scen), "--policy", "east_ramp", "--policy-file", str(pf),
                           "--fractions", "1.0", "--replications", "2", "--mode", "meso",
                           "--out", str(tmp_path / "o")], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "conclusive" in proc.stdout and "over 2 paired replications" in proc.stdout
