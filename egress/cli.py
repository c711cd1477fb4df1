"""The ``egress`` command line.

Each command is a thin layer over a public function of the package
(:mod:`egress`). One vocabulary for all of them:

* ``--out DIR`` names what a command writes (``-o``/``--output`` are kept as
  hidden aliases);
* ``--mode micro|meso`` picks the simulation mode wherever one runs
  (``--meso``/``--micro`` are hidden aliases);
* ``--policy NAME[,NAME...]`` names policies, ``--policy-file FILE`` the file
  they are declared in.

Exit codes: 0 success; 2 bad input (one line on stderr naming the file, key
or row, never a traceback; nothing started); 3 a run that failed (SUMO
crashed, a run broke a physical invariant, sweep tasks failed); 130
interrupted.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import egress

from . import limits
from .errors import EXIT_INPUT, EXIT_RUN, EgressError, InvalidRunError, RunError
from .folders import check_output
from .sweep.runner import probe_scheduler
from .units import set_units

EXIT_USER_ERROR = EXIT_INPUT
EXIT_INTERRUPTED = 130

_EPILOG = """exit codes: 0 success, 2 bad input (one line naming the file, key or row),
3 a run that failed (SUMO crashed, broken invariant, failed sweep tasks), 130 interrupted"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in every option's help, examples kept as written; no default is
    shown where there is none (None, a flag's False) or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False) or "default" in text:
            return text
        return super()._get_help_string(action)


def _flag(kind: type, check: Callable, what: str) -> Callable[[str], float | int]:
    """An argparse ``type`` that converts a flag's text and applies a check of
    :mod:`egress.limits`, so a flag is held to the same limits as the same value in a file
    and fails before anything runs (argparse turns the message into one line, exit 2)."""

    def convert(text: str) -> float | int:
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(
                f"invalid {kind.__name__} value: {text!r}") from None
        msg = check(value)
        if msg:
            raise argparse.ArgumentTypeError(msg)
        return value

    convert.__name__ = what
    return convert


#: Flag types, one per concept (limits in :mod:`egress.limits`).
_SEED = _flag(int, limits.seed, "seed")
_PERIOD = _flag(float, limits.period, "period")
_TIME = _flag(float, limits.time_of_day, "time")
_RUNS = _flag(int, limits.runs, "count")
_WORKERS = _flag(int, limits.workers, "workers")
_WEIGHT = _flag(float, limits.within(0, 1e6), "weight")
_SD = _flag(float, limits.within(0, 100), "sd")
_MINUTES = _flag(float, limits.within(0, 1440, lo_open=True), "minutes")


def _command(sub, name: str, summary: str, description: str, example: str):
    return sub.add_parser(name, help=summary, description=description,
                          epilog=f"example:\n  {example}\n\n{_EPILOG}", formatter_class=_Help)


def _add_out(p: argparse.ArgumentParser, what: str, required: bool = False,
             metavar: str = "DIR", inputs: tuple[str, ...] = (),
             command: str | None = None, suffixes: tuple[str, ...] = ()) -> None:
    """Add ``--out`` and record how :func:`egress.folders.check_output` checks it before
    the command runs: a folder or a file (`metavar`), the arguments naming the command's
    input files (`inputs`), for a folder of results the `command` writing it, for a file
    the endings it may have (`suffixes`)."""
    p.add_argument("--out", metavar=metavar, required=required, help=what,
                   default=None if not required else argparse.SUPPRESS)
    p.add_argument("-o", "--output", dest="out", default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)
    p.set_defaults(out_check=("file" if metavar == "FILE" else "dir", inputs, command,
                              suffixes))


def _add_mode(p: argparse.ArgumentParser, default: str | None = None) -> None:
    what = "the scenario's simulation.mode" if default is None else default
    p.add_argument("--mode", choices=["micro", "meso"], default=default,
                   help=f"simulation mode: microscopic or mesoscopic (default: {what})")
    p.add_argument("--meso", dest="mode", action="store_const", const="meso",
                   help=argparse.SUPPRESS)
    p.add_argument("--micro", dest="mode", action="store_const", const="micro",
                   help=argparse.SUPPRESS)


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet


# --------------------------------------------------------------------------- network, zones


def _cmd_build_network(args: argparse.Namespace) -> None:
    if args.osm:
        if args.source:
            raise EgressError("build-network: give either a folder or --osm, not both")
        out = args.out or Path(args.osm).with_suffix("").with_suffix(".net.xml")
        path = egress.build_osm(args.osm, out)
    else:
        if not args.source:
            raise EgressError("build-network: give a folder of plain-XML files or --osm FILE")
        path = egress.build_network(args.source, args.out)
    print(f"wrote {path}")


def _add_build_network(sub) -> None:
    p = _command(sub, "build-network", "build a SUMO network (plain XML folder or OSM)",
                 "Build a SUMO network from a folder of plain-XML files (nodes in lon/lat) or, "
                 "with --osm, a car network from an OpenStreetMap extract.",
                 "egress build-network networks/sodo")
    p.add_argument("source", nargs="?", help="folder with *.nod.xml, *.edg.xml, ...")
    p.add_argument("--osm", metavar="FILE", help="OpenStreetMap extract (.osm)")
    _add_out(p, metavar="FILE", inputs=("osm",), suffixes=(".xml", ".xml.gz"),
             what="network to write (.net.xml; default: <folder>/<folder name>.net.xml, or "
             "the OSM file's name with .net.xml)")
    p.set_defaults(func=_cmd_build_network)


def _cmd_zones(args: argparse.Namespace) -> None:
    out = Path(args.out) if args.out else Path(args.network).resolve().parent
    venues = egress.load_venues(args.venues) if args.venues else None
    files = egress.write_zones(args.network, out, venues)
    print(egress.format_zones(files["zones"]))
    print(f"wrote {files['zones']} and {files['taz']}")


def _add_zones(sub) -> None:
    p = _command(sub, "zones", "list the S2 level-13 zones of a network, write a TAZ file",
                 "Assign the network's edges to S2 level-13 cells; print and write the cell "
                 "table (zones.csv) and a SUMO TAZ file (zones.taz.xml).",
                 "egress zones networks/sodo/sodo.net.xml --venues networks/sodo/venues.toml")
    p.add_argument("network", help="SUMO network (.net.xml)")
    p.add_argument("--venues", metavar="FILE",
                   help="venues file: lot exits become sources of their venue's zone")
    _add_out(p, "folder to write (default: the network's folder)")
    p.set_defaults(func=_cmd_zones)


# --------------------------------------------------------------------------- demand


def _cmd_build_demand(args: argparse.Namespace) -> None:
    scenario = egress.load_scenario(args.scenario)
    out = Path(args.out) if args.out else scenario.output_dir / "demand"
    result = egress.build_demand(scenario, out, seed=args.seed)
    kinds = ", ".join(f"{n} {k}" for k, n in result.vehicles.items())
    print(f"vehicles: {kinds}; {result.unrouted} trips without a route (dropped)")
    if result.splits:
        print("event trips by direction: "
              + ", ".join(f"{d} {100 * v:.0f}%" for d, v in result.splits.items()))
    print(f"wrote {len(result.files)} files to {out}")


def _add_build_demand(sub) -> None:
    p = _command(sub, "build-demand", "build OD tables, trips and routes of a scenario",
                 "Build the scenario's demand over S2 level-13 cells: OD tables (CSV and "
                 "tazRelation XML), TAZ file, trips and routes.",
                 "egress build-demand scenarios/sodo-large-event.toml --out runs/demand")
    p.add_argument("scenario", help="scenario file (TOML)")
    _add_out(p, "folder (default: <outputs.dir>/demand)", inputs=("scenario",))
    p.add_argument("--seed", type=_SEED, help="random seed (default: the scenario's)")
    p.set_defaults(func=_cmd_build_demand)


def _cmd_plot(args: argparse.Namespace) -> None:
    path = egress.plot_demand_scenarios(args.event, args.normal, args.out or "demand.png")
    print(f"wrote {path}")


def _add_plot(sub) -> None:
    p = _command(sub, "plot", "draw figures (demand heat maps)",
                 "Draw figures. 'plot demand EVENT NORMAL' draws trips per S2 cell for an "
                 "event evening and a normal evening side by side, and their difference.",
                 "egress plot demand scenarios/sodo-large-event.toml "
                 "scenarios/sodo-normal-evening.toml --out demand.png")
    p.add_argument("what", choices=["demand"], help="the figure")
    p.add_argument("event", help="scenario of the event evening")
    p.add_argument("normal", help="scenario of the normal evening")
    _add_out(p, "PNG file to write (default: demand.png)", metavar="FILE",
             inputs=("event", "normal"), suffixes=(".png",))
    p.set_defaults(func=_cmd_plot)


# --------------------------------------------------------------------------- simulate


def _cmd_simulate(args: argparse.Namespace) -> None:
    result = egress.simulate(args.scenario, args.out, seed=args.seed, mode=args.mode,
                             progress=_progress(args))
    print(egress.format_summary({**result.summary, "run_dir": result.run_dir}))
    measures = Path(result.run_dir) / "measures.csv"
    if result.valid and measures.is_file():
        print(egress.format_run_measures(measures, result.summary.get("end")))
        print(f"measures: {measures}, {measures.with_name('places.csv')}; GIS layers: "
              f"{Path(result.run_dir) / 'gis'}")
    if not result.valid:
        raise InvalidRunError(str(result.run_dir), result.summary["problems"])


def _add_simulate(sub) -> None:
    p = _command(sub, "simulate", "run a scenario in SUMO and tabulate the outputs",
                 "Run a scenario in SUMO; write a run folder with a .sumocfg that opens in "
                 "sumo-gui, SUMO's outputs, the vehicle and edge tables and the run's state.",
                 "egress simulate scenarios/sodo-small-event.toml --out runs/small --seed 7")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("--seed", type=_SEED, help="random seed (default: the scenario's)")
    _add_out(p, "run folder (default: the scenario's outputs.dir, runs/<name>)",
             inputs=("scenario",), command="simulate")
    _add_mode(p)
    p.set_defaults(func=_cmd_simulate)


# --------------------------------------------------------------------------- calibration


def _cmd_observe(args: argparse.Namespace) -> None:
    files = egress.observe(args.scenario, args.out, seed=args.seed, interval=args.interval,
                           n_segments=args.segments, mode=args.mode)
    for name, path in files.items():
        print(f"wrote {name}: {path}")


def _add_observe(sub) -> None:
    p = _command(sub, "observe", "write synthetic observations of a scenario's OD",
                 "Simulate a scenario's OD as the 'true' demand and write synthetic segment "
                 "observations with documented noise (observations.csv), the truth and a "
                 "prior perturbed by 30-50% (truth.od.csv, prior.od.csv). For tests and "
                 "benchmarks: a fit to them is not validation.",
                 "egress observe scenarios/sodo-normal-evening.toml --out runs/synthetic")
    p.add_argument("scenario", help="scenario file (TOML)")
    _add_out(p, "folder to write", required=True, inputs=("scenario",), command="observe")
    p.add_argument("--seed", type=_SEED, default=1, help="seed of the truth and the noise")
    p.add_argument("--interval", type=_PERIOD, default=900.0, help="s per observation interval")
    p.add_argument("--segments", type=_RUNS, default=60, help="observed segments")
    _add_mode(p, "meso")
    p.set_defaults(func=_cmd_observe)


def _cmd_calibrate(args: argparse.Namespace) -> None:
    plain = [args.net, args.taz, args.od]
    if args.scenario and any(plain):
        raise EgressError("calibrate: give either a scenario or --net, --taz and --od")
    if args.scenario:
        problem = egress.calibration_problem(
            args.scenario, args.observations, prior=args.prior, mode=args.mode, seed=args.seed,
            regularization=args.regularization, prior_sd=args.prior_sd,
            supply=_supply_bounds(args.supply), strict=args.strict)
    elif all(plain):
        problem = egress.plain_calibration_problem(
            args.net, args.taz, args.od, args.observations, begin=args.begin, end=args.end,
            period=args.period, mode=args.mode, seed=42 if args.seed is None else args.seed,
            regularization=args.regularization, prior_sd=args.prior_sd,
            supply=_supply_bounds(args.supply), strict=args.strict)
    else:
        raise EgressError("calibrate: give a scenario, or all of --net, --taz and --od")
    result = egress.calibrate(problem, args.out, method=args.method, budget=args.budget,
                              seed=args.seed, resume=args.resume, progress=_progress(args),
                              model_noise=args.model_noise)
    print(f"simulations: {len(result.history)}; objective {result.prior.objective:.4g} -> "
          f"{result.best.objective:.4g}")
    print(_fit_line(result.prior.metrics, result.best.metrics))
    if "supply" in result.files:
        values = ", ".join(f"{k} = {v:.3g}" for k, v in result.supply.items())
        print(f"supply: {values} (wrote {result.files['supply']})")
    if result.diagnosis is not None and result.diagnosis.message:
        print(f"diagnosis: {result.diagnosis.message}")
    if result.held_outside:
        print(f"held outside: {result.held_outside['message']}")
    print(f"wrote {result.files['od']}, {result.files['tazrel']} and the figures in {args.out}")


#: Fit statistics printed by ``calibrate``: key, label, format, unit; a statistic
#: of a quantity the observations do not hold (NaN) is left out.
_FIT_STATS = (("rmse_kmh", "speed RMSE", ".2f", " km/h"), ("rmsne", "RMSNE", ".3f", ""),
              ("r2", "R²", ".3f", ""), ("geh_share", "GEH<5", ".0%", ""),
              ("rmse_count", "count RMSE", ".1f", " veh"),
              ("rmse_travel_time", "travel time RMSE", ".1f", " s"))


def _fit_line(before: dict, after: dict) -> str:
    """'speed RMSE 9.10 -> 4.20 km/h, ...' for the statistics both runs have."""
    parts = []
    for key, label, fmt, unit in _FIT_STATS:
        a, b = before.get(key, math.nan), after.get(key, math.nan)
        if math.isfinite(a) and math.isfinite(b):
            parts.append(f"{label} {a:{fmt}} -> {b:{fmt}}{unit}")
    return ", ".join(parts) or "no fit statistics"


def _supply_item(item: str) -> tuple[str, tuple[float, float]] | str:
    """One ``--supply NAME=LOW,HIGH`` (or ``none``), checked as an argparse type."""
    if item == "none":
        return item
    name, _, rng = item.partition("=")
    try:
        low, high = (float(v) for v in rng.split(","))
        if limits.finite(low) or limits.finite(high) or low > high or not name.strip():
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected NAME=LOW,HIGH with finite LOW <= HIGH (e.g. signal_penalty=0,1.5) "
            f"or 'none', got {item!r}") from None
    return name.strip(), (low, high)


