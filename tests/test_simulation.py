"""egress simulate on a single straight road: travel times a hand can compute."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from conftest import EXACT_VTYPE, write_file

from egress.engine import simulate
from egress.network import read_net


@pytest.fixture
def straight_run(tmp_path, straight_net):
    write_file(tmp_path / "r.rou.xml", f"""
        <routes>
          {EXACT_VTYPE}
          <vehicle id="first" type="exact" depart="0" departSpeed="max" departPos="0"
                   arrivalPos="max"><route edges="ab bc"/></vehicle>
          <vehicle id="second" type="exact" depart="0" departSpeed="max" departPos="0"
                   arrivalPos="max"><route edges="ab bc"/></vehicle>
          <vehicle id="late" type="exact" depart="250" departSpeed="max" departPos="0"
                   arrivalPos="max"><route edges="ab bc"/></vehicle>
        </routes>""")
    scenario = write_file(tmp_path / "s.toml", f"""
        name = "straight"
        [network]
        file = "{straight_net}"
        [simulation]
        begin = 0
        end = 300
        seed = 1
        edgedata_period = 100
        [demand]
        routes = ["r.rou.xml"]
        [outputs]
        format = "csv"
        """)
    return simulate(scenario, tmp_path / "run", progress=False)


def test_free_flow_travel_time_matches_hand_calculation(straight_run, straight_net):
    net = read_net(straight_net)
    length = net.getEdge("ab").getLength() + net.getEdge("bc").getLength()
    first = straight_run.vehicles.set_index("vehicle").loc["first"]
    assert first["status"] == "arrived"
    assert first["depart"] == first["ready"] == 0
    # 10 m/s over the whole route, counted in whole 1 s steps
    assert first["travel_time"] == pytest.approx(length / 10.0, abs=1.0)
    assert first["travel_time"] == first["arrival"] - first["ready"]
    # SUMO's own trip summary agrees
    assert first["travel_time"] == pytest.approx(first["route_length"] / 10.0, abs=1.0)


def test_insertion_delay_is_part_of_travel_time(straight_run):
    trips = straight_run.vehicles.set_index("vehicle")
    second = trips.loc["second"]
    wait = second["depart"] - second["ready"]
    assert wait > 0
    assert second["travel_time"] == second["arrival"] - second["ready"]
    # same free-flow drive, so the whole difference is the wait to be inserted
    assert second["travel_time"] - trips.loc["first", "travel_time"] == pytest.approx(
        wait, abs=1.0)


def test_unfinished_vehicle_counted_with_time_so_far(straight_run):
    late = straight_run.vehicles.set_index("vehicle").loc["late"]
    assert late["status"] == "inside_at_end"
    assert late["travel_time"] == pytest.approx(300 - 250, abs=1e-9)
    s = straight_run.summary
    assert (s["inserted"], s["arrived"], s["inside_at_end"], s["teleports"]) == (3, 2, 1, 0)
    assert s["state"] == "complete" and straight_run.valid


def test_edge_speeds_are_space_mean_per_interval(straight_run):
    edges = straight_run.edges
    assert set(edges["begin"]) == {0.0, 100.0, 200.0}
    busy = edges[edges["sampled_seconds"] > 0]
    assert busy["speed"].between(9.9, 10.01).all()
    # 2 vehicles enter bc once each before t=300, the late one never does
    assert edges.loc[edges["edge"] == "bc", "entered"].sum() == 2


def test_run_folder_is_complete_and_reproducible(straight_run):
    run = straight_run.run_dir
    for name in ("run.sumocfg", "tripinfo.xml", "edgedata.xml", "vehroutes.xml",
                 "statistics.xml", "vehicles.csv", "edges.csv", "summary.json"):
        assert (run / name).is_file(), name
    cfg = ET.parse(run / "run.sumocfg").getroot()
    assert cfg.find("tripinfo-output.write-unfinished").get("value") == "true"
    assert cfg.find("vehroute-output.exit-times").get("value") == "true"
    assert cfg.find("vehroute-output.write-unfinished").get("value") == "true"
    assert cfg.find("seed").get("value") == "1"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["versions"]["sumo"].startswith("1.28")
    assert summary["state"] == "complete" and summary["seed"] == 1
    assert summary["mode"] == "micro"


def test_same_seed_same_result(tmp_path, straight_run):
    again = simulate(straight_run.summary["scenario"], tmp_path / "again", progress=False)
    assert again.vehicles.equals(straight_run.vehicles)


def test_vehroutes_record_when_each_edge_was_left(straight_run):
    from egress.engine.outputs import read_vehroutes

    routes = read_vehroutes(straight_run.run_dir / "vehroutes.xml").set_index("vehicle")
    first = routes.loc["first"]
    assert first["edges"] == ("ab", "bc")
    exit_ab, exit_bc = first["exit_times"]
    assert exit_ab == pytest.approx(100, abs=1.5)
    assert exit_bc == pytest.approx(first["arrival"])


def test_vehroutes_keep_the_last_route_and_why_it_replaced_the_first(tmp_path):
    from egress.engine.outputs import read_vehroutes
    from egress.errors import SumoError

    path = tmp_path / "vehroutes.xml"
    path.write_text("""<routes>
    <vType id="event"/>
    <vehicle id="a" type="event" depart="10.00" arrival="70.00">
        <routeDistribution>
            <route replacedOnEdge="x" reason="sign_1" replacedAtTime="20.00" probability="0"
                   edges="x y" exitTimes="20.00 40.00"/>
            <route edges="x z" exitTimes="20.00 70.00"/>
        </routeDistribution>
    </vehicle>
    <vehicle id="b" type="background" depart="15.00">
        <route edges="y" exitTimes="30.00"/>
    </vehicle>
    <vehicle id="c&amp;d" type="background" depart="16.00" departLane="best" arrival="31.00">
        <route edges="y" exitTimes="31.00"/>
    </vehicle>
    <vehicle depart="17.00" id="e" type="background" arrival="32.00">
        <route exitTimes="32.00" edges="y"/>
    </vehicle>
