"""Calibration: objective, statistics, metamodel gradient, SPSA, recovery, resume."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import write_file, write_plain_net
from scipy import sparse

from egress.calibration import (
    Problem,
    TazZones,
    calibrate,
    fit_metrics,
    geh,
    plain_calibration_problem,
    run_od,
)
from egress.calibration.metamodel import (
    COUNT_DOF,
    Metamodel,
    ModelNoise,
    SpeedFlow,
    Targets,
    assignment_matrix,
    estimate_model_noise,
)
from egress.calibration.observations import Observations, simulated_values, write_observations
from egress.calibration.runs import crossings, network_start, planned_crossings
from egress.calibration.search import FINAL_CHECKS
from egress.calibration.spsa import SPSASettings, spsa
from egress.cli import main
from egress.config.scenario import Scenario, Simulation
from egress.engine import outputs
from egress.errors import InputError
from egress.network import read_net

# --------------------------------------------------------------------------- unit

def _obs(rows: list[dict]) -> Observations:
    t = pd.DataFrame(rows)
    for k in ("speed", "count", "travel_time"):
        t[k] = t.get(k, np.nan)
        t[f"{k}_sd"] = t[f"{k}_sd"].fillna(1.0) if f"{k}_sd" in t else 1.0
    t["weight"] = t.get("weight", 1.0)
    t["edges"] = [("e",)] * len(t)
    t["length"] = 1000.0
    t["free_speed"] = 50.0
    return Observations(t)


def test_objective_and_statistics_by_hand():
    obs = _obs([{"begin": 0, "end": 900, "speed": 40.0, "count": 100.0, "speed_sd": 2.0},
                {"begin": 0, "end": 900, "speed": 20.0, "count": 10.0}])
    sim = pd.DataFrame({"speed": [44.0, 19.0], "count": [150.0, 10.0],
                        "travel_time": [0.0, 0.0]})
    t = Targets.from_observations(obs, prior=np.array([10.0, 0.5]), regularization=0.5)
    x = np.array([15.0, 0.5])
    # counts through the Student-t: (ν + 1) ln(1 + z² / ν), 50² -> 5 ln(626) with ν = 4
    c = (COUNT_DOF + 1) * np.log1p(2500.0 / COUNT_DOF)
    assert COUNT_DOF == 4 and c == pytest.approx(5 * np.log(626))
    # (4/2)² + (-1)² + c + 0 over 4 values, plus 0.5 · mean((5/10)², 0)
    expected = (4.0 + 1.0 + c + 0.0) / 4 + 0.5 * (0.25 + 0.0) / 2
    assert t.objective({k: sim[k].to_numpy() for k in sim}, x) == pytest.approx(expected)
    # a log-normal prior (sd 0.5) on the total of each group: rows 0 and 1 form one group
    # with prior total 10.5 and total 15.5; over N = 4 values
    g = Targets.from_observations(obs, prior=np.array([10.0, 0.5]), groups=np.array([0, 0]),
                                  prior_sd=0.5)
    assert g.objective({k: sim[k].to_numpy() for k in sim}, x) == pytest.approx(
        (4.0 + 1.0 + c) / 4 + (np.log(15.5 / 10.5) / 0.5) ** 2 / 4)
    # travel times on the log scale: sd 20 of 200 s is a relative 0.1 (weight 100), and
    # twice or half the observed time both cost 100 · ln(2)²
    tto = _obs([{"begin": 0, "end": 900, "travel_time": 200.0, "travel_time_sd": 20.0}])
    tt = Targets.from_observations(tto, prior=np.ones(1))
    for sim_tt in (400.0, 100.0):
        sim1 = {"speed": np.zeros(1), "count": np.zeros(1), "travel_time": np.array([sim_tt])}
        assert tt.objective(sim1, np.ones(1)) == pytest.approx(100 * np.log(2) ** 2)
    m = fit_metrics(obs, sim)
    assert m["rmse_kmh"] == pytest.approx(np.sqrt((16 + 1) / 2))
    assert m["rmsne"] == pytest.approx(np.sqrt(((4 / 40) ** 2 + (1 / 20) ** 2) / 2))
    assert m["r2"] == pytest.approx(1 - 17 / 200)
    # hourly: 600 vs 400 -> GEH sqrt(2·200²/1000) = 8.94; 40 vs 40 -> 0
    assert geh(np.array([600.0]), np.array([400.0]))[0] == pytest.approx(np.sqrt(80.0))
    assert m["geh_share"] == 0.5


def test_model_noise_by_hand():
    obs = _obs([{"begin": 0, "end": 900, "speed": 40.0, "count": 100.0, "speed_sd": 3.0,
                 "count_sd": 5.0},
                {"begin": 0, "end": 900, "speed": 20.0, "travel_time": 200.0,
                 "travel_time_sd": 10.0}])
    idx = {k: obs.values(k)[0] for k in ("speed", "count", "travel_time")}
    a = {"speed": np.array([44.0, 10.0]), "count": np.array([90.0, 0.0]),
         "travel_time": np.array([0.0, 300.0])}
    b = {"speed": np.array([40.0, 13.0]), "count": np.array([110.0, 0.0]),
         "travel_time": np.array([0.0, 100.0])}
    noise = estimate_model_noise(a, b, idx)
    # speeds: (4² + 3²) / (2·2); counts: (20/100)² / 2; travel times: ln(300/100)² / 2
    assert noise.speed == pytest.approx(np.sqrt(25 / 4))
    assert noise.count == pytest.approx(np.sqrt(0.02))
    assert noise.travel_time == pytest.approx(np.log(3) / np.sqrt(2))
    t = Targets.from_observations(obs, prior=np.ones(2),
                                  model_noise=ModelNoise(speed=4.0, count=0.1, travel_time=0.5))
    # weight / (sd² + 2 m²)
    assert t.weight["speed"] == pytest.approx([1 / (9 + 32), 1 / (1 + 32)])
    assert t.weight["count"] == pytest.approx([1 / (25 + 200)])
    # travel times on the log scale: relative sd 10/200, log sd 0.5
    assert t.weight["travel_time"] == pytest.approx([1 / (0.05 ** 2 + 2 * 0.5 ** 2)])
    plain = Targets.from_observations(obs, prior=np.ones(2))
    assert plain.weight["speed"] == pytest.approx([1 / 9, 1.0])


def test_metamodel_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    n_obs, n_x = 12, 9
    rows = []
    for i in range(n_obs):
        rows.append({"begin": 0, "end": 900, "speed": rng.uniform(10, 60),
                     "count": rng.uniform(10, 200) if i % 2 else np.nan,
                     "travel_time": rng.uniform(60, 300) if i % 3 == 0 else np.nan,
                     "speed_sd": 3.0, "count_sd": 5.0, "travel_time_sd": 10.0})
    obs = _obs(rows)
    prior = rng.uniform(0, 40, n_x)
    t = Targets.from_observations(obs, prior, regularization=0.3,
                                  groups=rng.integers(0, 3, n_x), prior_sd=0.4)
    p = sparse.random(n_obs, n_x, density=0.5, random_state=4, format="csr")
    curve = SpeedFlow(p0=np.full(n_obs, 1 / 60), theta=rng.uniform(0, 0.05, n_obs),
                      beta=rng.choice([1.0, 2.0, 4.0], n_obs), q_ref=np.full(n_obs, 100.0))
    sim_k = {"speed": rng.uniform(10, 60, n_obs), "count": rng.uniform(0, 200, n_obs),
             "travel_time": rng.uniform(60, 300, n_obs)}
    demand = sparse.random(n_obs, n_x, density=0.5, random_state=5, format="csr")
    # three entries; the first held 4 of the anchor's vehicles, the second carries at most
    # 90 % of the anchor's trips, the last is unlimited
    entry = np.arange(n_x) % 3
    x_e = np.bincount(entry, weights=prior)
    cap = np.array([x_e[0] - 4.0, 0.9 * x_e[1], np.inf])
    model = Metamodel(t, p, np.full(n_obs, 4.0), curve, prior, sim_k, demand=demand,
                      entry=entry, capacity=cap)
    # the corrected model reproduces the anchor simulation exactly
    for k, v in model.predict(prior).items():
        if k != "held":
            assert np.allclose(v, np.maximum(sim_k[k], 1.0) if k == "speed" else sim_k[k])
    assert model.predict(prior)["held"] == pytest.approx([4.0, 0.1 * x_e[1], 0.0])
    x = prior * rng.uniform(0.7, 1.3, n_x) + 0.5
    f, g = model.objective_and_gradient(x)
    assert f == pytest.approx(model.objective(x))
    h = 1e-6
    fd = np.array([(model.objective(x + h * e) - model.objective(x - h * e)) / (2 * h)
                   for e in np.eye(n_x)])
    assert np.allclose(g, fd, rtol=1e-5, atol=1e-7)
    xn, fn = model.minimize(0.5)
    assert fn <= model.objective(prior) + 1e-9
    assert np.all(xn >= 0) and np.all(np.abs(xn - prior) <= 0.5 * t.scale + 1e-9)
    # rows no observation sees move by one factor per `unseen` code, the others alone
    blind = np.arange(n_x) < 4
    mask = sparse.diags((~blind).astype(float))
    model = Metamodel(t, (p @ mask).tocsr(), np.full(n_obs, 4.0), curve, prior, sim_k,
                      demand=(demand @ mask).tocsr())
    codes = np.array([0, 0, 1, 1] + [2] * (n_x - 4))
    xn, fn = model.minimize(0.5, unseen=codes)
    ratio = xn / prior
    assert ratio[0] == pytest.approx(ratio[1]) and ratio[2] == pytest.approx(ratio[3])
    assert fn <= model.objective(prior) + 1e-9
    assert len(np.unique(np.round(ratio[~blind], 9))) > 1


def test_spsa_on_a_noisy_quadratic():
    target = np.array([3.0, 1.0, 4.0, 1.5, 2.0, 6.0])
    noise = np.random.default_rng(0)

    def f(x, tag):
        return float(np.sum((x - target) ** 2) + noise.normal(0, 0.01))

    x0 = np.full(6, 2.5)
    res = spsa(f, x0, budget=201, seed=1)
    assert res.evaluations == 201
    assert res.f < 0.01 * f(x0, "x")
    assert np.abs(res.x - target).max() < 0.3
    assert np.all(res.x >= 0)
    again = spsa(lambda x, tag: float(np.sum((x - target) ** 2)), x0, budget=21, seed=1)
    same = spsa(lambda x, tag: float(np.sum((x - target) ** 2)), x0, budget=21, seed=1)
    assert np.array_equal(again.x, same.x)


def test_spsa_steps_are_bounded_after_a_small_first_difference():
    """A first gradient estimate from two nearly equal draws sets a huge gain; no
    step moves a variable by more than ``max_step`` of its scale all the same."""
    target = np.full(4, 3.0)
    seen = []

    def f(x, tag):
        seen.append(x.copy())
        if tag.startswith("k0"):  # noise: the first difference is 1e-4
            return 1.0 + (1e-4 if tag.endswith("+") else 0.0)
        return float(100 * np.sum((x - target) ** 2))

    res = spsa(f, np.ones(4), budget=21, seed=1, scale=np.ones(4))
    centre = np.ones(4)
    for k in range(10):  # θ_k lies within k max_steps of the start; points within c of it
        pts = np.array(seen[1 + 2 * k:3 + 2 * k])
        assert np.abs(pts - centre).max() <= 0.5 * k + 0.1 + 1e-9
    assert np.abs(res.x - 1.0).max() <= 0.5 * 9 + 0.1 + 1e-9
    # the same run without the bound leaves the region by orders of magnitude
    wild = spsa(f, np.ones(4), budget=21, seed=1, scale=np.ones(4),
                settings=SPSASettings(max_step=np.inf))
    assert wild.evaluations == 21 and np.abs(np.array(seen[-20:]) - 1.0).max() > 100


# --------------------------------------------------------------------------- SUMO runs

@pytest.fixture(scope="module")
def merge_case(tmp_path_factory):
    """Two one-lane roads merging into a one-lane bottleneck; truth simulated in meso."""
    folder = tmp_path_factory.mktemp("merge")
    net = write_plain_net(folder, {"wa": (0, 0), "wb": (600, 500), "m": (1000, 0),
                                   "e": (2000, 0), "f": (2600, 0)},
                          [("A", "wa", "m", 1, 13.9), ("B", "wb", "m", 1, 13.9),
                           ("C", "m", "e", 1, 13.9), ("D", "e", "f", 1, 13.9)])
    taz = write_file(folder / "z.taz.xml", """
        <additional>
          <taz id="za"><tazSource id="A" weight="1"/></taz>
          <taz id="zb"><tazSource id="B" weight="1"/></taz>
          <taz id="zc"><tazSink id="D" weight="1"/></taz>
        </additional>""")
    truth = pd.DataFrame({"origin": ["za", "zb", "za", "zb"], "destination": ["zc"] * 4,
                          "begin": [0.0, 0.0, 600.0, 600.0], "end": [600.0, 600.0, 1200, 1200],
                          "trips": [150.0, 60.0, 230.0, 120.0]})
    truth.to_csv(folder / "truth.csv", index=False)
    prior = truth.assign(trips=truth["trips"] * [1.4, 0.6, 0.6, 1.45])
    prior.to_csv(folder / "prior.csv", index=False)
    # the truth's observations: speeds on A, B, C and counts on A, B per 300 s
    sim = Simulation(begin=0, end=1500, seed=3, mode="meso", edgedata_period=300)
    sc = Scenario(path=folder / "truth.csv", name="t", description="", network=net,
                  venues=None, simulation=sim, output_format="csv")
    tp = Problem(sc, read_net(net), TazZones(taz), truth.assign(kind="background"), None,
                 routing={"random_factor": 1.0})
    edges, _, _, _ = run_od(tp, tp.x0, folder / "truth-run")
    rows = [{"segment": e, "edges": (e,), "begin": b, "end": b + 300.0, "speed": 1.0,
             "count": 1.0 if e != "C" else np.nan, "travel_time": np.nan}
            for e in ("A", "B", "C") for b in range(0, 1500, 300)]
    table = pd.DataFrame(rows)
    table["length"] = [read_net(net).getEdge(e).getLength() for e in table["segment"]]
    table["free_speed"] = 13.9 * 3.6
    for k in ("speed", "count", "travel_time"):
        table[f"{k}_sd"] = {"speed": 2.0, "count": 5.0, "travel_time": 10.0}[k]
    table["weight"] = 1.0
    vals = simulated_values(edges, Observations(table), read_net(net))
    table["speed"] = vals["speed"].to_numpy()
    table["count"] = np.where(table["count"].notna(), vals["count"].to_numpy(), np.nan)
    obs = write_observations(table, folder / "obs.csv")
    return {"net": net, "taz": taz, "prior": folder / "prior.csv", "obs": obs,
            "truth": truth, "folder": folder}


def test_planned_crossings_by_hand(merge_case):
    net = read_net(merge_case["net"])
    free = {e: net.getEdge(e).getLength() / net.getEdge(e).getSpeed() for e in "ABCD"}
    obs = _obs([{"begin": 0, "end": 300}, {"begin": 300, "end": 600},
                {"begin": 0, "end": 300}])
    obs.table["edges"] = [("C",), ("C",), ("D",)]
    # row 0: departs at 250 s on A at full speed; row 1: at 0 s on B at half speed;
    # an unrouted vehicle of row 1 counts nowhere
    veh = pd.DataFrame({"od_row": [0, 1, 1], "depart": [250.0, 0.0, 0.0],
                        "route": [("A", "C", "D"), ("B", "C", "D"), None],
                        "speed_factor": [1.0, 0.5, 1.0]})
    enter_c = [250 + free["A"], 2 * free["B"]]
    enter_d = [250 + free["A"] + free["C"], 2 * (free["B"] + free["C"])]
    expected = np.zeros((2, 3))
    for r in (0, 1):
        expected[r, 0 if enter_c[r] < 300 else 1] += 1
        if enter_d[r] < 300:
            expected[r, 2] += 1
    assert planned_crossings(veh, obs, net, 2).toarray().tolist() == expected.tolist()
    assert expected.sum() >= 3  # the case reaches both intervals


def test_an_event_car_starts_its_planned_passage_when_it_leaves_its_lot(merge_case):
    """A car that waits in its lot reaches the segments when it leaves; a car held
    before an on-ramp, or one that left on time, keeps its planned departure."""
    net = read_net(merge_case["net"])
    free_a = net.getEdge("A").getLength() / net.getEdge("A").getSpeed()
    veh = pd.DataFrame({"id": ["ev1", "ev2", "bg1", "ev3"], "od_row": [0, 0, 1, 0],
                        "depart": [10.0, 10.0, 10.0, 10.0],
                        "lot": ["north", "north", "", "north"],
                        "route": [("A", "C")] * 4, "speed_factor": [1.0] * 4})
    # ev1 waited 600 s in its lot, ev2 left on time, bg1 was held 600 s before its
    # entry (demand that waits outside, see held_outside), ev3 never left
    vehicles = pd.DataFrame({"vehicle": ["ev1", "ev2", "bg1", "ev3"],
                             "ready": [10.0] * 4, "depart": [610.0, 10.0, 610.0, np.nan]})
    start = network_start(vehicles, veh)
    assert start.tolist() == [610.0, 10.0, 10.0, 10.0]
    obs = _obs([{"begin": 0, "end": 300}, {"begin": 600, "end": 900}])
    obs.table["edges"] = [("C",), ("C",)]
    assert 10 + free_a < 300 and 610 + free_a < 900
    assert planned_crossings(veh.assign(start=start), obs, net, 2).toarray().tolist() == \
        [[2.0, 1.0], [1.0, 0.0]]
    # without lots every passage starts at its departure
    plain = veh.drop(columns="lot")
    assert network_start(vehicles, plain).tolist() == [10.0] * 4


def _crossings_by_loop(vehroutes, veh, obs, n_rows):
    """:func:`crossings` one vehicle and edge at a time (the reference)."""
    row_of = dict(zip(veh["id"], veh["od_row"], strict=True))
    out = np.zeros((n_rows, len(obs.table)))
    for vid, dep, edges, exits in zip(vehroutes["vehicle"], vehroutes["depart"],
                                      vehroutes["edges"], vehroutes["exit_times"], strict=True):
        if vid not in row_of:
            continue
        enter = dep
        for k, edge in enumerate(edges):
            for i, (es, b, e) in enumerate(zip(obs.table["edges"], obs.table["begin"],
                                               obs.table["end"], strict=True)):
                if es[0] == edge and b <= enter < e:
                    out[row_of[vid], i] += 1
            if k >= len(exits) or exits[k] < 0:
                break
            enter = exits[k]
    return out


def test_crossings_by_hand():
    """Entries are the departure or the previous edge's exit; after an exit of -1
    (teleport) or past the last exit written nothing more is known; a vehicle
    of no OD row counts nowhere; two observations of one first edge both count."""
    obs = _obs([{"begin": 0, "end": 100}, {"begin": 100, "end": 200},
                {"begin": 0, "end": 200}, {"begin": 0, "end": 200}])
    obs.table["edges"] = [("B",), ("B",), ("C",), ("B", "C")]
    records = [("v0", "car", "10.00", "200.00", "A B C", "90.00 120.00 130.00", ""),
               ("v1", "car", "50.00", None, "B C", "-1 -1", ""),
               ("v2", "car", "0.00", None, "A B C", "20.00 -1 -1", ""),
               ("v3", "car", "150.00", None, "A B C", "160.00", ""),
               ("x", "car", "0.00", None, "B", "5.00", "")]
    vr = outputs.vehroute_table(records)
    veh = pd.DataFrame({"id": ["v0", "v1", "v2", "v3"], "od_row": [0, 1, 1, 0]})
    got = crossings(records, veh, obs, 2).toarray()
    expected = np.zeros((2, 4))
    expected[0, [0, 3]] += 1      # v0 enters B at 90 (first interval; B+C too)
    expected[0, 2] += 1           # ... and C at 120
    expected[1, [0, 3]] += 1      # v1 departs on B at 50; its -1 ends what is known
    expected[1, [0, 3]] += 1      # v2 enters B at 20; C after the -1 is unknown
    expected[0, [1, 3]] += 1      # v3 enters B at 160; C: no exit time written
    assert got.tolist() == expected.tolist()
    assert got.tolist() == _crossings_by_loop(vr, veh, obs, 2).tolist()



def test_crossings_against_the_loop_on_random_runs():
    """Random routes, entries on interval bounds, teleports, cut-off exits, several
    segments on one first edge and intervals that overlap: the same counts as
    the loop."""
    rng = np.random.default_rng(11)
    names = list("ABCDEFG")
    rows = []
    for first in "ABC":
        for begin in range(0, 600, 100):
            rows.append({"begin": begin, "end": begin + 100, "edges": (first,)})
        rows.append({"begin": 0, "end": 300, "edges": (first, "D")})
        rows.append({"begin": 250, "end": 650, "edges": (first, "E")})
    obs = _obs([{"begin": r["begin"], "end": r["end"]} for r in rows])
    obs.table["edges"] = [r["edges"] for r in rows]
    records, ids, od_rows = [], [], []
    for i in range(400):
        route = list(rng.choice(names, size=rng.integers(1, 7)))
        times = np.cumsum(rng.choice([50.0, 37.5, 100.0], size=len(route))) \
            + rng.choice([0.0, 100.0, 200.0])
        exits = [f"{t:.2f}" for t in times[:rng.integers(0, len(route) + 1)]]
        if exits and rng.random() < 0.2:
            exits[rng.integers(len(exits))] = "-1"
        records.append((f"v{i}", "car", f"{times[0] - 50.0:.2f}", None, " ".join(route),
                        " ".join(exits), ""))
        if rng.random() < 0.9:  # the others are no vehicle of the OD
            ids.append(f"v{i}")
            od_rows.append(int(rng.integers(3)))
    veh = pd.DataFrame({"id": ids, "od_row": od_rows})
    got = crossings(records, veh, obs, 3).toarray()
    assert got.sum() > 100
    assert got.tolist() == _crossings_by_loop(outputs.vehroute_table(records), veh, obs,
                                              3).tolist()

def test_assignment_matrix_against_a_reference():
    """The shares P[i, r] = (C_ri + m · pooled) / (n_r + m), the pooled share of a
    row's OD pair at the same time lag, computed one entry at a time."""
    rng = np.random.default_rng(5)
    n_pairs, begins = 4, [0.0, 900.0, 1800.0]
    rows = pd.DataFrame({"group": np.repeat(np.arange(n_pairs), 3),
                         "begin": np.tile(begins, n_pairs)})
    obs_key = pd.DataFrame({"seg": np.repeat(np.arange(3), 4),
                            "begin": np.tile([0.0, 900.0, 1800.0, 2700.0], 3)})
    sims = []
    for _ in range(4):
        c = sparse.random(len(rows), len(obs_key), density=0.3, random_state=rng,
                          data_rvs=lambda k: rng.integers(1, 5, k)).tocsr()
        sims.append({"crossings": c, "vehicles": rng.integers(0, 9, len(rows)) * 1.0})
    sims[-1]["vehicles"][rows["group"].to_numpy() == 3] = 0.0  # a pair without vehicles
    p = assignment_matrix(sims, rows, obs_key, memory=3, shrinkage=5.0).toarray()
    use = sims[-3:]
    own = sum(s["crossings"] for s in use).toarray()
    n = sum(s["vehicles"] for s in use)
    ref = np.zeros((len(obs_key), len(rows)))
    for r in range(len(rows)):
        g, b = rows["group"][r], rows["begin"][r]
        same = np.flatnonzero(rows["group"].to_numpy() == g)
        n_g = n[same].sum()
        for i in range(len(obs_key)):
            lag = obs_key["begin"][i] - b
            pooled = 0.0
            if n_g > 0:
                for r2 in same:
                    for i2 in range(len(obs_key)):
                        if (obs_key["seg"][i2] == obs_key["seg"][i]
                                and obs_key["begin"][i2] - rows["begin"][r2] == lag):
                            pooled += own[r2, i2]
                pooled /= n_g
            ref[i, r] = (own[r, i] + 5.0 * pooled) / (n[r] + 5.0)
    assert np.allclose(p, ref)