def _supply_bounds(items: list | None) -> dict[str, tuple[float, float]] | None:
    """``--supply NAME=LOW,HIGH`` (repeated) as bounds; ``--supply none``: OD only."""
    if not items:
        return None
    if items == ["none"]:
        return {}
    if "none" in items:
        raise EgressError("--supply: 'none' cannot be combined with parameters")
    return dict(items)


def _model_noise(text: str):
    """``--model-noise``: 'estimate', 'none' or three finite sds (an argparse type, so a
    bad value fails before the scenario is read)."""
    if text in ("estimate", "none"):
        return None if text == "none" else text
    try:
        values = [float(v) for v in text.split(",")]
        if len(values) != 3 or any(limits.within(0, 1e6)(v) for v in values):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'estimate', 'none' or three finite non-negative numbers "
            f"SPEED,COUNT,TRAVEL_TIME, got {text!r}") from None
    return egress.ModelNoise(*values)


def _add_calibrate(sub) -> None:
    p = _command(sub, "calibrate", "fit the OD demand to observed segment data",
                 "Adjust a scenario's OD (or an existing SUMO model's: --net --taz --od) so "
                 "that the simulation reproduces observed segment speeds, counts and travel "
                 "times.",
                 "egress calibrate scenarios/observations/sodo-normal-evening.toml "
                 "--observations scenarios/observations/sodo-normal-evening/observations.csv "
                 "--budget 15 "
                 "--out runs/calibration")
    p.add_argument("scenario", nargs="?", help="scenario file (TOML)")
    p.add_argument("--observations", metavar="FILE", required=True,
                   help="observations table (CSV or Parquet)")
    p.add_argument("--strict", action="store_true",
                   help="an observed segment that cannot be map-matched (or rows matching "
                   "the same edges) is an error, instead of being dropped (merged) with a "
                   "warning")
    p.add_argument("--prior", metavar="OD", help="OD to start from (default: the scenario's)")
    p.add_argument("--net", metavar="NET", help="SUMO network (plain-SUMO form)")
    p.add_argument("--taz", metavar="TAZ", help="SUMO TAZ file (plain-SUMO form)")
    p.add_argument("--od", metavar="OD", help="OD tazRelation or CSV file (plain-SUMO form)")
    p.add_argument("--begin", type=_TIME, help="simulation begin, s (plain-SUMO form; "
                   "default: the OD's first begin)")
    p.add_argument("--end", type=_TIME, help="simulation end, s (plain-SUMO form; default: "
                   "the later of the OD's and the observations' last end)")
    p.add_argument("--period", type=_PERIOD, default=300.0,
                   help="edgeData period, s (plain-SUMO form)")
    p.add_argument("--method", choices=["metamodel", "spsa"], default="metamodel",
                   help="optimizer")
    p.add_argument("--budget", type=_RUNS, default=15, help="simulations allowed")
    _add_mode(p, "meso")
    p.add_argument("--seed", type=_SEED, help="random seed (default: the scenario's, or 42)")
    p.add_argument("--regularization", type=_WEIGHT, default=0.01,
                   help="weight of the pull towards the prior OD")
    p.add_argument("--prior-sd", type=_SD, default=0.5,
                   help="how far the prior's total demand per kind and interval is trusted: "
                   "the sd of its logarithm (0.5: about a factor 1.65; 0: no such prior)")
    p.add_argument("--model-noise", default="estimate", type=_model_noise,
                   metavar="estimate|none|S,C,T",
                   help="the simulation's own noise in the objective's weights: 'estimate' "
                   "(the second simulation replicates the start with another seed, and the first "
                   "redraw of an incumbent measures it again there), "
                   "'none', or a speed sd in km/h, a count sd as a share and the sd of a "
                   "travel time's logarithm, e.g. 6,0.2,0.3")
    p.add_argument("--supply", action="append", type=_supply_item, metavar="NAME=LOW,HIGH",
                   help="a supply parameter to calibrate with the OD, within bounds, e.g. "
                   "signal_penalty=0,1.5 or capacity.highway.primary=0.7,1.2 (repeat for "
                   "more; default: the scenario's [supply.calibrate]; 'none': the OD only)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    _add_out(p, "output folder", required=True,
             inputs=("scenario", "observations", "prior", "net", "taz", "od"),
             command="calibrate")
    p.set_defaults(func=_cmd_calibrate)


