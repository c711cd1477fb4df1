"""Synthetic observations for tests and benchmarks: ``egress observe``.

A scenario's OD is simulated as the "truth"; observations of its busiest
edges are written with documented noise, and a prior is made by perturbing
the truth. A fit to such observations checks the calibration against an
answer known by construction; it is not validation (real observations:
:mod:`egress.calibration.importers`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .. import limits
from ..errors import InputError
from ..limits import check_value
from ..network import car_link, match_segment
from .metrics import fit_metrics
from .observations import (
    _COORDS,
    QUANTITIES,
    Observations,
    read_observations,
    simulated_values,
)
from .problem import scenario_problem
from .runs import run_od

#: Measurement noise of synthetic observations: speed sd (km/h); count sd
#: ``max(COUNT_SD_MIN, COUNT_SD_SHARE × count)``; travel-time sd as a share.
SPEED_SD = 3.0
COUNT_SD_MIN, COUNT_SD_SHARE = 2.0, 0.05
TRAVEL_TIME_SD_SHARE = 0.05


#: Prior perturbation: each OD row × (1 ± U(lo, hi)), the sign drawn per (kind, interval).
PERTURBATION = (0.3, 0.5)


def perturb_od(od: pd.DataFrame, seed: int, bounds: tuple[float, float] = PERTURBATION
               ) -> pd.DataFrame:
    """A prior OD from a true one: every row is scaled by ``1 + σ_g u``, with
    ``u ~ U(lo, hi)`` per row and a sign ``σ_g = ±1`` per (kind, interval) group,
    so each interval's demand of each kind is 30-50 % too high or too low."""
    rng = np.random.default_rng([seed, 7])
    keys = ["kind", "begin"] if "kind" in od.columns else ["begin"]
    groups = od.groupby(keys, sort=True).ngroup().to_numpy()
    sign = rng.choice(np.array([-1.0, 1.0]), size=groups.max() + 1 if len(od) else 0)
    u = rng.uniform(bounds[0], bounds[1], size=len(od))
    return od.assign(trips=od["trips"].to_numpy(dtype=float) * (1.0 + sign[groups] * u))


def _choose_segments(net, edges: pd.DataFrame, lot_exits, n: int) -> list[str]:
    """Busiest car edges (>= 80 m, not lot exits), at most `n`."""
    tot = edges.groupby("edge")[["entered", "sampled_seconds"]].sum()
    tot = tot.loc[tot["entered"] >= 30]
    keep = []
    for eid in tot.sort_values(["entered"], ascending=False).index:
        e = net.getEdge(eid)
        if eid in lot_exits or e.getFunction() == "internal" or e.getLength() < 80:
            continue
        keep.append(eid)
        if len(keep) >= n:
            break
    return sorted(keep)


def observe(scenario, out: str | Path, *, seed: int = 1, od: pd.DataFrame | None = None,
            interval: float = 900.0, n_segments: int = 60, mode: str = "meso",
            coordinates: int = 5) -> dict[str, Path]:
    """Write synthetic observations of a scenario's "true" OD, and a perturbed prior.

    The true OD (the scenario's own, or `od`) is simulated with `seed`; the
    busiest `n_segments` edges become segments observed every `interval`
    seconds where a vehicle was on them: speeds with N(0, 3 km/h) noise on
    all, counts with N(0, max(2, 5 %)) noise on every third segment, travel
    times with 5 % noise on pairs of consecutive observed edges. The first
    `coordinates` speed segments are written with WGS84 start/end points
    instead of edge ids (map-matched when read). The prior is
    :func:`perturb_od` of the truth.

    Returns
    -------
    dict
        Paths: ``observations`` (CSV), ``truth`` and ``prior`` (OD CSV with
        ``kind``), ``info`` (JSON: seed, noise, noise floor).
    """
    check_value(limits.period, interval, "interval")
    check_value(limits.runs, n_segments, "n_segments")
    check_value(limits.seed, seed, "seed")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problem = scenario_problem(scenario, mode=mode, seed=seed)
    if od is not None:
        problem.prior = od.reset_index(drop=True)
    sim = problem.scenario.simulation
    if interval % sim.edgedata_period:
        raise InputError("observe", f"interval {interval:g} must be a multiple of the "
                         f"edgeData period {sim.edgedata_period:g}")
    edges, _, info, _ = run_od(problem, problem.x0, out / "truth-run")
    net = problem.net
    segs = _choose_segments(net, edges, set(problem.lot_exits), n_segments)
    table = _observed_segments(net, segs, np.arange(sim.begin, sim.end - 1e-9, interval),
                               interval, sim.end)
    truth = simulated_values(edges, Observations(table), net)
    csv = _as_csv(_with_noise(table, truth, np.random.default_rng([seed, 11])))
    _by_coordinates(csv, net, [e for e in segs if net.getEdge(e).getLength() >= 150][:coordinates])
    files = {"observations": out / "observations.csv", "truth": out / "truth.od.csv",
             "prior": out / "prior.od.csv", "info": out / "observe.json"}
    csv.to_csv(files["observations"], index=False, float_format="%.7g")
    problem.prior.to_csv(files["truth"], index=False)
    perturb_od(problem.prior, seed).to_csv(files["prior"], index=False)
    obs = read_observations(files["observations"], net, window=(sim.begin, sim.end),
                            period=sim.edgedata_period, grid_start=sim.begin)
    floor = fit_metrics(obs, simulated_values(edges, obs, net))
    files["info"].write_text(json.dumps({
        "synthetic": True, "seed": seed, "mode": sim.mode, "interval": interval,
        "segments": len(segs), "values": obs.n_values, "speed_sd_kmh": SPEED_SD,
        "count_sd": f"max({COUNT_SD_MIN}, {COUNT_SD_SHARE} x count)",
        "travel_time_sd": f"{TRAVEL_TIME_SD_SHARE} x travel time",
        "perturbation": list(PERTURBATION), "truth_run": info,
        "noise_floor": floor}, indent=1) + "\n")
    for name in ("vehroutes.xml", "tripinfo.xml", "routes.rou.xml", "trips.xml"):
        (out / "truth-run" / name).unlink(missing_ok=True)
    return files


