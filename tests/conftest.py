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
