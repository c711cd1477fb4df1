"""Evaluating policies with common random numbers: ``egress evaluate-policy``.

For each scenario (an event) the baseline and every policy variant (policy ×
compliance fraction) run with the **same vehicles, departure times and
seeds**: replication ``k`` uses seed ``simulation.seed + k`` in the baseline
and in every variant, so the difference between a variant and its baseline
is the effect of the policy, not of the dice.

Travel time of a vehicle runs from the moment it is ready to leave (its
insertion time minus SUMO's insertion delay, so the wait to leave a lot
counts) to its arrival or to the moment it leaves the study area, whichever
comes first. It leaves the study area at the exit time of the last edge
inside the study-area polygon before the first edge outside (edges are
classed by the lon/lat of their midpoint; a route that never enters the area
runs to its arrival). Vehicles still driving at the end count with their time
so far (``inside_at_end``), and vehicles that never got onto the network
count with the time from their planned departure to the end
(``not_inserted``); none is dropped.

The saving of a replication is the paired difference of mean travel times
(baseline − policy, minutes) over the same vehicles, for four groups:
``event`` (all event vehicles), ``compliers`` (eligible vehicles that
followed a sign), ``noncompliers`` (eligible vehicles that did not) and
``background``; plus ``all``. A vehicle is *eligible* when its route passes a
sign towards the ramp/corridor the sign addresses and it reached the sign
edge in the baseline run. The table reports the mean over replications and
its 95% Student-t interval.

Output folder::

    <out>/<scenario>/demand/...              built demand (when the scenario has none)
    <out>/<scenario>/baseline/r0/...         one SUMO run folder per replication
    <out>/<scenario>/<policy>/f0.30/inputs/  what differs from the baseline:
                                             signs.add.xml (vTypes, routes, rerouters),
                                             routes*.rou.xml, network.net.xml,
                                             <policy>.tls.xml
    <out>/<scenario>/<policy>/f0.30/r0/      run.sumocfg (opens in sumo-gui), outputs,
                                             vehicles.<fmt> (per-vehicle travel times)
    <out>/runs.csv       per run × group: means, saving, teleports, compliance
    <out>/savings.csv    per scenario × policy × fraction × group: saving ± CI
    <out>/table.csv      the summary table that is printed
    <out>/*.png          figures
    <out>/evaluation.json  inputs, seeds and versions
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import outputs
from .errors import InputError, Problems
from .plots import pyplot
from .policies import (
    Policy,
    PolicyError,
    VariantInputs,
    check_against_network,
    check_routes,
    load_policies,
    prepare_variant,
    read_demand,
    select,
)
from .scenario import Scenario, load_scenario
from .simulation import run_sumo, versions, write_config

log = logging.getLogger(__name__)

GROUPS = ("event", "compliers", "noncompliers", "background", "all")
DEFAULT_FRACTIONS = (0.1, 0.3, 0.5)


@dataclass
class EvaluationResult:
    """What :func:`evaluate_policy` produced.

    Attributes
    ----------
    out : pathlib.Path
    table : pandas.DataFrame
        One row per scenario × policy × fraction: savings (minutes per
        vehicle) with 95% CI for event vehicles, compliers, non-compliers and
        background traffic, realised compliance, share of event vehicles
        affected, teleports and vehicles still inside at the end.
    savings : pandas.DataFrame
        Tidy: scenario, policy, fraction, group, saving_min, ci_low, ci_high,
        replications, vehicles.
    runs : pandas.DataFrame
        One row per run and group.
    figures : list of pathlib.Path
    """

    out: Path
    table: pd.DataFrame
    savings: pd.DataFrame
    runs: pd.DataFrame
    figures: list[Path] = field(default_factory=list)

    def __str__(self) -> str:
        return format_table(self.table)


def mean_ci(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a sample and its two-sided Student-t confidence interval.

    Parameters
    ----------
    values : iterable of float
        One value per replication (NaNs are ignored).
    level : float, default 0.95

    Returns
    -------
    mean, low, high : float
        ``low``/``high`` are NaN with fewer than two values; with zero
        spread they equal the mean.
    """
    from scipy import stats

    x = np.asarray([v for v in values if not (v is None or math.isnan(v))], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if len(x) < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - half, m + half


def evaluate_policy(scenario: Scenario | str | Path | Sequence[Scenario | str | Path],
                    policies: Sequence[Policy | str] | str,
                    fractions: Sequence[float] = DEFAULT_FRACTIONS, replications: int = 5, *,
                    policy_file: str | Path | None = None, od: str | Path | None = None,
                    out: str | Path | None = None, meso: bool = False, progress: bool = True,
                    workers: int | None = None) -> EvaluationResult:
    """Evaluate policies against the baseline with common random numbers.

    Parameters
    ----------
    scenario : Scenario, path, or a list of them
        The event scenario(s), e.g. the large and the small event.
    policies : list of Policy or names, or "name,name"
        Names are looked up in `policy_file`.
    fractions : sequence of float, default (0.1, 0.3, 0.5)
        Compliance fractions for policies with message signs (others run once).
    replications : int, default 5
        Replication ``k`` uses seed ``simulation.seed + k``.
    policy_file : path, optional
        The policy file (needed when policies are given by name).
    od : path, optional
        A calibrated OD table for the demand builder (scenarios without routes).
    out : path, optional
        Output folder; default ``<first scenario's outputs.dir>/policies``.
    meso : bool, default False
        Mesoscopic simulation.
    progress : bool, default True
        Progress bar over runs.
    workers : int, optional
        SUMO runs at a time (default: number of CPUs, at most 4). Results do not
        depend on it.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    InputError
        Bad fractions or replications; PolicyError for unknown or invalid
        policies (checked against each scenario's network and demand before
        any run starts).
    """
    scenarios = [scenario] if isinstance(scenario, Scenario | str | Path) else list(scenario)
    scenarios = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    fractions = _check_args(fractions, replications)
    if isinstance(policies, str) or any(isinstance(p, str) for p in policies):
        if policy_file is None:
            raise PolicyError("evaluate-policy", "policies given by name need a policy file "
                              "(--policies FILE)")
        known = load_policies(policy_file)
        names = policies if isinstance(policies, str) else [
            p if isinstance(p, str) else p.name for p in policies]
        chosen = select(known, names, str(policy_file))
    else:
        chosen = list(policies)
    out = Path(out) if out is not None else scenarios[0].output_dir / "policies"
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or min(4, os.cpu_count() or 1)
    infra = sorted({q.kind for p in chosen for q in p.leaves()} & {"signal_retiming",
                                                                    "hov_opening", "lane_use"})
    if meso and infra:
        log.warning("mesoscopic runs ignore traffic signals (no --meso-junction-control) and "
                    "model lanes only as edge capacity: %s measures need micro runs to show "
                    "their effect", ", ".join(infra))

    plans = []
    for scen in scenarios:
        scen = scen.with_simulation(mode="meso" if meso else scen.simulation.mode)
        check_against_network(chosen, scen.network, chosen[0].source or "policies")
        plans.append(_plan(scen, chosen, fractions, replications, out, od))
    tasks = [t for plan in plans for t in plan["tasks"]]
    results = _run_all(tasks, workers, progress)
    runs = pd.concat([_compare(plan, results) for plan in plans], ignore_index=True)
    savings = _aggregate(runs)
    table = _summary(savings, runs)
    runs.to_csv(out / "runs.csv", index=False)
    savings.to_csv(out / "savings.csv", index=False)
    table.to_csv(out / "table.csv", index=False)
    figures = _figures(out, savings, runs, plans, results)
    (out / "evaluation.json").write_text(json.dumps({
        "scenarios": [str(p["scenario"].path) for p in plans],
        "policies": [p.name for p in chosen],
        "policy_file": str(policy_file) if policy_file else None,
        "fractions": list(fractions), "replications": replications,
        "seeds": {p["scenario"].name: [p["scenario"].simulation.seed + k
                                       for k in range(replications)] for p in plans},
        "mode": "meso" if meso else "micro", "od": str(od) if od else None,
        "versions": versions(),
    }, indent=2) + "\n")
    return EvaluationResult(out, table, savings, runs, figures)


def _check_args(fractions: Sequence[float], replications: int) -> list[float]:
    problems = Problems("evaluate-policy")
    clean = []
    for f in fractions:
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 <= f <= 1:
            problems.add(f"fractions: {f!r} is not between 0 and 1")
        else:
            clean.append(float(f))
    if not clean and not problems:
        problems.add("fractions: give at least one fraction")
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        problems.add(f"replications: must be a positive integer, got {replications!r}")
    problems.raise_if_any(InputError)
    return sorted(set(clean))


# --------------------------------------------------------------------------- planning


@dataclass
class Run:
    """One SUMO run of an evaluation, ready to :func:`execute`.

    Attributes
    ----------
    scenario : Scenario
        With this run's seed.
    key : tuple
        (scenario name, policy name or "" for the baseline, fraction or None).
    replication : int
    run_dir : pathlib.Path
        Folder of the run (outputs land here).
    config : pathlib.Path
        Its ``run.sumocfg`` (:func:`write_run_config`).
    inside : frozenset of str
        Study-area edges (:func:`study_area_edges`).
    demand : dict
        vehicle id -> (vType, planned departure) of every vehicle loaded.
    watch : dict
        vehicle id -> sign edge, for vehicles a sign addresses (to record
        who reached a sign in the baseline).
    """

    scenario: Scenario
    key: tuple[str, str, float | None]      # scenario, policy ("" = baseline), fraction
    replication: int
    run_dir: Path
    config: Path
    inside: frozenset[str]
    demand: dict
    watch: dict[str, str]


def _plan(scen: Scenario, chosen: list[Policy], fractions: list[float], replications: int,
          out: Path, od: str | Path | None) -> dict[str, Any]:
    base = out / scen.name
    routes = list(scen.routes)
    if not routes:
        routes = _build_demand(scen, base / "demand", od)
    elif od is not None:
        raise InputError(str(scen.path), "--od needs a scenario whose demand is built from an "
                         "OD (this one names fixed route files in demand.routes)")
    vehicles, vtypes = read_demand(routes)
    sim = scen.simulation
    inside = study_area_edges(scen)
    variants: dict[tuple[str, float | None], VariantInputs] = {}
    for policy in chosen:
        frs: list[float | None] = list(fractions) if policy.uses_signs else [None]
        first: VariantInputs | None = None
        for f in frs:
            tag = "all" if f is None else f"f{f:.2f}"
            folder = base / policy.name / tag / "inputs"
            if first is not None and first.network != scen.network:
                # reuse the patched network and signal programs of the first fraction
                v = _reuse(first, policy, f, routes, folder, sim, (vehicles, vtypes))
            else:
                v = prepare_variant(policy, f, scen.network, routes, folder, begin=sim.begin,
                                    end=sim.end, demand=(vehicles, vtypes))
                if v.network != scen.network:
                    check_routes(v.network, vehicles, policy.source or str(scen.path),
                                 policy.name)
            first = first or v
            variants[(policy.name, f)] = v
    watch: dict[str, str] = {}
    for v in variants.values():
        for s in v.signs:
            watch.update(s.vehicles)
    demand = {vid: (v.type, v.depart) for vid, v in vehicles.items()}
    tasks = []
    for k in range(replications):
        seeded = scen.with_simulation(seed=sim.seed + k)
        run_dir = base / "baseline" / f"r{k}"
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg = write_run_config(seeded, run_dir, scen.network, routes, [])
        tasks.append(Run(seeded, (scen.name, "", None), k, run_dir, cfg, inside, demand, watch))
        for (name, f), v in variants.items():
            run_dir = v.folder.parent / f"r{k}"
            run_dir.mkdir(parents=True, exist_ok=True)
            cfg = write_run_config(seeded, run_dir, v.network, v.routes, v.additional)
            tasks.append(Run(seeded, (scen.name, name, f), k, run_dir, cfg, inside, demand,
                               {}))
    return {"scenario": scen, "tasks": tasks, "variants": variants, "replications": replications,
            "inside": inside}


def _reuse(first: VariantInputs, policy: Policy, f: float | None, routes, folder: Path, sim,
           demand) -> VariantInputs:
    """Prepare a further fraction on the first fraction's patched network."""
    import shutil

    from .policies import SIGN_KINDS, _write_signs

    folder.mkdir(parents=True, exist_ok=True)
    net = folder / first.network.name
    shutil.copyfile(first.network, net)
    additional = []
    for a in first.additional:
        if a.name != "signs.add.xml":
            shutil.copyfile(a, folder / a.name)
            additional.append(folder / a.name)
    sign_parts = [p for p in policy.leaves() if p.kind in SIGN_KINDS]
    add, route_files, signs = _write_signs(sign_parts, f, net, list(routes), demand[0],
                                           demand[1], folder, sim.begin, sim.end, policy.source)
    return VariantInputs(folder, net, [add, *additional], route_files, signs, f)


def _build_demand(scen: Scenario, folder: Path, od) -> list[Path]:
    from .demand import build_demand

    return list(build_demand(scen, folder, seed=scen.simulation.seed, od=od).routes)


def study_area_edges(scen: Scenario) -> frozenset[str]:
    """Edges whose midpoint (lon/lat) lies inside the study-area polygon (all if none).

    Memoised per network file (path and modification time) and venues file.
    """
    venues = scen.venues.path if scen.venues is not None else None
    key = (str(scen.network), os.path.getmtime(scen.network), str(venues))
    if key not in _STUDY_AREA:
        _STUDY_AREA[key] = frozenset(_inside(scen))
    return _STUDY_AREA[key]


_STUDY_AREA: dict[tuple, frozenset[str]] = {}


def _inside(scen: Scenario) -> set[str]:
    from matplotlib.path import Path as Polygon

    from .network import read_net

    net = read_net(scen.network)
    edges = [e for e in net.getEdges()]
    area = scen.venues.study_area if scen.venues is not None else None
    if area is None or not area.polygon:
        return {e.getID() for e in edges}
    poly = Polygon(np.asarray(area.polygon))
    ids, pts = [], []
    for e in edges:
        x, y = _midpoint(e.getShape())
        ids.append(e.getID())
        pts.append(net.convertXY2LonLat(x, y))
    mask = poly.contains_points(np.asarray(pts))
    return {i for i, m in zip(ids, mask, strict=True) if m}


def _midpoint(shape) -> tuple[float, float]:
    pts = np.asarray(shape, dtype=float)[:, :2]
    seg = np.hypot(*np.diff(pts, axis=0).T)
    total = seg.sum()
    if total == 0:
        return tuple(pts[0])
    half, acc = total / 2, 0.0
    for i, s in enumerate(seg):
        if acc + s >= half:
            t = (half - acc) / s if s else 0
            return tuple(pts[i] + t * (pts[i + 1] - pts[i]))
        acc += s
    return tuple(pts[-1])


def write_run_config(scen: Scenario, run_dir: Path, network: Path, routes: list[Path],
                     additional: list[Path], *, edgedata: bool = True) -> Path:
    """Write a run's ``run.sumocfg``: :func:`egress.simulation.write_config` plus
    a variant's network, routes and additional files (paths relative to the
    run folder, so it opens in sumo-gui); outputs are vehroutes with exit
    times (unfinished vehicles included), edgeData and statistics.

    Parameters
    ----------
    scen : Scenario
    run_dir : pathlib.Path
    network : pathlib.Path
    routes, additional : list of pathlib.Path
    edgedata : bool, default True
        Ask SUMO for the edgeData output (per-edge speeds, read by
        :func:`read_run` with ``speeds``). Without it SUMO saves the time it
        takes to write it; the simulation itself is the same.

    Returns
    -------
    pathlib.Path
        The configuration file.
    """
    cfg = write_config(scen, run_dir, list(routes))
    root = ET.parse(cfg).getroot()

    def rel(p: Path) -> str:
        return os.path.relpath(Path(p).resolve(), run_dir.resolve())

    inp = root.find("input")
    inp.find("net-file").set("value", rel(network))
    inp.find("route-files").set("value", ",".join(rel(r) for r in routes))
    adds = [rel(a) for a in additional]
    if edgedata:
        adds.append("edgedata.add.xml")
    else:
        (run_dir / "edgedata.add.xml").unlink(missing_ok=True)
    if adds:
        inp.find("additional-files").set("value", ",".join(adds))
    else:
        inp.remove(inp.find("additional-files"))
    output = root.find("output")
    for name in ("tripinfo-output", "tripinfo-output.write-unfinished"):
        for el in output.findall(name):  # vehroutes say all an evaluation needs
            output.remove(el)
    ET.SubElement(output, "vehroute-output.write-unfinished", value="true")
    ET.indent(root)
    ET.ElementTree(root).write(cfg, encoding="UTF-8", xml_declaration=True)
    return cfg


# --------------------------------------------------------------------------- running


def _run_all(tasks: list[Run], workers: int, progress: bool) -> dict:
    from tqdm import tqdm

    results: dict[tuple, dict] = {}
    bar = tqdm(total=len(tasks), unit="run", desc="evaluating", disable=None if progress else True)

    def one(task: Run) -> tuple[tuple, dict]:
        return (task.key, task.replication), execute(task)

    if workers <= 1:
        for t in tasks:
            k, r = one(t)
            results[k] = r
            bar.update()
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for k, r in pool.map(one, tasks):
                results[k] = r
                bar.update()
    bar.close()
    return results


def execute(task: Run, speeds: bool = True, save: bool = True) -> dict[str, Any]:
    """Run SUMO for one run and read its results (:func:`read_run`).

    Parameters
    ----------
    task : Run
    speeds : bool, default True
        Also read mean speeds per edge.
    save : bool, default True
        Write the per-vehicle table to the run folder.

    Returns
    -------
    dict
        :func:`read_run`'s result, plus ``wall`` (SUMO's wall time, s) and
        ``parse_wall`` (reading its outputs, s).
    """
    sim = task.scenario.simulation
    started = time.perf_counter()
    run_sumo(task.config, sim.begin, sim.end, progress=False)
    wall = time.perf_counter() - started
    res = read_run(task, speeds, save)
    res["wall"] = wall
    res["parse_wall"] = time.perf_counter() - started - wall
    return res


def read_run(task: Run, speeds: bool = True, save: bool = True) -> dict[str, Any]:
    """Per-vehicle travel times, reroutes, edge speeds and teleports of one run.

    A vehicle is ready at its planned departure (SUMO's insertion time
    minus its insertion delay); it arrived when the vehroute output gives an
    arrival time, and leaves the study area at the exit time of the edge
    before its route first leaves it (see the module docstring).

    Parameters
    ----------
    task : Run
    speeds : bool
        Also read the edgeData output for mean speeds per edge.
    save : bool, default True
        Write the per-vehicle table to the run folder.

    Returns
    -------
    dict
        ``vehicles`` (DataFrame indexed by vehicle: kind, ready, end,
        travel_time, status, rerouted_by; with `save` also written to the
        run folder as ``vehicles.<format>``), ``reached`` (watched vehicles
        that reached their sign), ``teleports`` and ``speed``
        (sampled-seconds-weighted mean speed per edge, m/s; None unless
        `speeds`).
    """
    sim = task.scenario.simulation
    run = task.run_dir
    driven = {r[0]: r for r in outputs.vehroute_records(run / "vehroutes.xml")}
    stats = outputs.read_statistics(run / "statistics.xml")
    leaves: dict[str, int | None] = {}   # route -> index of the edge it leaves the area on
    kinds: dict[tuple[str, str], str] = {}
    rows = []
    reached: set[str] = set()
    for vid, (vtype, ready) in task.demand.items():
        if ready >= sim.end:
            continue
        key = (vtype, vid[:3])
        kind = kinds.get(key) or kinds.setdefault(key, _kind(vid, vtype))
        record = driven.get(vid)
        if record is None:
            rows.append((vid, kind, ready, sim.end, sim.end - ready, "not_inserted", ""))
            continue
        _, _, _, arrival, text, exit_text, reason = record
        finished = arrival is not None
        end = float(arrival) if finished else sim.end
        status = "arrived" if finished else "inside_at_end"
        if text not in leaves:
            leaves[text] = _leave_index(text.split(), task.inside)
        i = leaves[text]
        leave = None
        if i is not None:
            exits = exit_text.split()
            leave = float(exits[i]) if i < len(exits) else None
        if leave is not None and leave < end:
            end, status = leave, "left_area"
        elif not finished and leave is not None:
            status = "left_area"
        rows.append((vid, kind, ready, end, end - ready, status, reason))
        sign = task.watch.get(vid)
        if sign is not None:
            edges, exits = text.split(), exit_text.split()
            if sign in edges:
                k = edges.index(sign)
                if k == 0 or (k - 1 < len(exits) and float(exits[k - 1]) > 0):
                    reached.add(vid)
    table = pd.DataFrame(rows, columns=["vehicle", "kind", "ready", "end", "travel_time",
                                        "status", "rerouted_by"])
    if save:
        path = run / f"vehicles.{task.scenario.output_format}"
        if path.suffix == ".csv":
            table.to_csv(path, index=False)
        else:
            table.to_parquet(path, index=False)
    result = {"vehicles": table.set_index("vehicle"), "reached": reached,
              "teleports": int(stats.get("teleports", 0)), "speed": None}
    if speeds:
        edges = outputs.read_edgedata(run / "edgedata.xml")
        busy = edges[edges["sampled_seconds"] > 0]
        speed = (busy["speed"] * busy["sampled_seconds"]).groupby(busy["edge"]).sum()
        result["speed"] = speed / busy.groupby("edge")["sampled_seconds"].sum()
    return result


def _kind(vid: str, vtype: str) -> str:
    base = vtype.split("~")[0]
    if base == "event" or vid.startswith("ev_"):
        return "event"
    if base == "background" or vid.startswith("bg_"):
        return "background"
    return "other"


def _leave_index(edges: list[str], inside: frozenset[str]) -> int | None:
    """Index of the last inside edge before the route first leaves the study
    area (its exit time is when the vehicle leaves); None if it never does."""
    for i in range(len(edges) - 1):
        if edges[i] in inside and edges[i + 1] not in inside:
            return i
    return None


# --------------------------------------------------------------------------- comparing


def _compare(plan: dict, results: dict) -> pd.DataFrame:
    scen: Scenario = plan["scenario"]
    rows = []
    for (name, f), variant in plan["variants"].items():
        for k in range(plan["replications"]):
            base = results[((scen.name, "", None), k)]
            pol = results[((scen.name, name, f), k)]
            b, p = base["vehicles"], pol["vehicles"]
            common = b.index.intersection(p.index)
            b, p = b.loc[common], p.loc[common]
            rerouters = {r for s in variant.signs for r in s.rerouters}
            labelled = {v for s in variant.signs for v in s.vehicles}
            eligible = pd.Index(sorted(labelled & base["reached"])).intersection(common)
            complied = p.loc[eligible, "rerouted_by"].isin(rerouters) if len(eligible) else \
                pd.Series(dtype=bool)
            members = {
                "event": b.index[b["kind"] == "event"],
                "compliers": eligible[complied.to_numpy()] if len(eligible) else eligible,
                "noncompliers": eligible[~complied.to_numpy()] if len(eligible) else eligible,
                "background": b.index[b["kind"] == "background"],
                "all": b.index,
            }
            n_event = len(members["event"])
            run = {
                "scenario": scen.name, "policy": name, "fraction": f, "replication": k,
                "seed": scen.simulation.seed + k,
                "eligible": len(eligible), "compliers": len(members["compliers"]),
                "realised_compliance": (len(members["compliers"]) / len(eligible)
                                        if variant.signs and len(eligible) else math.nan),
                "affected_share": (len(members["compliers"]) / n_event
                                   if variant.signs and n_event else math.nan),
                "teleports_baseline": base["teleports"], "teleports_policy": pol["teleports"],
                "inside_at_end_baseline": int((b["status"] == "inside_at_end").sum()
                                              + (b["status"] == "not_inserted").sum()),
                "inside_at_end_policy": int((p["status"] == "inside_at_end").sum()
                                            + (p["status"] == "not_inserted").sum()),
                "wall_policy": pol["wall"], "parse_wall_policy": pol["parse_wall"],
            }
            for group in GROUPS:
                ids = members[group]
                bm = b.loc[ids, "travel_time"].mean() / 60 if len(ids) else math.nan
                pm = p.loc[ids, "travel_time"].mean() / 60 if len(ids) else math.nan
                if group in ("compliers", "noncompliers") and not variant.signs:
                    bm = pm = math.nan
                rows.append({**run, "group": group, "vehicles": len(ids),
                             "baseline_min": bm, "policy_min": pm, "saving_min": bm - pm})
    return pd.DataFrame(rows)


def _aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    keys = ["scenario", "policy", "fraction", "group"]
    for key, g in runs.groupby(keys, sort=False, dropna=False):
        m, lo, hi = mean_ci(g["saving_min"])
        rows.append({**dict(zip(keys, key, strict=True)), "saving_min": m, "ci_low": lo,
                     "ci_high": hi, "replications": int(g["saving_min"].notna().sum()),
                     "vehicles": float(g["vehicles"].mean()),
                     "baseline_min": float(g["baseline_min"].mean()),
                     "policy_min": float(g["policy_min"].mean())})
    return pd.DataFrame(rows)


def _summary(savings: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    keys = ["scenario", "policy", "fraction"]
    rows = []
    per_run = runs[runs["group"] == "event"]
    for key, g in savings.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, key, strict=True))
        for group in ("event", "compliers", "noncompliers", "background"):
            s = g[g["group"] == group].iloc[0]
            row[f"{group}_saving_min"] = s["saving_min"]
            row[f"{group}_ci_low"] = s["ci_low"]
            row[f"{group}_ci_high"] = s["ci_high"]
        r = per_run[(per_run["scenario"] == key[0]) & (per_run["policy"] == key[1])
                    & (per_run["fraction"].fillna(-1) == (-1 if key[2] is None
                                                          or pd.isna(key[2]) else key[2]))]
        row["event_baseline_min"] = g[g["group"] == "event"].iloc[0]["baseline_min"]
        row["eligible"] = r["eligible"].mean()
        row["realised_compliance"] = r["realised_compliance"].mean()
        row["affected_share"] = r["affected_share"].mean()
        row["teleports_baseline"] = r["teleports_baseline"].mean()
        row["teleports_policy"] = r["teleports_policy"].mean()
        row["inside_at_end_policy"] = r["inside_at_end_policy"].mean()
        row["replications"] = len(r)
        rows.append(row)
    return pd.DataFrame(rows)


