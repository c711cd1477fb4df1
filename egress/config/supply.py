"""The ``[supply]`` table of a scenario: how the network serves traffic.

The OD decides how many vehicles want to go where; the supply decides how
fast the streets let them. The parameters are the ones a calibration may move
along with the OD (``[supply.calibrate]``), and every run of the scenario
uses their values (:mod:`egress.engine.supply` turns them into SUMO options
and an additional file)::

    [supply]
    signal_penalty = 0.8          # meso: delay at signals, as a share of the red time
    minor_penalty = 1.5           # meso: s lost at a minor (yielding) link
    junction_control = false      # meso: model right of way at junctions
    jam_threshold = 0.8           # meso: occupancy at which a segment counts as jammed
    capacity = { arterial_major = 1.0, arterial_minor = 1.0 }   # by edge type
    speed = { freeway = 1.0 }     # speed-limit factors by edge type

    [supply.calibrate]            # what a calibration may move, within bounds
    signal_penalty = [0.0, 2.0]
    "capacity.arterial_major" = [0.6, 1.4]

A calibrated set can live in a file of its own (``egress calibrate`` writes
``calibrated.supply.toml``) and be shared by several scenarios; keys given
next to ``file`` replace the file's values::

    [supply]
    file = "sodo-2018.supply.toml"   # its [supply] table
    speed = { freeway = 1.05 }        # replaces the file's freeway factor only

What each parameter means
    ``signal_penalty``
        The mesoscopic model does not stop vehicles at red lights; with a
        penalty it charges each vehicle crossing a signalised junction the
        expected wait implied by the green split, times this factor (SUMO's
        ``--meso-tls-penalty``; 0, the default, passes signals at free flow,
        which makes arterials far too fast). Ignored by the microscopic model,
        which runs the signal programs.
    ``minor_penalty``
        Seconds added to a vehicle taking a minor link (SUMO's
        ``--meso-minor-penalty``); meso only.
    ``junction_control``
        Mesoscopic right of way at junctions (``--meso-junction-control``).
    ``jam_threshold``
        The share of a mesoscopic segment's space that must be occupied
        for it to count as jammed (SUMO's ``--meso-jam-threshold``); a
        jammed segment lets vehicles in and out at the longer jam headways.
        -1 (the default) is SUMO's: a threshold from each edge's speed.
        That default interacts badly with ``signal_penalty``: the penalty
        keeps vehicles longer on a slow street, the occupancy passes the
        speed-based threshold, the street turns jammed, loses capacity and
        spills back into the next one, and the grid locks (on the SODO 2018
        network: signal_penalty 0.8 at 19:00 left 1,442 vehicles teleported
        with the default, none with 0.5 or 0.8). A fixed threshold makes
        jams a matter of space, as on the street.
    ``capacity``
        Factors on the flow capacity of the edges of each type: the
        mesoscopic headways (``tauff``, ``taufj``, ``taujf``, ``taujj``) are
        divided by the factor. A vehicle's own length (with its gap) takes
        time to pass as well, so the capacity changes a little less than in
        proportion (on a 10 m/s road, factor 0.5 takes a lane from 1,910 to
        1,200 vehicles an hour). Meso only; the microscopic model's capacity
        follows from its car-following model.
    ``speed``
        Factors on the speed limits of the edges of each type (all modes),
        e.g. for a freeway whose traffic drives faster than its limit.

Edge types are the ``type`` attributes of the network's edges (e.g.
``freeway``, ``arterial_major``); a name the network does not have is an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import Problems, ScenarioError
from .schema import Field, check_table, read_toml

#: Scalar parameters and their (type, default, lowest, highest allowed value).
SCALARS: dict[str, tuple[str, Any, float, float]] = {
    "signal_penalty": ("float", 0.0, 0.0, 10.0),
    "minor_penalty": ("float", 0.0, 0.0, 120.0),
    "junction_control": ("bool", False, 0, 1),
    "jam_threshold": ("float", -1.0, 0.05, 1.0),  # or SENTINELS: SUMO's speed-based one
}
#: Values outside a scalar's range that mean "SUMO's own default".
SENTINELS: dict[str, tuple[float, str]] = {
    "jam_threshold": (-1.0, "SUMO's speed-based threshold")}
#: Per-edge-type parameters: factors, and the range a factor may take.
FACTORS: dict[str, tuple[float, float]] = {"capacity": (0.1, 10.0), "speed": (0.2, 3.0)}

_FIELDS = {
    **{k: Field(kind, default=default) for k, (kind, default, _, _) in SCALARS.items()},
    **{k: Field("table", default={}) for k in FACTORS},
    "calibrate": Field("table", default={}),
    "file": Field("path", doc="a TOML file with a [supply] table to start from"),
}


@dataclass(frozen=True)
class SupplySpec:
    """The supply parameters of a scenario, validated.

    Attributes
    ----------
    signal_penalty, minor_penalty : float
    junction_control : bool
    jam_threshold : float
        -1 for SUMO's speed-based threshold.
    capacity, speed : dict
        Edge type -> factor.
    calibrate : dict
        Parameter name (``"signal_penalty"``, ``"capacity.arterial_major"``,
        ...) -> (lowest, highest): the parameters a calibration may move.
    """

    signal_penalty: float = 0.0
    minor_penalty: float = 0.0
    junction_control: bool = False
    capacity: Mapping[str, float] = field(default_factory=dict)
    speed: Mapping[str, float] = field(default_factory=dict)
    calibrate: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    jam_threshold: float = -1.0

    def value(self, name: str) -> float:
        """The value of a parameter by its name (a factor not given is 1)."""
        if name in SCALARS:
            return float(getattr(self, name))
        group, _, kind = name.partition(".")
        return float(getattr(self, group).get(kind, 1.0))

    def with_values(self, values: Mapping[str, float]) -> SupplySpec:
        """A copy with parameters set by name."""
        changes: dict[str, Any] = {}
        for name, v in values.items():
            if name in SCALARS:
                kind = SCALARS[name][0]
                changes[name] = bool(round(v)) if kind == "bool" else float(v)
            else:
                group, _, kind = name.partition(".")
                table = dict(changes.get(group, getattr(self, group)))
                table[kind] = float(v)
                changes[group] = table
        return replace(self, **changes)

    def values(self) -> dict[str, float]:
        """Every parameter that differs from SUMO's default, by name."""
        out = {k: self.value(k) for k in SCALARS if getattr(self, k) != SCALARS[k][1]}
        for group in FACTORS:
            out.update({f"{group}.{k}": float(v) for k, v in getattr(self, group).items()})
        return out

    def edge_types(self) -> set[str]:
        """The edge types the parameters name."""
        return set(self.capacity) | set(self.speed) | {
            n.partition(".")[2] for n in self.calibrate if "." in n}