def _problem(case, seed=3):
    return plain_calibration_problem(case["net"], case["taz"], case["prior"], case["obs"],
                                     period=300, end=1500, seed=seed, mode="meso")


def test_recovery_on_tiny_network(merge_case, tmp_path):
    res = calibrate(_problem(merge_case), tmp_path / "cal", budget=8, progress=False)
    h = res.history
    assert len(h) == 8
    # the second simulation replicates the start with another seed and is never the best
    assert list(h["tag"][:2]) == ["start", "replicate"] and not h["accepted"][1]
    # the incumbent after the sixth simulation had a single draw: the budget's last
    # simulations check it first
    assert h["accepted"][5] and h["tag"][8 - FINAL_CHECKS] == f"{h['tag'][5]}-redraw1"
    assert res.targets.model_noise is not None
    summary = json.loads((tmp_path / "cal" / "summary.json").read_text())
    assert summary["model_noise"]
    # measured again at the incumbent redrawn by the final checks
    assert summary["model_noise_at"] == h["tag"][5]
    before, after = res.prior.metrics, res.best.metrics
    assert res.best.objective < 0.3 * res.prior.objective
    assert after["rmse_kmh"] < 0.5 * before["rmse_kmh"]
    # the calibrated demand moved towards the truth
    truth = merge_case["truth"]["trips"].to_numpy()
    prior = pd.read_csv(merge_case["prior"])["trips"].to_numpy()
    cal = res.od.sort_values(["begin", "origin"])["trips"].to_numpy()
    assert np.abs(cal - truth).sum() < 0.6 * np.abs(prior - truth).sum()
    for name in ("calibrated.od.csv", "calibrated.tazrel.xml", "convergence.csv", "fit.csv",
                 "scatter.png", "convergence.png", "summary.json", "state.json"):
        assert (tmp_path / "cal" / name).is_file(), name
    conv = pd.read_csv(tmp_path / "cal" / "convergence.csv")
    assert {"sim", "objective", "rmse_kmh", "rmsne", "geh_share", "wall_s"} <= set(conv.columns)


