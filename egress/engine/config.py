"""What one SUMO run is: a typed configuration and the one writer of its ``.sumocfg``.

Every command that simulates (``simulate``, ``calibrate``, ``observe``,
``evaluate-policy``, ``sweep``) describes its run as a :class:`RunConfig`
and :func:`write_config` turns it into the run folder's ``run.sumocfg``, so
the outputs egress reads are always asked for in the same way:

* ``vehroutes.xml`` with the time each edge was left
  (``--vehroute-output.exit-times``) and the vehicles still driving at the
  end (``--vehroute-output.write-unfinished``): what a vehicle's travel time
  is measured from (:mod:`egress.engine.vehicles`);
* ``statistics.xml``: SUMO's own vehicle and teleport counts, and in its
  header the options SUMO actually ran with (the mode and the seed recorded
  with a result are read from there, not assumed);
* ``sumo.log``: SUMO's messages, one line per teleport among them;
* optionally ``edgedata.xml`` (per-edge statistics per interval) and
  ``tripinfo.xml`` (SUMO's trip summaries, for users who read them).

Paths in the configuration are relative to the run folder, so the folder
opens in sumo-gui and ``sumo -c run.sumocfg`` re-runs it by hand.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import limits
from ..config.supply import SupplySpec
from ..files import num, write_xml
from .supply import SUPPLY_FILE, supply_options, write_supply

#: The two simulation modes: SUMO's microscopic model and its mesoscopic
#: (queue-based) model (``--mesosim``).
MODES = ("micro", "meso")

#: SUMO's largest accepted ``--seed`` (a signed 32-bit integer).
MAX_SEED = limits.SEED_MAX

#: File names inside a run folder.
CONFIG_FILE = "run.sumocfg"
EDGEDATA_DEFINITION = "edgedata.add.xml"
OUTPUTS = {"vehroutes": "vehroutes.xml", "statistics": "statistics.xml",
           "edgedata": "edgedata.xml", "tripinfo": "tripinfo.xml", "log": "sumo.log"}


@dataclass(frozen=True)
class RunConfig:
    """Everything SUMO needs for one run.

    Attributes
    ----------
    run_dir : pathlib.Path
        The run folder; outputs land here.
    network : pathlib.Path
    routes : tuple of pathlib.Path
        Route files (vehicles with fixed routes or trips, vTypes).
    begin, end : float
        The simulated window, seconds after midnight.
    additional : tuple of pathlib.Path
        Additional files (rerouters, signal programs, ...).
    step_length : float
    seed : int
        SUMO's random seed, 0 to :data:`MAX_SEED`.
    mode : {"micro", "meso"}
    time_to_teleport : float
        Seconds a vehicle may stand before SUMO teleports it (<= 0: never).
    edgedata_period : float or None
        Seconds per edgeData interval; None writes no edgeData.
    edgedata_edges : tuple of str or None
        The edges edgeData covers (None: every edge). A calibration needs
        only the observed ones, and reading every edge of a large network
        after each simulation costs more than the simulation's output saves.
    tripinfo : bool
        Also write SUMO's ``tripinfo.xml`` (unfinished vehicles included).
    supply : SupplySpec, optional
        Supply parameters (signal delay, capacities, speeds by edge type),
        realised as SUMO options and an additional file
        (:mod:`egress.engine.supply`).
    options : dict
        Further SUMO options by name without dashes, e.g.
        ``{"meso-junction-control": "true"}``; they override the ones above.
    """

    run_dir: Path
    network: Path
    routes: tuple[Path, ...]
    begin: float
    end: float
    additional: tuple[Path, ...] = ()
    step_length: float = 1.0
    seed: int = 42
    mode: str = "micro"
    time_to_teleport: float = 300.0
    edgedata_period: float | None = 300.0
    edgedata_edges: tuple[str, ...] | None = None
    tripinfo: bool = False
    supply: SupplySpec | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not 0 <= int(self.seed) <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {self.seed}")
        object.__setattr__(self, "routes", tuple(Path(r) for r in self.routes))
        object.__setattr__(self, "additional", tuple(Path(a) for a in self.additional))
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        object.__setattr__(self, "network", Path(self.network))

    @property
    def file(self) -> Path:
        """The ``run.sumocfg`` of the run."""
        return self.run_dir / CONFIG_FILE

    def output(self, name: str) -> Path:
        """Path of an output (:data:`OUTPUTS` key) in the run folder."""
        return self.run_dir / OUTPUTS[name]

    def with_(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def from_scenario(cls, scenario, run_dir: str | Path, routes, **changes: Any) -> RunConfig:
        """The run of `scenario` (an :class:`egress.config.scenario.Scenario`) with `routes`.

        `changes` override fields (``network``, ``additional``, ``seed``,
        ``mode``, ``edgedata_period``, ``tripinfo``, ``options``, ...).
        """
        sim = scenario.simulation
        fields: dict[str, Any] = {
            "run_dir": Path(run_dir), "network": scenario.network, "routes": tuple(routes),
            "begin": sim.begin, "end": sim.end, "step_length": sim.step_length,
            "seed": sim.seed, "mode": sim.mode, "time_to_teleport": sim.time_to_teleport,
            "edgedata_period": sim.edgedata_period,
            "supply": scenario.supply,
        }
        fields.update(changes)
        return cls(**fields)


def sumo_options(cfg: RunConfig) -> dict[str, str]:
    """The SUMO options of `cfg` by name (paths relative to the run folder)."""
    def rel(p: Path) -> str:
        return os.path.relpath(Path(p).resolve(), cfg.run_dir.resolve())

    additional = [rel(a) for a in cfg.additional]
    if (cfg.run_dir / SUPPLY_FILE).is_file() and cfg.supply is not None:
        additional.append(SUPPLY_FILE)
    if cfg.edgedata_period is not None:
        additional.append(EDGEDATA_DEFINITION)
    options = {
        "net-file": rel(cfg.network),
        "route-files": ",".join(rel(r) for r in cfg.routes),
        "additional-files": ",".join(additional),
        "begin": num(cfg.begin), "end": num(cfg.end), "step-length": num(cfg.step_length),
        "seed": str(int(cfg.seed)),
        "mesosim": "true" if cfg.mode == "meso" else "false",
        "time-to-teleport": num(cfg.time_to_teleport),
        "vehroute-output": OUTPUTS["vehroutes"],
        "vehroute-output.exit-times": "true",
        "vehroute-output.write-unfinished": "true",
        "statistic-output": OUTPUTS["statistics"],
        "duration-log.statistics": "true",
        "step-log.period": "100",
    }
    if cfg.tripinfo:
        options["tripinfo-output"] = OUTPUTS["tripinfo"]
        options["tripinfo-output.write-unfinished"] = "true"
    if not additional:
        del options["additional-files"]
    if cfg.supply is not None:
        options.update(supply_options(cfg.supply, cfg.mode))
    options.update({k: str(v) for k, v in cfg.options.items()})
    return options


def configured_network(run_dir: str | Path) -> Path:
    """The network a run folder's ``run.sumocfg`` names (resolved).

    Raises
    ------
    FileNotFoundError
        If the folder has no ``run.sumocfg`` or it names no network.
    """
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(path)
    for el in ET.parse(path).getroot().iter("net-file"):
        return (run_dir / el.get("value", "")).resolve()
    raise FileNotFoundError(f"{path}: no net-file")


def write_config(cfg: RunConfig) -> Path:
    """Write ``run.sumocfg`` (and the edgeData definition) into the run folder.

    Returns
    -------
    pathlib.Path
        The configuration file.
    """
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    (cfg.run_dir / SUPPLY_FILE).unlink(missing_ok=True)
    if cfg.supply is not None:
        write_supply(cfg.supply, cfg.network, cfg.mode, cfg.run_dir, cfg.begin)
    if cfg.edgedata_period is not None:
        add = ET.Element("additional")
        data = ET.SubElement(add, "edgeData", id="edges", period=num(cfg.edgedata_period),
                             begin=num(cfg.begin), end=num(cfg.end), file=OUTPUTS["edgedata"])
        if cfg.edgedata_edges is not None:
            data.set("edges", " ".join(cfg.edgedata_edges))
        write_xml(add, cfg.run_dir / EDGEDATA_DEFINITION)
    else:
        (cfg.run_dir / EDGEDATA_DEFINITION).unlink(missing_ok=True)
    root = ET.Element("configuration")
    for key, value in sumo_options(cfg).items():
        ET.SubElement(root, key, value=value)
    write_xml(root, cfg.file)
    return cfg.file
