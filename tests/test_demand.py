"""Tests of egress.demand: departure profile, gravity, lots, sampling, routes."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import EVENT, LUMEN, write_tiny_scenario

from egress import demand
from egress.config import DepartureProfile
from egress.config.scenario import load_scenario
from egress.demand.models import _bounds
from egress.errors import ScenarioError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="module")
def built(tiny):
    scenario = load_scenario(write_tiny_scenario(tiny, EVENT))
    return scenario, demand.build_demand(scenario, tiny / "out", seed=3)


# --------------------------------------------------------------------------- profile

def test_profile_sums_to_one_and_peaks_after_the_end():
    prof = DepartureProfile(end=22 * 3600.0)
    lo, hi = prof.support
    bounds = np.arange(lo, hi + 1, 60.0)
    shares = prof.shares(bounds)
    assert shares.sum() == pytest.approx(1.0, abs=1e-12)
    assert prof.cdf(prof.end) == pytest.approx(0.05)
    peak = bounds[np.argmax(shares[bounds[:-1] >= prof.end]) + np.sum(bounds[:-1] < prof.end)]
    assert 15 * 60 <= peak - prof.end <= 20 * 60
    assert prof.cdf(prof.end + 3600) > 0.95
    assert prof.cdf(prof.end + prof.tail) == pytest.approx(1.0)
    assert prof.cdf(lo - 1) == 0.0


def test_profile_interval_shares_on_a_coarse_grid_still_sum_to_one():
    prof = DepartureProfile(end=79200.0, early=0.1, mode=900, shape=2.5, tail=3600)
    shares = prof.shares(_bounds(*prof.support, 77400.0, 900.0))
    assert shares.sum() == pytest.approx(1.0, abs=1e-12)
    assert shares[:2].sum() == pytest.approx(0.1)


def test_profile_quantile_inverts_cdf():
    prof = DepartureProfile(end=0.0)
    t = np.array([-900.0, 0.0, 600.0, 1800.0, 4000.0])
    assert prof.quantile(prof.cdf(t)) == pytest.approx(t, abs=0.2)


# --------------------------------------------------------------------------- gravity

def test_gravity_shares_sum_to_one_and_split_north_south():
    places = demand.load_places()
    assert len(places) >= 40
    dest = demand.gravity_destinations(places, *LUMEN, beta=0.04)
    assert dest["share"].sum() == pytest.approx(1.0)
    splits = demand.direction_splits(dest)
    assert sum(splits.values()) == pytest.approx(1.0)
    assert 0.3 < splits["N"] < 0.6 and 0.3 < splits["S"] < 0.5
    assert 0.05 < splits["E"] < 0.3
    # stronger decay keeps trips closer
    near = demand.gravity_destinations(places, *LUMEN, beta=0.2)
    assert (near["share"] * near["distance_km"]).sum() < (dest["share"] * dest["distance_km"]).sum()


def test_largest_remainder_keeps_total_and_bounds():
    v = np.array([0.4, 1.6, 2.5, 0.0, 5.5])
    r = demand.largest_remainder(v, 10)
    assert r.sum() == 10
    assert np.all(np.abs(r - v) < 1)
    caps = [300, 200, 7]
    for n in range(0, 508):
        alloc = demand.largest_remainder(caps, n)
        assert alloc.sum() == n and np.all(alloc <= caps)


def test_integerize_with_a_seed_moves_few_trips_for_a_small_change():
    # 4,000 rows of 0.4 trips in one interval: 1,600 trips
    n = 4000
    od = pd.DataFrame({"kind": "background", "origin": [f"o{i % 40}" for i in range(n)],
                       "destination": [f"d{i // 40}" for i in range(n)], "begin": 0.0,
                       "end": 900.0, "trips": 0.4})
    base = demand.integerize(od, seed=5)
    assert base.sum() == 1600 and set(np.unique(base)) == {0, 1}
    # each row gets its trip about as often as its fraction says, not the first 1,600 rows
    assert 0.3 < base[: n // 2].mean() < 0.5 and 0.3 < base[n // 2:].mean() < 0.5
    # a tenth of the origins 3 % up, the rest a little down (the same total): few
    # vehicles move, where largest remainder hands the scaled rows every trip
    up = od["origin"].isin([f"o{i}" for i in range(4)]).to_numpy()
    near = od.assign(trips=np.where(up, 0.4 * 1.03, 0.4 * (1 - 0.03 / 9)))
    moved = np.abs(demand.integerize(near, seed=5) - base).sum()
    assert 0 < moved < 0.1 * base.sum()
    assert demand.integerize(near).sum() == 1600
    assert demand.integerize(near)[up].all()
    # the same seed, the same rounding; rows keep floors and totals in every case
    assert np.array_equal(demand.integerize(od, seed=5), base)
    v = od.assign(trips=np.linspace(0, 3, n))
    r = demand.integerize(v, seed=2)
    assert r.sum() == int(np.floor(v["trips"].sum() + 0.5))
    assert np.all((r == np.floor(v["trips"])) | (r == np.floor(v["trips"]) + 1))


# --------------------------------------------------------------------------- build

def test_build_writes_files_and_conserves_vehicles_per_interval(built):
    scenario, result = built
    for name in ("od", "tazrel", "taz", "zones", "trips", "routes", "vehicles"):
        assert result.files[name].is_file(), name
    assert result.routes == [result.files["routes"]]
    od = pd.read_csv(result.files["od"])
    veh = pd.read_csv(result.files["vehicles"])
    assert set(od["kind"]) == {"event", "background"}
    for (kind, begin), grp in od.groupby(["kind", "begin"]):
        n = ((veh["kind"] == kind) & (veh["depart"] >= begin)
             & (veh["depart"] < grp["end"].iloc[0])).sum()
        assert n == math.floor(grp["trips"].sum() + 0.5), (kind, begin)
    assert result.vehicles["event"] == 400 == (veh["kind"] == "event").sum()
    assert result.unrouted == 0
    # every trip of the routes file was routed, with its type and id prefix
    root = ET.parse(result.files["routes"]).getroot()
    vtypes = {v.get("id") for v in root.iter("vType")}
    assert {"event", "background"} <= vtypes
    vehicles = list(root.iter("vehicle"))
    assert len(vehicles) == len(veh)
    assert all(v.get("id").startswith({"event": "ev_", "background": "bg_"}[v.get("type")])
               for v in vehicles)


def test_event_trips_leave_from_lots_within_capacity(built):
    scenario, result = built
    veh = pd.read_csv(result.files["vehicles"])
    ev = veh[veh["kind"] == "event"]
    per_lot = ev["lot"].value_counts()
    assert per_lot["lot_a"] == 240 and per_lot["lot_b"] == 160  # 400 cars, 3:2
    assert set(ev.loc[ev["lot"] == "lot_a", "from"]) == {"lotA_out"}
    b = ev.loc[ev["lot"] == "lot_b", "from"].value_counts()
    assert b["lotB_out1"] == b["lotB_out2"] == 80
    bg = veh[veh["kind"] == "background"]
    assert not set(bg["from"]) & {"lotA_out", "lotB_out1", "lotB_out2"}
    # destinations of event trips are the gravity zones
    assert result.splits and sum(result.splits.values()) == pytest.approx(1.0)


def test_same_seed_same_routes_other_seed_other_routes(tiny, built):
    scenario, result = built
    again = demand.build_demand(scenario, tiny / "again", seed=3)
    assert again.files["routes"].read_bytes() == result.files["routes"].read_bytes()
    other = demand.build_demand(scenario, tiny / "other", seed=4)
    assert other.files["routes"].read_bytes() != result.files["routes"].read_bytes()


@pytest.fixture(scope="module")
def detour_net(tmp_path_factory) -> Path:
    """s -> a, then a -> b direct (1000 m) or a -> c -> b (2 x 583 m), b -> t; 13.9 m/s."""
    from conftest import write_plain_net

    return write_plain_net(
        tmp_path_factory.mktemp("detour"),
        {"s": (-500, 0), "a": (0, 0), "b": (1000, 0), "c": (500, 300), "t": (1500, 0)},
        [("s_a", "s", "a", 1, 13.9), ("a_b", "a", "b", 1, 13.9), ("a_c", "a", "c", 1, 13.9),
         ("c_b", "c", "b", 1, 13.9), ("b_t", "b", "t", 1, 13.9)])


def test_routes_are_cheapest_paths_with_random_alternatives(detour_net):
    from egress.demand.routing import Router

    direct = ("s_a", "a_b", "b_t")
    exact = Router(detour_net, seed=1, random_factor=1.0, alternatives=4)
    assert {exact.route("s_a", "b_t", u) for u in np.linspace(0, 0.99, 20)} == {direct}
    assert exact.route("s_a", "s_a", 0.5) == ("s_a",)
    assert exact.route("b_t", "s_a", 0.5) is None  # no path back
    assert exact.route("s_a", "nowhere", 0.5) is None
    # direct 71.9 s vs detour 83.9 s: with costs x U[1, 1.3) per edge the detour wins
    # in some copies, never in most
    noisy = Router(detour_net, seed=1, random_factor=1.3, alternatives=64)
    routes = [noisy.route("s_a", "b_t", (a + 0.5) / 64) for a in range(64)]
    detours = sum(r == ("s_a", "a_c", "c_b", "b_t") for r in routes)
    assert 0 < detours < 32 and detours + routes.count(direct) == 64
    again = Router(detour_net, seed=1, random_factor=1.3, alternatives=64)
    assert [again.route("s_a", "b_t", (a + 0.5) / 64) for a in range(64)] == routes


def test_route_file_has_every_routable_vehicle_in_order_with_its_speed_factor(tmp_path,
                                                                              detour_net):
    from egress.demand.routing import route_vehicles

    veh = pd.DataFrame({"id": ["ev_1", "bg_1", "bg_2"], "kind": ["event", "background",
                                                                 "background"],
                        "depart": [0.0, 5.0, 9.5], "from": ["s_a", "s_a", "b_t"],
                        "to": ["b_t", "a_b", "s_a"], "speed_factor": [0.9, 1.1, 1.0],
                        "route_draw": [0.1, 0.5, 0.9]})
    out = tmp_path / "r.rou.xml"
    assert route_vehicles(detour_net, veh, out, seed=1) == ["bg_2"]
    root = ET.parse(out).getroot()
    assert {v.get("id") for v in root.iter("vType")} == {"event", "background"}
    vehicles = root.findall("vehicle")
    assert [v.get("id") for v in vehicles] == ["ev_1", "bg_1"]
    assert [v.get("speedFactor") for v in vehicles] == ["0.9000", "1.1000"]
    assert vehicles[1].find("route").get("edges") == "s_a a_b"
    assert vehicles[0].get("departSpeed") == "0" and vehicles[1].get("departSpeed") == "max"


def test_vehicles_keep_their_draws_when_other_od_rows_change(built):
    scenario, result = built
    od = pd.read_csv(result.files["od"], dtype={"origin": str, "destination": str})
    built_od = demand.build_od(scenario)
    zones, event = built_od.zones, built_od.spec.event
    lots = scenario.venues.lot_exits
    base = demand.sample_trips(od, zones, event=event, lot_exits=lots, seed=3)
    bg = od.index[od["kind"] == "background"]
    row = od.loc[bg, "trips"].idxmax()
    more = od.copy()
    more.loc[row, "trips"] += 1.0  # exactly one more background trip in that interval
    changed = demand.sample_trips(more, zones, event=event, lot_exits=lots, seed=3)
    assert len(changed) == len(base) + 1
    cols = ["kind", "origin", "destination", "depart", "from", "to", "speed_factor",
            "route_draw"]
    key = base[cols].merge(changed[cols], how="outer", indicator=True)
    assert (key["_merge"] == "right_only").sum() == 1 and (key["_merge"] == "left_only").sum() == 0
    extra = key[key["_merge"] == "right_only"].iloc[0]
    assert (extra["origin"], extra["destination"]) == (od.loc[row, "origin"],
                                                       od.loc[row, "destination"])
    # speed factors follow the vType's normc(1, 0.1, 0.2, 2)
    assert base["speed_factor"].between(0.2, 2.0).all()
    assert base["speed_factor"].mean() == pytest.approx(1.0, abs=0.02)
    assert base["speed_factor"].std() == pytest.approx(0.1, abs=0.02)


def test_an_od_file_replaces_the_scenario_od(tiny, built):
    from egress.errors import InputError

    scenario, result = built
    od = pd.read_csv(result.files["od"], dtype={"origin": str, "destination": str})
    half = od.assign(trips=od["trips"] / 2)
    half.to_csv(tiny / "half.od.csv", index=False)
    again = demand.build_demand(scenario, tiny / "half", seed=3, od=tiny / "half.od.csv")
    # 400 cars halved (rounded per interval), still leaving from the lots
    assert again.vehicles["event"] == pytest.approx(200, abs=od["begin"].nunique())
    veh = pd.read_csv(again.files["vehicles"])
    assert set(veh.loc[veh["kind"] == "event", "lot"]) == {"lot_a", "lot_b"}
    assert again.vehicles["background"] == pytest.approx(result.vehicles["background"] / 2,
                                                         abs=len(od))
    od.assign(trips=od["trips"] * 10).to_csv(tiny / "ten.od.csv", index=False)
    with pytest.raises(InputError, match=r"ten\.od\.csv.*event cars leave .* lots hold"):
        demand.build_demand(scenario, tiny / "ten", seed=3, od=tiny / "ten.od.csv")
    od.assign(origin="nowhere").to_csv(tiny / "bad.od.csv", index=False)
    with pytest.raises(InputError, match=r"bad\.od\.csv.*'nowhere' is not a known zone"):
        demand.build_demand(scenario, tiny / "bad", seed=3, od=tiny / "bad.od.csv")


def test_lot_overflow_names_the_key(tiny):
    path = write_tiny_scenario(tiny, EVENT.replace("attendance = 2000", "attendance = 5000"),
                          name="overflow")
    with pytest.raises(ScenarioError, match=r"demand\.event\.attendance: .*1000 cars.*hold 500"):
        load_scenario(path)


def test_lot_override_closes_a_lot(tiny):
    path = write_tiny_scenario(tiny, EVENT.replace('end = "22:00"',
                                              'end = "22:00"\nlots = { lot_b = 0 }'),
                          name="closed")
    with pytest.raises(ScenarioError, match="hold 300"):
        load_scenario(path)
    ok = write_tiny_scenario(tiny, EVENT.replace('end = "22:00"', 'end = "22:00"\n'
                                            'attendance_ignored = 1'), name="typo")
    with pytest.raises(ScenarioError, match="did you mean"):
        load_scenario(ok)


@pytest.mark.parametrize("change, message", [
    ('venue = "lumen_field"', r"demand\.event\.venue: unknown venue 'nowhere'"),
    ("attendance = 2000", r"demand\.event\.attendance: must be > 0"),
    ("occupancy = 2.5", r"demand\.event\.occupancy: must be >= 1"),
    ("car_share = 0.5", r"demand\.event\.car_share: must be between 0 and 1"),
    ('end = "22:00"', r"demand\.event\.end: expected a time"),
])
def test_bad_event_keys_are_named(tiny, change, message):
    bad = {
        'venue = "lumen_field"': 'venue = "nowhere"',
        "attendance = 2000": "attendance = -5",
        "occupancy = 2.5": "occupancy = 0.5",
        "car_share = 0.5": "car_share = 1.5",
        'end = "22:00"': 'end = "late"',
    }[change]
    path = write_tiny_scenario(tiny, EVENT.replace(change, bad), name="bad")
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


def test_all_problems_reported_together(tiny):
    text = EVENT.replace("attendance = 2000", "attendance = 0").replace(
        "occupancy = 2.5", "occupancy = 0").replace("trips_per_hour = 300", "scale = -1")
    path = write_tiny_scenario(tiny, text + "[demand.event.profile]\nshape = 1\n", name="many")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    msg = str(info.value)
    for key in ("demand.event.attendance", "demand.event.occupancy",
                "demand.background.scale", "demand.event.profile.shape"):
        assert key in msg


def test_nothing_to_build_is_an_error(tiny):
    path = write_tiny_scenario(tiny, "[demand]\n", name="empty")
    with pytest.raises(ScenarioError, match="nothing to build"):
        load_scenario(path)


def test_user_destinations_replace_gravity(tiny):
    from egress.network.zones import cell_of

    table = tiny / "dest.csv"
    table.write_text("lon,lat,share\n-122.20,47.61,3\n-122.44,47.25,1\n")
    path = write_tiny_scenario(tiny, EVENT.replace("[demand.event]",
                                              'destinations = "dest.csv"\n[demand.event]'),
                          name="dest")
    built = demand.build_od(load_scenario(path))
    ev = built.od[built.od["kind"] == "event"]
    per_dest = ev.groupby("destination")["trips"].sum()
    assert per_dest[cell_of(-122.20, 47.61)] == pytest.approx(300)
    assert per_dest[cell_of(-122.44, 47.25)] == pytest.approx(100)


def test_normal_evening_background_only_with_through_traffic(tiny):
    path = write_tiny_scenario(tiny, "[demand]\n[demand.background]\ntrips_per_hour = 400\n",
                          name="normal")
    built = demand.build_od(load_scenario(path))
    od = built.od
    assert set(od["kind"]) == {"background"}
    # 21:30-22:00 at factor 1.0, 22:00-23:00 at 0.79, 23:00-23:30 at 0.53
    assert od["trips"].sum() == pytest.approx(400 * (0.5 + 0.79 + 0.5 * 0.53))
    kind = built.zones.table.set_index("token")["kind"]
    ext = (od["origin"].map(kind) == "external") & (od["destination"].map(kind) == "external")
    through = od[ext]
    assert through["trips"].sum() / od["trips"].sum() == pytest.approx(0.75)


# --------------------------------------------------------------------------- SODO

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.sumo
def test_small_event_on_sodo_builds_and_simulates(tmp_path):
    """Build the small-event demand on the SODO network and run SUMO on it.

    The window is cut to 21:30-22:40 (the departure peak) to keep the test
    short; every loaded vehicle must arrive or be reported unfinished, and
    teleports stay under 1 % of the inserted vehicles.
    """
    from egress.engine import simulate

    if not (ROOT / "networks" / "sodo" / "sodo.net.xml").is_file():
        pytest.skip("SODO network not built")
    scenario = load_scenario(ROOT / "scenarios" / "sodo-small-event.toml")
    scenario = scenario.with_simulation(end=22 * 3600 + 40 * 60)
    result = simulate(scenario, tmp_path, progress=False)
    routes = tmp_path / "demand" / "routes.rou.xml"
    departs = [float(v.get("depart")) for v in ET.parse(routes).getroot().iter("vehicle")]
    s = result.summary
    # every vehicle due in the window is counted once, however its trip ended
    due = sum(d < scenario.simulation.end for d in departs)
    assert s["loaded"] == len(result.vehicles) == due
    assert s["arrived"] + s["left_area"] + s["inside_at_end"] + s["not_inserted"] == due
    assert result.valid and s["state"] == "complete", s["problems"]
    assert s["teleport_share"] < 0.01, s


def test_an_od_table_gives_its_window_part_only():
    """Rows outside the window are left out; straddling rows keep the overlap's share."""
    from egress.demand.build import clip_to_window
    from egress.errors import InputError

    od = pd.DataFrame({"origin": ["a", "a", "b"], "destination": ["b", "b", "a"],
                       "begin": [0.0, 900.0, 1800.0], "end": [900.0, 1800.0, 2700.0],
                       "trips": [90.0, 60.0, 30.0], "kind": "background"})
    out = clip_to_window(od, 600.0, 1200.0)
    assert out[["begin", "end", "trips"]].values.tolist() == [[600.0, 900.0, 30.0],
                                                              [900.0, 1200.0, 20.0]]
    assert clip_to_window(od, 0.0, 2700.0)["trips"].sum() == 180.0
    with pytest.raises(InputError, match="every OD row lies outside the simulation window"):
        clip_to_window(od, 3000.0, 4000.0, "od.csv")


def test_background_carried_on_by_the_hourly_profile():
    """23:00-24:00 repeated at 24:00-25:00 times 0.32 / 0.53; event rows stay."""
    from egress.demand.models import HOURLY_FACTORS, extend_background

    od = pd.DataFrame({"origin": ["a", "b", "v"], "destination": ["b", "a", "a"],
                       "begin": [82800.0, 84600.0, 84600.0], "end": [84600.0, 86400.0, 86400.0],
                       "trips": [53.0, 106.0, 500.0],
                       "kind": ["background", "background", "event"]})
    out = extend_background(od, 90000.0)
    new = out.iloc[3:]
    ratio = HOURLY_FACTORS[24] / HOURLY_FACTORS[23]
    assert new["begin"].tolist() == [86400.0, 88200.0]
    assert new["trips"].tolist() == pytest.approx([53.0 * ratio, 106.0 * ratio])
    assert (new["kind"] == "background").all()
    assert extend_background(od, 86400.0) is od
