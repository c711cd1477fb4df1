"""Supply parameters reach SUMO: speeds, capacities and signal delay by edge type.

Real SUMO runs on tiny typed networks, with answers computed by hand.
"""

from __future__ import annotations

import pytest
from conftest import EXACT_VTYPE, write_file, write_plain_net

from egress import engine
from egress.config.supply import SupplySpec

pytestmark = pytest.mark.sumo


@pytest.fixture(scope="module")
def typed_road(tmp_path_factory):
    """a -> b -> c, 1 km each, one lane, 10 m/s; ab is an 'arterial', bc a 'freeway'
    (both priority junctions), and a signal at b on a second road d -> b."""
    folder = tmp_path_factory.mktemp("typed")
    write_file(folder / "net.typ.xml", """
        <types>
          <type id="arterial" numLanes="1" speed="10" priority="2"/>
          <type id="freeway" numLanes="1" speed="10" priority="3"/>
        </types>""")
    return write_plain_net(folder, {"a": (0, 0), "b": (1000, 0), "c": (2000, 0)},
                           [("ab", "a", "b", 1, 10, 'type="arterial"'),
                            ("bc", "b", "c", 1, 10, 'type="freeway"')])


def _run(tmp_path, net, supply, mode="micro", vehicles=1, headway=100.0, end=600):
    rows = "\n".join(f'<vehicle id="v{i}" type="exact" depart="{i * headway:g}" '
                     f'departSpeed="max" departPos="0" arrivalPos="max">'
                     f'<route edges="ab bc"/></vehicle>' for i in range(vehicles))
    routes = write_file(tmp_path / "r.rou.xml", f"<routes>{EXACT_VTYPE}\n{rows}\n</routes>")
    cfg = engine.RunConfig(tmp_path / f"run-{mode}", net, (routes,), 0, end, mode=mode,
                           supply=supply, edgedata_period=end)
    res = engine.run(cfg)
    assert res.valid, res.problems
    return res


def test_speed_factor_slows_the_edges_of_its_type_only(tmp_path, typed_road):
    free = _run(tmp_path / "free", typed_road, None).vehicles.iloc[0]
    slow = _run(tmp_path / "slow", typed_road, SupplySpec(speed={"arterial": 0.5})
                ).vehicles.iloc[0]
    # 1 km at 10 m/s and 1 km at 5 m/s: 100 s more than at free flow
    assert free["travel_time"] == pytest.approx(200, abs=2)
    assert slow["travel_time"] == pytest.approx(300, abs=3)


@pytest.mark.parametrize("factor", [1.0, 0.5])
def test_capacity_factor_sets_the_mesoscopic_headway(tmp_path, typed_road, factor):
    """Demand far above capacity: vehicles leave ab one mesoscopic headway apart,
    tauff / factor plus the time to drive one vehicle length with its gap
    (7.5 m at 10 m/s); the first one reaches bc after 100 s."""
    res = _run(tmp_path, typed_road, SupplySpec(capacity={"arterial": factor}), "meso",
               vehicles=400, headway=0.5, end=300)
    e = res.edges
    served = float(e.loc[e["edge"] == "bc", "entered"].sum())
    headway = engine.supply.MESO_HEADWAYS["tauff"] / factor + 7.5 / 10
    assert served == pytest.approx(200 / headway, rel=0.04)


def test_meso_options_only_in_meso(tmp_path, typed_road):
    spec = SupplySpec(signal_penalty=0.8, minor_penalty=2.0, junction_control=True,
                      jam_threshold=0.5)
    micro = engine.RunConfig(tmp_path / "m", typed_road, (), 0, 10, supply=spec)
    meso = micro.with_(mode="meso")
    assert not any(k.startswith("meso-") for k in engine.config.sumo_options(micro))
    opts = engine.config.sumo_options(meso)
    assert (opts["meso-tls-penalty"], opts["meso-minor-penalty"],
            opts["meso-junction-control"], opts["meso-jam-threshold"]) == (
        "0.8", "2", "true", "0.5")
    # SUMO's own speed-based threshold: no option
    assert "meso-jam-threshold" not in engine.config.sumo_options(
        meso.with_(supply=SupplySpec(signal_penalty=0.8)))


@pytest.mark.parametrize(("value", "ok"), [(-1, True), (0.5, True), (1.0, True), (0.0, False),
                                           (-0.5, False), (1.5, False)])
def test_jam_threshold_is_a_share_or_sumos_default(value, ok):
    from egress.config.supply import check_supply
    from egress.errors import ScenarioError

    if ok:
        assert check_supply({"jam_threshold": value}, "s.toml").jam_threshold == value
    else:
        with pytest.raises(ScenarioError, match="supply.jam_threshold"):
            check_supply({"jam_threshold": value}, "s.toml")