# --------------------------------------------------------------------------- observations


def _cmd_import_probe_speeds(args: argparse.Namespace) -> None:
    result = egress.import_probe_speeds(
        args.segments, args.speeds, dates=args.dates, weekdays=args.weekdays, hours=args.hours,
        window=args.window, interval=args.interval, quantity=args.quantity,
        speed_unit=args.speed_unit, length_unit=args.length_unit)
    _report_import(result, args.out)


def _cmd_import_counts(args: argparse.Namespace) -> None:
    result = egress.import_counts(args.counts, dates=args.dates, weekdays=args.weekdays,
                                  hours=args.hours, window=args.window, interval=args.interval,
                                  good_flags=args.good_flags,
                                  keep_interpolated=args.keep_interpolated)
    _report_import(result, args.out)


def _report_import(result, out: str) -> None:
    path = result.write(out)
    print(result.summary())
    for note in result.notes:
        print(note)
    print(f"wrote {path}")


def _cmd_match(args: argparse.Namespace) -> None:
    obs = egress.read_observations(args.observations, args.net, strict=args.strict)
    files = egress.write_matched_segments(obs, args.net, args.out)
    status = obs.matches["status"].value_counts() if len(obs.matches) else {}
    print(f"{len(obs.matches)} rows given by coordinates: {status.get('kept', 0)} kept, "
          f"{status.get('merged', 0)} merged, {status.get('dropped', 0)} dropped; "
          f"{len(obs.table)} observation rows")
    print("wrote " + ", ".join(str(f) for f in files.values()))


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dates", metavar="D,D,...", help="days to average, e.g. "
                   "2018-05-07,2018-05-08 (default: all)")
    p.add_argument("--weekdays", metavar="W,W-W", help="weekdays to average, e.g. Tue-Thu "
                   "or Mon,Wed (default: all)")
    p.add_argument("--hours", metavar="H-H,H", help="start hours to keep, e.g. 21-23 for "
                   "21:00-24:00 (default: all)")
    p.add_argument("--interval", type=_PERIOD, metavar="S", help="seconds per row; must "
                   "divide the product's period, which each row splits (default: the period)")
    p.add_argument("--window", metavar="HH:MM-HH:MM", help="keep only rows wholly inside "
                   "this simulation window, e.g. 21:30-24:00 (default: all)")
    _add_out(p, "observations CSV to write", required=True, metavar="FILE",
             inputs=("segments", "speeds", "counts"), suffixes=(".csv", ".parquet"))


