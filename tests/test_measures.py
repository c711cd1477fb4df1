"""Engineering measures on hand-made vehicle tables and vehroutes, with answers by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from egress import units
from egress.engine.measures import (
    Places,
    clearance,
    driven_free_flow,
    group_measures,
    is_ramp,
    percentile,
    place_flows,
    queue_summary,
)
from egress.policies.measures import summarise


def _vehicles(rows):
    return pd.DataFrame(rows, columns=["vehicle", "kind", "ready", "depart", "end", "status"]
                        ).assign(travel_time=lambda d: d["end"] - d["ready"])


def test_clearance_is_the_time_the_share_had_finished_and_censored_otherwise():
    ends = np.array([100.0, 200.0, 300.0, 400.0])
    done = np.array([True, True, True, True])
    assert clearance(ends, done, 1.0) == 400.0
    assert clearance(ends, done, 0.5) == 200.0
    # 0.95 of 4 vehicles is 3.8: the fourth must be out
    assert clearance(ends, done, 0.95) == 400.0
    # one still inside at the end: all-out is censored, 75% is known
    done[3] = False
    assert math.isnan(clearance(ends, done, 1.0))
    assert clearance(ends, done, 0.75) == 300.0
    assert math.isnan(clearance(np.array([]), np.array([], dtype=bool), 0.95))


def test_a_percentile_is_exact_only_when_every_open_vehicle_is_already_above_it():
    times = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    done = np.array([True, True, True, True, False])
    value, lower_bound = percentile(times, done, 50)
    assert value == 30.0 and not lower_bound    # the open one (50 so far) stays above
    done = np.array([False, True, True, True, True])
    value, lower_bound = percentile(times, done, 50)
    assert lower_bound                          # the open one (10 so far) may end above 30


def test_driven_free_flow_stops_where_the_travel_time_stops():
    # edges a (100 s free flow), b (50 s), c (outside the area, 20 s)
    ff = {"a": 100.0, "b": 50.0, "c": 20.0}
    records = [
        ("left", "event", "0", "400", "a b c", "150 260 400", ""),     # leaves the area after b
        ("inside", "event", "0", None, "a b c", "120 -1 -1", ""),      # still on b at the end
        ("jumped", "event", "0", "500", "a b", "-1 500", ""),          # teleported off a
    ]
    v = _vehicles([("left", "event", 0, 0, 260, "left_area"),
                   ("inside", "event", 0, 0, 600, "inside_at_end"),
                   ("jumped", "event", 0, 0, 500, "arrived"),
                   ("never", "event", 0, math.nan, 600, "not_inserted")])
    got = driven_free_flow(records, v, ff, frozenset({"a", "b"}))
    assert got["left"] == 150.0        # a + b, not c
    assert got["inside"] == 100.0      # a only: b not finished
    assert got["jumped"] == 0.0        # a has no exit time: its free flow is not known driven
    assert got["never"] == 0.0


def test_group_measures_by_hand():
    v = _vehicles([(f"v{i}", "event", 0, 0, 60.0 * (i + 1), "arrived") for i in range(20)])
    ff = pd.Series(30.0, index=v["vehicle"])
    m = group_measures(v.set_index("vehicle"), ff)
    assert m["vehicles"] == 20 and m["unfinished"] == 0
    assert m["clear_100"] == 1200.0 and m["clear_95"] == 1140.0   # the 19th vehicle
    assert m["median_min"] == pytest.approx(10.5)
    assert m["vehicle_hours"] == pytest.approx(sum(60 * (i + 1) for i in range(20)) / 3600)
    assert m["delay_vh"] == pytest.approx(m["vehicle_hours"] - 20 * 30 / 3600)
    assert not m["clear_95_censored"] and not m["p95_censored"]


def test_a_point_queue_at_a_lot_exit_counts_the_lot_and_the_exit_edge():
    # lot exit x: 10 s at free flow. Three cars due at 0; inserted at 0, 30, 60 (so two
    # wait in the lot); each leaves x 10 s after insertion except the first, held to 50.
    watch = Places({"x": 10.0, "r": 5.0}, {"x": "lot1"}, {"r": "On-ramp"})
    records = [("c1", "event", "0", "200", "x r", "50 55", ""),
               ("c2", "event", "30", "200", "x r", "40 60", ""),
               ("c3", "event", "60", "200", "x", "70", "")]
    v = _vehicles([("c1", "event", 0, 0, 200, "arrived"), ("c2", "event", 0, 30, 200, "arrived"),
                   ("c3", "event", 0, 60, 200, "arrived")])
    queues, flows = place_flows(records, v, watch, begin=0, end=120)
    x = queues[queues["place"] == "x"].set_index("time")["queue"]
    # at t=0: c2, c3 in the lot; c1 on x but not yet at its free-flow exit (10 s)
    assert x[0.0] == 2
    # at t=60 all have left the lot and x (c3 is inserted at 60, free flow till 70)
    assert x[60.0] == 0
    s = queue_summary(queues).set_index("place")
    assert s.loc["x", "max_queue"] == 2 and s.loc["x", "label"] == "lot1"
    r = flows[flows["place"] == "r"]
    assert r["vehicles"].sum() == 2 and set(r["kind"]) == {"event"}
    assert (r["begin"] == 0).all()


def test_ramps_are_edge_types_not_the_boundary():
    assert is_ramp("ramp") and is_ramp("highway.motorway_link") and is_ramp("highway.trunk_link")
    assert not is_ramp("arterial_major_link") and not is_ramp("highway.primary")


def test_summarise_pairs_and_censoring():
    pairs = pd.DataFrame({
        "scenario": "s", "policy": "p", "fraction": 0.3, "group": "event",
        "measure": ["clear_95"] * 3, "baseline_value": [100.0, 110.0, math.nan],
        "policy_value": [40.0, 50.0, 70.0], "change": [-1.0, -1.0, math.nan],
        "censored": [False, False, True]})
    s = summarise(pairs, ["scenario", "policy", "fraction", "group", "measure"]).iloc[0]
    assert s["change"] == -1.0 and s["replications"] == 2 and s["censored"] == 1
    assert s["unit"] == "min" and s["better"] == "lower"


def test_units_and_clock_times():
    assert units.clock(23 * 3600 + 41 * 60) == "23:41"
    assert units.clock(25 * 3600) == "01:00 (+1 day)"
    assert units.window(21.5 * 3600, 25 * 3600) == "21:30–01:00 (+1 day), 3 h 30 min"
    try:
        units.set_units("us")
        assert units.speed(units.MPH * 30) == pytest.approx(30)
        assert units.speed_unit() == "mph"
    finally:
        units.set_units("si")
    assert units.speed(10) == pytest.approx(36)
    assert units.to_si(60, "mph") == pytest.approx(26.8224)
    assert units.to_si(1, "mi") == pytest.approx(1609.344)


def test_gis_speeds_per_slice_follow_the_units_setting():
    from egress.engine.measures import slice_speeds

    e = pd.DataFrame({"edge": ["a", "a", "a"], "begin": [0.0, 300.0, 900.0],
                      "speed": [10.0, 20.0, 5.0], "sampled_seconds": [100.0, 300.0, 50.0]})
    s = slice_speeds([e], 0.0)
    # 00:00 slice: (10*100 + 20*300) / 400 = 17.5 m/s = 63 km/h
    assert s.loc["a", "speed_0000"] == pytest.approx(63.0)
    assert s.loc["a", "speed_0015"] == pytest.approx(18.0)
    try:
        units.set_units("us")
        s = slice_speeds([e], 0.0)
        assert s.loc["a", "speed_0000"] == pytest.approx(39.1, abs=0.05)
    finally:
        units.set_units("si")


def test_a_car_that_never_left_its_lot_queues_there_to_the_end(tmp_path):
    from egress.engine.measures import first_edges

    routes = tmp_path / "r.rou.xml"
    routes.write_text('<routes>\n<vehicle id="c1" depart="0"><route edges="x r"/></vehicle>\n'
                      '<vehicle id="stuck" type="event" depart="30">\n  <route edges="x r"/>'
                      '\n</vehicle>\n<trip id="t" depart="0" from="r" to="x"/>\n</routes>\n')
    assert first_edges([routes]) == {"c1": "x", "stuck": "x", "t": "r"}
    watch = Places({"x": 10.0, "r": 5.0}, {"x": "lot1"}, {"r": "On-ramp"})
    records = [("c1", "event", "0", "200", "x r", "10 15", "")]
    v = _vehicles([("c1", "event", 0, 0, 200, "arrived"),
                   ("stuck", "event", 30, math.nan, 120, "not_inserted")])
    queues, _ = place_flows(records, v, watch, begin=0, end=120,
                            origins=first_edges([routes]))
    x = queues[queues["place"] == "x"].set_index("time")["queue"]
    assert x[0.0] == 0 and x[60.0] == 1 and x[120.0] == 1
    queues, _ = place_flows(records, v, watch, begin=0, end=120)
    assert queues[queues["place"] == "x"]["queue"].max() == 0   # without the route file