@pytest.fixture(scope="module")
def arterial_at_60(tmp_path_factory, typed_road):
    """Speeds observed on `typed_road` whose arterial drives at 60 % of its limit
    (simulated with that factor and the right OD); returns the TAZ, OD and
    observations files."""
    import numpy as np
    import pandas as pd

    from egress.calibration.observations import (
        Observations,
        simulated_values,
        write_observations,
    )
    from egress.calibration.problem import Problem, TazZones
    from egress.calibration.runs import run_od
    from egress.config.scenario import Scenario, Simulation
    from egress.network import read_net

    folder = tmp_path_factory.mktemp("arterial60")
    taz = write_file(folder / "z.taz.xml", """
        <additional><taz id="za"><tazSource id="ab" weight="1"/></taz>
        <taz id="zc"><tazSink id="bc" weight="1"/></taz></additional>""")
    od = pd.DataFrame({"origin": ["za"], "destination": ["zc"], "begin": [0.0],
                       "end": [600.0], "trips": [120.0]})
    od.to_csv(folder / "od.csv", index=False)
    sim = Simulation(begin=0, end=900, seed=3, mode="meso", edgedata_period=300)
    truth = Scenario(path=folder / "od.csv", name="t", description="", network=typed_road,
                     venues=None, simulation=sim, supply=SupplySpec(speed={"arterial": 0.6}))
    tp = Problem(truth, read_net(typed_road), TazZones(taz), od.assign(kind="background"),
                 None, routing={"random_factor": 1.0})
    edges, _, _, _ = run_od(tp, tp.x0, folder / "truth")
    rows = [{"segment": e, "edges": (e,), "begin": b, "end": b + 300.0, "speed": 1.0,
             "count": np.nan, "travel_time": np.nan, "speed_sd": 2.0, "count_sd": 5.0,
             "travel_time_sd": 10.0, "weight": 1.0, "length": 1000.0, "free_speed": 36.0}
            for e in ("ab", "bc") for b in (0.0, 300.0, 600.0)]
    table = pd.DataFrame(rows)
    table["speed"] = simulated_values(edges, Observations(table), read_net(typed_road))[
        "speed"].to_numpy()
    return taz, folder / "od.csv", write_observations(table, folder / "obs.csv")


def test_calibration_recovers_a_speed_factor(tmp_path, typed_road, arterial_at_60):
    """With the OD right, the supply step finds the arterial's speed factor
    (within the model's noise)."""
    from egress import calibrate, plain_calibration_problem

    taz, od, obs = arterial_at_60
    problem = plain_calibration_problem(typed_road, taz, od, obs, end=900, seed=3,
                                        supply={"speed.arterial": (0.3, 1.5)})
    res = calibrate(problem, tmp_path / "cal", budget=6, model_noise=None, progress=False,
                    figures=False)
    assert res.best.theta[0] == pytest.approx(0.6, abs=0.08)
    # the finite-difference probe went to the relieving side (faster), from 1.0
    probe = res.history.loc[res.history["tag"] == "s1.speed.arterial", "supply.speed.arterial"]
    assert probe.iloc[0] == pytest.approx(1.0 + 0.15 * 1.2)
    assert res.supply == {"speed.arterial": res.best.theta[0]}
    assert res.best.metrics["rmse_kmh"] < 2.0 < res.prior.metrics["rmse_kmh"]
    text = (tmp_path / "cal" / "calibrated.supply.toml").read_text()
    assert "[supply]" in text and "speed = { arterial = " in text
    assert res.diagnosis.message == ""


def test_diagnosis_names_the_misfit_the_od_cannot_explain(tmp_path, typed_road,
                                                          arterial_at_60):
    """Calibrating the OD alone leaves the arterial ~14 km/h too fast at every
    demand: the diagnosis names the class, its bias and the parameter that
    would close it, and says so in summary.json and diagnosis.csv."""
    import json

    import pandas as pd

    from egress import calibrate, plain_calibration_problem

    taz, od, obs = arterial_at_60
    problem = plain_calibration_problem(typed_road, taz, od, obs, end=900, seed=3, supply={})
    res = calibrate(problem, tmp_path / "cal", budget=4, model_noise=None, progress=False,
                    figures=False)
    d = res.diagnosis
    classes = d.classes.set_index("type")
    assert classes.loc["arterial", "biased"]
    assert classes.loc["arterial", "bias_kmh"] == pytest.approx(36 * 0.4, abs=3.0)
    assert not classes.loc["freeway", "biased"]
    assert "arterial segments are simulated" in d.message and "faster" in d.message
    assert "speed.arterial < 1" in d.parameters
    assert not d.segments.set_index("segment").loc["ab", "reachable"].any()
    summary = json.loads((tmp_path / "cal" / "summary.json").read_text())
    assert summary["diagnosis"]["message"] == d.message
    assert set(pd.read_csv(tmp_path / "cal" / "diagnosis.csv")["type"]) == {"arterial",
                                                                          "freeway"}