def _add_observations(sub) -> None:
    p = _command(sub, "observations", "import real observation products, check map matching",
                 "Turn real observation products into an observations table "
                 "(import-probe-speeds, import-counts), and check how a table's segments "
                 "map-match onto a network (match).",
                 "egress observations import-probe-speeds tmc.csv npmrds_hourly.csv "
                 "--dates 2018-05-07,2018-05-08 --hours 21-23 --out observed.csv")
    inner = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    inner.required = True
    q = _command(inner, "import-probe-speeds", "probe speeds per segment (NPMRDS, INRIX)",
                 "Average a probe-speed segment product (a segment list with ids, end points "
                 "and lengths, and speeds or travel times per segment and period) over the "
                 "chosen days: one row per segment and interval with the mean, the "
                 "day-to-day sd and the number of days.",
                 "egress observations import-probe-speeds tmc.csv npmrds_hourly.csv "
                 "--dates 2018-05-07,2018-05-08,2018-05-09 --hours 21-23 --out observed.csv")
    q.add_argument("segments", help="segment list (CSV or Parquet): id, end points, length")
    q.add_argument("speeds", help="speeds or travel times per segment id and period")
    q.add_argument("--quantity", choices=["speed", "travel_time"], default="speed",
                   help="what the rows observe")
    q.add_argument("--speed-unit", choices=["mph", "km/h"], help="unit of a bare 'speed' "
                   "column (default: from the column's name, e.g. speed_mph)")
    q.add_argument("--length-unit", choices=["mi", "km", "m"], help="unit of a bare "
                   "'length' column (default: from the column's name, e.g. miles)")
    _add_selection(q)
    q.set_defaults(func=_cmd_import_probe_speeds)
    c = _command(inner, "import-counts", "detector counts per station (WSDOT loops)",
                 "Average detector volumes given by station coordinates and direction over "
                 "the chosen days, skipping flagged values and stations interpolated between "
                 "detectors; each station becomes a short "
                 "segment from its point in its direction, its count the vehicles in each "
                 "interval.",
                 "egress observations import-counts loops.csv --weekdays Tue-Thu "
                 "--hours 21-23 --interval 900 --out counts.csv")
    c.add_argument("counts", help="counts table (CSV or Parquet): station, direction, lat, "
                   "lon, date, hour, volume, flag")
    c.add_argument("--good-flags", default="1+", metavar="REGEX",
                   help="a flag must match this in full for its value to count (TRACFLOW: "
                   "one digit per loop, 1 good)")
    c.add_argument("--keep-interpolated", action="store_true",
                   help="keep stations whose values lie on one straight line in milepost in "
                   "every period (interpolated between detectors; skipped by default)")
    _add_selection(c)
    c.set_defaults(func=_cmd_import_counts)
    m = _command(inner, "match", "map-match an observations table onto a network",
                 "Map-match the segments of an observations table onto a network and write "
                 "the matched-segments table and map: what is kept, merged and dropped, "
                 "and why.",
                 "egress observations match observed.csv --net networks/sodo/sodo.net.xml "
                 "--out runs/matching")
    m.add_argument("observations", help="observations table (CSV or Parquet)")
    m.add_argument("--net", required=True, metavar="NET", help="SUMO network (.net.xml)")
    m.add_argument("--strict", action="store_true", help="a segment that cannot be matched "
                   "is an error, not dropped")
    _add_out(m, "folder for matched_segments.csv and .png", required=True)
    m.set_defaults(func=_cmd_match)