def test_redraw_of_the_incumbent(merge_case, tmp_path):
    """A redraw simulates the incumbent with the next seed, scores it by the mean
    of its draws, and the candidate with the lowest score becomes the incumbent;
    the redraw itself is never a candidate."""
    from egress.calibration.driver import _Runner

    problem = _problem(merge_case)
    run = _Runner(problem, tmp_path / "cal", "metamodel", budget=5, seed=3, resume=False,
                  keep_runs=False, progress=False)
    a = run(problem.x0, "start")
    b = run(problem.x0 * 0.8, "b")
    first = run.best
    ev = run.redraw_best()
    assert len(first.redraws) == 1 and first.redraws[0] is ev
    assert all(ev is not c for c in run.candidates)
    draws = [problem.targets.objective(s, first.x) for s in (first.sim(), ev.sim())]
    assert first.objective == pytest.approx(np.mean(draws))
    assert ev.sim()["speed"].tolist() != first.sim()["speed"].tolist()  # another draw
    assert run.best is min((a, b), key=lambda e: e.objective)
    assert run.history[-1]["tag"] == f"{'start' if first is a else 'b'}-redraw1"
    assert run.history[-1]["best"] == run.best.objective and not run.history[-1]["accepted"]
    # the metamodel is built around the mean of the incumbent's draws
    mean = first.mean_sim()["speed"]
    assert np.allclose(mean, np.nanmean([first.sim()["speed"], ev.sim()["speed"]], axis=0),
                       equal_nan=True)


