"""Hostile input, case by case: every mistake a user can make in a file, a table or a
flag ends with exit code 2, one line on stderr naming the file, key, row or flag, no
traceback, no SUMO program started and nothing presented as a finished result.

Each case breaks one thing in a copy of the valid inputs of ``tests/data/hostile/``
(see :mod:`hostile_kit`) and runs the command line in-process. The table is grouped by
what is broken: scenario values (NaN, infinities, negatives, zero periods, sizes
beyond :mod:`egress.limits`, seeds outside SUMO's range, times out of the window or
out of order, names that escape their folder), input files (missing, empty, binary,
undecodable, of the wrong kind), flags, output paths, and folders of another command's
results. The last tests run SUMO once on the tiny network to show that a failed run
never leaves earlier results looking current.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile_kit import DELETE, Workspace, assert_nothing_complete, assert_refused, run_cli

NAN, INF = float("nan"), float("inf")
BINARY = bytes(range(256)) * 8
LATIN1 = "origin,destination,begin,end,trips\nZürich,Genève,77400,78300,5\n".encode("latin-1")
ROUTES = '<routes>\n  <trip id="t0" depart="0" from="n10_n11" to="n11_n12"/>\n</routes>\n'


def simulate(scen: Path, w: Workspace, *extra) -> list:
    return ["simulate", scen, "--out", w.out, *extra]


def scen(changes: dict, fragment: str | None = None):
    """A case: simulate a scenario with `changes`; the message names the first key."""
    return (lambda w: simulate(w.scen_with(changes), w), [fragment or next(iter(changes))])


def venue(changes: dict, fragment: str):
    return (lambda w: simulate(w.venues_with(changes), w), [fragment])


def od(rows: list[str], fragment: str):
    return (lambda w: simulate(w.scen_with_od(rows), w), [fragment])


def calib(*flags, fragment: str):
    return (lambda w: ["calibrate", w.scen, "--observations", w.obs, "--out", w.out, *flags],
            [fragment])


def plain(*flags, fragment: str):
    return (lambda w: ["calibrate", "--net", w.net, "--taz", w.dir / "zones.taz.xml",
                       "--od", w.od, "--observations", w.obs, "--out", w.out, *flags],
            [fragment])


def evaluate(*flags, fragment: str, scenario: Callable | None = None):
    return (lambda w: ["evaluate-policy", scenario(w) if scenario else w.scen, "--policy",
                       "east", "--policy-file", w.pol, "--out", w.out, *flags], [fragment])


def sweep(changes: dict, fragment: str):
    return (lambda w: ["sweep", w.sweep_with(changes), "--out", w.out], [fragment])


def sweep_flags(*flags, fragment: str):
    return (lambda w: ["sweep", w.sweep, "--out", w.out, *flags], [fragment])


def file_case(command: Callable, content: str | bytes, name: str, fragment: str | None = None):
    """A case whose input file `name` holds `content`; the message names the file."""
    return (lambda w: command(w, w.write(name, content)), [fragment or name])


def run_folder() -> dict[str, str]:
    return {"summary.json": json.dumps({"state": "complete", "loaded": 3}),
            "run.sumocfg": "<configuration/>\n"}


CASES: dict[str, tuple[Callable[[Workspace], list], list[str]]] = {
    # ---------------------------------------------------------------- scenario values
    "begin-nan": scen({"simulation.begin": NAN}),
    "begin-inf": scen({"simulation.begin": INF}),
    "end-inf": scen({"simulation.end": INF}),
    "end-minus-inf": scen({"simulation.end": -INF}),
    "begin-negative": scen({"simulation.begin": -60}),
    "end-past-two-days": scen({"simulation.end": "49:00"}),
    "end-huge": scen({"simulation.end": 1e300}),
    "end-before-begin": scen({"simulation.end": "21:00"}),
    "begin-not-a-time": scen({"simulation.begin": "25:99"}),
    "begin-a-bool": scen({"simulation.begin": True}),
    "begin-missing": scen({"simulation.begin": DELETE}),
    "step-zero": scen({"simulation.step_length": 0}),
    "step-nan": scen({"simulation.step_length": NAN}),
    "step-negative": scen({"simulation.step_length": -1.0}),
    "seed-negative": scen({"simulation.seed": -1}),
    "seed-too-big": scen({"simulation.seed": 2147483648}),
    "seed-int64": scen({"simulation.seed": 9223372036854775807}),
    "seed-float": scen({"simulation.seed": 1.5}),
    "seed-text": scen({"simulation.seed": "7"}),
    "mode-unknown": scen({"simulation.mode": "fast"}),
    "edgedata-zero": scen({"simulation.edgedata_period": 0}),
    "edgedata-negative": scen({"simulation.edgedata_period": -300}),
    "edgedata-nan": scen({"simulation.edgedata_period": NAN}),
    "teleport-nan": scen({"simulation.time_to_teleport": NAN}),
    "name-escapes": scen({"name": "../../escaped"}),
    "name-empty": scen({"name": ""}),
    "name-slash": scen({"name": "a/b"}),
    "name-hidden": scen({"name": ".hidden"}),
    "name-absolute": scen({"name": "/tmp/x"}),
    "name-a-number": scen({"name": 7}),
    "unknown-key": scen({"simulation.seeed": 3}, "simulation.seeed"),
    "interval-inf": scen({"demand.interval": INF}),
    "interval-zero": scen({"demand.interval": 0}),
    "interval-negative": scen({"demand.interval": -900}),
    "interval-nan": scen({"demand.interval": NAN}),
    "beta-inf": scen({"demand.beta": INF}),
    "beta-negative": scen({"demand.beta": -0.1}),
    "beta-nan": scen({"demand.beta": NAN}),
    "attendance-zero": scen({"demand.event.attendance": 0}),
    "attendance-negative": scen({"demand.event.attendance": -5}),
    "attendance-billion": scen({"demand.event.attendance": 1_000_000_000}),
    "attendance-float": scen({"demand.event.attendance": 1e9}),
    "car-share-above-one": scen({"demand.event.car_share": 1.5}),
    "car-share-nan": scen({"demand.event.car_share": NAN}),
    "occupancy-zero": scen({"demand.event.occupancy": 0}),
    "occupancy-inf": scen({"demand.event.occupancy": INF}),
    "event-end-nan": scen({"demand.event.end": NAN}),
    "event-end-past-two-days": scen({"demand.event.end": "99:00"}),
    "event-end-morning": scen({"demand.event.end": "08:00"}),
    "venue-unknown": scen({"demand.event.venue": "nowhere"}),
    "shape-one": scen({"demand.event.profile.shape": 1}),
    "profile-mode-inf": scen({"demand.event.profile.mode": INF}),
    "tail-zero": scen({"demand.event.profile.tail": 0}),
    "early-above-one": scen({"demand.event.profile.early": 2}),
    "lot-negative": scen({"demand.event.lots.lot_a": -1}),
    "lot-trillion": scen({"demand.event.lots.lot_a": 10**12}),
    "trips-per-hour-1e9": scen({"demand.background.trips_per_hour": 1e9}),
    "trips-per-hour-nan": scen({"demand.background.trips_per_hour": NAN}),
    "trips-per-hour-negative": scen({"demand.background.trips_per_hour": -1}),
    "background-scale-inf": scen({"demand.background.scale": INF}),
    "through-share-two": scen({"demand.background.through_share": 2}),
    "alternatives-zero": scen({"demand.routing.alternatives": 0}),
    "random-factor-nan": scen({"demand.routing.random_factor": NAN}),
    "interval-one-second": scen({"demand.interval": 1}, "demand.interval"),
    "edgedata-one-second": scen({"simulation.edgedata_period": 1}),
    "background-beyond-a-run": scen({"demand.background.trips_per_hour": 900000.0,
                                     "demand.background.scale": 50.0},
                                    "demand.background.trips_per_hour"),
    "outputs-dir-a-file": (lambda w: ["simulate", w.scen_with({"outputs.dir": "od.csv"})],
                           ["outputs.dir", "is a file"]),
    "path-name-too-long": scen({"network.file": "x" * 300}, "network.file"),
    "path-with-nul": scen({"demand.places": "a\u0000b"}, "demand.places"),
    "network-missing": scen({"network.file": "missing.net.xml"}, "network.file"),
    "network-is-a-folder": scen({"network.file": "."}, "network.file"),
    # ---------------------------------------------------------------- input files
    "network-is-an-od-table": (lambda w: simulate(w.scen_with({"network.file": "od.csv"}), w),
                               ["network.file", "not a SUMO network"]),
    "network-is-a-trips-file": file_case(
        lambda w, p: simulate(w.scen_with({"network.file": p.name}), w), ROUTES,
        "trips.xml", "root element is <routes>"),
    "network-binary": file_case(
        lambda w, p: simulate(w.scen_with({"network.file": p.name}), w), BINARY,
        "binary.net.xml"),
    "network-empty": file_case(
        lambda w, p: simulate(w.scen_with({"network.file": p.name}), w), "",
        "empty.net.xml"),
    "venues-binary": file_case(
        lambda w, p: simulate(w.scen_with({"network.venues": p.name}), w), BINARY,
        "venues.bin", "network.venues"),
    "venues-malformed": file_case(
        lambda w, p: simulate(w.scen_with({"network.venues": p.name}), w), "[[venues]\n",
        "bad-venues.toml", "malformed TOML"),
    "scenario-binary": file_case(lambda w, p: simulate(p, w), BINARY, "binary.toml",
                                 "not a text file"),
    "scenario-empty": file_case(lambda w, p: simulate(p, w), "", "empty.toml",
                                "required key missing"),
    "scenario-malformed": file_case(lambda w, p: simulate(p, w), "name = \n", "broken.toml",
                                    "malformed TOML"),
    "scenario-missing": (lambda w: simulate(w.dir / "nothing.toml", w), ["nothing.toml"]),
    "scenario-is-a-folder": (lambda w: simulate(w.dir, w), ["not found"]),
    "routes-binary": file_case(
        lambda w, p: simulate(w.scen_with({"demand.routes": [p.name]}), w), BINARY,
        "b.rou.xml", "binary file"),
    "routes-empty": file_case(
        lambda w, p: simulate(w.scen_with({"demand.routes": [p.name]}), w), "", "e.rou.xml",
        "empty file"),
    "routes-is-the-network": (lambda w: simulate(w.scen_with({"demand.routes": ["tiny.net.xml"]}),
                                                 w), ["root element is <net>"]),
    "routes-depart-huge": file_case(
        lambda w, p: simulate(w.scen_with({"demand.routes": [p.name]}), w),
        '<routes><vehicle id="v" depart="1e300"><route edges="n11_n12"/></vehicle></routes>',
        "r.rou.xml", "vehicle 'v'"),
    "routes-flow-nan-period": file_case(
        lambda w, p: simulate(w.scen_with({"demand.routes": [p.name]}), w),
        '<routes><flow id="f" begin="0" end="100" period="nan"><route edges="n11_n12"/>'
        '</flow></routes>', "f.rou.xml", "flow 'f'"),
    "routes-flow-billions": file_case(
        lambda w, p: simulate(w.scen_with({"demand.routes": [p.name]}), w),
        '<routes><flow id="f" begin="0" end="100000" period="0.00001"><route edges="n11_n12"/>'
        '</flow></routes>', "f.rou.xml", "flow 'f'"),
    "od-binary": file_case(lambda w, p: simulate(w.scen_with({"demand.od": [p.name]}), w),
                           BINARY, "binary.csv", "binary file"),
    "od-latin1": file_case(lambda w, p: simulate(w.scen_with({"demand.od": [p.name]}), w),
                           LATIN1, "latin1.csv", "not UTF-8"),
    "od-empty": file_case(lambda w, p: simulate(w.scen_with({"demand.od": [p.name]}), w),
                          "", "empty.csv", "empty file"),
    "od-missing": scen({"demand.od": ["nothing.csv"]}, "demand.od[0]"),
    "od-trips-1e9": od(["54906aa4,5490401c,77400,78300,1e9,background"], "line 2"),
    "od-trips-nan": od(["54906aa4,5490401c,77400,78300,nan,background"], "line 2"),
    "od-trips-inf": od(["54906aa4,5490401c,77400,78300,inf,background"], "line 2"),
    "od-trips-negative": od(["54906aa4,5490401c,77400,78300,-3,background"], "line 2"),
    "od-total-too-large": od([f"54906aa4,5490401c,{77400 + 900 * i},{78300 + 900 * i},"
                              "1000000,background" for i in range(3)], "in total"),
    "od-21-hours-early": od(["54906aa4,5490401c,1800,2700,50,background"], "outside the "
                                                                          "simulation window"),
    "od-after-window": od(["54906aa4,5490401c,90000,90900,5,background"], "simulation window"),
    "od-inverted": od(["54906aa4,5490401c,78300,77400,5,background"], "inverted"),
    "od-begin-negative": od(["54906aa4,5490401c,-900,77400,5,background"], "line 2"),
    "od-begin-nan": od(["54906aa4,5490401c,nan,78300,5,background"], "line 2"),
    "od-no-origin": od([",5490401c,77400,78300,5,background"], "origin missing"),
    "od-missing-columns": (lambda w: simulate(w.scen_with({"demand.od": [
        w.od_with(["a,b"], header="x,y").name]}), w), ["missing column"]),
    "od-extra-field": od(["54906aa4,5490401c,77400,78300,5,background,7"], "more fields"),
    "od-blank-kind": od(["54906aa4,5490401c,77400,78300,nan,"], "line 2"),
    "od-unknown-kind": od(["54906aa4,5490401c,77400,78300,5,parade"], "kind"),
    "places-binary": file_case(
        lambda w, p: simulate(w.scen_with({"demand.places": p.name}), w), BINARY,
        "places.csv", "binary file"),
    "places-population-inf": file_case(
        lambda w, p: ["build-demand", w.scen_with({"demand.places": p.name}), "--out", w.out],
        "name,lon,lat,population\nFar,-122.0,47.0,inf\n", "places-inf.csv", "population"),
    "destinations-binary": file_case(
        lambda w, p: ["build-demand", w.scen_with({"demand.destinations": p.name}), "--out",
                      w.out], BINARY, "dest.csv", "binary file"),
    # ---------------------------------------------------------------- venues values
    "venue-lon-nan": venue({"venues.0.lon": NAN}, "venues"),
    "venue-lat-100": venue({"venues.0.lat": 100.0}, "lat"),
    "lot-capacity-zero": venue({"venues.0.lots.0.capacity": 0}, "capacity"),
    "lot-capacity-trillion": venue({"venues.0.lots.0.capacity": 10**12}, "capacity"),
    "lot-capacity-nan": venue({"venues.0.lots.0.capacity": NAN}, "capacity"),
    "lot-exit-unknown": venue({"venues.0.lots.0.exits": ["nowhere"]}, "nowhere"),
    "lot-id-twice": venue({"venues.0.lots.1.id": "lot_a"}, "duplicate lot id"),
    "venue-heading-nan": venue({"venues.0.lots.0.heading": NAN}, "heading"),
    # ---------------------------------------------------------------- flags
    "seed-flag-negative": (lambda w: simulate(w.scen, w, "--seed", "-1"), ["--seed", ">= 0"]),
    "seed-flag-too-big": (lambda w: simulate(w.scen, w, "--seed", "2147483648"),
                          ["--seed", "2147483647"]),
    "seed-flag-huge": (lambda w: simulate(w.scen, w, "--seed", str(10**30)), ["--seed"]),
    "seed-flag-text": (lambda w: simulate(w.scen, w, "--seed", "abc"), ["--seed"]),
    "seed-flag-float": (lambda w: simulate(w.scen, w, "--seed", "1e3"), ["--seed"]),
    "mode-flag-unknown": (lambda w: simulate(w.scen, w, "--mode", "fast"), ["--mode"]),
    "build-demand-seed": (lambda w: ["build-demand", w.scen, "--seed", "-5", "--out", w.out],
                          ["--seed"]),
    "observe-interval-zero": (lambda w: ["observe", w.scen, "--out", w.out, "--interval", "0"],
                              ["--interval"]),
    "observe-interval-negative": (lambda w: ["observe", w.scen, "--out", w.out, "--interval",
                                             "-900"], ["--interval"]),
    "observe-interval-nan": (lambda w: ["observe", w.scen, "--out", w.out, "--interval",
                                        "nan"], ["--interval"]),
    "observe-interval-inf": (lambda w: ["observe", w.scen, "--out", w.out, "--interval",
                                        "inf"], ["--interval"]),
    "observe-segments-zero": (lambda w: ["observe", w.scen, "--out", w.out, "--segments", "0"],
                              ["--segments"]),
    "observe-segments-huge": (lambda w: ["observe", w.scen, "--out", w.out, "--segments",
                                         "100000000"], ["--segments"]),
    "observe-seed": (lambda w: ["observe", w.scen, "--out", w.out, "--seed", "-1"],
                     ["--seed"]),
    "budget-zero": calib("--budget", "0", fragment="--budget"),
    "budget-negative": calib("--budget", "-3", fragment="--budget"),
    "regularization-negative": calib("--regularization", "-5", fragment="--regularization"),
    "regularization-nan": calib("--regularization", "nan", fragment="--regularization"),
    "prior-sd-inf": calib("--prior-sd", "inf", fragment="--prior-sd"),
    "model-noise-nan": calib("--model-noise", "nan,nan,nan", fragment="--model-noise"),
    "model-noise-two": calib("--model-noise", "1,2", fragment="--model-noise"),
    "model-noise-negative": calib("--model-noise", "-1,0.2,0.3", fragment="--model-noise"),
    "supply-inverted": calib("--supply", "signal_penalty=2,1", fragment="--supply"),
    "supply-nan": calib("--supply", "signal_penalty=nan,1", fragment="--supply"),
    "supply-no-name": calib("--supply", "=0,1", fragment="--supply"),
    "observed-count-trillion": file_case(
        lambda w, p: ["calibrate", w.scen, "--observations", p, "--out", w.out],
        "segment,edges,begin,end,count\ns,n11_n12,77400,78300,1e12\n", "o.csv", "line 2"),
    "observed-speed-negative": file_case(
        lambda w, p: ["calibrate", w.scen, "--observations", p, "--out", w.out],
        "segment,edges,begin,end,speed\ns,n11_n12,77400,78300,-40\n", "o.csv", "line 2"),
    "observed-outside-window": file_case(
        lambda w, p: ["calibrate", w.scen, "--observations", p, "--out", w.out],
        "segment,edges,begin,end,speed\ns,n11_n12,3600,4500,40\n", "o.csv", "line 2"),
    "calibrate-seed": calib("--seed", "2147483648", fragment="--seed"),
    "period-negative": plain("--period", "-300", fragment="--period"),
    "period-zero": plain("--period", "0", fragment="--period"),
    "begin-flag-nan": plain("--begin", "nan", fragment="--begin"),
    "end-flag-inf": plain("--end", "inf", fragment="--end"),
    "plain-window-inverted": (lambda w: ["calibrate", "--net", w.net, "--taz",
                                         w.dir / "zones.taz.xml", "--od", w.od, "--observations",
                                         w.obs, "--begin", "80000", "--end", "70000", "--out",
                                         w.out], ["end", "inverted"]),
    "observations-binary": file_case(
        lambda w, p: ["calibrate", w.scen, "--observations", p, "--out", w.out], BINARY,
        "obs.csv", "binary file"),
    "observations-empty": file_case(
        lambda w, p: ["calibrate", w.scen, "--observations", p, "--out", w.out], "",
        "obs-empty.csv", "empty file"),
    "observations-missing": (lambda w: ["calibrate", w.scen, "--observations",
                                        w.dir / "none.csv", "--out", w.out], ["none.csv"]),
    "observations-wrong-type": file_case(
        lambda w, p: ["calibrate", w.scen, "--observations", p, "--out", w.out], "x",
        "obs.txt", "file type"),
    "fractions-above-one": evaluate("--fractions", "1.5", fragment="--fractions"),
    "fractions-nan": evaluate("--fractions", "nan", fragment="--fractions"),
    "fractions-empty": evaluate("--fractions", "", fragment="--fractions"),
    "fractions-text": evaluate("--fractions", "a,b", fragment="--fractions"),
    "replications-zero": evaluate("--replications", "0", fragment="--replications"),
    "replications-negative": evaluate("--replications", "-1", fragment="--replications"),
    "workers-negative": evaluate("--workers", "-1", fragment="--workers"),
    "workers-zero": evaluate("--workers", "0", fragment="--workers"),
    "halfwidth-zero": evaluate("--target-halfwidth", "0", fragment="--target-halfwidth"),
    "halfwidth-nan": evaluate("--target-halfwidth", "nan", fragment="--target-halfwidth"),
    "max-replications-zero": evaluate("--max-replications", "0",
                                      fragment="--max-replications"),
    "policy-named-twice": (lambda w: ["evaluate-policy", w.scen, "--policy", "east,east",
                                      "--policy-file", w.pol, "--out", w.out], ["twice"]),
    "policy-none-named": (lambda w: ["evaluate-policy", w.scen, "--policy", ",",
                                     "--policy-file", w.pol, "--out", w.out], ["no policy"]),
    "policy-unknown": (lambda w: ["evaluate-policy", w.scen, "--policy", "nosuch",
                                  "--policy-file", w.pol, "--out", w.out], ["nosuch"]),
    "policy-file-binary": file_case(
        lambda w, p: ["evaluate-policy", w.scen, "--policy", "east", "--policy-file", p,
                      "--out", w.out], BINARY, "pol.toml", "pol.toml"),
    "policy-file-empty": file_case(
        lambda w, p: ["evaluate-policy", w.scen, "--policy", "east", "--policy-file", p,
                      "--out", w.out], "", "pol-empty.toml", "pol-empty.toml"),
    "policy-sign-unknown-edge": (lambda w: ["evaluate-policy", w.scen, "--policy", "east",
                                            "--policy-file",
                                            w.policies_with({"policies.0.signs": ["nowhere"]}),
                                            "--out", w.out], ["nowhere"]),
    "evaluate-od-binary": file_case(
        lambda w, p: ["evaluate-policy", w.scen, "--policy", "east", "--policy-file", w.pol,
                      "--od", p, "--out", w.out], BINARY, "calibrated.csv", "binary file"),
    "evaluate-scenario-nan": evaluate(fragment="simulation.seed",
                                      scenario=lambda w: w.scen_with({"simulation.seed": -2})),
    "evaluate-same-scenario-twice": (lambda w: ["evaluate-policy", w.scen, w.scen, "--policy",
                                                "east", "--policy-file", w.pol, "--out", w.out],
                                     ["named 'hostile'"]),
    "sweep-workers-negative": sweep_flags("--workers", "-1", fragment="--workers"),
    "sweep-scheduler-not-an-address": sweep_flags("--scheduler", "not-an-address",
                                                  fragment="--scheduler"),
    "sweep-scheduler-nobody-listens": sweep_flags("--scheduler", "tcp://127.0.0.1:1",
                                                  fragment="tcp://127.0.0.1:1"),
    "sweep-scheduler-bad-port": sweep_flags("--scheduler", "tcp://localhost:99999",
                                            fragment="--scheduler"),
    "sweep-name-escapes": sweep({"name": "../x"}, "name"),
    "sweep-seed-negative": sweep({"seeds": [-1]}, "seeds"),
    "sweep-seed-too-big": sweep({"seeds": [2147483648]}, "seeds"),
    "sweep-replications-zero": sweep({"seeds": DELETE, "replications": 0}, "replications"),
    "sweep-replications-huge": sweep({"seeds": DELETE, "replications": 10**7}, "replications"),
    "sweep-fraction-two": sweep({"fractions": [2.0]}, "fractions"),
    "sweep-fraction-nan": sweep({"fractions": [NAN]}, "fractions"),
    "sweep-event-name-escapes": sweep({"events.0.name": "../up"}, "events"),
    "sweep-attendance-negative": sweep({"events.0.attendance": -1}, "attendance"),
    "sweep-event-end-nan": sweep({"events.0.end": NAN}, "end"),
    "sweep-background-inf": sweep({"events.0.background": INF}, "background"),
    "sweep-retries-negative": sweep({"retries": -1}, "retries"),
    "sweep-binary": file_case(lambda w, p: ["sweep", p, "--out", w.out], BINARY,
                              "binary-sweep.toml", "not a text file"),
    "osm-is-a-csv": (lambda w: ["build-network", "--osm", w.od, "--out", w.out / "n.net.xml"],
                     ["not an OpenStreetMap"]),
    "osm-is-a-network": (lambda w: ["build-network", "--osm", w.net, "--out",
                                    w.out / "n.net.xml"], ["root element is <net>"]),
    "zones-od-as-network": (lambda w: ["zones", w.od, "--out", w.out], ["od.csv"]),
    "zones-binary-network": file_case(lambda w, p: ["zones", p, "--out", w.out], BINARY,
                                      "bin.net.xml", "binary file"),
    "zones-empty-network": file_case(lambda w, p: ["zones", p, "--out", w.out], "",
                                     "zero.net.xml", "empty file"),
    "zones-trips-as-network": file_case(lambda w, p: ["zones", p, "--out", w.out], ROUTES,
                                        "trips.net.xml", "<routes>"),
    "zones-venues-binary": file_case(
        lambda w, p: ["zones", w.net, "--venues", p, "--out", w.out], BINARY, "v.toml",
        "not a text file"),
    # ---------------------------------------------------------------- output paths
    "out-empty": (lambda w: ["simulate", w.scen, "--out", ""], ["--out", "empty"]),
    "out-blank": (lambda w: ["simulate", w.scen, "--out", "  "], ["--out", "empty"]),
    "out-is-a-file": (lambda w: ["simulate", w.scen, "--out", w.od], ["--out", "is a file"]),
    "out-under-a-file": (lambda w: ["simulate", w.scen, "--out", w.od / "run"],
                         ["--out", "is a file"]),
    "out-unwritable": (lambda w: ["simulate", w.scen, "--out", "/proc/egress-run"],
                       ["--out", "not writable"]),
    "out-input-folder": (lambda w: ["simulate", w.scen, "--out", w.dir],
                         ["--out", "folder of the input"]),
    "out-observe-input-folder": (lambda w: ["observe", w.scen, "--out", w.dir],
                                 ["--out", "folder of the input"]),
    "out-build-demand-file": (lambda w: ["build-demand", w.scen, "--out", w.od],
                              ["--out", "is a file"]),
    "out-sweep-input-folder": (lambda w: ["sweep", w.sweep, "--out", w.dir],
                               ["--out", "folder of the input"]),
    "out-import-counts-empty": (lambda w: ["observations", "import-counts", w.od, "--out", ""],
                                ["--out", "empty"]),
    "out-plot-is-a-folder": (lambda w: ["plot", "demand", w.scen, w.scen, "--out", w.dir],
                             ["--out", "is a folder"]),
    "out-report-overwrites-input": (lambda w: ["report", w.folder("r", run_folder()), "--out",
                                               w.scen], ["--out"]),
    "out-network-overwrites-osm": file_case(
        lambda w, p: ["build-network", "--osm", p, "--out", p], "<osm/>", "a.osm",
        "--out"),
    # ---------------------------------------------------------------- folders of other commands
    "calibrate-resume-into-run": (lambda w: ["calibrate", w.scen, "--observations", w.obs,
                                             "--resume", "--out", w.folder("run", run_folder())],
                                  ["--out", "egress simulate"]),
    "calibrate-into-run": (lambda w: ["calibrate", w.scen, "--observations", w.obs, "--out",
                                      w.folder("run", run_folder())], ["egress simulate"]),
    "calibrate-resume-garbage-state": (
        lambda w: ["calibrate", w.scen, "--observations", w.obs, "--resume", "--out",
                   w.folder("cal", {"state.json": "{not json"})], ["state.json"]),
    "calibrate-resume-wrong-state": (
        lambda w: ["calibrate", w.scen, "--observations", w.obs, "--resume", "--out",
                   w.folder("cal", {"state.json": json.dumps({"state": "complete"})})],
        ["not a calibration state"]),
    "calibrate-resume-list-state": (
        lambda w: ["calibrate", w.scen, "--observations", w.obs, "--resume", "--out",
                   w.folder("cal", {"state.json": "[]"})], ["not a calibration state"]),
    "evaluate-into-calibration": (
        lambda w: ["evaluate-policy", w.scen, "--policy", "east", "--policy-file", w.pol,
                   "--out", w.folder("cal", {"state.json": "{}"})], ["egress calibrate"]),
    "simulate-into-evaluation": (lambda w: ["simulate", w.scen, "--out",
                                            w.folder("ev", {"evaluation.json": "{}"})],
                                 ["egress evaluate-policy"]),
    "simulate-into-sweep": (lambda w: ["simulate", w.scen, "--out",
                                       w.folder("sw", {"sweep.json": "{}"})],
                            ["egress sweep"]),
    "sweep-into-run": (lambda w: ["sweep", w.sweep, "--out", w.folder("run", run_folder())],
                       ["egress simulate"]),
    "observe-into-run": (lambda w: ["observe", w.scen, "--out", w.folder("run", run_folder())],
                         ["egress simulate"]),
    "report-missing": (lambda w: ["report", w.dir / "nothing"], ["nothing"]),
    "report-empty-folder": (lambda w: ["report", w.folder("empty", {})], ["no run"]),
    "report-a-file": (lambda w: ["report", w.od], ["od.csv"]),
    "validate-failed-run": (lambda w: ["validate", w.folder("failed", {
        "summary.json": json.dumps({"state": "failed", "error": "SUMO crashed"}),
        "run.sumocfg": "<configuration/>\n"}), "--observations", w.obs], ["failed"]),
    "validate-not-a-run": (lambda w: ["validate", w.folder("empty", {}), "--observations",
                                      w.obs], ["empty"]),
    "import-counts-binary": file_case(
        lambda w, p: ["observations", "import-counts", p, "--out", w.out / "c.csv"], BINARY,
        "loops.csv", "binary file"),
    "import-counts-huge-volume": file_case(
        lambda w, p: ["observations", "import-counts", p, "--out", w.out / "c.csv"],
        "station,direction,lat,lon,date,hour,volume,flag\n"
        "s1,NB,47.59,-122.33,2018-05-08,21,1e15,1\n", "loops.csv", "line 2"),
    "import-counts-off-the-earth": file_case(
        lambda w, p: ["observations", "import-counts", p, "--out", w.out / "c.csv"],
        "station,direction,lat,lon,date,hour,volume,flag\n"
        "s1,NB,200,-122.33,2018-05-08,21,500,1\n", "loops.csv", "not on the Earth"),
    "import-counts-hour-99": file_case(
        lambda w, p: ["observations", "import-counts", p, "--out", w.out / "c.csv"],
        "station,direction,lat,lon,date,hour,volume,flag\n"
        "s1,NB,47.59,-122.33,2018-05-08,99,500,1\n", "loops.csv", "hour '99'"),
    "import-probe-interval-zero": (lambda w: ["observations", "import-probe-speeds", w.od,
                                              w.od, "--interval", "0", "--out",
                                              w.out / "s.csv"], ["--interval"]),
    "match-binary": file_case(
        lambda w, p: ["observations", "match", p, "--net", w.net, "--out", w.out], BINARY,
        "m.csv", "binary file"),
    "plot-scenario-nan": (lambda w: ["plot", "demand", w.scen_with({"demand.interval": NAN}),
                                     w.scen, "--out", w.out / "d.png"], ["demand.interval"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_refused_in_one_line(name, tmp_path):
    build, fragments = CASES[name]
    w = Workspace(tmp_path)
    argv = build(w)
    before = set(tmp_path.rglob("*"))
    result = run_cli(argv)
    assert_refused(result, *fragments)
    assert_nothing_complete(tmp_path, before)


def test_there_are_at_least_a_hundred_cases():
    assert len(CASES) >= 100


# --------------------------------------------------------------------------- run folders


def _route_scenario(folder: Path, net: Path, vtype: str = "") -> Path:
    typed = ' type="t"' if vtype else ""
    (folder / "r.rou.xml").write_text(f'<routes>{vtype}<vehicle id="v" depart="0"{typed}>'
                                      '<route edges="ab bc"/></vehicle></routes>\n')
    path = folder / "s.toml"
    path.write_text(f'name = "s"\n[network]\nfile = "{net}"\n[simulation]\nbegin = 0\n'
                    'end = 400\n[demand]\nroutes = ["r.rou.xml"]\n')
    return path


def test_a_failed_run_leaves_no_earlier_result_looking_current(tmp_path, straight_net):
    """A run folder says what it holds: complete (with the command and the inputs'
    digest), and after a failed rerun failed, its earlier tables gone, and the report
    says it is not a result."""
    run = tmp_path / "run"
    good = run_cli(["simulate", _route_scenario(tmp_path, straight_net), "--out", run],
                   sumo=True)
    assert good.code == 0, good.err
    state = json.loads((run / "summary.json").read_text())
    assert state["state"] == "complete" and state["command"] == "simulate"
    assert len(state["inputs"]) == 64
    assert any(run.glob("vehicles.*"))

    bad = _route_scenario(tmp_path, straight_net, '<vType id="t" accel="-1"/>')
    failed = run_cli(["simulate", bad, "--out", run], sumo=True)
    assert failed.code == 3 and len(failed.lines) == 1, failed.err
    state = json.loads((run / "summary.json").read_text())
    assert state["state"] == "failed" and "accel" in state["error"]
    assert not any(run.glob("vehicles.*")) and not (run / "measures.csv").exists()
    report = run_cli(["report", run])
    assert report.code == 0, report.err
    assert "Not a result: this run is failed" in (run / "report.html").read_text()


def test_calibrate_resume_never_overwrites_a_simulate_run(tmp_path, straight_net):
    run = tmp_path / "run"
    assert run_cli(["simulate", _route_scenario(tmp_path, straight_net), "--out", run],
                   sumo=True).code == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    w = Workspace(tmp_path / "w")
    result = run_cli(["calibrate", w.scen, "--observations", w.obs, "--resume", "--out", run])
    assert_refused(result, "--out", "egress simulate")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_report_marks_an_unfinished_calibration(tmp_path):
    folder = tmp_path / "cal"
    folder.mkdir()
    (folder / "state.json").write_text(json.dumps({"fingerprint": "x", "history": []}))
    result = run_cli(["report", folder])
    assert result.code == 0, result.err
    assert "Not a result: this calibration did not finish" in (folder / "report.html"
                                                               ).read_text()