def format_table(table: pd.DataFrame) -> str:
    """The summary table as text: minutes saved per vehicle with 95% CI."""
    def ci(row, group):
        m, lo, hi = (row[f"{group}_saving_min"], row[f"{group}_ci_low"],
                     row[f"{group}_ci_high"])
        if pd.isna(m):
            return "—"
        if pd.isna(lo):
            return f"{m:+.2f}"
        return f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"

    head = (f"{'scenario':<22} {'policy':<22} {'frac':>5}  {'event vehicles':<24} "
            f"{'compliers':<24} {'non-compliers':<24} {'background':<24} "
            f"{'compl.':>6} {'affect.':>7} {'telep.':>9} {'inside':>7}")
    lines = ["minutes saved per vehicle (baseline − policy; mean over replications "
             "[95% t-interval]; positive = faster)", head, "-" * len(head)]
    for _, r in table.iterrows():
        frac = "all" if pd.isna(r["fraction"]) else f"{r['fraction']:.0%}"
        comp = "" if pd.isna(r["realised_compliance"]) else f"{r['realised_compliance']:.1%}"
        aff = "" if pd.isna(r["affected_share"]) else f"{r['affected_share']:.1%}"
        tel = f"{r['teleports_baseline']:.0f}/{r['teleports_policy']:.0f}"
        lines.append(f"{r['scenario']:<22} {r['policy']:<22} {frac:>5}  {ci(r, 'event'):<24} "
                     f"{ci(r, 'compliers'):<24} {ci(r, 'noncompliers'):<24} "
                     f"{ci(r, 'background'):<24} {comp:>6} {aff:>7} {tel:>9} "
                     f"{r['inside_at_end_policy']:>7.0f}")
    lines.append("compl. = realised compliance among eligible vehicles; affect. = compliers "
                 "as a share of event vehicles; telep. = teleports baseline/policy per run; "
                 "inside = vehicles still in the network at the end (counted, not dropped)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures


def _figures(out: Path, savings: pd.DataFrame, runs: pd.DataFrame, plans: list[dict],
             results: dict) -> list[Path]:
    plt = pyplot()

    paths = []
    ev = savings[savings["group"] == "event"].copy()
    ev["label"] = ev["fraction"].map(lambda f: "all" if pd.isna(f) else f"{f:.0%}")
    scen_names = list(dict.fromkeys(ev["scenario"]))
    fig, axes = plt.subplots(len(scen_names), 1, figsize=(9, 3.6 * len(scen_names)),
                             squeeze=False)
    for ax, sname in zip(axes[:, 0], scen_names, strict=True):
        d = ev[ev["scenario"] == sname].reset_index(drop=True)
        x = np.arange(len(d))
        err = np.vstack([d["saving_min"] - d["ci_low"], d["ci_high"] - d["saving_min"]])
        err = np.nan_to_num(err)
        ax.bar(x, d["saving_min"], yerr=err, capsize=3, color="tab:blue", alpha=0.8)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, [f"{p}\n{lab}" for p, lab in zip(d["policy"], d["label"],
                                                          strict=True)],
                      fontsize=7)
        ax.set_ylabel("min saved per event vehicle")
        ax.set_title(f"{sname}: savings with 95% CI")
    fig.tight_layout()
    paths.append(out / "savings.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    comp = runs[(runs["group"] == "event") & runs["fraction"].notna()]
    if len(comp):
        fig, axes = plt.subplots(1, len(scen_names), figsize=(5 * len(scen_names), 3.8),
                                 squeeze=False)
        for ax, sname in zip(axes[0], scen_names, strict=True):
            for pname, g in comp[comp["scenario"] == sname].groupby("policy", sort=False):
                agg = g.groupby("fraction").agg(c=("realised_compliance", "mean"))
                s = ev[(ev["scenario"] == sname) & (ev["policy"] == pname)].set_index("fraction")
                s = s.loc[agg.index]
                err = np.nan_to_num(np.vstack([s["saving_min"] - s["ci_low"],
                                               s["ci_high"] - s["saving_min"]]))
                ax.errorbar(agg["c"].fillna(pd.Series(agg.index, index=agg.index)),
                            s["saving_min"], yerr=err, marker="o", capsize=3, label=pname)
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xlabel("realised compliance (share of eligible vehicles)")
            ax.set_ylabel("min saved per event vehicle")
            ax.set_title(sname)
            ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / "savings_vs_compliance.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)

    for plan in plans:
        paths += _speed_maps(out, plan, results, plt)
    return paths


def _speed_maps(out: Path, plan: dict, results: dict, plt) -> list[Path]:
    from matplotlib.collections import LineCollection

    from .network import read_net

    scen: Scenario = plan["scenario"]
    net = read_net(scen.network)
    reps = range(plan["replications"])
    base = pd.concat([results[((scen.name, "", None), k)]["speed"] for k in reps],
                     axis=1).mean(axis=1)
    by_policy: dict[str, float | None] = {}
    for name, f in plan["variants"]:
        cur = by_policy.get(name, "unset")
        if cur == "unset" or (f is not None and abs(f - 0.3) < abs((cur or 9) - 0.3)):
            by_policy[name] = f
    shapes = {e.getID(): np.asarray(e.getShape())[:, :2] for e in net.getEdges()}
    paths = []
    for name, f in by_policy.items():
        pol = pd.concat([results[((scen.name, name, f), k)]["speed"] for k in reps],
                        axis=1).mean(axis=1)
        delta = (pol.reindex(base.index) - base).dropna() * 3.6
        fig, ax = plt.subplots(figsize=(7, 7))
        grey = [shapes[e] for e in shapes if e not in delta.index]
        ax.add_collection(LineCollection(grey, colors="0.85", linewidths=0.5))
        segs = [shapes[e] for e in delta.index if e in shapes]
        vals = [delta[e] for e in delta.index if e in shapes]
        lim = max(1.0, float(np.nanmax(np.abs(vals))) if vals else 1.0)
        lc = LineCollection(segs, array=np.asarray(vals), cmap="RdBu", linewidths=1.6)
        lc.set_clim(-lim, lim)
        ax.add_collection(lc)
        ax.autoscale()
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(lc, ax=ax, shrink=0.7, label="change in mean speed (km/h)")
        tag = "all vehicles" if f is None else f"{f:.0%} compliance"
        ax.set_title(f"{scen.name}: {name} ({tag}) − baseline")
        fig.tight_layout()
        paths.append(out / f"speed_change_{scen.name}_{name}.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


__all__ = ["DEFAULT_FRACTIONS", "EvaluationResult", "GROUPS", "Run", "evaluate_policy", "execute",
           "format_table", "mean_ci", "read_run", "study_area_edges", "write_run_config"]