def test_the_model_noise_is_measured_again_at_the_incumbent(merge_case, tmp_path):
    """The first redraw of an incumbent replaces the start's noise estimate with the
    spread between the incumbent's two draws, and every evaluation is scored anew."""
    from egress.calibration.driver import _Runner
    from egress.calibration.metamodel import estimate_model_noise

    problem = _problem(merge_case)
    run = _Runner(problem, tmp_path / "cal", "metamodel", budget=6, seed=3, resume=False,
                  keep_runs=False, progress=False)
    a = run(problem.x0, "start")
    rep = run(problem.x0, "replicate", candidate=False, seed=4)
    run.noise_from(a, rep, "start")
    assert run.targets.model_noise == estimate_model_noise(a.sim(), rep.sim(),
                                                           problem.targets.idx)
    b = run(problem.x0 * 0.8, "b")
    c = run(problem.x0 * 1.2, "c")
    first = run.best
    tag = {id(a): "start", id(b): "b", id(c): "c"}[id(first)]
    ev = run.redraw_best()
    noise = estimate_model_noise(first.sim(), ev.sim(), problem.targets.idx)
    assert run.targets.model_noise == noise and run.noise_at == tag
    for e in (a, b, c):
        draws = [run.targets.objective(sim, e.x) for sim in e.draws()]
        assert e.objective == pytest.approx(np.mean(draws))
    assert run.best is min((a, b, c), key=lambda e: e.objective)
    assert run.objective_noise == pytest.approx(
        abs(run.targets.misfit(first.sim()) - run.targets.misfit(ev.sim())) / np.sqrt(2))
    # a second redraw of the same OD keeps the estimate of its first two draws
    if run.best is first:
        run.redraw_best()
        assert run.targets.model_noise == noise


