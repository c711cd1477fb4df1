"""Fuzzing the inputs: generated scenario, venues, OD, observations, policy and sweep
files and command-line flags never end in a traceback.

Each generated case breaks a copy of the valid inputs of ``tests/data/hostile/`` (see
:mod:`hostile_kit`) with values chosen to hurt (NaN, infinities, zero, negatives,
values just past a limit, huge integers, path tricks, text where numbers belong,
binary bytes) and runs the command line in-process. The outcome must be one of:

* refused: exit code 2 and exactly one line on stderr, no traceback, and no result
  presented as complete in the output folder;
* accepted: the command finished (exit 0), or it got as far as starting a SUMO program
  (:class:`hostile_kit.SumoStarted`; what SUMO makes of valid inputs is the subject of
  the other tests, and stopping there keeps each case to a fraction of a second).

The sweep file is checked through :func:`egress.load_sweep`, the first thing
``egress sweep`` does: it must return a sweep or raise one :class:`egress.EgressError`
(which the command line prints as one line with exit code 2), never anything else.

Hypothesis runs derandomized by default (the ``ci`` profile), so a run is repeatable,
with at least :data:`MIN_CASES` cases in all; ``HYPOTHESIS_PROFILE=deep`` draws ten
times as many cases at random.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hostile_kit import (
    DELETE,
    Result,
    Workspace,
    assert_nothing_complete,
    assert_refused,
    run_cli,
)
from hypothesis import HealthCheck, Phase, example, settings
from hypothesis import given as _given
from hypothesis import strategies as st

import egress
from egress.errors import EgressError

settings.register_profile("ci", derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("debug", deadline=None, database=None, report_multiple_bugs=False,
                          phases=[Phase.explicit, Phase.generate],
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
SCALE = 10 if PROFILE == "deep" else 1

#: Cases each test draws (times SCALE) and the least all of them must add up to.
EXAMPLES = {"scenario": 70, "venues": 35, "od": 60, "observations": 45, "policy": 35,
            "sweep": 60, "flags": 60}
MIN_CASES = 300
RAN: Counter = Counter()


def given(name: str, *args, **kwargs):
    """Hypothesis' ``given`` with this suite's number of cases for `name`."""
    def wrap(test):
        return settings(max_examples=EXAMPLES[name] * SCALE)(_given(*args, **kwargs)(test))
    return wrap


# --------------------------------------------------------------------------- values

NUMBERS = [float("nan"), float("inf"), float("-inf"), 0, 0.0, -0.0, -1, -1e-9, 1e-300, 1e300,
           2**31 - 1, 2**31, 2**63 - 1, -2**63, 1e9, 0.5, 1, 2, 60, 900, 3600, 86400,
           172800, 172801]
STRINGS = ["", " ", "../../escaped", "/etc/passwd", "a/b", "..", ".", "21:30", "24:00",
           "48:00", "99:99", "-1", "nan", "inf", "1e9", "é", "\x00", "x" * 300,
           "lumen_field", "lot_a", "meso", "micro", "n11_n12", "tiny.net.xml", "od.csv"]

numbers = st.one_of(st.sampled_from(NUMBERS), st.integers(-10**4, 10**5),
                    st.floats(-1e4, 1e5, allow_nan=False))
texts = st.one_of(st.sampled_from(STRINGS), st.text(max_size=12))
scalars = st.one_of(numbers, texts, st.booleans())
values = st.one_of(scalars, st.just(DELETE), st.lists(scalars, max_size=3),
                   st.dictionaries(st.sampled_from(["a", "lot_a", "x"]), scalars, max_size=2))

SCENARIO_KEYS = [
    "name", "description", "network.file", "network.venues", "simulation.begin",
    "simulation.end", "simulation.step_length", "simulation.seed", "simulation.mode",
    "simulation.time_to_teleport", "simulation.edgedata_period", "demand.interval",
    "demand.od", "demand.places", "demand.destinations", "demand.beta", "demand.routes",
    "demand.event.venue", "demand.event.attendance", "demand.event.car_share",
    "demand.event.occupancy", "demand.event.end", "demand.event.lots.lot_a",
    "demand.event.profile.early", "demand.event.profile.early_window",
    "demand.event.profile.mode", "demand.event.profile.shape", "demand.event.profile.tail",
    "demand.background.scale", "demand.background.trips_per_hour",
    "demand.background.through_share", "demand.background.beta",
    "demand.routing.random_factor", "demand.routing.alternatives", "outputs.format",
    "supply.signal_penalty", "simulation.unknown", "demand.event",
]
VENUE_KEYS = ["venues.0.id", "venues.0.name", "venues.0.lon", "venues.0.lat",
              "venues.0.lots.0.capacity", "venues.0.lots.0.exits", "venues.0.lots.0.lon",
              "venues.0.lots.0.lat", "venues.0.lots.0.heading", "venues.0.lots.1.id",
              "venues.0.lots", "study_area.polygon", "study_area.name"]
POLICY_KEYS = ["policies.0.name", "policies.0.description", "policies.0.kind",
               "policies.0.signs", "policies.0.via", "policies.0.avoid",
               "policies.0.from_ramp", "policies.0.to_ramp", "policies.0.edges",
               "policies.0.policies", "policies.0.unknown", "policies.0.min_cycle",
               "policies.0.max_cycle", "policies.0.yellow", "policies.0.tls"]
SWEEP_KEYS = ["name", "description", "policy_file", "policies", "fractions", "seeds",
              "replications", "mode", "retries", "keep_runs", "events.0.name",
              "events.0.scenario", "events.0.attendance", "events.0.end",
              "events.0.background", "calibrations", "runs"]


def edits(keys: list[str]):
    return st.dictionaries(st.sampled_from(keys), values, min_size=1, max_size=3)


# --------------------------------------------------------------------------- checking


def check(result: Result, out: Path) -> str:
    """Accepted (exit 0 or a SUMO program started) or refused in one line; never more."""
    if result.sumo_started or result.code == 0:
        return "accepted"
    assert_refused(result)
    assert_nothing_complete(out)
    return "refused"


def case(kind: str, build) -> str:
    """Run one generated case in a fresh workspace."""
    RAN[kind] += 1
    with tempfile.TemporaryDirectory() as tmp:
        w = Workspace(Path(tmp))
        argv = build(w)
        return check(run_cli(argv), w.out)


def _written(w: Workspace, base: str, changes: dict) -> Path | None:
    """`base` with `changes`, or None where TOML cannot hold a value (then skipped)."""
    try:
        return w.toml(base, changes)
    except (TypeError, KeyError, IndexError, ValueError, AttributeError):
        return None


# --------------------------------------------------------------------------- files


@example({"demand.event.car_share": 0})  # found by the fuzz: an event of 0 cars
@example({"network.file": "x" * 300})  # a file name beyond the file system's limit
@given("scenario", edits(SCENARIO_KEYS))
def test_fuzz_scenario(changes):
    def build(w: Workspace):
        path = _written(w, "scenario.toml", changes) or w.scen
        return ["simulate", path, "--out", w.out]
    case("scenario", build)


@given("venues", edits(VENUE_KEYS))
def test_fuzz_venues(changes):
    def build(w: Workspace):
        venues = _written(w, "venues.toml", changes) or w.venues
        return ["simulate", w.scen_with({"network.venues": venues.name}), "--out", w.out]
    case("venues", build)


TOKENS = ["54906aa4", "5490401c", "54906abc", "54906a9c", "ffffffff", "", "x y", "1"]
cells = st.one_of(st.sampled_from(TOKENS), texts)
fields = st.one_of(numbers.map(repr), texts, st.sampled_from(["77400", "78300", "79200"]))
od_rows = st.lists(st.tuples(cells, cells, fields, fields, fields,
                             st.sampled_from(["background", "event", "parade", ""])),
                   max_size=6)


@given("od", st.one_of(od_rows.map(lambda rows: "origin,destination,begin,end,trips,kind\n"
                                   + "\n".join(",".join(map(str, r)) for r in rows) + "\n"),
                       st.binary(max_size=200), st.text(max_size=200)))
@example("origin,destination,begin,end,trips,kind\n54906aa4,,,nan,nan,nan,background\n")
@example("origin,destination,begin,end,trips,kind\n\n")
@example("origin,destination,begin,end,trips,kind\n54906aa4,54906aa4,nan,nan,nan,\n")
def test_fuzz_od(content):
    def build(w: Workspace):
        path = w.write("fuzz.csv", content)
        return ["simulate", w.scen_with({"demand.od": [path.name]}), "--out", w.out]
    case("od", build)


EDGES = ["n11_n12", "n11_n12 n12_east", "nowhere", "", "n12_east n11_n12"]
OBS_HEADER = ("segment,edges,begin,end,speed,count,travel_time,speed_sd,count_sd,"
              "travel_time_sd,weight")
obs_rows = st.lists(st.tuples(texts, st.one_of(st.sampled_from(EDGES), texts),
                              *([fields] * 9)), max_size=5)


@given("observations", st.one_of(
    obs_rows.map(lambda rows: OBS_HEADER + "\n"
                 + "\n".join(",".join(map(str, r)) for r in rows) + "\n"),
    st.binary(max_size=200), st.text(max_size=200)))
def test_fuzz_observations(content):
    def build(w: Workspace):
        path = w.write("fuzz-obs.csv", content)
        return ["observations", "match", path, "--net", w.net, "--out", w.out]
    case("observations", build)


@example({"policies.0.kind": []}, "east")
@given("policy", edits(POLICY_KEYS), st.sampled_from(["east", "nosuch", ""]))
def test_fuzz_policy(changes, name):
    def build(w: Workspace):
        policies = _written(w, "policies.toml", changes) or w.pol
        return ["evaluate-policy", w.scen, "--policy", name or "east", "--policy-file",
                policies, "--replications", "1", "--fractions", "0.3", "--out", w.out]
    case("policy", build)


@example({"fractions": [".", False]})
@example({"events.0.scenario": [True, 4925, True]})
@example({"policies": "\x17\x00", "policy_file": "\x17\x00"})
@given("sweep", edits(SWEEP_KEYS))
def test_fuzz_sweep(changes):
    RAN["sweep"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        w = Workspace(Path(tmp))
        path = _written(w, "sweep.toml", changes)
        if path is None:
            return
        try:
            egress.load_sweep(path)
        except EgressError as exc:
            assert str(exc).strip(), "an error without a message"
            assert "Traceback" not in str(exc)


# --------------------------------------------------------------------------- flags

FLAG_VALUES = st.one_of(st.sampled_from(["-1", "0", "nan", "inf", "-inf", "1e9", "2147483648",
                                         "2147483647", "", "abc", "0.5", "1", "3", "1e400",
                                         "0x10", "1,2", "nan,nan,nan", "1,1,1", "-0"]),
                        numbers.map(str))

COMMANDS = {
    "simulate": (["--seed", "--mode"],
                 lambda w: ["simulate", w.scen, "--out", w.out]),
    "build-demand": (["--seed"], lambda w: ["build-demand", w.scen, "--out", w.out]),
    "observe": (["--seed", "--interval", "--segments"],
                lambda w: ["observe", w.scen, "--out", w.out]),
    "calibrate": (["--budget", "--regularization", "--prior-sd", "--model-noise", "--seed",
                   "--supply"],
                  lambda w: ["calibrate", w.scen, "--observations", w.dir / "none.csv",
                             "--out", w.out]),
    "evaluate-policy": (["--fractions", "--replications", "--workers", "--target-halfwidth",
                         "--max-replications"],
                        lambda w: ["evaluate-policy", w.scen, "--policy", "east",
                                   "--policy-file", w.pol, "--out", w.out]),
    "sweep": (["--workers", "--scheduler"],
              lambda w: ["sweep", w.dir / "none.toml", "--out", w.out]),
    "import-counts": (["--interval", "--hours", "--dates", "--weekdays", "--window"],
                      lambda w: ["observations", "import-counts", w.od, "--out",
                                 w.out / "c.csv"]),
}


@given("flags", st.sampled_from(sorted(COMMANDS)), st.data())
def test_fuzz_flags(command, data):
    """Flags of each command with values that hurt. The commands whose flags are checked
    before a slow step (calibrate, sweep) are given an input that is missing, so an
    accepted flag ends in that one-line error instead of a calibration."""
    flags, base = COMMANDS[command]
    chosen = data.draw(st.lists(st.tuples(st.sampled_from(flags), FLAG_VALUES),
                                min_size=1, max_size=2))

    def build(w: Workspace):
        return [*base(w), *[x for flag, value in chosen for x in (flag, value)]]
    case("flags", build)


def test_fuzz_ran_enough_cases():
    """The generated cases of this run add up to at least MIN_CASES (when the whole
    suite ran)."""
    if set(RAN) != set(EXAMPLES):
        pytest.skip("not every fuzz test ran")
    assert sum(RAN.values()) >= MIN_CASES, RAN
