"""Tests of egress.zones on a tiny network built by netconvert.

Layout (metres east/north of a point in SODO, shifted by OFFSET): a one-way
freeway F1 -> F2 -> F3 running north along x = 0 (F1 enters the network, F3
leaves it), an off-ramp to a one-way ring of local streets R12, R23, R34, R41
at x = 2000..3000, an entry street ``in`` and an exit street ``out`` east of
the ring, and a lot exit L feeding the ring from a parking lot north of it.
Midpoints lie at least about 100 m from any level-13 cell border.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
import s2sphere

from egress import network, sumo
from egress.config.venues import Lot, Venue, Venues
from egress.errors import InputError
from egress.network import zones

LON0, LAT0 = -122.33, 47.59
OFFSET = (-500.0, 400.0)
M_LAT = 111_320.0
M_LON = 111_320.0 * math.cos(math.radians(LAT0))

NODES = {
    "s": (0, -3000), "a": (0, -1000), "b": (0, 1000), "n": (0, 3000),
    "r1": (2000, -500), "r2": (3000, -500), "r3": (3000, 500), "r4": (2000, 500),
    "eo": (4000, 500), "ei": (4000, -500), "lot": (2500, 1500),
}
EDGES = {  # id: (from, to, type, extra attributes)
    "F1": ("s", "a", "highway.motorway", ""),
    "F2": ("a", "b", "highway.motorway", ""),
    "F3": ("b", "n", "highway.motorway", ""),
    "ramp": ("b", "r4", "highway.motorway_link", ""),
    "R12": ("r1", "r2", "highway.residential", ""),
    "R23": ("r2", "r3", "highway.residential", ""),
    "R34": ("r3", "r4", "highway.residential", 'speed="25"'),
    "R41": ("r4", "r1", "highway.residential", ""),
    "out": ("r3", "eo", "highway.residential", ""),
    "in": ("ei", "r2", "highway.residential", ""),
    "L": ("lot", "r4", "highway.residential", ""),
}
TYPES = """<types>
    <type id="highway.motorway" priority="13" numLanes="3" speed="29.06" oneway="true"/>
    <type id="highway.motorway_link" priority="12" numLanes="1" speed="15.0" oneway="true"/>
    <type id="highway.residential" priority="4" numLanes="1" speed="13.89" oneway="true"/>
