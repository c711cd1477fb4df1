"""What one calibration needs: the scenario, the prior OD, the observations.

:func:`calibration_problem` builds a :class:`Problem` from a scenario (its own OD, or a
given prior) and an observations file; :func:`plain_calibration_problem` from an existing
SUMO model (network, TAZ file, OD file).
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import limits
from ..config.scenario import Scenario, Simulation, load_scenario
from ..config.supply import check_supply
from ..demand import build_od
from ..demand.od import read_kinded_od
from ..errors import InputError, MissingFileError
from ..limits import check_value
from ..network import read_net
from ..network.checks import check_edge_types
from .metamodel import ModelNoise, Targets
from .observations import Observations, observed_end, read_observations

#: The metamodel's search levels, coarse to fine: OD rows sharing these
#: columns move by one factor (the last level moves every row that reaches an
#: observation on its own, the others by kind and interval).
LEVELS = (("kind", "begin"), ("kind", "begin", "origin"),
          ("kind", "begin", "origin", "destination"))


class TazZones:
    """Zones read from a SUMO TAZ file (``<taz>`` with ``tazSource``/``tazSink``
    children or an ``edges`` attribute), enough for :func:`egress.demand.sampling.sample_trips`."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(path, "TAZ file")
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:
            raise InputError(str(path), f"malformed XML ({exc})") from None
        self.sources: dict[str, dict[str, float]] = {}
        self.sinks: dict[str, dict[str, float]] = {}
        for taz in root.iter("taz"):
            tid = taz.get("id")
            src = {s.get("id"): float(s.get("weight", 1)) for s in taz.iter("tazSource")}
            snk = {s.get("id"): float(s.get("weight", 1)) for s in taz.iter("tazSink")}
            if not src and not snk and taz.get("edges"):
                src = snk = {e: 1.0 for e in taz.get("edges").split()}
            self.sources[tid] = _norm(src)
            self.sinks[tid] = _norm(snk)
        if not self.sources:
            raise InputError(str(path), "no <taz> elements")
        self.venue_zones: dict[str, str] = {}

    @property
    def tokens(self) -> list[str]:
        return sorted(self.sources)

    def venue_zone(self, venue_id: str) -> str:
        raise KeyError(venue_id)


def _norm(w: dict[str, float]) -> dict[str, float]:
    total = sum(w.values())
    return {k: v / total for k, v in sorted(w.items())} if total > 0 else {}