# --------------------------------------------------------------------------- policies


def _default_policy_file(scenarios: list[str]) -> str:
    """The single ``*-policies.toml`` next to the first scenario, if there is one."""
    found = sorted(Path(scenarios[0]).resolve().parent.glob("*-policies.toml"))
    if len(found) != 1:
        raise EgressError("evaluate-policy: name the policy file with --policy-file FILE")
    return str(found[0])


def _cmd_evaluate_policy(args: argparse.Namespace) -> None:
    policy_file = args.policy_file or _default_policy_file(args.scenario)
    fractions = args.fractions
    target = (f", adding replications until the event interval is ±{args.target_halfwidth:g} "
              f"min (at most {args.max_replications})" if args.target_halfwidth else "")
    if _progress(args):  # a progress note: -q leaves stderr to the one-line errors
        print(f"evaluating {args.policy} on {', '.join(args.scenario)}: fractions "
              f"{fractions}, {args.replications} replication(s){target}, "
              f"{args.mode or 'the scenario' + chr(39) + 's mode'}", file=sys.stderr)
    result = egress.evaluate_policy(args.scenario, args.policy, fractions, args.replications,
                                    policy_file=policy_file, od=args.od, out=args.out,
                                    mode=args.mode, progress=_progress(args),
                                    workers=args.workers,
                                    target_halfwidth=args.target_halfwidth,
                                    max_replications=args.max_replications,
                                    resume=args.resume)
    print(egress.format_table(result.table))
    for i in range(len(result.table)):
        print(egress.headline(result.table.iloc[[i]]))
    print()
    print(egress.format_measures(result.measures, result.places,
                                 end=_window_end(args.scenario[0])))
    print()
    print(f"tables: {result.out / 'table.csv'}, {result.out / 'savings.csv'}, "
          f"{result.out / 'runs.csv'}")
    print(f"measures: {result.out / 'measures.csv'}, {result.out / 'places.csv'}, "
          f"{result.out / 'throughput.csv'}")
    print("figures: " + ", ".join(str(f) for f in result.figures))
    if result.layers:
        print(f"GIS layers (GeoJSON, WGS84; open in QGIS): {result.out / 'gis'}")
    if (result.out / "snapped.csv").is_file():
        print(f"places given by coordinates and the edges they were snapped to: "
              f"{result.out / 'snapped.csv'}")