@pytest.mark.parametrize("method", ["metamodel", "spsa"])
def test_resume_after_interruption(merge_case, tmp_path, method):
    full = calibrate(_problem(merge_case), tmp_path / "full", method=method, budget=6,
                     progress=False, figures=False)
    # "crash" during the fifth simulation: the state on disk as it was after the fourth
    # (a run with a smaller budget is no stand-in: the search's last steps depend on it)
    shutil.copytree(tmp_path / "full", tmp_path / "part")
    state = json.loads((tmp_path / "part" / "state.json").read_text())
    state["history"] = state["history"][:4]
    (tmp_path / "part" / "state.json").write_text(json.dumps(state))
    for k in (4, 5):
        shutil.rmtree(tmp_path / "part" / "sims" / f"{k:03d}")
    kept = (tmp_path / "part" / "sims" / "003" / "meta.json").stat().st_mtime_ns
    resumed = calibrate(_problem(merge_case), tmp_path / "part", method=method, budget=6,
                        resume=True, progress=False, figures=False)
    assert list(resumed.history["tag"]) == list(full.history["tag"])
    assert np.allclose(resumed.history["objective"], full.history["objective"])
    assert np.allclose(resumed.od["trips"], full.od["trips"])
    # the four simulations on disk were read, not run again
    assert (tmp_path / "part" / "sims" / "003" / "meta.json").stat().st_mtime_ns == kept
    with pytest.raises(InputError, match="other inputs"):
        calibrate(_problem(merge_case, seed=4), tmp_path / "part", method=method, budget=6,
                  resume=True, progress=False)