</routes>
""")
    df = read_vehroutes(path).set_index("vehicle")
    assert df.loc["a", "edges"] == ("x", "z")
    assert list(df.loc["a", "exit_times"]) == [20.0, 70.0]
    assert df.loc["a", "rerouted_by"] == "sign_1"
    assert df.loc["b", "rerouted_by"] == "" and df.loc["b", "arrival"] == -1
    assert df.loc["b", "vtype"] == "background"
    # escaped ids, and attributes in another order
    assert df.loc["c&d", "arrival"] == 31.0 and df.loc["c&d", "edges"] == ("y",)
    assert df.loc["e", "arrival"] == 32.0 and list(df.loc["e", "exit_times"]) == [32.0]
    assert list(df.index) == ["a", "b", "c&d", "e"]
    path.write_text(path.read_text()[:200])
    with pytest.raises(SumoError, match="unreadable SUMO output"):
        read_vehroutes(path)
    with pytest.raises(SumoError, match="missing"):
        read_vehroutes(tmp_path / "none.xml")


def test_mesoscopic_mode(tmp_path, straight_run):
    meso = simulate(straight_run.summary["scenario"], tmp_path / "meso", mode="meso",
                    progress=False)
    cfg = ET.parse(meso.config).getroot()
    assert cfg.find("mesosim").get("value") == "true"
    # the mode recorded is the one SUMO reports having run
    assert meso.summary["mode"] == "meso" and straight_run.summary["mode"] == "micro"
    assert meso.summary["arrived"] == 2


def test_sumo_log_is_kept_with_and_without_a_progress_bar(straight_run):
    """Without a bar SUMO writes sumo.log itself; with one, the log passes
    through egress, which advances the bar by SUMO's step log."""
    import io

    from tqdm import tqdm

    from egress import sumo
    from egress.engine.process import _follow, run_sumo

    run = straight_run.run_dir
    log = run / "sumo.log"
    run_sumo(run / "run.sumocfg", 0, 300, progress=False)
    quiet = log.read_text()
    assert "Loading net-file" in quiet and "Step #" in quiet

    bar = tqdm(total=300, file=io.StringIO(), disable=False)
    cmd = [sumo.binary("sumo"), "-c", "run.sumocfg"]
    with open(log, "wb") as f:
        assert _follow(cmd, run, None, f, bar, 0.0) == 0
    assert bar.n == 300
    shown = log.read_text()
    assert "Loading net-file" in shown and "Step #" in shown
