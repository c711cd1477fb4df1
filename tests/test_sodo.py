"""The bundled SODO network: what it must contain, and that cars get everywhere."""

from __future__ import annotations

import math

import pytest
from conftest import ROOT

from egress.config.venues import load_venues
from egress.network import boundary_edges, build_network, car_successors, reachable, read_net

SODO = ROOT / "networks" / "sodo"
NET = SODO / "sodo.net.xml"


@pytest.fixture(scope="module")
def net():
    return read_net(NET)


@pytest.fixture(scope="module")
def venues():
    return load_venues(SODO / "venues.toml")


def test_every_venue_exit_reaches_every_boundary_exit(net, venues):
    graph = car_successors(net)
    entries, exits = boundary_edges(net, exclude=venues.lot_exits)
    assert len(exits) >= 15 and len(entries) >= 15
    for venue in venues.venues.values():
        assert venue.exits, venue.id
        for edge in venue.exits:
            missing = set(exits) - reachable(graph, edge)
            assert not missing, f"{venue.id} {edge} cannot reach {sorted(missing)}"


def test_venues_and_lots(venues):
    lumen, tmobile = venues["lumen_field"], venues["tmobile_park"]
    # published stadium coordinates (Wikipedia), within 100 m
    for venue, (lon, lat) in ((lumen, (-122.3317, 47.5952)), (tmobile, (-122.3325, 47.5914))):
        dx = (venue.lon - lon) * 111_320 * math.cos(math.radians(lat))
        dy = (venue.lat - lat) * 111_320
        assert math.hypot(dx, dy) < 100, venue.id
    # room for a sold-out football game's cars (68,000 / 2.5 per car x 0.55)
    assert lumen.capacity > 68_000 * 0.55 / 2.5
    assert venues.study_area is not None and len(venues.study_area.polygon) >= 4


def test_named_roads_present(net):
    names = {e.getName() for e in net.getEdges()}
    required = {
        "I-5", "SR 99", "I-90", "S Spokane St", "West Seattle Bridge", "Alaskan Way S",
        "1st Ave S", "Occidental Ave S", "4th Ave S", "6th Ave S", "Airport Way S",
        "S Royal Brougham Way", "Edgar Martinez Dr S", "S Atlantic St", "S Holgate St",
        "S Lander St", "Cherry St",
    }
    assert required <= names, required - names


def test_i5_hov_lanes_reserved_for_hov(net):
    mainline = [e for e in net.getEdges() if e.getName() == "I-5" and e.getType() == "freeway"]
    assert len(mainline) >= 10
    for edge in mainline:
        left = edge.getLanes()[-1]
        assert left.allows("hov") and not left.allows("passenger"), edge.getID()
        assert all(lane.allows("passenger") for lane in edge.getLanes()[:-1]), edge.getID()


def test_cherry_st_on_ramp_joins_i5_northbound(net):
    ramp = net.getEdge("I5_NB_on_cherry")
    assert any(e.getID().startswith("I5_NB") for e in ramp.getOutgoing())


def test_signals_at_arterial_intersections(net):
    assert len(net.getTrafficLights()) >= 40


@pytest.mark.sumo
def test_committed_network_matches_its_sources(tmp_path, net):
    rebuilt = read_net(build_network(SODO, tmp_path / "sodo.net.xml"))

    def describe(n):
        return {e.getID(): (e.getFromNode().getID(), e.getToNode().getID(),
                            tuple(sorted(lane.getPermissions())
                                  for lane in e.getLanes()), round(e.getSpeed(), 2))
                for e in n.getEdges() if e.getFunction() != "internal"}

    assert describe(rebuilt) == describe(net)