def test_cli_calibrate_plain_form(merge_case, tmp_path, capsys):
    c = merge_case
    code = main(["-q", "calibrate", "--net", str(c["net"]), "--taz", str(c["taz"]), "--od",
                 str(c["prior"]), "--observations", str(c["obs"]), "--end", "1500",
                 "--seed", "3", "--budget", "2", "--model-noise", "none",
                 "--out", str(tmp_path / "cli")])
    out = capsys.readouterr().out
    assert code == 0 and "speed RMSE" in out
    assert (tmp_path / "cli" / "calibrated.tazrel.xml").is_file()
    code = main(["calibrate", "--net", str(c["net"]), "--taz", str(c["taz"]), "--od",
                 str(c["prior"]), "--observations", str(c["obs"]), "--budget", "1",
                 "--out", str(tmp_path / "cli2")])
    err = capsys.readouterr().err
    assert code == 2 and "budget: must be an integer >= 2" in err and err.count("\n") == 1
    for bad, message in ((["--budget", "2"], "estimating the model noise needs at least 3"),
                         (["--model-noise", "6,0.2"], "--model-noise: expected")):
        code = main(["calibrate", "--net", str(c["net"]), "--taz", str(c["taz"]), "--od",
                     str(c["prior"]), "--observations", str(c["obs"]), *bad,
                     "--out", str(tmp_path / "cli3")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_event_demand_beyond_the_lots_is_scaled_to_fit():
    from types import SimpleNamespace

    from egress.calibration import Problem

    prior = pd.DataFrame({"kind": ["event", "event", "background", "event"],
                          "origin": ["venue", "venue", "venue", "elsewhere"],
                          "destination": ["n", "s", "n", "n"],
                          "begin": [0.0, 900.0, 0.0, 0.0], "end": [900.0, 1800.0, 900.0, 900.0],
                          "trips": [50.0, 50.0, 10.0, 5.0]})
    p = Problem(scenario=None, net=None, zones=SimpleNamespace(venue_zone=lambda v: "venue"),
                prior=prior, obs=None,
                event=SimpleNamespace(venue="stadium", lots={"a": 100, "b": 50}))
    x = np.array([200.0, 100.0, 40.0, 30.0])
    y = p.feasible(x)
    # 150 places less one per interval: 148 event cars from the venue, same proportions
    assert y[:2].sum() == pytest.approx(148.0) and y[0] / y[1] == pytest.approx(2.0)
    assert list(y[2:]) == [40.0, 30.0]  # background and other origins untouched
    assert p.feasible(np.array([60.0, 60.0, 1.0, 1.0])).tolist() == [60.0, 60.0, 1.0, 1.0]


# -------------------------------------------------------------------- any mix of measurements


def _mix(case, folder, keep: tuple[str, ...]):
    """The merge case's observations with only the quantities `keep` (travel times
    from the observed speeds: a one-edge segment's time is its length over its speed)."""
    t = pd.read_csv(case["obs"])
    length = pd.Series({e: read_net(case["net"]).getEdge(e).getLength() for e in "ABC"})
    t["travel_time"] = length[t["edges"]].to_numpy() / (t["speed"] / 3.6)
    for k in ("speed", "count", "travel_time"):
        if k not in keep:
            t[k] = np.nan
    t = t[t[list(keep)].notna().any(axis=1)]
    path = folder / f"{'-'.join(keep)}.csv"
    t.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("keep", [("count",), ("speed",), ("travel_time",),
                                  ("count", "travel_time")])
def test_every_mix_of_measurements_runs_end_to_end(merge_case, tmp_path, capsys, keep):
    """Counts only, speeds only, travel times only and a mix: the calibration, its
    printout and its figures (what exists of them) all finish."""
    c = merge_case
    obs = _mix(c, tmp_path, keep)
    out = tmp_path / "cal"
    code = main(["-q", "calibrate", "--net", str(c["net"]), "--taz", str(c["taz"]), "--od",
                 str(c["prior"]), "--observations", str(obs), "--end", "1500", "--seed", "3",
                 "--budget", "3", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    for name in ("calibrated.od.csv", "fit.csv", "scatter.png", "convergence.png",
                 "summary.json"):
        assert (out / name).is_file(), name
    printed = captured.out
    assert ("speed RMSE" in printed) == ("speed" in keep)
    assert ("GEH<5" in printed) == ("count" in keep)
    assert ("travel time RMSE" in printed) == ("travel_time" in keep)


@pytest.mark.parametrize("name", ["sodo-normal-evening", "sodo-large-event"])
def test_shipped_synthetic_sets_fit_the_current_network(name):
    """The synthetic sets in scenarios/observations/ were made by `egress observe`
    on the network and demand model as they are, from the scenario kept with each
    set: the truth is that scenario's own OD row for row, and every observed edge
    is in the network."""
    from conftest import ROOT

    from egress.config.scenario import load_scenario
    from egress.demand import build_od

    folder = ROOT / "scenarios" / "observations" / name
    scenario = load_scenario(folder.parent / f"{name}.toml")
    key = ["kind", "origin", "destination", "begin", "end"]
    built = build_od(scenario).od[[*key, "trips"]]
    files = {}
    for od in ("truth", "prior"):
        table = pd.read_csv(folder / f"{od}.od.csv", dtype={"origin": str, "destination": str})
        both = built.merge(table, on=key, how="outer", suffixes=("", "_file"), indicator=True)
        assert (both["_merge"] == "both").all(), f"{od}.od.csv has other rows than the scenario"
        files[od] = both["trips_file"].to_numpy() / both["trips"].to_numpy()
    assert np.allclose(files["truth"], 1.0)
    # the prior: every row 30-50 % too high or too low
    assert np.all((np.abs(files["prior"] - 1) >= 0.3 - 1e-9)
                  & (np.abs(files["prior"] - 1) <= 0.5 + 1e-9))
    net = read_net(scenario.network)
    obs = pd.read_csv(folder / "observations.csv")
    edges = {e for text in obs["edges"].dropna() for e in str(text).split()}
    assert edges and all(net.hasEdge(e) for e in edges)


@pytest.mark.parametrize("name", ["sodo-normal-evening", "sodo-large-event"])
def test_shipped_synthetic_sets_are_what_the_model_simulates_now(name, tmp_path):
    """The truth of each synthetic set, simulated now with the set's seed, fits its
    observations as well as when the set was made (``observe.json``'s noise
    floor): a change of the zones, the routing or the sampling that moves the
    simulation makes the set stale (regenerate it, scenarios/observations/README.md)."""
    from conftest import ROOT

    from egress.calibration import calibration_problem, evaluate

    folder = ROOT / "scenarios" / "observations" / name
    info = json.loads((folder / "observe.json").read_text())
    problem = calibration_problem(folder.parent / f"{name}.toml", folder / "observations.csv",
                                  prior=folder / "truth.od.csv", mode=info["mode"],
                                  seed=info["seed"])
    ev = evaluate(problem, problem.x0, tmp_path / "run")
    floor = info["noise_floor"]
    assert ev.metrics["rmse_kmh"] == pytest.approx(floor["rmse_kmh"], rel=0.05)
    assert ev.metrics["rmse_count"] == pytest.approx(floor["rmse_count"], rel=0.05)


def test_entry_capacity_by_hand():
    """An entry is limited once a simulation held vehicles there: at what it took in
    time in any simulation, or, if the incumbent held some, at what the incumbent
    carried; every trip more is then a vehicle held more, each HELD_WEIGHT squared
    standard errors of the objective."""
    from egress.calibration.metamodel import HELD_WEIGHT, entry_capacity

    entry = np.array([0, 0, 1, 1, 2, -1])
    x_k = np.array([30.0, 20.0, 10.0, 10.0, 5.0, 99.0])
    held_k = np.array([3.0, 2.0, 0.0, 0.0, 0.0, 0.0])       # entry 0 held 5 now
    samples = [(np.array([30, 20, 12, 13, 5, 99.0]), np.array([3, 2, 1, 2, 0, 0.0])),
               (np.array([20, 10, 16, 14, 5, 99.0]), np.array([0, 0, 4, 4, 0, 0.0]))]
    cap = entry_capacity(entry, x_k, held_k, samples)
    # entry 0: 50 trips less the 5 held; entry 1: most taken in time max(25-3, 30-8) = 22;
    # entry 2 never held anything
    assert cap.tolist() == [45.0, 22.0, np.inf]
    # an entry the incumbent carried in full carries at least that
    assert entry_capacity(entry, x_k * [1, 1, 1.2, 1.2, 1, 1], held_k, samples)[1] == 24.0
    obs = _obs([{"begin": 0, "end": 900, "speed": 30.0, "count": np.nan,
                 "travel_time": np.nan, "speed_sd": 3.0, "count_sd": 5.0,
                 "travel_time_sd": 10.0}] * 4)
    t = Targets.from_observations(obs, prior=x_k)
    sim = {"speed": np.full(4, 30.0), "count": np.full(4, np.nan),
           "travel_time": np.full(4, np.nan)}
    assert t.objective({**sim, "held": held_k}, x_k) == pytest.approx(HELD_WEIGHT * 5 / 4)
    assert t.objective(sim, x_k) == 0.0


def test_entry_waits_by_hand():
    """Held outside: inserted over 300 s late, or never inserted though planned
    over 300 s before the end; an unrouted trip is no vehicle of the run."""
    from egress.calibration.runs import entry_waits

    veh = pd.DataFrame({"id": list("abcdefg"),
                        "origin": ["z1", "z1", "z2", "z2", "z1", "z3", "stadium"],
                        "depart": [0.0, 0.0, 100.0, 900.0, 50.0, 0.0, 0.0],
                        "route": [("e",), ("e",), ("e",), ("e",), ("e",), None, ("e",)],
                        "lot": [None, None, None, None, None, None, "lot1"]})
    nan = np.nan
    vehicles = pd.DataFrame({"vehicle": list("abcdeg"),
                             "ready": [0.0, 0.0, 100.0, 900.0, 50.0, 0.0],
                             "depart": [100.0, 400.0, nan, nan, 350.0, 900.0]})
    got = entry_waits(vehicles, veh, end=1000.0)
    # a waits 100 s, b 400 s, c never entered (planned 900 s before the end), d planned
    # 100 s before the end, e waits exactly 300 s, f has no route, g queued in its lot
    assert got == {"entry_waits": 2, "entry_wait_origins": {"z1": 1, "z2": 1}}


def test_a_calibrated_od_that_holds_vehicles_outside_is_named(merge_case, tmp_path):
    """Four times the demand jams the one-lane bottleneck back to the entries:
    the run counts the vehicles SUMO holds outside, and a calibration whose
    answer holds over 0.5 % of its vehicles there says so in one line."""
    from egress.calibration.driver import _held_outside
    from egress.calibration.runs import evaluate

    problem = _problem(merge_case)
    ok = evaluate(problem, problem.x0, tmp_path / "ok")
    jam = evaluate(problem, problem.x0 * 4, tmp_path / "jam")
    assert ok.info["entry_waits"] == 0 and _held_outside(ok) == {}
    assert jam.info["entry_waits"] > 0.05 * jam.info["vehicles"]
    assert set(jam.info["entry_wait_origins"]) <= {"za", "zb"}
    held = _held_outside(jam)
    assert held["vehicles"] == jam.info["entry_waits"]
    assert "waited over 5 min to enter the network" in held["message"]
    assert "\n" not in held["message"]


def test_a_calibration_from_a_demand_its_entries_cannot_take_lets_it_in(merge_case, tmp_path):
    """From four times the true demand SUMO holds a large share of the vehicles
    outside the network, where the counts cannot see them; each costs the
    objective HELD_WEIGHT squared standard errors, and the calibration ends with
    a demand its entries take."""
    from egress.calibration.metamodel import HELD_WEIGHT

    prior = merge_case["truth"].assign(trips=merge_case["truth"]["trips"] * 4)
    path = tmp_path / "prior.csv"
    prior.to_csv(path, index=False)
    case = {**merge_case, "prior": path}
    res = calibrate(_problem(case), tmp_path / "cal", budget=6, progress=False)
    start = res.prior
    assert start.info["entry_waits"] > 0.2 * start.info["vehicles"]
    assert start.held.sum() == start.info["entry_waits"]
    n = res.targets.n_values
    assert start.objective == pytest.approx(
        res.targets.misfit(start.sim()) + res.targets.regularizer(start.x)[0]
        + HELD_WEIGHT * start.held.sum() / n, rel=1e-9)
    assert res.best.info["entry_waits"] < 0.1 * start.info["entry_waits"]


def test_an_incumbent_drawn_once_at_the_end_gives_way_to_one_drawn_twice():
    """The answer is not one lucky draw when a candidate with several draws exists."""
    from types import SimpleNamespace

    from egress.calibration.search import _answer_drawn_twice

    def ev(objective, draws=1):
        return SimpleNamespace(objective=objective, redraws=[object()] * (draws - 1))

    def set_best(run, e):  # what the runner's set_best does to its tables
        run.best = e
        run.history[-1]["best"] = e.objective

    start, a, b, c = ev(1.0), ev(0.6, 2), ev(0.5, 3), ev(0.3)
    run = SimpleNamespace(evals=[start, a, b, c], candidates=[start, a, b, c], best=c,
                          history=[{"best": 0.3}], best_sim=3, objective_noise=0.25)
    run.set_best = lambda e: set_best(run, e)
    _answer_drawn_twice(run)
    assert run.best is b and run.history[-1]["best"] == 0.5
    # a lead beyond one draw's noise, an incumbent drawn twice, the start (its
    # replicate is its second draw), or no candidate drawn twice: the incumbent stays
    for best, candidates, noise in ((c, [start, a, b, c], 0.15), (a, [start, a, c], 0.25),
                                    (start, [start, a], 0.25), (c, [start, c], 0.25)):
        run = SimpleNamespace(evals=[start, a, c], candidates=candidates, best=best,
                              history=[{"best": best.objective}], best_sim=1,
                              objective_noise=noise, set_best=None)
        _answer_drawn_twice(run)
        assert run.best is best