#: How raising a parameter acts on congestion: +1 slows traffic (more delay at
#: signals and minor links), -1 relieves it (more capacity, higher speeds).
CONGESTION_SIGN: dict[str, int] = {"signal_penalty": 1, "minor_penalty": 1,
                                   "junction_control": 1, "jam_threshold": -1, "capacity": -1,
                                   "speed": -1}


def relieving_direction(name: str) -> int:
    """The direction (+1 or -1) in which parameter `name` relieves congestion.

    A calibration probes a supply parameter in this direction: a street
    network has cliffs on the congested side (past some signal delay or below
    some capacity, queues spill back and the evening gridlocks), and a finite
    difference taken across such a cliff measures the cliff, not the slope.
    """
    return -CONGESTION_SIGN[name if name in SCALARS else name.partition(".")[0]]


def parameter_range(name: str) -> tuple[float, float] | None:
    """The values a parameter may take, or None if there is no such parameter."""
    if name in SCALARS:
        _, _, lo, hi = SCALARS[name]
        return float(lo), float(hi)
    group, dot, kind = name.partition(".")
    if group in FACTORS and dot and kind:
        return FACTORS[group]
    return None


def check_supply(table: Any, source: str | Path) -> SupplySpec:
    """Validate a ``[supply]`` table (every problem named by its key).

    A ``file`` key names a TOML file whose ``[supply]`` table (e.g. the
    ``calibrated.supply.toml`` a calibration writes) gives the values; the
    other keys of `table` replace its values, factor by factor.

    Raises
    ------
    ScenarioError
    """
    table = _with_file(table if table is not None else {}, Path(source))
    problems = Problems(source)
    v = check_table(table, _FIELDS, "supply", problems, Path(source).parent)
    for name, (_, _, lo, hi) in SCALARS.items():
        x = v[name]
        sentinel = SENTINELS.get(name)
        if sentinel is not None and x == sentinel[0]:
            continue
        if isinstance(x, float) and not (math.isfinite(x) and lo <= x <= hi):
            more = f" (or {sentinel[0]:g}: {sentinel[1]})" if sentinel else ""
            problems.add(f"supply.{name}: must be a number from {lo:g} to {hi:g}{more}, "
                         f"got {x!r}")
    for group, (lo, hi) in FACTORS.items():
        clean = {}
        for kind, x in (v[group] or {}).items():
            if isinstance(x, bool) or not isinstance(x, int | float) or not (
                    math.isfinite(x) and lo <= x <= hi):
                problems.add(f"supply.{group}.{kind}: must be a factor from {lo:g} to {hi:g}, "
                             f"got {x!r}")
            else:
                clean[kind] = float(x)
        v[group] = clean
    calibrate = {}
    for name, bounds in (v["calibrate"] or {}).items():
        rng = parameter_range(name)
        where = f"supply.calibrate.{name}"
        if rng is None or name == "junction_control":
            problems.add(f"{where}: not a parameter a calibration can move (signal_penalty, "
                         "minor_penalty, jam_threshold, capacity.<edge type>, "
                         "speed.<edge type>)")
            continue
        ok = (isinstance(bounds, list) and len(bounds) == 2
              and all(isinstance(b, int | float) and not isinstance(b, bool)
                      and math.isfinite(b) for b in bounds))
        if not ok or not rng[0] <= bounds[0] < bounds[1] <= rng[1]:
            problems.add(f"{where}: expected [lowest, highest] with {rng[0]:g} <= lowest < "
                         f"highest <= {rng[1]:g}, got {bounds!r}")
            continue
        calibrate[name] = (float(bounds[0]), float(bounds[1]))
    problems.raise_if_any(ScenarioError)
    return SupplySpec(v["signal_penalty"], v["minor_penalty"], v["junction_control"],
                      v["capacity"], v["speed"], calibrate, jam_threshold=v["jam_threshold"])


def _with_file(table: Any, source: Path) -> Any:
    """`table` on top of the ``[supply]`` table of the file its ``file`` key names."""
    if not isinstance(table, dict) or "file" not in table:
        return table
    name = table["file"]
    if not isinstance(name, str):
        raise ScenarioError(str(source), f"supply.file: expected a path, got {name!r}")
    path = (source.parent / name).resolve()
    data = read_toml(path, "supply file (supply.file)", ScenarioError)
    base = data.get("supply")
    if not isinstance(base, dict) or "file" in base:
        raise ScenarioError(str(path), "expected a [supply] table without a 'file' key")
    check_supply(base, path)  # its own problems, named with its own path
    merged = {**base, **{k: v for k, v in table.items() if k != "file"}}
    for group in (*FACTORS, "calibrate"):
        if isinstance(base.get(group), dict) and isinstance(table.get(group), dict):
            merged[group] = {**base[group], **table[group]}
    return merged


__all__ = ["CONGESTION_SIGN", "FACTORS", "SCALARS", "SENTINELS", "SupplySpec", "check_supply",
           "parameter_range", "relieving_direction"]