</types>
"""
VENUE_XY = (2500, 0)
NORTH_XY = (0, 5000)
EAST_XY = (6000, 0)


def lonlat(x: float, y: float) -> tuple[float, float]:
    """Local metres (before OFFSET) to lon/lat."""
    x, y = x + OFFSET[0], y + OFFSET[1]
    return LON0 + x / M_LON, LAT0 + y / M_LAT


def s2_cell(lon: float, lat: float) -> str:
    """Level-13 cell straight from s2sphere (independent of egress.zones)."""
    ll = s2sphere.LatLng.from_degrees(lat, lon)
    return s2sphere.CellId.from_lat_lng(ll).parent(13).to_token()


def midpoint_cell(edge: str) -> str:
    f, t = EDGES[edge][:2]
    (x1, y1), (x2, y2) = NODES[f], NODES[t]
    return s2_cell(*lonlat((x1 + x2) / 2, (y1 + y2) / 2))


@pytest.fixture(scope="module")
def net_path(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    nodes = "\n".join(
        '    <node id="{}" x="{:.8f}" y="{:.8f}"/>'.format(n, *lonlat(x, y))
        for n, (x, y) in NODES.items())
    (folder / "tiny.nod.xml").write_text(f"<nodes>\n{nodes}\n</nodes>\n")
    edges = "\n".join(f'    <edge id="{e}" from="{f}" to="{t}" type="{ty}" {extra}/>'
                      for e, (f, t, ty, extra) in EDGES.items())
    (folder / "tiny.edg.xml").write_text(f"<edges>\n{edges}\n</edges>\n")
    (folder / "tiny.typ.xml").write_text(TYPES)
    return network.build_network(folder)


@pytest.fixture(scope="module")
def net(net_path):
    return network.read_net(net_path)


@pytest.fixture(scope="module")
def venues(tmp_path_factory) -> Venues:
    lon, lat = lonlat(*VENUE_XY)
    lot = Lot("garage", "Garage", 500, ("L",))
    return Venues(Path("venues.toml"), {"arena": Venue("arena", "Arena", lon, lat, (lot,))})


@pytest.fixture(scope="module")
def built(net, venues) -> zones.Zones:
    places = pd.DataFrame({"lon": [lonlat(*NORTH_XY)[0], lonlat(*EAST_XY)[0]],
                           "lat": [lonlat(*NORTH_XY)[1], lonlat(*EAST_XY)[1]],
                           "population": [1000.0, 250.0]})
    return zones.build_zones(net, venues, external=places)


# ------------------------------------------------------------------ cells

def test_cell_functions_match_s2sphere():
    lon, lat = -122.3317, 47.5952
    token = zones.cell_of(lon, lat)
    assert token == s2_cell(lon, lat)
    cid = s2sphere.CellId.from_token(token)
    assert cid.level() == zones.LEVEL
    corners = zones.cell_polygon(token)
    assert len(corners) == 4
    clon, clat = zones.cell_center(token)
    assert zones.cell_of(clon, clat) == token
    assert min(c[0] for c in corners) < clon < max(c[0] for c in corners)
    assert 1.0 < zones.cell_area_km2(token) < 1.6  # ~1.24 km² in Seattle


def test_bad_token_and_coordinates_raise_input_error():
    with pytest.raises(InputError, match="not a valid S2 cell token"):
        zones.cell_center("zz-not-a-token")
    with pytest.raises(InputError, match="lon/lat"):
        zones.cell_of(200.0, 47.0)
    assert not zones.is_token("54906a9")  # valid cell, wrong level
    assert zones.is_token(zones.cell_of(-122.33, 47.59))


# ------------------------------------------------------------------ edges

def test_each_edge_lands_in_the_cell_of_its_midpoint(net):
    table = zones.edge_cells(net).set_index("edge")
    assert sorted(table.index) == sorted(EDGES)
    for edge in EDGES:
        assert table.loc[edge, "token"] == midpoint_cell(edge), edge


def test_edge_crossing_a_border_gets_the_cell_of_its_midpoint(net):
    table = zones.edge_cells(net).set_index("edge")
    crossing = [e for e, (f, t, *_rest) in EDGES.items()
                if s2_cell(*lonlat(*NODES[f])) != s2_cell(*lonlat(*NODES[t]))]
    assert "R12" in crossing
    for edge in crossing:
        assert table.loc[edge, "token"] == midpoint_cell(edge)
    # R12 starts in one cell and has its middle in another one
    assert midpoint_cell("R12") != s2_cell(*lonlat(*NODES["r1"]))


def test_freeway_and_ramp_are_not_sources_but_boundary_freeway_edges_are(net):
    table = zones.edge_cells(net).set_index("edge")
    assert not table.loc["F2", "is_source"] and not table.loc["F2", "is_sink"]   # mainline
    assert not table.loc["ramp", "is_source"] and not table.loc["ramp", "is_sink"]  # type
    assert not table.loc["R34", "is_source"]                                     # speed 25
    assert table.loc["F1", "is_source"] and not table.loc["F1", "is_sink"]       # entry
    assert table.loc["F3", "is_sink"] and not table.loc["F3", "is_source"]       # exit
    assert table.loc["R12", "is_source"] and table.loc["R12", "is_sink"]
    assert table.loc["F2", "lanes"] == 3


def test_lot_exit_is_source_of_its_venue_zone_only(built, venues):
    venue_zone = built.venue_zone("arena")
    assert venue_zone == s2_cell(venues["arena"].lon, venues["arena"].lat)
    own_cell = midpoint_cell("L")
    assert own_cell != venue_zone
    assert "L" in built.sources[venue_zone]
    assert all("L" not in src for tok, src in built.sources.items() if tok != venue_zone)
    assert all("L" not in snk for snk in built.sinks.values())
    assert built.token_of_edge["L"] == own_cell


def test_lot_exits_given_as_mapping(net):
    zone = zones.cell_of(*lonlat(*VENUE_XY))
    table = zones.edge_cells(net, {"L": zone}).set_index("edge")
    assert table.loc["L", "source_zone"] == zone
    assert table.loc["L", "is_source"] and not table.loc["L", "is_sink"]
    with pytest.raises(InputError, match="nope.*not an edge"):
        zones.edge_cells(net, {"nope": zone})


# ------------------------------------------------------------------ zones

def test_freeway_only_cell_is_reported_unusable(built):
    f2_cell = midpoint_cell("F2")
    # F2 (mainline), the ramp and the lot exit L (a source of the venue zone only)
    # each sit alone in a cell: no trip can start or end in those cells
    no_trips = {"F2", "ramp", "L"}
    cells = {midpoint_cell(e) for e in EDGES}
    expected = sorted(c for c in cells
                      if all(e in no_trips for e in EDGES if midpoint_cell(e) == c))
    assert f2_cell in expected
    assert built.unusable == expected
    row = built.table.set_index("token").loc[f2_cell]
    assert (row["n_edges"], row["n_sources"], row["n_sinks"]) == (1, 0, 0)


def test_unusable_cell_is_logged(net, caplog):
    with caplog.at_level("WARNING", logger="egress.network.zones"):
        zones.build_zones(net)
    assert midpoint_cell("F2") in caplog.text


def test_weights_are_length_times_lanes_normalised(built, net):
    for table in (built.sources, built.sinks):
        for weights in table.values():
            if weights:
                assert sum(weights.values()) == pytest.approx(1.0)
    # the venue zone holds R23 (and R34, too fast) and gets the lot exit L as a source
    venue_zone = built.venue_zone("arena")
    assert midpoint_cell("R23") == venue_zone == midpoint_cell("R34")
    w = built.sources[venue_zone]
    assert set(w) == {"R23", "L"}
    ratio = net.getEdge("R23").getLength() / net.getEdge("L").getLength()
    assert w["R23"] / w["L"] == pytest.approx(ratio)
    assert built.sinks[venue_zone] == {"R23": 1.0}


def test_table_columns_and_kinds(built):
    assert list(built.table.columns) == ["token", "kind", "lon", "lat", "area_km2", "n_edges",
                                         "n_sources", "n_sinks", "population"]
    internal = built.table[built.table["kind"] == "internal"]
    assert internal["population"].isna().all()
    assert set(internal["token"]) >= {midpoint_cell(e) for e in EDGES}
    assert built.tokens == list(built.table["token"])


def test_external_zones_attach_to_nearest_boundary_edges(built, net):
    north = s2_cell(*lonlat(*NORTH_XY))
    east = s2_cell(*lonlat(*EAST_XY))
    ext = built.table.set_index("token")
    assert ext.loc[north, "kind"] == "external" and ext.loc[north, "population"] == 1000.0
    assert ext.loc[east, "population"] == 250.0
    assert list(built.sinks[north]) == ["F3"]
    assert list(built.sinks[east]) == ["out"]
    # both entries lie within d_min + 1500 m of the north cell: weights lanes x speed⁴
    src = built.sources[north]
    assert set(src) == {"F1", "in"}
    f1, inn = net.getEdge("F1"), net.getEdge("in")
    expected = 3 * f1.getSpeed() ** 4 / (3 * f1.getSpeed() ** 4 + inn.getSpeed() ** 4)
    assert src["F1"] == pytest.approx(expected)


def test_external_rows_in_one_cell_are_summed_and_validated(net):
    token = s2_cell(*lonlat(*NORTH_XY))
    places = pd.DataFrame({"token": [token, token], "population": [10.0, 5.0]})
    z = zones.build_zones(net, external=places)
    assert z.external.to_dict("list") == {"token": [token], "population": [15.0]}
    inside = midpoint_cell("R12")
    bad = pd.DataFrame({"token": ["zz", inside, token], "population": [1.0, 2.0, -3.0]})
    with pytest.raises(InputError) as err:
        zones.build_zones(net, external=bad)
    assert len(err.value.problems) == 3
    assert "row 0" in str(err.value) and "row 1" in str(err.value) and "row 2" in str(err.value)


def test_taz_file_has_tokens_as_ids_and_weights_summing_to_one(built, tmp_path):
    path = built.write_taz(tmp_path / "zones.taz.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "additional"
    ids = [t.get("id") for t in root.iter("taz")]
    assert ids == built.tokens
    for taz in root.iter("taz"):
        for tag in ("tazSource", "tazSink"):
            weights = [float(e.get("weight")) for e in taz.iter(tag)]
            if weights:
                assert sum(weights) == pytest.approx(1.0)
    assert path.read_bytes() == built.write_taz(tmp_path / "again.taz.xml").read_bytes()


def test_od2trips_accepts_taz_and_tazrelation(built, tmp_path):
    from egress.demand import od

    taz = built.write_taz(tmp_path / "zones.taz.xml")
    origin = built.venue_zone("arena")
    dest = s2_cell(*lonlat(*NORTH_XY))
    table = pd.DataFrame({"origin": [origin], "destination": [dest], "begin": [0.0],
                          "end": [600.0], "trips": [20.0]})
    rel = od.write_tazrelation(table, tmp_path / "od.xml")
    trips = tmp_path / "trips.xml"
    sumo.run(["od2trips", "--taz-files", str(taz), "--tazrelation-files", str(rel),
              "--output-file", str(trips), "--seed", "1"])
    found = ET.parse(trips).getroot().findall("trip")
    assert len(found) == 20
    assert {t.get("fromTaz") for t in found} == {origin}
    assert {t.get("to") for t in found} == {"F3"}


def test_zones_table_and_write_zones(net_path, venues, tmp_path):
    table = zones.zones_table(net_path, venues)
    assert list(table.columns) == ["token", "kind", "lon", "lat", "area_km2", "n_edges",
                                   "n_sources", "n_sinks"]
    paths = zones.write_zones(net_path, tmp_path / "out", venues)
    assert set(paths) == {"zones", "taz"}
    back = pd.read_csv(paths["zones"], dtype={"token": str})
    assert list(back["token"]) == list(table["token"])
    assert paths["taz"].name == "zones.taz.xml" and paths["taz"].is_file()
