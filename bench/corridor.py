"""A small freeway corridor with loop-detector counts, built at bench time.

Source files in ``bench/data/corridor/``: a hand-made plain-XML network (a
6.5 km two-lane mainline with two on-ramps and two off-ramps), six traffic
zones (the mainline's two ends and the four ramps) and a "true" OD of eight
pairs over four 15-minute intervals whose second and third intervals load
the merge at the first on-ramp near its capacity. :func:`build` converts the
network with netconvert, simulates the truth (meso) and writes count
observations at five loops (mainline before and after the first on-ramp,
the first off-ramp, mainline after the second on-ramp and at the end) every
5 minutes, with the measurement noise of
:mod:`egress.calibration.synthetic` (sd ``max(2, 5 %)`` of the count).

It stands in for a counts-only OD-estimation benchmark: few detectors, more
OD rows than counts, so the counts alone leave the OD undetermined and the
prior decides what they cannot. One simulation takes about a second.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from egress.calibration import Problem, TazZones, plain_calibration_problem, run_od
from egress.calibration.observations import Observations, simulated_values, write_observations
from egress.calibration.synthetic import COUNT_SD_MIN, COUNT_SD_SHARE
from egress.config.scenario import Scenario, Simulation
from egress.network import read_net
from egress.network.build import build_network

SOURCE = Path(__file__).resolve().parent / "data" / "corridor"
#: Edges with a loop detector.
DETECTORS = ("main1", "main2", "off1", "main4", "main5")
#: Simulated window (s): the OD's hour and 10 minutes to clear.
WINDOW = (0.0, 4200.0)
#: Counting interval of the loops (s), and the last counted interval's end.
PERIOD, COUNTED_END = 300.0, 3600.0
#: Seed of the truth's simulation and of the measurement noise.
SEED = 1


def build(out: str | Path, *, seed: int = SEED) -> dict[str, Path]:
    """Build the corridor in `out`: network, zones, truth OD and count observations.

    Returns
    -------
    dict
        Paths ``net``, ``taz``, ``truth`` (OD CSV) and ``observations``.
    """
    out = Path(out)
    src = out / "src"
    src.mkdir(parents=True, exist_ok=True)
    for name in ("corridor.nod.xml", "corridor.edg.xml"):
        shutil.copy(SOURCE / name, src / name)
    net = build_network(src, out / "corridor.net.xml")
    taz = Path(shutil.copy(SOURCE / "corridor.taz.xml", out / "corridor.taz.xml"))
    truth_path = Path(shutil.copy(SOURCE / "truth.od.csv", out / "truth.od.csv"))
    truth = pd.read_csv(truth_path).assign(kind="background")
    sim = Simulation(begin=WINDOW[0], end=WINDOW[1], seed=seed, mode="meso",
                     edgedata_period=PERIOD)
    scenario = Scenario(path=truth_path, name="corridor", description="", network=net,
                        venues=None, simulation=sim, output_format="csv")
    netobj = read_net(net)
    tp = Problem(scenario, netobj, TazZones(taz), truth, None, routing={"random_factor": 1.0})
    edges, _, _, _ = run_od(tp, tp.x0, out / "truth-run")
    rows = [{"segment": e, "edges": (e,), "begin": b, "end": b + PERIOD, "speed": np.nan,
             "count": 1.0, "travel_time": np.nan}
            for e in DETECTORS for b in np.arange(WINDOW[0], COUNTED_END, PERIOD)]
    table = pd.DataFrame(rows)
    table["length"] = [netobj.getEdge(e).getLength() for e in table["segment"]]
    table["free_speed"] = [netobj.getEdge(e).getSpeed() * 3.6 for e in table["segment"]]
    true = simulated_values(edges, Observations(table), netobj)["count"].to_numpy()
    sd = np.maximum(COUNT_SD_MIN, COUNT_SD_SHARE * true)
    rng = np.random.default_rng([seed, 11])
    table["count"] = np.maximum(np.round(true + rng.normal(0.0, 1.0, len(true)) * sd), 0.0)
    table["speed_sd"], table["count_sd"], table["travel_time_sd"] = np.nan, sd, np.nan
    table["weight"] = 1.0
    obs = write_observations(table, out / "observations.csv")
    shutil.rmtree(out / "truth-run", ignore_errors=True)
    return {"net": net, "taz": taz, "truth": truth_path, "observations": Path(obs)}


def problem(files: dict[str, Path], prior: str | Path, *, seed: int = 3) -> Problem:
    """The corridor's calibration problem from the OD file `prior`."""
    return plain_calibration_problem(files["net"], files["taz"], prior, files["observations"],
                                     begin=WINDOW[0], end=WINDOW[1], period=PERIOD, seed=seed,
                                     mode="meso", random_factor=1.0)
