"""Shared fixtures: tiny hand-made networks built by the real netconvert.

Tests that run SUMO or netconvert are marked ``sumo`` (by the fixtures they use,
:data:`SUMO_FIXTURES`, or explicitly); ``make test-fast`` leaves them out and
makes any SUMO program a failure there, so a test missing its mark shows.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from egress.network import build_network

ROOT = Path(__file__).resolve().parents[1]

#: Fixtures that build networks with netconvert or run SUMO.
SUMO_FIXTURES = {
    "straight_net", "venue_net", "two_routes", "fork_net", "study", "merge_case", "built",
    "detour_net", "blocked", "diversion", "small", "hov_net", "city", "two_evenings",
    "straight_run", "net_path", "folder", "tiny",
}


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "sumo: runs SUMO or netconvert (left out of make "
                            "test-fast)")
    if config.option.markexpr == "not sumo":
        import egress.sumo

        def refuse(name: str, *args, **kwargs):
            pytest.fail(f"{name}: this test runs a SUMO program; mark it sumo")

        egress.sumo.binary = refuse


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if SUMO_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sumo)
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


# --------------------------------------------------------------------------- two routes

#: Two routes from sign edge o_s to d_x: straight over ramp A (s_a a_d), or the
#: longer way over ramp B (s_b b_d); plus a dead end b_z off ramp B.
TWO_ROUTE_NODES = {"o": (0, 0), "s": (500, 0), "a": (1000, 0), "b": (1000, 400),
                   "d": (1500, 0), "x": (2000, 0), "z": (1000, 900)}


TWO_ROUTE_EDGES = [
    ("o_s", "o", "s", 3, 13.9), ("s_a", "s", "a", 2, 13.9), ("a_d", "a", "d", 2, 13.9),
    ("s_b", "s", "b", 2, 13.9), ("b_d", "b", "d", 2, 13.9), ("d_x", "d", "x", 3, 13.9),
    ("b_z", "b", "z", 1, 13.9)]


TWO_ROUTE_POLICIES = """
[[policies]]
name = "to_b"
description = "Sign on o_s: use ramp B"
kind = "ramp_diversion"
signs = ["o_s"]
from_ramp = "s_a"
to_ramp = "s_b"

[[policies]]
name = "via_b"
description = "Alternate route via b_d"
kind = "alternate_route"
signs = ["o_s"]
via = ["s_b", "b_d"]
avoid = ["s_a"]

[[policies]]
name = "both"
description = "Both signs"
kind = "combination"
policies = ["to_b", "via_b"]
"""


@pytest.fixture(scope="session")
def two_routes(tmp_path_factory) -> Path:
    return write_plain_net(tmp_path_factory.mktemp("two_routes"), TWO_ROUTE_NODES,
                           TWO_ROUTE_EDGES)


def write_routes(path: Path, n: int, headway: float, event_every: int = 3) -> Path:
    """`n` vehicles on route A; every `event_every`-th one is background."""
    lines = ['<routes>', '  <vType id="event" sigma="0.5"/>', '  <vType id="background"/>']
    for i in range(n):
        kind, prefix = ("background", "bg") if i % event_every == 0 else ("event", "ev")
        lines.append(f'  <vehicle id="{prefix}_{i}" type="{kind}" depart="{i * headway:.2f}" '
                     'departLane="best" departSpeed="max"><route edges="o_s s_a a_d d_x"/>'
                     '</vehicle>')
    path.write_text("\n".join([*lines, "</routes>"]) + "\n")
    return path


def write_routes_scenario(folder: Path, net: Path, end: float, routes: str = "r.rou.xml",
                   seed: int = 7) -> Path:
    return write_file(folder / "s.toml", f"""
        name = "tiny"
        [network]
        file = "{net}"
        [simulation]
        begin = 0
        end = {end}
        seed = {seed}
        [demand]
        routes = ["{routes}"]
        [outputs]
        format = "csv"
        """)


# --------------------------------------------------------------------------- a fork for sweeps

def build_fork_net(folder: Path) -> Path:
    """s -> m, then two ramps m_u (upper, the usual one) and m_l (lower) to d -> o."""
    return write_plain_net(
        folder, {"s": (0, 0), "m": (500, 0), "u": (1000, 300), "l": (1000, -300),
                 "d": (1500, 0), "o": (2000, 0)},
        [("s_m", "s", "m", 1, 13.9), ("m_u", "m", "u", 1, 13.9), ("m_l", "m", "l", 1, 13.9),
         ("u_d", "u", "d", 1, 13.9), ("l_d", "l", "d", 1, 13.9), ("d_o", "d", "o", 1, 13.9)])


@pytest.fixture(scope="module")
def fork_net(tmp_path_factory) -> Path:
    return build_fork_net(tmp_path_factory.mktemp("fork"))


def write_study(folder: Path, net: Path, *, vehicles: int = 40, headway: float = 3.0,
                end: int = 400, seeds=(1, 2), fractions=(0.5, 1.0), retries: int = 1,
                extra: str = "") -> Path:
    """A scenario with fixed routes on `net`, a diversion policy and a sweep file."""
    veh = "\n".join(f'  <vehicle id="ev_{i}" type="event" depart="{i * headway:g}">'
                    '<route edges="s_m m_u u_d d_o"/></vehicle>' for i in range(vehicles))
    write_file(folder / "fork.rou.xml",
               f'<routes>\n  <vType id="event" vClass="passenger"/>\n{veh}\n</routes>\n')
    write_file(folder / "fork.toml", f"""
        name = "fork"
        [network]
        file = "{net}"
        [simulation]
        begin = 0
        end = {end}
        seed = 1
        [demand]
        routes = ["fork.rou.xml"]
        """)
    write_file(folder / "policies.toml", """
        [[policies]]
        name = "divert"
        description = "take the lower ramp"
        kind = "ramp_diversion"
        signs = ["s_m"]
        from_ramp = "m_u"
        to_ramp = "m_l"

        [[policies]]
        name = "hov"
        description = "open the lower ramp to everybody (it already is)"
        kind = "hov_opening"
        lanes = ["m_l_0"]
        """)
    return write_file(folder / "sweep.toml", f"""
        name = "fork-sweep"
        policy_file = "policies.toml"
        policies = ["divert"]
        fractions = {list(fractions)}
        seeds = {list(seeds)}
        retries = {retries}
        {extra}
        [[events]]
        name = "fork"
        scenario = "fork.toml"
        """)


def fake_runner(task, keep_dir):
    """A stand-in for run_task: a small table without SUMO (for store logic only)."""
    tt = 10.0 - (task.fraction or 0) * 2 + task.seed * 0.1
    rows = [{"group": g, "vehicles": 10, "mean_travel_time_min": tt, "teleports": 0,
             "complied": 0} for g in ("event", "background", "all")]
    table = pd.DataFrame(rows)
    for k, v in task.params().items():
        table[k] = v
    table["fraction"] = table["fraction"].astype(float)
    return table
