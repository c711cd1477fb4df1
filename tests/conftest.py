"""Shared fixtures: tiny hand-made networks built by the real netconvert."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from egress.network import build_network

ROOT = Path(__file__).resolve().parents[1]
LON0, LAT0 = -122.3300, 47.5900
#: Degrees of longitude per metre at LAT0 (spherical approximation).
DEG_PER_M = 1 / 75_066.0


def write_plain_net(folder: Path, nodes: dict[str, tuple[float, float]],
                    edges: list[tuple], name: str = "net") -> Path:
    """Write plain XML and build a network.

    `nodes` maps id -> (east metres, north metres) from (LON0, LAT0); `edges`
    are ``(id, from, to, lanes, speed[, extra attributes])``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    node_xml = "\n".join(
        f'  <node id="{n}" x="{LON0 + e * DEG_PER_M:.7f}" y="{LAT0 + nn / 111_200.0:.7f}"/>'
        for n, (e, nn) in nodes.items())
    edge_xml = "\n".join(
        f'  <edge id="{e[0]}" from="{e[1]}" to="{e[2]}" numLanes="{e[3]}" speed="{e[4]}" '
        f'{e[5] if len(e) > 5 else ""}/>' for e in edges)
    (folder / f"{name}.nod.xml").write_text(f"<nodes>\n{node_xml}\n</nodes>\n")
    (folder / f"{name}.edg.xml").write_text(f"<edges>\n{edge_xml}\n</edges>\n")
    return build_network(folder, folder / f"{name}.net.xml")


@pytest.fixture(scope="session")
def straight_net(tmp_path_factory) -> Path:
    """A 2 km one-way road a -> b -> c, one lane, 10 m/s, two 1 km edges."""
    folder = tmp_path_factory.mktemp("straight")
    return write_plain_net(folder, {"a": (0, 0), "b": (1000, 0), "c": (2000, 0)},
                           [("ab", "a", "b", 1, 10), ("bc", "b", "c", 1, 10)])


@pytest.fixture(scope="session")
def venue_net(tmp_path_factory) -> Path:
    """A two-way road w <-> m <-> e with a lot exit edge from lot node p into m."""
    folder = tmp_path_factory.mktemp("venue")
    return write_plain_net(
        folder,
        {"w": (0, 0), "m": (800, 0), "e": (1600, 0), "p": (800, 300)},
        [("w_m", "w", "m", 1, 13.9), ("m_e", "m", "e", 1, 13.9),
         ("e_m", "e", "m", 1, 13.9), ("m_w", "m", "w", 1, 13.9),
         ("lot_exit", "p", "m", 1, 5)])


def write_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


#: vType for hand-computable runs: no randomness, instant acceleration.
EXACT_VTYPE = ('<vType id="exact" accel="50" decel="50" emergencyDecel="50" sigma="0" '
               'length="5" minGap="2.5" tau="1" speedFactor="1" speedDev="0"/>')


# --------------------------------------------------------------------------- a tiny city

LUMEN = (-122.3317, 47.5952)

# A 3 x 3 grid of two-way streets near SODO (about 750 m x 900 m blocks), four
# two-way stubs to the outside (boundary entries/exits) and three one-way lot
# exits feeding the grid.
_NODES = {
    **{f"n{i}{j}": (-122.345 + 0.010 * j, 47.585 + 0.008 * i) for i in range(3) for j in range(3)},
    "north": (-122.335, 47.608), "south": (-122.335, 47.578),
    "east": (-122.316, 47.593), "west": (-122.354, 47.593),
    "lotA": (-122.331, 47.5965), "lotB1": (-122.329, 47.589), "lotB2": (-122.327, 47.5895),
}


def _edges() -> list[tuple[str, str, str, int]]:
    two_way = []
    for i in range(3):
        for j in range(3):
            if j < 2:
                two_way.append((f"n{i}{j}", f"n{i}{j + 1}"))
            if i < 2:
                two_way.append((f"n{i}{j}", f"n{i + 1}{j}"))
    two_way += [("n21", "north"), ("n01", "south"), ("n12", "east"), ("n10", "west")]
    edges = []
    for a, b in two_way:
        edges.append((f"{a}_{b}", a, b, 2))
        edges.append((f"{b}_{a}", b, a, 2))
    edges += [("lotA_out", "lotA", "n11", 1), ("lotB_out1", "lotB1", "n01", 1),
              ("lotB_out2", "lotB2", "n02", 1)]
    return edges


def write_tiny_network(folder: Path, signals: bool = False) -> Path:
    """Write and build the tiny network; return the .net.xml."""
    folder.mkdir(parents=True, exist_ok=True)
    kind = {n: "traffic_light" if signals and n == "n11" else "priority" for n in _NODES}
    nodes = "\n".join(f'  <node id="{n}" x="{x}" y="{y}" type="{kind[n]}"/>'
                      for n, (x, y) in _NODES.items())
    (folder / "tiny.nod.xml").write_text(f"<nodes>\n{nodes}\n</nodes>\n")
    edges = "\n".join(f'  <edge id="{e}" from="{a}" to="{b}" numLanes="{k}" speed="13.89"/>'
                      for e, a, b, k in _edges())
    (folder / "tiny.edg.xml").write_text(f"<edges>\n{edges}\n</edges>\n")
    return build_network(folder, folder / "tiny.net.xml")


VENUES = """\
[[venues]]
id = "lumen_field"
name = "Lumen Field"
lon = -122.3317
lat = 47.5952

[[venues.lots]]
id = "lot_a"
name = "Lot A"
capacity = 300
exits = ["lotA_out"]

[[venues.lots]]
id = "lot_b"
name = "Lot B"
capacity = 200
exits = ["lotB_out1", "lotB_out2"]
"""


def write_tiny_scenario(folder: Path, demand_toml: str, name: str = "tiny",
                        signals: bool = False) -> Path:
    """Write a scenario over the tiny network (built once per folder; with
    `signals` its centre n11 has a traffic light)."""
    net = folder / "net" / "tiny.net.xml"
    if not net.is_file():
        write_tiny_network(folder / "net", signals=signals)
        (folder / "net" / "venues.toml").write_text(VENUES)
    path = folder / f"{name}.toml"
    path.write_text(textwrap.dedent(f"""\
        name = "{name}"
        [network]
        file = "net/tiny.net.xml"
        venues = "net/venues.toml"
        [simulation]
        begin = "21:30"
        end = "23:30"
        seed = 7
        """) + textwrap.dedent(demand_toml))
    return path


EVENT = """\
[demand]
interval = 900
[demand.event]
venue = "lumen_field"
attendance = 2000
car_share = 0.5
occupancy = 2.5
end = "22:00"
[demand.background]
trips_per_hour = 300
"""