@pytest.mark.parametrize(("name", "direction"), [
    ("signal_penalty", -1), ("minor_penalty", -1), ("capacity.arterial_major", 1),
    ("speed.freeway", 1)])
def test_supply_probes_go_to_the_side_that_relieves_congestion(name, direction):
    """Less signal delay, more capacity, higher speeds: away from gridlock."""
    from egress.config.supply import relieving_direction

    assert relieving_direction(name) == direction


def test_jam_threshold_calibration_bounds_stay_inside_its_range():
    """A calibration may not move the threshold to 0 (every segment jammed)."""
    from egress.config.supply import check_supply
    from egress.errors import ScenarioError

    ok = check_supply({"calibrate": {"jam_threshold": [0.3, 1.0]}}, "s.toml")
    assert ok.calibrate == {"jam_threshold": (0.3, 1.0)}
    with pytest.raises(ScenarioError, match="supply.calibrate.jam_threshold"):
        check_supply({"calibrate": {"jam_threshold": [0.0, 1.0]}}, "s.toml")


def test_a_calibrated_supply_file_holds_the_fixed_parameters_too(tmp_path):
    """The written [supply] table reads back as the same supply: the parameters a
    calibration held fixed (a jam threshold, junction control) with the ones it moved."""
    import tomllib

    from egress.calibration.driver import write_supply_toml
    from egress.config.supply import check_supply

    spec = SupplySpec(signal_penalty=0.2, jam_threshold=0.8, junction_control=True,
                      speed={"arterial_major": 0.548, "freeway": 1.08},
                      capacity={"ramp": 0.9})
    path = write_supply_toml(spec.values(), tmp_path / "calibrated.supply.toml")
    back = check_supply(tomllib.loads(path.read_text())["supply"], path)
    assert back == spec


def test_reach_allows_for_the_noise_of_the_worst_of_many_rows():
    """At the noise floor nothing is beyond the OD's reach: 900 free-flowing rows
    whose speed no demand changes, observed with 3 km/h noise, put their worst
    row about 3.5 sd off; a row 25 km/h off is beyond reach."""
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from egress.calibration.diagnosis import _reach

    rng = np.random.default_rng(5)
    sim = np.full(900, 80.0)
    obs = sim + rng.normal(0.0, 3.0, 900)
    table = pd.DataFrame({"segment": [f"s{i}" for i in range(900)], "begin": 0.0,
                          "speed": obs, "speed_sd": 3.0})
    problem = SimpleNamespace(obs=SimpleNamespace(table=table))
    best = SimpleNamespace(values=pd.DataFrame({"speed": sim}), x=np.ones(3))
    model = SimpleNamespace(predict=lambda x: {"speed": sim})
    assert np.abs(obs - sim).max() > 3 * 3.0  # the worst row is far off by noise alone
    assert _reach(problem, model, best)["reachable"].all()
    table.loc[7, "speed"] = 55.0
    worst = _reach(problem, model, best).set_index("segment")
    assert not worst.loc["s7", "reachable"] and worst["reachable"].sum() == len(worst) - 1


def test_a_supply_step_around_the_same_incumbent_simulates_nothing_twice(
        tmp_path, typed_road, arterial_at_60):
    """Probes around an incumbent that has not changed are reused, and a step
    already simulated from it is not simulated again: same OD, supply and seed
    give the same result, and the budget goes to the search instead."""
    import numpy as np

    from egress import plain_calibration_problem
    from egress.calibration.driver import _Runner
    from egress.calibration.search import _State, supply_step

    taz, od, obs = arterial_at_60
    problem = plain_calibration_problem(typed_road, taz, od, obs, end=900, seed=3,
                                        supply={"speed.arterial": (0.3, 1.5)})
    run = _Runner(problem, tmp_path / "cal", "metamodel", budget=8, seed=3, resume=False,
                  keep_runs=False, progress=False)
    start = run(problem.x0, "start")
    s = _State()
    supply_step(run, s)
    assert [r["tag"] for r in run.history] == ["start", "s1.speed.arterial", "s1"]
    # the incumbent unchanged (as after a failed step), the same trust region
    run.best, s.supply_radius = start, s.supply_radius / 2
    supply_step(run, s)
    assert len(run.history) == 3 and s.supply_failed
    # a smaller trust region gives another step: only that one is simulated
    supply_step(run, s)
    assert [r["tag"] for r in run.history][3:] in ([], ["s3"])
    seen = [(tuple(e.x), tuple(e.theta)) for e in run.evals]
    assert len(set(seen)) == len(seen)
    assert np.isfinite(run.best.objective)
