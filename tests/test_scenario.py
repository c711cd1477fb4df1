"""Scenario validation: every problem found, named, and reported together."""

from __future__ import annotations

import pytest
from conftest import write_file

from egress.config.scenario import load_scenario
from egress.config.supply import check_supply
from egress.errors import MissingFileError, ScenarioError

VENUES = """
[study_area]
name = "test"
polygon = [[-122.34, 47.58], [-122.30, 47.58], [-122.30, 47.60]]

[[venues]]
id = "arena"
name = "Arena"
lon = -122.3195
lat = 47.5925

[[venues.lots]]
id = "main"
name = "Main lot"
capacity = 500
exits = [{exits}]
"""


def scenario_text(net, venues="venues.toml", extra_sim="", routes='["r.rou.xml"]'):
    return f"""
        name = "t"
        [network]
        file = "{net}"
        venues = "{venues}"
        [simulation]
        begin = "21:30"
        end = "22:00"
        {extra_sim}
        [demand]
        routes = {routes}
        """


@pytest.fixture
def folder(tmp_path):
    write_file(tmp_path / "r.rou.xml", "<routes/>")
    return tmp_path


def test_valid_scenario_loads(folder, venue_net):
    write_file(folder / "venues.toml", VENUES.format(exits='"lot_exit"'))
    s = load_scenario(write_file(folder / "s.toml", scenario_text(venue_net)))
    assert s.simulation.begin == 21.5 * 3600 and s.simulation.end == 22 * 3600
    assert s.simulation.mode == "micro" and s.simulation.seed == 42
    assert s.routes == [folder / "r.rou.xml"]
    assert s.venues["arena"].exits == ["lot_exit"]
    assert s.venues["arena"].capacity == 500


def test_missing_scenario_file(tmp_path):
    with pytest.raises(MissingFileError, match="nope.toml: scenario file not found"):
        load_scenario(tmp_path / "nope.toml")


def test_malformed_toml_names_file_and_line(tmp_path):
    path = write_file(tmp_path / "bad.toml", 'name = "x"\n[simulation\n')
    with pytest.raises(ScenarioError, match=r"bad.toml: malformed TOML: .*line 2"):
        load_scenario(path)


def test_all_problems_reported_together(folder, venue_net):
    text = scenario_text(venue_net, extra_sim='sede = 3\nstep_length = "fast"\nmode = "nano"',
                         routes='["missing.rou.xml"]')
    path = write_file(folder / "s.toml", text.replace('venues = "venues.toml"', ""))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    problems = err.value.problems
    assert "simulation.sede: unknown key (did you mean simulation.seed?)" in problems
    assert "simulation.step_length: expected a number, got 'fast'" in problems
    assert any(p.startswith("simulation.mode: must be one of micro, meso") for p in problems)
    assert any(p.startswith("demand.routes[0]:") and "not found" in p for p in problems)
    assert len(problems) == 4
    assert str(path) in str(err.value)


def test_required_keys_and_time_order(folder, venue_net):
    path = write_file(folder / "s.toml", f"""
        [network]
        file = "{venue_net}"
        [simulation]
        begin = "22:00"
        end = "21:00"
        [demand]
        """)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert "name: required key missing" in err.value.problems
    assert "simulation.end: must be after simulation.begin" in err.value.problems


def test_bad_time_string(folder, venue_net):
    path = write_file(folder / "s.toml", scenario_text(venue_net).replace('"21:30"', '"9pm"'))
    with pytest.raises(ScenarioError, match=r"simulation.begin: expected a time .* got '9pm'"):
        load_scenario(path, check_network=False)


def test_venue_exit_not_in_network(folder, venue_net):
    write_file(folder / "venues.toml", VENUES.format(exits='"lot_exit", "nowhere"'))
    with pytest.raises(ScenarioError, match=r"lot main: exit edge 'nowhere' is not in"):
        load_scenario(write_file(folder / "s.toml", scenario_text(venue_net)))


