"""Building networks with netconvert: plain XML folders and OpenStreetMap."""

from __future__ import annotations

import pytest
from conftest import LAT0, LON0, write_file

from egress.errors import MissingFileError, NetworkError, SumoError
from egress.network import boundary_edges, build_network, build_osm, car_successors, read_net


def _osm(tmp_path):
    """A tiny OSM extract: a signalised crossing of two streets, a footway, a
    motorway with its link, and a street piece isolated from the rest."""
    d = 0.0027  # about 200-300 m
    nodes = {
        1: (LAT0, LON0 - d), 2: (LAT0, LON0), 3: (LAT0, LON0 + d),
        4: (LAT0 - d, LON0), 5: (LAT0 + d, LON0),
        6: (LAT0 + 2 * d, LON0 - d), 7: (LAT0 + 2 * d, LON0 + d),   # footway
        8: (LAT0 - 2 * d, LON0 + 3 * d), 9: (LAT0 + 2 * d, LON0 + 3 * d),  # motorway
        10: (LAT0, LON0 + 3 * d),                                 # motorway link end
        11: (LAT0 - 3 * d, LON0 - 3 * d), 12: (LAT0 - 3 * d, LON0 - 2 * d),  # isolated
    }
    ways = {
        100: ([1, 2, 3], {"highway": "primary", "name": "1st Ave S"}),
        101: ([4, 2, 5], {"highway": "secondary", "name": "S Royal Brougham Way"}),
        102: ([6, 7], {"highway": "footway"}),
        103: ([8, 10, 9], {"highway": "motorway", "oneway": "yes", "lanes": "3"}),
        104: ([3, 10], {"highway": "motorway_link", "oneway": "yes"}),
        105: ([11, 12], {"highway": "residential"}),
    }
    node_xml = "\n".join(
        f'  <node id="{i}" lat="{lat:.7f}" lon="{lon:.7f}" version="1">'
        + ('<tag k="highway" v="traffic_signals"/>' if i == 2 else "") + "</node>"
        for i, (lat, lon) in nodes.items())
    way_xml = "\n".join(
        f'  <way id="{w}" version="1">' + "".join(f'<nd ref="{n}"/>' for n in nds)
        + "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items()) + "</way>"
        for w, (nds, tags) in ways.items())
    text = f'<?xml version="1.0"?>\n<osm version="0.6">\n{node_xml}\n{way_xml}\n</osm>\n'
    return write_file(tmp_path / "tiny.osm", text)


@pytest.mark.sumo
def test_osm_import_keeps_a_connected_car_network(tmp_path):
    net_path = build_osm(_osm(tmp_path), tmp_path / "out" / "tiny.net.xml")
    net = read_net(net_path)
    edges = {e.getID(): e for e in net.getEdges() if e.getFunction() != "internal"}
    types = {e.getType() for e in edges.values()}
    assert not any("footway" in t for t in types)
    assert any("motorway" in t for t in types)
    # the isolated residential piece is gone: every edge is in one component
    assert not any(e.getID().startswith(("105", "-105")) for e in edges.values())
    # the crossing tagged traffic_signals is a traffic light
    assert len(net.getTrafficLights()) == 1
    names = {e.getName() for e in edges.values()}
    assert {"1st Ave S", "S Royal Brougham Way"} <= names
    assert all(e.allows("passenger") for e in edges.values())


def test_plain_folder_builds_with_projection(straight_net):
    net = read_net(straight_net)
    lon, lat = net.convertXY2LonLat(*net.getNode("a").getCoord())
    assert lon == pytest.approx(LON0, abs=1e-6) and lat == pytest.approx(LAT0, abs=1e-6)


def test_boundary_edges_exclude_lot_exits(venue_net):
    net = read_net(venue_net)
    entries, exits = boundary_edges(net, exclude=["lot_exit"])
    assert entries == ["e_m", "w_m"] and exits == ["m_e", "m_w"]
    assert "lot_exit" in boundary_edges(net)[0]
    assert car_successors(net)["lot_exit"] == {"m_e", "m_w"}


def test_folder_without_edges_is_an_error(tmp_path):
    write_file(tmp_path / "x" / "a.nod.xml", "<nodes/>")
    with pytest.raises(NetworkError, match="needs .*nod.xml and .*edg.xml"):
        build_network(tmp_path / "x")
    with pytest.raises(MissingFileError):
        build_network(tmp_path / "nothing")


@pytest.mark.sumo
def test_netconvert_failure_quotes_its_error(tmp_path):
    write_file(tmp_path / "y" / "a.nod.xml", '<nodes><node id="a" x="0" y="0"/></nodes>')
    write_file(tmp_path / "y" / "a.edg.xml", '<edges><edge id="e" from="a" to="zz"/></edges>')
    with pytest.raises(SumoError, match=r"netconvert on .* failed .*zz"):
        build_network(tmp_path / "y")