def _fractions(text: str) -> list[float]:
    """``--fractions 0.1,0.3``: compliance fractions, each in [0, 1] (an argparse type)."""
    try:
        fractions = [float(f) for f in text.split(",") if f.strip()]
    except ValueError:
        fractions = []
    if not fractions:
        raise argparse.ArgumentTypeError(f"expected numbers between 0 and 1 like 0.1,0.3,0.5, "
                                         f"got {text!r}")
    for f in fractions:
        if limits.within(0, 1)(f):
            raise argparse.ArgumentTypeError(f"{f:g} is not between 0 and 1")
    return fractions


def _add_evaluate_policy(sub) -> None:
    p = _command(sub, "evaluate-policy", "minutes saved per vehicle by policies, with CIs",
                 "Run the baseline and each policy at each compliance fraction over paired "
                 "replications (each an evening with its own demand draws, shared by the "
                 "baseline and the policies) and report the paired travel-time savings with "
                 "95% t-intervals.",
                 "egress evaluate-policy scenarios/sodo-large-event.toml --policy "
                 "deployed_pair --fractions 0.3 --target-halfwidth 1.5 --out runs/pair")
    p.add_argument("scenario", nargs="+", help="scenario file(s) (TOML), e.g. large and small "
                   "event")
    p.add_argument("--policy", required=True, metavar="NAME[,NAME...]",
                   help="policies to evaluate, by name")
    p.add_argument("--policy-file", metavar="FILE",
                   help="the file the policies are declared in (default: the single "
                   "*-policies.toml beside the scenario)")
    p.add_argument("--policies", dest="policy_file", help=argparse.SUPPRESS)
    p.add_argument("--fractions", default="0.1,0.3,0.5", type=_fractions,
                   help="compliance fractions for message signs")
    p.add_argument("--replications", type=_RUNS, default=5,
                   help="paired replications (evenings); with --target-halfwidth, the number "
                   "to start with")
    p.add_argument("--target-halfwidth", type=_MINUTES, metavar="MIN",
                   help="add replications until the 95%% interval of each policy's "
                   "event-vehicle saving is at most ±MIN minutes")
    p.add_argument("--max-replications", type=_RUNS, default=30,
                   help="the most replications --target-halfwidth may use")
    p.add_argument("--od", metavar="CALIBRATED.csv",
                   help="calibrated OD table for the demand (default: the scenario's OD)")
    _add_mode(p)
    p.add_argument("--workers", type=_WORKERS, help="SUMO runs at a time (default: CPUs)")
    p.add_argument("--resume", action="store_true",
                   help="reuse the runs in --out that finished with exactly the same inputs "
                   "and run only the others (continue an interrupted evaluation)")
    _add_out(p, "output folder", required=True, inputs=("scenario", "policy_file", "od"),
             command="evaluate-policy")
    p.set_defaults(func=_cmd_evaluate_policy)