@dataclass
class Problem:
    """Everything one calibration needs.

    Attributes
    ----------
    scenario : Scenario
        Network, window, seed, micro/meso and edgeData period of every evaluation.
    net : sumolib.net.Net
    zones : Zones or TazZones
    prior : pandas.DataFrame
        The prior OD: ``origin, destination, begin, end, trips, kind``.
    obs : Observations or None
        None only to simulate ODs without comparing (:func:`egress.calibration.synthetic.observe`).
    event : EventSpec or None
    lot_exits : list of str
    routing : dict
        Keyword arguments of :func:`egress.demand.routing.route_vehicles`.
    regularization : float
        λ of the objective (pull of each row towards the prior).
    prior_sd : float
        σ of the objective's log-normal prior on the total demand of each
        kind in each interval (see :mod:`egress.calibration.metamodel`); 0 for none.
    supply : dict
        Supply parameters the calibration moves along with the OD, by name
        (``"signal_penalty"``, ``"capacity.arterial_major"``, ...), with their
        (lowest, highest) values; default the scenario's ``[supply.calibrate]``.
    entries : numpy.ndarray
        Set from the prior: the entry of each OD row, a code per (origin,
        interval), -1 for event vehicles leaving a lot; vehicles held outside
        the network are predicted per entry (:mod:`egress.calibration.metamodel`).
    """

    scenario: Scenario
    net: Any
    zones: Any
    prior: pd.DataFrame
    obs: Observations | None
    event: Any = None
    lot_exits: list[str] = field(default_factory=list)
    routing: dict[str, Any] = field(default_factory=dict)
    regularization: float = 0.01
    prior_sd: float = 0.5
    supply: dict[str, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        if self.supply is None:
            supply = getattr(self.scenario, "supply", None)
            self.supply = dict(supply.calibrate) if supply is not None else {}
        self.supply_names = tuple(sorted(self.supply))
        self.supply_bounds = np.array([self.supply[n] for n in self.supply_names],
                                      dtype=float).reshape(-1, 2)
        self.prior = self.prior.reset_index(drop=True)
        keys = self.prior[["kind", "origin", "destination"]].astype(str).agg("|".join, axis=1)
        self.rows = pd.DataFrame({"group": pd.factorize(keys)[0],
                                  "begin": self.prior["begin"].to_numpy(dtype=float)})
        self.levels = [pd.MultiIndex.from_frame(self.prior[list(cols)].astype(str)).factorize()[0]
                       for cols in LEVELS]
        # where the vehicles enter the network: one origin in one interval; event
        # vehicles leave from their lot, whose queue is real (never held outside)
        lot = ((self.prior["kind"] == "event").to_numpy() if self.event is not None
               else np.zeros(len(self.prior), dtype=bool))
        entries = pd.MultiIndex.from_frame(
            self.prior.loc[~lot, ["origin", "begin"]].astype(str)).factorize()[0]
        self.entries = np.full(len(self.prior), -1, dtype=np.int64)
        self.entries[~lot] = entries
        if self.obs is None:  # only for simulating ODs (egress observe)
            return
        t = self.obs.table
        seg_keys = [" ".join(e) for e in t["edges"]]
        self.obs_key = pd.DataFrame({"seg": pd.factorize(pd.Series(seg_keys))[0],
                                     "begin": t["begin"].to_numpy(dtype=float)})
        self.per_hour = 3600.0 / (t["end"] - t["begin"]).to_numpy(dtype=float)
        self.targets = self.targets_with(None)

    def targets_with(self, noise: ModelNoise | None) -> Targets:
        """The objective's targets with model noise `noise`."""
        groups = self.levels[0] if self.prior_sd > 0 else None
        return Targets.from_observations(self.obs, self.x0, self.regularization, noise, groups,
                                         self.prior_sd)

    @property
    def x0(self) -> np.ndarray:
        return self.prior["trips"].to_numpy(dtype=float)

    @property
    def theta0(self) -> np.ndarray:
        """The start values of the supply parameters (the scenario's, within bounds)."""
        start = np.array([self.scenario.supply.value(n) for n in self.supply_names])
        return np.clip(start, self.supply_bounds[:, 0], self.supply_bounds[:, 1])

    def supply_values(self, theta: np.ndarray | None) -> dict[str, float]:
        """The supply parameters `theta` by name."""
        if theta is None or not len(self.supply_names):
            return {}
        return {n: float(v) for n, v in zip(self.supply_names, theta, strict=True)}

    def scenario_with(self, theta: np.ndarray | None) -> Scenario:
        """The scenario with supply parameters `theta` (the scenario itself without)."""
        values = self.supply_values(theta)
        return self.scenario.with_supply(values) if values else self.scenario

    def od(self, x: np.ndarray) -> pd.DataFrame:
        """The OD table with trips `x`."""
        return self.prior.assign(trips=np.asarray(x, dtype=float))

    def feasible(self, x: np.ndarray) -> np.ndarray:
        """`x` with the event's trips scaled down, if need be, so that its cars
        fit in the venue's lots (less one car per interval for rounding).

        Both optimizers may propose more event cars than the lots hold; the
        lots are a physical limit, so such a proposal is simulated (and
        recorded) at the largest event demand they allow, in the same
        proportions.
        """
        x = np.asarray(x, dtype=float)
        if self.event is None or not hasattr(self.zones, "venue_zone"):
            return x
        zone = self.zones.venue_zone(self.event.venue)
        rows = ((self.prior["kind"] == "event") & (self.prior["origin"] == zone)).to_numpy()
        limit = sum(self.event.lots.values()) - self.prior.loc[rows, "begin"].nunique()
        total = float(x[rows].sum())
        if total <= limit:
            return x
        x = x.copy()
        x[rows] *= max(limit, 0) / total
        return x

    def fingerprint(self, method: str, extra: dict | None = None) -> str:
        h = hashlib.sha256()
        h.update(pd.util.hash_pandas_object(self.prior, index=False).values.tobytes())
        h.update(self.obs.table.drop(columns=["edges"]).to_csv().encode())
        h.update(json.dumps([str(self.scenario.network), self.scenario.simulation.__dict__,
                             self.regularization, self.prior_sd, method, extra or {},
                             self.scenario.supply.values(), self.supply],
                            default=str,
                            sort_keys=True).encode())
        return h.hexdigest()[:16]


def read_prior(path: str | Path, zones=None) -> pd.DataFrame:
    """Read an OD file (CSV or tazRelation XML); a CSV column ``kind`` (event or
    background, default background) is kept.

    Raises
    ------
    MissingFileError, InputError
    """
    return read_kinded_od(path, zones)


def _check_settings(regularization: float, prior_sd: float, seed: int | None) -> None:
    """The objective's settings, held to :mod:`egress.limits` as the CLI's flags are
    (a negative or NaN weight would make the objective meaningless, not fail)."""
    check_value(limits.within(0, 1e6), regularization, "regularization")
    check_value(limits.within(0, 100), prior_sd, "prior_sd")
    if seed is not None:
        check_value(limits.seed, seed, "seed")


def calibration_problem(scenario: Scenario | str | Path,
                        observations: str | Path | Observations, *,
                        prior: str | Path | pd.DataFrame | None = None,
                        mode: str | None = "meso", seed: int | None = None,
                        regularization: float = 0.01, prior_sd: float = 0.5,
                        supply: dict[str, tuple[float, float]] | None = None,
                        strict: bool = False) -> Problem:
    """Set up a calibration of a scenario's OD.

    Parameters
    ----------
    scenario : Scenario or path
    observations : path or Observations
    prior : path or DataFrame, optional
        The OD to start from (default: the scenario's own OD, see
        :func:`egress.demand.build.build_od`).
    mode : {"micro", "meso"} or None, default "meso"
        Simulation mode of every evaluation (None: the scenario's).
    seed : int, optional
        Seed of every evaluation (default the scenario's).
    regularization : float
        λ of the objective.
    prior_sd : float
        σ of the prior on the total demand per kind and interval (0: none).
    supply : dict, optional
        Supply parameters to calibrate with their bounds, e.g.
        ``{"signal_penalty": (0, 2)}``; default the scenario's
        ``[supply.calibrate]`` (see :mod:`egress.config.supply`).
    strict : bool
        Segments that cannot be map-matched are errors, not dropped (see
        :func:`egress.calibration.observations.read_observations`).
    """
    _check_settings(regularization, prior_sd, seed)
    scenario, built = _scenario_od(scenario, mode, seed)
    net = read_net(scenario.network)
    if prior is None:
        od = built.od
    elif isinstance(prior, pd.DataFrame):
        od = prior.copy()
        if "kind" not in od.columns:
            od["kind"] = "background"
    else:
        od = read_prior(prior, built.zones)
    obs = _observations(observations, net, scenario.simulation, strict)
    lot_exits = list(scenario.venues.lot_exits) if scenario.venues is not None else []
    return Problem(scenario, net, built.zones, od[["origin", "destination", "begin", "end",
                                                   "trips", "kind"]], obs, built.spec.event,
                   lot_exits, built.spec.routing.kwargs(), regularization, prior_sd,
                   _supply_bounds(supply, scenario))


def _supply_bounds(supply: dict | None, scenario: Scenario) -> dict[str, tuple[float, float]]:
    """Checked supply bounds (given, or the scenario's)."""
    if supply is None:
        return dict(scenario.supply.calibrate)
    table = {"calibrate": {k: list(v) for k, v in supply.items()}}
    spec = check_supply(table, scenario.path)
    check_edge_types(spec, scenario.network)
    return dict(spec.calibrate)


def _scenario_od(scenario, mode: str | None, seed: int | None):
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    changes: dict[str, Any] = {}
    if mode is not None:
        changes["mode"] = mode
    if seed is not None:
        changes["seed"] = int(seed)
    scenario = scenario.with_simulation(**changes) if changes else scenario
    return scenario, build_od(scenario)


def scenario_problem(scenario: Scenario | str | Path, *, mode: str | None = "meso",
                     seed: int | None = None) -> Problem:
    """A :class:`Problem` without observations: the scenario's OD, for simulating ODs."""
    scenario, built = _scenario_od(scenario, mode, seed)
    lot_exits = list(scenario.venues.lot_exits) if scenario.venues is not None else []
    od = built.od[["origin", "destination", "begin", "end", "trips", "kind"]]
    return Problem(scenario, read_net(scenario.network), built.zones, od, None,
                   built.spec.event, lot_exits, built.spec.routing.kwargs())


def plain_calibration_problem(net: str | Path, taz: str | Path, od: str | Path,
                observations: str | Path | Observations, *, begin: float | None = None,
                end: float | None = None, period: float = 300.0, mode: str = "meso",
                seed: int = 42, regularization: float = 0.01,
                random_factor: float = 1.3, prior_sd: float = 0.5,
                supply: dict[str, tuple[float, float]] | None = None,
                strict: bool = False) -> Problem:
    """Set up a calibration of an existing SUMO model: network, TAZ file, OD file.

    The window defaults to the OD's first begin until the later of its last
    end and the observations' last end. `supply` names the supply parameters
    to calibrate with their bounds (see :func:`calibration_problem`).
    """
    _check_settings(regularization, prior_sd, seed)
    check_value(limits.period, period, "period")
    for what, t in (("begin", begin), ("end", end)):
        if t is not None:
            check_value(limits.time_of_day, t, what)
    net_path = Path(net)
    netobj = read_net(net_path)
    zones = TazZones(taz)
    prior = read_prior(od, zones.tokens)
    b = float(prior["begin"].min()) if begin is None else float(begin)
    e = float(prior["end"].max()) if end is None else float(end)
    if end is None and not isinstance(observations, Observations):
        e = max(e, observed_end(observations) or e)
    if e <= b:
        raise InputError("end" if end is not None else str(od),
                         f"the window {b:g}-{e:g} s is empty or inverted (end must be after "
                         "begin)")
    sim = Simulation(begin=b, end=e, seed=int(seed), mode=mode,
                     edgedata_period=float(period))
    scenario = Scenario(path=Path(od).resolve(), name="calibration", description="",
                        network=net_path.resolve(), venues=None, simulation=sim,
                        output_format="csv")
    obs = _observations(observations, netobj, sim, strict)
    return Problem(scenario, netobj, zones, prior, obs, None, [],
                   {"random_factor": random_factor}, regularization, prior_sd,
                   _supply_bounds(supply, scenario))


def _observations(observations, net, sim: Simulation, strict: bool = False) -> Observations:
    if isinstance(observations, Observations):
        return observations
    return read_observations(observations, net, window=(sim.begin, sim.end),
                             period=sim.edgedata_period, grid_start=sim.begin, strict=strict)


__all__ = ["LEVELS", "Problem", "TazZones", "calibration_problem", "read_prior", "scenario_problem",
           "plain_calibration_problem"]
