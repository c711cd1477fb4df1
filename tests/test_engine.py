"""The run engine: one definition of travel time, invariants on every run, the mode SUMO ran.

Real SUMO runs on the straight road a -> b -> c of conftest (one lane, 10 m/s,
two 1 km edges), with answers computed by hand.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import EXACT_VTYPE, write_file

from egress import engine
from egress.engine.outputs import read_teleports
from egress.engine.vehicles import read_departures, vehicle_table
from egress.errors import InputError, SumoError

#: "blocker" stops 500 m into ab for longer than the window; "stuck" runs into
#: it, stands time-to-teleport seconds and is teleported onto bc; "never" is due
#: half a second before the end, too late to be inserted.
ROUTES = f"""
    <routes>
      {EXACT_VTYPE}
      <vehicle id="blocker" type="exact" depart="0" departSpeed="max" departPos="0">
        <route edges="ab bc"/><stop lane="ab_0" endPos="500" duration="1000"/></vehicle>
      <vehicle id="stuck" type="exact" depart="10" departSpeed="max" departPos="0">
        <route edges="ab bc"/></vehicle>
      <vehicle id="never" type="exact" depart="299.5" departSpeed="max" departPos="0">
        <route edges="ab bc"/></vehicle>
    </routes>"""


def _config(tmp_path, net, mode="micro", **changes) -> engine.RunConfig:
    routes = write_file(tmp_path / "r.rou.xml", ROUTES)
    fields = {"run_dir": tmp_path / "run", "network": net, "routes": (routes,), "begin": 0,
              "end": 300, "seed": 1, "mode": mode, "time_to_teleport": 30,
              "edgedata_period": 100}
    fields.update(changes)
    return engine.RunConfig(**fields)


@pytest.fixture
def blocked(tmp_path, straight_net):
    """The blocked road in micro, with ab as the study area (bc lies outside)."""
    return engine.run(_config(tmp_path, straight_net), inside=frozenset({"ab"}))


def test_teleported_and_unfinished_vehicles_by_hand(blocked):
    v = blocked.vehicles.set_index("vehicle")
    assert blocked.valid, blocked.problems
    # stuck: 10 m/s from t = 10 to the queue behind the blocker (at 500 - 7.5 m:
    # its length plus minimum gap), stands 30 s, is teleported onto bc, which lies
    # outside the study area: it leaves the area when the teleport ends
    stuck = v.loc["stuck"]
    assert stuck["teleports"] == 1 and stuck["status"] == "left_area"
    reach_queue = 10 + (500 - 7.5) / 10
    assert stuck["leave"] == pytest.approx(reach_queue + 30, abs=2.0)
    assert stuck["travel_time"] == stuck["leave"] - 10
    # blocker: still standing at the end; its vehroute exit times are all -1,
    # which must never be read as a time: it counts with its 300 s so far
    blocker = v.loc["blocker"]
    assert blocker["status"] == "inside_at_end" and blocker["travel_time"] == 300
    # never: due at 299.5 and not inserted by 300
    never = v.loc["never"]
    assert never["status"] == "not_inserted" and never["travel_time"] == pytest.approx(0.5)
    assert np.isnan(never["depart"])
    s = blocked.summary()
    assert (s["loaded"], s["inserted"], s["left_area"], s["inside_at_end"],
            s["not_inserted"], s["teleports"], s["teleported_vehicles"]) == (3, 2, 1, 1, 1, 1, 1)
    assert s["state"] == "complete" and s["relies_on_teleports"]  # 1 of 2 inserted


def test_the_raw_output_holds_the_minus_one_that_broke_the_old_reader(blocked):
    text = (blocked.run_dir / "vehroutes.xml").read_text()
    assert 'exitTimes="-1 -1"' in text
    assert (blocked.vehicles["travel_time"] >= 0).all()


def test_without_a_study_area_travel_time_runs_to_the_arrival(tmp_path, straight_net):
    res = engine.run(_config(tmp_path, straight_net))
    stuck = res.vehicles.set_index("vehicle").loc["stuck"]
    assert stuck["status"] == "arrived" and np.isnan(stuck["leave"])
    # after the teleport it drives the whole of bc at 10 m/s
    teleported_at = 10 + (500 - 7.5) / 10 + 30
    assert stuck["arrival"] == pytest.approx(teleported_at + 1000 / 10, abs=3.0)
    assert stuck["travel_time"] == stuck["arrival"] - 10


def test_teleports_in_the_log_are_attributed_to_vehicles(tmp_path):
    log = tmp_path / "sumo.log"
    log.write_text("Step #80300.00 (0ms)  \rWarning: Teleporting vehicle 'ev_1'; waited too "
                   "long (jam), lane='x_0', time=80357.65.\n"
                   "Warning: Vehicle 'ev_1' ends teleporting on edge 'y', time=80402.55.\n"
                   "Warning: Teleporting vehicle 'it's'; waited too long (yield), lane='z_0'.\n"
                   "Warning: Teleporting vehicle 'ev_1'; waited too long (jam), lane='y_0'.\n")
    assert read_teleports(log) == {"ev_1": 2, "it's": 1}


def test_recorded_mode_is_the_mode_sumo_ran(tmp_path, straight_net):
    micro = engine.run(_config(tmp_path / "a", straight_net, mode="micro"))
    meso = engine.run(_config(tmp_path / "b", straight_net, mode="meso"))
    assert (micro.mode, meso.mode) == ("micro", "meso")
    assert json.loads((meso.run_dir / "summary.json").read_text())["mode"] == "meso"
    # the mode is read from what SUMO reports, not from what was asked: an
    # option that overrides the mode makes the run invalid, not mislabelled
    forced = engine.run(_config(tmp_path / "c", straight_net, mode="micro",
                                options={"mesosim": "true"}))
    assert forced.mode == "meso" and not forced.valid
    assert "SUMO ran meso but the run asked for micro" in forced.problems


def test_a_failed_run_leaves_nothing_stale(tmp_path, straight_net):
    good = engine.run(_config(tmp_path, straight_net))
    assert (good.run_dir / "vehroutes.xml").is_file()
    broken = write_file(tmp_path / "broken.rou.xml", """
        <routes><vehicle id="x" depart="0"><route edges="ab nowhere"/></vehicle></routes>""")
    with pytest.raises(SumoError, match="sumo failed"):
        engine.run(_config(tmp_path, straight_net).with_(routes=(broken,)))
    state = json.loads((good.run_dir / "summary.json").read_text())
    assert state["state"] == "failed" and "nowhere" in state["error"]
    assert not (good.run_dir / "vehroutes.xml").exists()
    assert engine.read_state(good.run_dir)["state"] == "failed"


def test_seed_outside_sumo_range_is_refused(tmp_path, straight_net):
    with pytest.raises(ValueError, match="seed must be between 0 and 2147483647"):
        _config(tmp_path, straight_net, seed=2**31)


# ----------------------------------------------------------------- the definition, no SUMO


def _departures(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["vehicle", "vtype", "ready"])


def test_exit_times_of_minus_one_are_never_times():
    inside = frozenset({"a", "b"})
    deps = _departures(("ev_1", "event", 100.0), ("ev_2", "event", 100.0),
                       ("ev_3", "event", 100.0), ("bg_1", "background", 50.0))
    records = [
        # leaves the area after b, but b's exit time is -1 (teleported from b):
        # it left at the first time known after it, c's exit
        ("ev_1", "event", "110", None, "a b c d", "150 -1 260", ""),
        # still driving on b at the end: no exit time for b yet
        ("ev_2", "event", "120", None, "a b c", "170 -1 -1", ""),
        # arrived, b's and c's exit times unknown: left at the latest at its arrival
        ("ev_3", "event", "105", "400", "a b c", "150 -1 400", "sign_1"),
        ("bg_1", "background", "60", "90", "c d", "70 90", ""),
    ]
    t = vehicle_table(deps, records, begin=0, end=1000, inside=inside).set_index("vehicle")
    assert t.loc["ev_1", ["status", "end", "travel_time"]].tolist() == ["left_area", 260, 160]
    assert t.loc["ev_2", ["status", "end", "travel_time"]].tolist() == [
        "inside_at_end", 1000, 900]
    assert t.loc["ev_3", ["status", "end", "rerouted_by"]].tolist() == [
        "arrived", 400, "sign_1"]
    assert t.loc["bg_1", ["status", "kind", "travel_time"]].tolist() == [
        "arrived", "background", 40]
    assert (t["travel_time"] >= 0).all()


def _valid_table():
    deps = _departures(("ev_1", "event", 10.0), ("ev_2", "event", 20.0))
    records = [("ev_1", "event", "12", "50", "a", "50", ""),
               ("ev_2", "event", "25", "80", "a", "80", "")]
    t = vehicle_table(deps, records, begin=0, end=100)
    stats = {"loaded": 2, "inserted": 2, "running": 0, "teleports": 0}
    return t, stats


@pytest.mark.parametrize("break_it, message", [
    (lambda t, s: pd.concat([t, t.iloc[:1]]), "counted more than once"),
    (lambda t, s: t.assign(travel_time=[-80_700.0, 60.0]), "negative travel time"),
    (lambda t, s: t.assign(travel_time=[math.nan, 60.0]), "not a finite number"),
    (lambda t, s: t.assign(end=[150.0, 80.0]), "ending after the window"),
    (lambda t, s: t.assign(depart=[5.0, 25.0]), "inserted before they were due"),
    (lambda t, s: t.assign(end=[11.0, 80.0]), "before they were inserted"),
    (lambda t, s: t.assign(status=["gone", "arrived"]), "unknown status"),
    (lambda t, s: t.assign(travel_time=[500.0, 60.0]), "longer than the window"),
    (lambda t, s: s.update(loaded=3) or t, "SUMO loaded 3 vehicles but 2 are counted"),
    (lambda t, s: s.update(loaded=1) or t, "SUMO loaded 1 vehicles but 2 are counted"),
    (lambda t, s: s.update(inserted=1, running=0) or t, "SUMO inserted 1"),
    (lambda t, s: s.update(running=1) or t, "SUMO saw 1 vehicles arrive but 2"),
    (lambda t, s: s.update(teleports=4) or t, "SUMO counted 4 teleports but 0"),
])
def test_each_invariant_catches_its_impossible_table(break_it, message):
    t, stats = _valid_table()
    assert engine.check_vehicles(t, stats, begin=0, end=100) == []
    broken = break_it(t.copy(), stats)
    problems = engine.check_vehicles(broken, stats, begin=0, end=100)
    assert any(message in p for p in problems), problems


def test_flows_expand_to_the_departures_sumo_plans(tmp_path):
    routes = write_file(tmp_path / "f.rou.xml", """
        <routes><vType id="t"/>
          <flow id="g" type="t" begin="0" end="100" number="4"><route edges="ab"/></flow>
          <flow id="h" type="t" begin="5" end="40" period="10"><route edges="ab"/></flow>
          <vehicle id="v" type="t" depart="7.5"><route edges="ab"/></vehicle>
        </routes>""")
    d = read_departures([routes]).set_index("vehicle")["ready"].to_dict()
    assert d == {"g.0": 0, "g.1": 25, "g.2": 50, "g.3": 75, "h.0": 5, "h.1": 15, "h.2": 25,
                 "h.3": 35, "v": 7.5}
    random = write_file(tmp_path / "p.rou.xml", """
        <routes><flow id="p" begin="0" end="10" probability="0.1"><route edges="ab"/></flow>
        </routes>""")
    with pytest.raises(InputError, match="p.rou.xml: flow 'p': a random flow"):
        read_departures([random])


def test_edgedata_can_be_limited_to_some_edges(tmp_path, straight_net):
    every = engine.run(_config(tmp_path / "a", straight_net))
    some = engine.run(_config(tmp_path / "b", straight_net, edgedata_edges=("bc",)))
    assert set(every.edges["edge"]) == {"ab", "bc"} and set(some.edges["edge"]) == {"bc"}
    cols = ["begin", "end", "sampled_seconds", "entered", "left"]
    both = every.edges[every.edges["edge"] == "bc"][cols].reset_index(drop=True)
    assert both.equals(some.edges[cols].reset_index(drop=True))