def _window_end(scenario: str) -> float | None:
    """The end of a scenario's window (for "not cleared by HH:MM")."""
    try:
        return egress.load_scenario(scenario, check_network=False).simulation.end
    except EgressError:
        return None


# --------------------------------------------------------------------------- sweep, report


def _cmd_sweep(args: argparse.Namespace) -> None:
    if args.scheduler is not None:
        probe_scheduler(args.scheduler)  # before the sweep's tasks are planned
    sweep = egress.load_sweep(args.sweep)
    out = Path(args.out) if args.out else Path("runs") / sweep.name
    result = egress.run_sweep(sweep, out, scheduler=args.scheduler, workers=args.workers,
                              progress=_progress(args))
    print(egress.format_savings(result.savings()))
    print(result)
    if result.failed:
        raise RunError(f"{out / 'failures'}: {len(result.failed)} of {result.tasks} task(s) "
                       "failed after their retries; rerun to try them again")


def _add_sweep(sub) -> None:
    p = _command(sub, "sweep", "run a batch of simulations on Dask (laptop or cluster)",
                 "Expand a sweep file (events x policies x fractions x seeds) into simulation "
                 "tasks and run them on Dask: a local cluster by default, an existing one "
                 "with --scheduler. Finished tasks are stored in OUT/results and skipped when "
                 "the sweep is rerun.",
                 "egress sweep scenarios/sodo-sweep.toml --workers 2 --out runs/sweep")
    p.add_argument("sweep", help="sweep file (TOML)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler to use, e.g. tcp://10.0.0.5:8786 (default: a local "
                   "cluster)")
    p.add_argument("--workers", type=_WORKERS, metavar="N",
                   help="workers of the local cluster, each running one SUMO at a time "
                   "(default: CPUs, at most the tasks pending); ignored with --scheduler")
    _add_out(p, "output folder (default: runs/<sweep name>)", inputs=("sweep",),
             command="sweep")
    p.set_defaults(func=_cmd_sweep)


