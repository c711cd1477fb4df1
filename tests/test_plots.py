"""Tests of egress.plots: the demand heat map."""

from __future__ import annotations

import pytest
from conftest import EVENT
from conftest import write_tiny_scenario as write_scenario

from egress import demand
from egress.config.scenario import load_scenario
from egress.reporting import plots

#: The figures are drawn from demand built on a network netconvert builds.
pytestmark = pytest.mark.sumo


def test_plot_demand_writes_a_png(tmp_path):
    event = demand.build_od(load_scenario(write_scenario(tmp_path, EVENT, name="event")))
    normal_path = write_scenario(tmp_path, "[demand]\n[demand.background]\ntrips_per_hour = 300\n",
                                 name="normal")
    normal = demand.build_od(load_scenario(normal_path))
    out = plots.plot_demand(event.od, normal.od, event.zones, load_scenario(normal_path).network,
                            tmp_path / "fig" / "demand.png", radius_km=5)
    assert out.is_file()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 20_000


def test_plot_demand_scenarios_from_files(tmp_path):
    ev = write_scenario(tmp_path, EVENT, name="event")
    no = write_scenario(tmp_path, "[demand]\n[demand.background]\n", name="normal")
    out = plots.plot_demand_scenarios(ev, no, tmp_path / "d.png")
    assert out.is_file() and out.stat().st_size > 20_000
