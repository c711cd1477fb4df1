"""Places by coordinates: what the venues and policy files accept, and what they refuse."""

from __future__ import annotations

import pytest
from conftest import write_file

from egress.config.venues import load_venues
from egress.errors import PolicyError, ScenarioError
from egress.policies.file import load_policies


def test_a_lot_by_coordinates_needs_no_exits(tmp_path):
    v = load_venues(write_file(tmp_path / "v.toml", """
        [[venues]]
        id = "arena"
        name = "Arena"
        lon = -93.25
        lat = 44.97
        [[venues.lots]]
        id = "a"
        name = "Lot A"
        capacity = 10
        lon = -93.2536
        lat = 44.9727
        heading = 90
        """))
    lot = v["arena"].lots[0]
    assert lot.exits == () and (lot.lon, lot.lat, lot.heading) == (-93.2536, 44.9727, 90.0)


@pytest.mark.parametrize("keys, message", [
    ('exits = ["e"]\nlon = -93.25\nlat = 44.97', "either exits or lon/lat"),
    ("lon = -93.25", "both lon and lat"),
    ("", "exits: expected a non-empty list of edge ids (or lon and lat"),
])
def test_a_lot_gives_exits_or_a_point(tmp_path, keys, message):
    path = write_file(tmp_path / "v.toml", f"""
[[venues]]
id = "arena"
name = "Arena"
lon = -93.25
lat = 44.97
[[venues.lots]]
id = "a"
name = "Lot A"
capacity = 10
{keys}
""")
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(")):
        load_venues(path)


def test_points_in_a_policy_file_need_the_network(tmp_path):
    path = write_file(tmp_path / "p.toml", """
        [[policies]]
        name = "p"
        description = "d"
        kind = "ramp_diversion"
        signs = [{ lon = -93.25, lat = 44.97, heading = 90 }]
        from_ramp = "a"
        to_ramp = { lon = -93.24, lat = 44.97 }
        """)
    with pytest.raises(PolicyError, match="signs, to_ramp given by coordinates need the "
                                           "network"):
        load_policies(path)