def test_venue_without_car_path_to_boundary(folder, tmp_path_factory):
    from conftest import write_plain_net

    # the lot exit leads into an eastbound one-way street; the westbound road
    # y -> z that leaves the area is not connected to it
    net = write_plain_net(tmp_path_factory.mktemp("oneway"),
                          {"w": (0, 0), "m": (800, 0), "e": (1600, 0), "p": (800, 300),
                           "y": (1600, 600), "z": (0, 600)},
                          [("w_m", "w", "m", 1, 13.9), ("m_e", "m", "e", 1, 13.9),
                           ("lot_exit", "p", "m", 1, 5), ("y_z", "y", "z", 1, 13.9)])
    write_file(folder / "venues.toml", VENUES.format(exits='"lot_exit"'))
    with pytest.raises(ScenarioError) as err:
        load_scenario(write_file(folder / "s.toml", scenario_text(net)))
    assert err.value.problems == [
        "venue arena lot main: no car path from exit 'lot_exit' to boundary exit(s) y_z"]


def test_venues_file_problems(folder, venue_net):
    write_file(folder / "venues.toml", """
        [[venues]]
        id = "arena"
        name = "Arena"
        lon = "west"
        lat = 47.59
        [[venues.lots]]
        id = "main"
        name = "Main"
        capacity = -5
        exits = []
        """)
    with pytest.raises(ScenarioError) as err:
        load_scenario(write_file(folder / "s.toml", scenario_text(venue_net)))
    msg = str(err.value)
    assert "venues[0].lon: expected a number" in msg
    assert "venues[0].lots[0].capacity: must be > 0" in msg
    assert "venues[0].lots[0].exits: expected a non-empty list" in msg


def test_supply_table_names_every_problem(tmp_path):
    with pytest.raises(ScenarioError) as err:
        check_supply({"signal_penalty": -1, "speed": {"freeway": 0}, "capacity": {"x": "a"},
                      "calibrate": {"signal_penalty": [2, 1], "speed.freeway": [0.5, 1.5],
                                    "tau": [0, 1]}, "typo": 1}, tmp_path / "s.toml")
    msg = str(err.value)
    for part in ("supply.signal_penalty: must be a number from 0 to 10",
                 "supply.speed.freeway: must be a factor", "supply.capacity.x: must be a factor",
                 "supply.calibrate.signal_penalty: expected [lowest, highest]",
                 "supply.calibrate.tau: not a parameter a calibration can move",
                 "supply.typo: unknown key"):
        assert part in msg, msg
    ok = check_supply({"speed": {"freeway": 1.1},
                       "calibrate": {"capacity.arterial": [0.5, 1.5]}}, tmp_path / "s.toml")
    assert ok.value("speed.freeway") == 1.1 and ok.value("capacity.arterial") == 1.0
    assert ok.with_values({"capacity.arterial": 0.7}).capacity == {"arterial": 0.7}


def test_supply_from_a_file_with_overrides(tmp_path):
    """[supply] file = ... reads a calibrated set; keys beside it replace its values
    factor by factor; the file's own problems name the file."""
    write_file(tmp_path / "cal.supply.toml", """
        [supply]
        signal_penalty = 0.6
        speed = { freeway = 1.1, arterial = 0.8 }""")
    spec = check_supply({"file": "cal.supply.toml", "speed": {"freeway": 1.0}},
                        tmp_path / "s.toml")
    assert spec.signal_penalty == 0.6 and spec.speed == {"freeway": 1.0, "arterial": 0.8}
    with pytest.raises(MissingFileError, match="nope.toml"):
        check_supply({"file": "nope.toml"}, tmp_path / "s.toml")
    write_file(tmp_path / "bad.toml", "[supply]\nsignal_penalty = -2\n")
    with pytest.raises(ScenarioError, match=r"bad.toml.*supply.signal_penalty"):
        check_supply({"file": "bad.toml"}, tmp_path / "s.toml")
    write_file(tmp_path / "empty.toml", "x = 1\n")
    with pytest.raises(ScenarioError, match="expected a \\[supply\\] table"):
        check_supply({"file": "empty.toml"}, tmp_path / "s.toml")