def _observed_segments(net, segs: list[str], bounds: np.ndarray, interval: float,
                       end: float) -> pd.DataFrame:
    """The rows to observe: every chosen edge (a detector on every third) and up to 10
    pairs of consecutive chosen edges (travel times), every interval."""
    rows = []
    for k, eid in enumerate(segs):
        for b in bounds:
            rows.append({"segment": eid, "edges": (eid,), "begin": b,
                         "end": min(b + interval, end), "detector": k % 3 == 0})
    pairs = []
    for eid in segs:
        nxt = [o.getID() for o, conns in net.getEdge(eid).getOutgoing().items()
               if o.getID() in segs and car_link(conns)]
        if nxt:
            pairs.append((eid, sorted(nxt)[0]))
    for a, b2 in pairs[:10]:
        for b in bounds:
            rows.append({"segment": f"{a}+{b2}", "edges": (a, b2), "begin": b,
                         "end": min(b + interval, end), "detector": False})
    table = pd.DataFrame(rows)
    for kind in QUANTITIES:
        table[kind] = 1.0
    lengths = {e: net.getEdge(e).getLength() for es in table["edges"] for e in es}
    table["length"] = [sum(lengths[e] for e in es) for es in table["edges"]]
    table["free_speed"] = [sum(lengths[e] for e in es)
                           / sum(lengths[e] / net.getEdge(e).getSpeed() for e in es) * 3.6
                           for es in table["edges"]]
    return table


def _with_noise(table: pd.DataFrame, truth: pd.DataFrame, rng) -> pd.DataFrame:
    """The true values with measurement noise (speeds, counts at detectors, travel
    times of pairs) and their standard deviations; rows with no value dropped."""
    table = table.copy()
    single = table["edges"].map(len).to_numpy() == 1
    seen = truth["sampled_seconds"].to_numpy() > 0
    sp = truth["speed"].to_numpy() + rng.normal(0.0, SPEED_SD, len(table))
    table["speed"] = np.where(single & seen, np.maximum(sp, 2.0), np.nan)
    csd = np.maximum(COUNT_SD_MIN, COUNT_SD_SHARE * truth["count"].to_numpy())
    cnt = np.round(truth["count"].to_numpy() + rng.normal(0.0, 1.0, len(table)) * csd)
    table["count"] = np.where(single & table["detector"].to_numpy(), np.maximum(cnt, 0), np.nan)
    tt = truth["travel_time"].to_numpy() * (1 + rng.normal(0, TRAVEL_TIME_SD_SHARE, len(table)))
    table["travel_time"] = np.where(~single & seen, tt, np.nan)
    table["speed_sd"] = np.where(table["speed"].notna(), SPEED_SD, np.nan)
    table["count_sd"] = np.where(table["count"].notna(), csd, np.nan)
    table["travel_time_sd"] = np.where(table["travel_time"].notna(),
                                       TRAVEL_TIME_SD_SHARE * truth["travel_time"].to_numpy(),
                                       np.nan)
    table = table.loc[table[list(QUANTITIES)].notna().any(axis=1)].reset_index(drop=True)
    table["weight"] = 1.0
    return table


def _as_csv(table: pd.DataFrame) -> pd.DataFrame:
    """The observations file's columns: edges as text, coordinates empty."""
    csv = table.drop(columns=["detector", "length", "free_speed"]).copy()
    csv["edges"] = [" ".join(e) for e in csv["edges"]]
    for c in _COORDS:
        csv[c] = np.nan
    return csv


def _by_coordinates(csv: pd.DataFrame, net, edges: list[str]) -> None:
    """Give `edges` by WGS84 points 20 % and 80 % along them instead of their ids
    (where they map-match back onto themselves)."""
    from sumolib.geomhelper import positionAtShapeOffset

    for eid in edges:
        shape = net.getEdge(eid).getShape()
        length = net.getEdge(eid).getLength()
        p1 = positionAtShapeOffset(shape, 0.2 * length)
        p2 = positionAtShapeOffset(shape, 0.8 * length)
        ll1, ll2 = net.convertXY2LonLat(*p1[:2]), net.convertXY2LonLat(*p2[:2])
        got = match_segment(net, ll1, ll2)
        if isinstance(got, str) or got[0] != (eid,):
            continue
        sel = csv["edges"] == eid
        csv.loc[sel, "edges"] = ""
        csv.loc[sel, _COORDS] = [ll1[0], ll1[1], ll2[0], ll2[1]]



__all__ = ["PERTURBATION", "observe", "perturb_od"]
