"""Scenario files: what to simulate, in one TOML file.

A scenario names the network, its venues, the demand and the simulation
settings. Paths are relative to the scenario file. Times are seconds after
midnight or ``"HH:MM[:SS]"`` strings (hours past 23 run into the next day,
``"24:30"``). Example::

    name = "sodo-evening"
    description = "A busy evening after a game at Lumen Field"

    [network]
    file = "../networks/sodo/sodo.net.xml"
    venues = "../networks/sodo/venues.toml"   # venues, lots and study area

    [simulation]
    begin = "21:30"
    end = "24:00"
    step_length = 1.0        # s
    seed = 42
    mode = "micro"           # or "meso"
    time_to_teleport = 300   # s; teleports are counted and reported
    edgedata_period = 300    # s per edge-statistics interval

    [demand]
    routes = ["../demand/evening.rou.xml"]  # ready SUMO route or trip files, or
    # an evening built from OD tables over S2 cells: [demand.event],
    # [demand.background], demand.od (see egress.config.demand, egress.demand)

    [outputs]
    dir = "../runs/sodo-evening" # default: runs/<name> in the working folder
    format = "parquet"           # or "csv"

:func:`load_scenario` checks all of it up front and raises one
:class:`~egress.errors.ScenarioError` listing every problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import limits
from ..errors import EgressError, Problems, ScenarioError
from ..network.checks import check_edge_types, check_venues
from ..network.graph import check_net_file
from .demand import DEMAND_FIELDS, DemandSpec, check_demand
from .schema import Field, check_table, format_time, one_of, read_toml
from .supply import SupplySpec, check_supply
from .venues import Venues, load_venues, snap_venues

_TOP = {
    "name": Field("str", required=True, check=limits.name,
                  doc="short name, used for run folders"),
    "description": Field("str", default=""),
    "network": Field("table", required=True),
    "simulation": Field("table", required=True),
    "demand": Field("table", required=True),
    "outputs": Field("table", default={}),
    "supply": Field("table", default={}, doc="supply parameters (egress.config.supply)"),
}
_NETWORK = {
    "file": Field("path", required=True, doc="SUMO .net.xml"),
    "venues": Field("path", doc="venues file (TOML)"),
}
_SIMULATION = {
    "begin": Field("time", required=True),
    "end": Field("time", required=True),
    "step_length": Field("float", default=1.0, check=limits.within(0, 60, lo_open=True)),
    "seed": Field("int", default=42, check=limits.seed),
    "mode": Field("str", default="micro", check=one_of("micro", "meso")),
    "time_to_teleport": Field("float", default=300.0,
                              doc="s; a negative value turns teleporting off, as in SUMO"),
    "edgedata_period": Field("float", default=300.0, check=limits.period),
}
_DEMAND = {
    "routes": Field("paths", default=[], doc="SUMO route or trip files"),
}
_OUTPUTS = {
    "dir": Field("path"),
    "format": Field("str", default="parquet", check=one_of("parquet", "csv")),
}


@dataclass(frozen=True)
class Simulation:
    """Simulation settings of a scenario."""

    begin: float
    end: float
    step_length: float = 1.0
    seed: int = 42
    mode: str = "micro"
    time_to_teleport: float = 300.0
    edgedata_period: float = 300.0

    @property
    def meso(self) -> bool:
        return self.mode == "meso"


@dataclass(frozen=True)
class Scenario:
    """A validated scenario.

    Attributes
    ----------
    path : pathlib.Path
        The scenario file.
    name, description : str
    network : pathlib.Path
        The SUMO network file.
    venues : Venues or None
        Venues, lots and study area, if a venues file is named.
    simulation : Simulation
    demand : DemandSpec
        The validated ``[demand]`` table.
    supply : SupplySpec
        The validated ``[supply]`` table (defaults: SUMO's).
    output_dir : pathlib.Path
    output_format : str
    """

    path: Path
    name: str
    description: str
    network: Path
    venues: Venues | None
    simulation: Simulation
    demand: DemandSpec = field(default_factory=DemandSpec)
    supply: SupplySpec = field(default_factory=SupplySpec)
    output_dir: Path = Path("runs")
    output_format: str = "parquet"

    @property
    def routes(self) -> list[Path]:
        """SUMO route or trip files of the demand (empty when it is built)."""
        return list(self.demand.routes)

    def with_simulation(self, **changes: Any) -> Scenario:
        """Return a copy with some simulation settings changed (e.g. ``seed=7``).

        The new values are checked against the same schema as the file's, so a
        seed outside SUMO's range given to the Python API or a flag fails here,
        before any demand is built, exactly as it would in the file.

        Raises
        ------
        ScenarioError
            Naming the setting and the problem.
        """
        problems = Problems(self.path)
        fields = {k: v for k, v in _SIMULATION.items() if k in changes}
        unknown = sorted(set(changes) - set(_SIMULATION))
        if unknown:
            raise TypeError(f"unknown simulation settings: {', '.join(unknown)}")
        checked = check_table(dict(changes), fields, "simulation", problems, self.path.parent)
        sim = replace(self.simulation, **checked)
        if sim.end <= sim.begin:
            problems.add("simulation.end: must be after simulation.begin")
        problems.raise_if_any(ScenarioError)
        return replace(self, simulation=sim)

    def with_supply(self, values: dict[str, float]) -> Scenario:
        """Return a copy with supply parameters set by name (``"signal_penalty"``,
        ``"capacity.arterial_major"``, ...)."""
        return replace(self, supply=self.supply.with_values(values))

    def with_demand(self, overrides: dict[str, Any]) -> Scenario:
        """Return a copy with dotted demand keys (``"demand.event.attendance"``...)
        replaced and validated again (:meth:`DemandSpec.with_overrides`)."""
        if not overrides:
            return self
        return replace(self, demand=self.demand.with_overrides(overrides, self.venues, self.path))


def _check_window(scenario: Scenario) -> None:
    """What cannot be simulated is bad input: more intervals in the window than
    :mod:`egress.limits` allows, background traffic beyond
    :data:`egress.limits.VEHICLES_MAX` over the window, and an event whose cars all leave
    outside it (the OD files' intervals are checked by
    :func:`egress.demand.build.check_od_files`)."""
    sim, spec = scenario.simulation, scenario.demand
    span = sim.end - sim.begin
    for key, step, most in (("demand.interval", spec.interval, limits.OD_INTERVALS_MAX),
                            ("simulation.edgedata_period", sim.edgedata_period,
                             limits.EDGEDATA_INTERVALS_MAX)):
        if span / step > most:
            raise ScenarioError(scenario.path, f"{key}: {step:g} s makes {span / step:,.0f} "
                                f"intervals of the {span:g} s window, at most {most:,} (a "
                                "table row per interval; use longer intervals)")
    bg = spec.background
    if bg is not None:
        trips = bg.trips_per_hour * bg.scale * (sim.end - sim.begin) / 3600.0
        if trips > limits.VEHICLES_MAX:
            raise ScenarioError(scenario.path, f"demand.background.trips_per_hour: "
                                f"{bg.trips_per_hour:g} trips per hour × scale {bg.scale:g} "
                                f"over the window are {trips:,.0f} trips, more than "
                                f"{limits.VEHICLES_MAX:,} (the most vehicles one run holds)")
    if spec.event is not None:
        lo, hi = spec.event.profile.support
        if hi <= sim.begin or lo >= sim.end:
            raise ScenarioError(scenario.path, f"demand.event.end: the event's cars leave "
                                f"between {format_time(lo)} and {format_time(hi)}, outside "
                                f"the simulation window {format_time(sim.begin)}-"
                                f"{format_time(sim.end)}")


def load_scenario(path: str | Path, *, check_network: bool = True) -> Scenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path : str or pathlib.Path
        The scenario TOML file.
    check_network : bool, default True
        Also check the scenario against its network: every lot exit edge
        exists and allows cars, and every venue reaches every boundary exit.

    Returns
    -------
    Scenario

    Raises
    ------
    MissingFileError
        If the scenario file does not exist.
    ScenarioError
        Listing every problem found (unknown or mistyped keys, wrong types,
        missing files, exits not in the network, ...).
    """
    path = Path(path)
    data = read_toml(path, "scenario file", ScenarioError)
    base = path.resolve().parent
    problems = Problems(path)
    top = check_table(data, _TOP, "", problems, base)
    net = check_table(top["network"] or {}, _NETWORK, "network", problems, base)
    sim = check_table(top["simulation"] or {}, _SIMULATION, "simulation", problems, base)
    demand = check_table(top["demand"] or {}, {**_DEMAND, **DEMAND_FIELDS}, "demand", problems,
                         base)
    outputs = check_table(top["outputs"], _OUTPUTS, "outputs", problems, base)

    if net["file"] is not None and not net["file"].is_file():
        problems.add(f"network.file: {net['file']} not found")
    elif net["file"] is not None:
        try:
            check_net_file(net["file"])
        except EgressError as exc:
            problems.add(f"network.file: {exc}")
            net["file"] = None  # nothing more to learn from it
    venues = None
    if net["venues"] is not None:
        if not net["venues"].is_file():
            problems.add(f"network.venues: {net['venues']} not found")
        else:
            try:
                venues = load_venues(net["venues"])
            except ScenarioError as exc:
                problems.add(f"network.venues: {exc}")
    if venues is not None and net["file"] is not None and net["file"].is_file():
        try:
            venues = snap_venues(venues, net["file"])
        except ScenarioError as exc:
            problems.add(f"network.venues: {exc}")
        except EgressError as exc:
            problems.add(f"network.file: {exc}")
    for i, route in enumerate(demand["routes"] or []):
        if not route.is_file():
            problems.add(f"demand.routes[{i}]: {route} not found")
    if sim["begin"] is not None and sim["end"] is not None and sim["end"] <= sim["begin"]:
        problems.add("simulation.end: must be after simulation.begin")
    problems.raise_if_any(ScenarioError)

    name = top["name"]
    scenario = Scenario(
        path=path.resolve(),
        name=name,
        description=top["description"],
        network=net["file"],
        venues=venues,
        simulation=Simulation(**sim),
        demand=check_demand(demand, venues, path.resolve()),  # the nested [demand.*] tables
        supply=check_supply(top["supply"], path.resolve()),
        output_dir=outputs["dir"] or Path.cwd() / "runs" / name,
        output_format=outputs["format"],
    )
    _check_window(scenario)
    if check_network:
        check_venues(scenario)
        check_edge_types(scenario.supply, scenario.network)
    return scenario