def _cmd_validate(args: argparse.Namespace) -> None:
    result = egress.validate(args.run, args.observations, hours=args.hours, out=args.out,
                             strict=args.strict)
    print(egress.format_validation(result))
    print("wrote " + ", ".join(str(p) for p in result.files.values()))


def _add_validate(sub) -> None:
    p = _command(sub, "validate", "compare a finished run with real observations",
                 "Compare a run's simulated speeds and counts with a real observations table "
                 "(e.g. from 'egress observations import-probe-speeds'): speed RMSE and R², "
                 "mean speeds by road class, the share of hourly flows with GEH < 5, and an "
                 "observed-vs-simulated scatter coloured by road class. A fit to synthetic "
                 "observations of the same model is not validation.",
                 "egress validate runs/sodo-normal-evening --observations "
                 "scenarios/observations/seattle-2018/normal-validate.csv --hours 21-22")
    p.add_argument("run", help="run folder (egress simulate)")
    p.add_argument("--observations", metavar="FILE", required=True,
                   help="observations table (CSV or Parquet)")
    p.add_argument("--hours", metavar="H-H,H",
                   help="start hours the statistics cover, e.g. 21-22 for 21:00-23:00 "
                   "(default: every row in the run's window)")
    p.add_argument("--strict", action="store_true",
                   help="a segment that cannot be map-matched is an error, not dropped")
    _add_out(p, "folder for validation.csv, .json and .png (default: the run folder)")
    p.set_defaults(func=_cmd_validate)


def _cmd_report(args: argparse.Namespace) -> None:
    path = egress.write_report(args.folder, args.out)
    print(f"wrote {path}")


def _add_report(sub) -> None:
    p = _command(sub, "report", "write a self-contained HTML report of a run or sweep",
                 "Write one HTML file (figures embedded) describing what a run, evaluation, "
                 "calibration or sweep folder holds: scenario, calibration fit, policy table "
                 "with confidence intervals, figures, inputs and versions.",
                 "egress report runs/demo")
    p.add_argument("folder", help="run, evaluation, calibration or sweep folder")
    _add_out(p, "HTML file to write (default: FOLDER/report.html)", metavar="FILE",
             suffixes=(".html", ".htm"))
    p.set_defaults(func=_cmd_report)


#: Functions that add one subcommand each, in the order of ``egress --help``.
COMMANDS: list[Callable] = [
    _add_build_network, _add_zones, _add_build_demand, _add_plot, _add_simulate,
    _add_observe, _add_observations, _add_calibrate, _add_validate, _add_evaluate_policy,
    _add_sweep, _add_report,
]


def build_parser() -> argparse.ArgumentParser:
    """The ``egress`` argument parser with all subcommands."""
    parser = _Parser(prog="egress", description="Event egress traffic studies with SUMO.",
                     epilog=_EPILOG, formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"egress {egress.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--units", choices=["si", "us"], default=None,
                        help="show speeds and distances in km/h and km (si) or mph and miles "
                        "(us); default: $EGRESS_UNITS, else si")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``egress`` command."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a flag refused in one line
        return exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.units:
        set_units(args.units)
    try:
        _check_out(args)
        args.func(args)
    except RunError as exc:
        print(f"egress {args.command}: run failed: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_RUN
    except EgressError as exc:
        print(f"egress {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        if exc.filename is None:
            raise
        # a path the file system refuses (name too long, permission denied, ...); the
        # checks name what they can foresee, this names what only the system knows
        print(f"egress {args.command}: error: {exc.filename}: "
              f"{exc.strerror or type(exc).__name__}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"egress {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _check_out(args: argparse.Namespace) -> None:
    """Check ``--out`` as its command declared it (:func:`_add_out`), before anything runs."""
    kind, inputs, command, suffixes = getattr(args, "out_check", ("dir", (), None, ()))
    given = []
    for name in inputs:
        value = getattr(args, name, None)
        given += value if isinstance(value, list) else [value]
    check_output(getattr(args, "out", None), kind=kind, inputs=given, command=command,
                 suffixes=suffixes)


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
