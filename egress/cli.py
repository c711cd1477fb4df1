"""The ``egress`` command line.

Each command is a thin layer over a public function of the package. A user
mistake (an :class:`~egress.errors.EgressError`) ends with one line on stderr
and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .errors import EXIT_INPUT, EXIT_RUN, EgressError, InvalidRunError, RunError

EXIT_USER_ERROR = EXIT_INPUT
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def _cmd_build_network(args: argparse.Namespace) -> None:
    from .network import build_network, build_osm

    if args.osm:
        if args.source:
            raise EgressError("build-network: give either a folder or --osm, not both")
        out = args.output or Path(args.osm).with_suffix("").with_suffix(".net.xml")
        path = build_osm(args.osm, out)
    else:
        if not args.source:
            raise EgressError("build-network: give a folder of plain-XML files or --osm FILE")
        path = build_network(args.source, args.output)
    print(f"wrote {path}")


def _mode(args: argparse.Namespace) -> str | None:
    """The simulation mode chosen on the command line (None: the scenario's)."""
    return "meso" if getattr(args, "meso", False) and args.mode is None else args.mode


def _add_mode(p: argparse.ArgumentParser, what: str = "the scenario's") -> None:
    p.add_argument("--mode", choices=["micro", "meso"],
                   help=f"simulation mode: microscopic or mesoscopic (default: {what})")
    p.add_argument("--meso", action="store_true", help=argparse.SUPPRESS)


def _cmd_simulate(args: argparse.Namespace) -> None:
    from .engine import format_summary
    from .simulation import simulate

    result = simulate(args.scenario, args.out, seed=args.seed, mode=_mode(args),
                      progress=not args.quiet)
    print(format_summary({**result.summary, "run_dir": result.run_dir}))
    if not result.valid:
        raise InvalidRunError(str(result.run_dir), result.summary["problems"])


def _cmd_zones(args: argparse.Namespace) -> None:
    import pandas as pd

    from .config.venues import load_venues
    from .network import write_zones

    out = Path(args.out) if args.out else Path(args.network).resolve().parent
    venues = load_venues(args.venues) if args.venues else None
    files = write_zones(args.network, out, venues)
    table = pd.read_csv(files["zones"])
    with pd.option_context("display.max_rows", None, "display.width", 120):
        print(table.to_string(index=False, float_format=lambda x: f"{x:.5f}"))
    print(f"wrote {files['zones']} and {files['taz']}")


def _cmd_build_demand(args: argparse.Namespace) -> None:
    from .config.scenario import load_scenario
    from .demand import build_demand

    scenario = load_scenario(args.scenario)
    out = Path(args.out) if args.out else scenario.output_dir / "demand"
    result = build_demand(scenario, out, seed=args.seed)
    kinds = ", ".join(f"{n} {k}" for k, n in result.vehicles.items())
    print(f"vehicles: {kinds}; {result.unrouted} trips without a route (dropped)")
    if result.splits:
        print("event trips by direction: "
              + ", ".join(f"{d} {100 * v:.0f}%" for d, v in result.splits.items()))
    print(f"wrote {len(result.files)} files to {out}")


def _cmd_plot(args: argparse.Namespace) -> None:
    from .plots import plot_demand_scenarios

    path = plot_demand_scenarios(args.event, args.normal, args.output)
    print(f"wrote {path}")


def _add_build_network(sub) -> None:
    p = sub.add_parser("build-network", help="build a SUMO network (plain XML folder or OSM)",
                       description="Build a SUMO network from a folder of plain-XML files "
                       "(nodes in lon/lat) or, with --osm, a car network from an "
                       "OpenStreetMap extract.")
    p.add_argument("source", nargs="?", help="folder with *.nod.xml, *.edg.xml, ...")
    p.add_argument("--osm", metavar="FILE", help="OpenStreetMap extract (.osm)")
    p.add_argument("-o", "--output", metavar="NET", help="network to write (.net.xml)")
    p.set_defaults(func=_cmd_build_network)


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="run a scenario in SUMO and tabulate the outputs",
                       description="Run a scenario in SUMO; write a run folder with a "
                       ".sumocfg that opens in sumo-gui, SUMO's outputs and tidy tables.")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("--seed", type=int, help="random seed (overrides the scenario)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/<name>)")
    _add_mode(p)
    p.set_defaults(func=_cmd_simulate)


def _add_zones(sub) -> None:
    p = sub.add_parser("zones", help="list the S2 level-13 zones of a network, write a TAZ file",
                       description="Assign the network's edges to S2 level-13 cells; print "
                       "and write the cell table (zones.csv) and a SUMO TAZ file "
                       "(zones.taz.xml).")
    p.add_argument("network", help="SUMO network (.net.xml)")
    p.add_argument("--venues", metavar="FILE",
                   help="venues file: lot exits become sources of their venue's zone")
    p.add_argument("--out", metavar="DIR", help="folder to write (default: the network's)")
    p.set_defaults(func=_cmd_zones)


def _cmd_evaluate_policy(args: argparse.Namespace) -> None:
    from .evaluation import evaluate_policy, format_table, headline

    policy_file = args.policies or _default_policy_file(args.scenario)
    try:
        fractions = [float(f) for f in args.fractions.split(",") if f.strip()]
    except ValueError:
        raise EgressError(f"--fractions: expected numbers like 0.1,0.3,0.5, got "
                          f"{args.fractions!r}") from None
    mode = _mode(args)
    target = (f", adding replications until the event interval is ±{args.target_halfwidth:g} "
              f"min (at most {args.max_replications})" if args.target_halfwidth else "")
    print(f"evaluating {args.policy} on {', '.join(args.scenario)}: fractions {fractions}, "
          f"{args.replications} replication(s){target}, "
          f"{'the scenario' + chr(39) + 's mode' if mode is None else mode}", file=sys.stderr)
    result = evaluate_policy(args.scenario, args.policy, fractions, args.replications,
                             policy_file=policy_file, od=args.od, out=args.out,
                             mode=mode, progress=not args.quiet, workers=args.workers,
                             target_halfwidth=args.target_halfwidth,
                             max_replications=args.max_replications)
    print(format_table(result.table))
    for _, row in result.table.iterrows():
        print(headline(result.table[result.table.index == row.name]))
    print(f"tables: {result.out / 'table.csv'}, {result.out / 'savings.csv'}, "
          f"{result.out / 'runs.csv'}")
    print("figures: " + ", ".join(str(f) for f in result.figures))


def _default_policy_file(scenarios: list[str]) -> str:
    """The single ``*-policies.toml`` next to the first scenario, if there is one."""
    found = sorted(Path(scenarios[0]).resolve().parent.glob("*-policies.toml"))
    if len(found) != 1:
        raise EgressError("evaluate-policy: name the policy file with --policies FILE")
    return str(found[0])


def _add_evaluate_policy(sub) -> None:
    p = sub.add_parser("evaluate-policy", help="minutes saved per vehicle by policies, with CIs",
                       description="Run the baseline and each policy at each compliance "
                       "fraction with common random numbers (same vehicles and seeds) and "
                       "report the paired travel-time savings with 95%% t-intervals.")
    p.add_argument("scenario", nargs="+", help="scenario file(s) (TOML), e.g. large and small "
                   "event")
    p.add_argument("--policy", required=True, metavar="NAME[,NAME...]",
                   help="policies to evaluate (names in the policy file)")
    p.add_argument("--policies", metavar="FILE",
                   help="policy file (default: the *-policies.toml beside the scenario)")
    p.add_argument("--fractions", default="0.1,0.3,0.5",
                   help="compliance fractions for message signs (default 0.1,0.3,0.5)")
    p.add_argument("--replications", type=int, default=5,
                   help="paired replications (evenings: each draws its own demand; default 5); "
                   "with --target-halfwidth, the number to start with")
    p.add_argument("--target-halfwidth", type=float, metavar="MIN",
                   help="add replications until the 95%% interval of each policy's "
                   "event-vehicle saving is at most ±MIN minutes")
    p.add_argument("--max-replications", type=int, default=30,
                   help="the most replications --target-halfwidth may use (default 30)")
    p.add_argument("--od", metavar="CALIBRATED.csv", help="calibrated OD table for the demand")
    _add_mode(p)
    p.add_argument("--workers", type=int, help="SUMO runs at a time (default: CPUs)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=_cmd_evaluate_policy)


def _cmd_observe(args: argparse.Namespace) -> None:
    from .calibration import observe

    files = observe(args.scenario, args.out, seed=args.seed, interval=args.interval,
                    n_segments=args.segments, meso=not args.micro)
    for name, path in files.items():
        print(f"wrote {name}: {path}")


def _add_observe(sub) -> None:
    p = sub.add_parser("observe", help="write synthetic observations of a scenario's OD",
                       description="Simulate a scenario's OD as the 'true' demand and write "
                       "synthetic segment observations with documented noise "
                       "(observations.csv), the truth and a prior perturbed by 30-50%% "
                       "(truth.od.csv, prior.od.csv).")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("--out", metavar="DIR", required=True, help="folder to write")
    p.add_argument("--seed", type=int, default=1, help="seed of the truth and the noise")
    p.add_argument("--interval", type=float, default=900.0, help="s per observation interval")
    p.add_argument("--segments", type=int, default=60, help="observed segments")
    p.add_argument("--micro", action="store_true", help="microscopic truth (default meso)")
    p.set_defaults(func=_cmd_observe)


def _cmd_calibrate(args: argparse.Namespace) -> None:
    from .calibration import calibrate, calibration_problem, plain_calibration_problem

    plain = [args.net, args.taz, args.od]
    if args.scenario and any(plain):
        raise EgressError("calibrate: give either a scenario or --net, --taz and --od")
    if args.scenario:
        problem = calibration_problem(args.scenario, args.observations, prior=args.prior,
                        meso=False if args.micro else True, seed=args.seed,
                        regularization=args.regularization, prior_sd=args.prior_sd)
    elif all(plain):
        problem = plain_calibration_problem(args.net, args.taz, args.od, args.observations,
                              begin=args.begin, end=args.end, period=args.period,
                              meso=not args.micro, seed=42 if args.seed is None else args.seed,
                              regularization=args.regularization, prior_sd=args.prior_sd)
    else:
        raise EgressError("calibrate: give a scenario, or all of --net, --taz and --od")
    result = calibrate(problem, args.out, method=args.method, budget=args.budget,
                       seed=args.seed, resume=args.resume, progress=not args.quiet,
                       model_noise=_model_noise(args.model_noise))
    before, after = result.prior.metrics, result.best.metrics
    print(f"simulations: {len(result.history)}; objective {result.prior.objective:.4g} -> "
          f"{result.best.objective:.4g}")
    print(f"speed RMSE {before['rmse_kmh']:.2f} -> {after['rmse_kmh']:.2f} km/h, "
          f"RMSNE {before['rmsne']:.3f} -> {after['rmsne']:.3f}, "
          f"R² {before['r2']:.3f} -> {after['r2']:.3f}, "
          f"GEH<5 {before['geh_share']:.0%} -> {after['geh_share']:.0%}")
    print(f"wrote {result.files['od']}, {result.files['tazrel']} and the figures in {args.out}")


def _model_noise(text: str):
    from .calibration import ModelNoise

    if text in ("estimate", "none"):
        return None if text == "none" else text
    try:
        values = [float(v) for v in text.split(",")]
        if len(values) != 3 or min(values) < 0:
            raise ValueError
    except ValueError:
        raise EgressError(f"--model-noise: expected 'estimate', 'none' or three non-negative "
                          f"numbers SPEED,COUNT,TRAVEL_TIME, got {text!r}") from None
    return ModelNoise(*values)


def _add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="fit the OD demand to observed segment data",
                       description="Adjust a scenario's OD (or an existing SUMO model's: "
                       "--net --taz --od) so that the simulation reproduces observed "
                       "segment speeds, counts and travel times.")
    p.add_argument("scenario", nargs="?", help="scenario file (TOML)")
    p.add_argument("--observations", metavar="FILE", required=True,
                   help="observations table (CSV or Parquet)")
    p.add_argument("--prior", metavar="OD", help="OD to start from (default: the scenario's)")
    p.add_argument("--net", metavar="NET", help="SUMO network (plain-SUMO form)")
    p.add_argument("--taz", metavar="TAZ", help="SUMO TAZ file (plain-SUMO form)")
    p.add_argument("--od", metavar="OD", help="OD tazRelation or CSV file (plain-SUMO form)")
    p.add_argument("--begin", type=float, help="simulation begin, s (plain-SUMO form)")
    p.add_argument("--end", type=float, help="simulation end, s (plain-SUMO form)")
    p.add_argument("--period", type=float, default=300.0,
                   help="edgeData period, s (plain-SUMO form)")
    p.add_argument("--method", choices=["metamodel", "spsa"], default="metamodel")
    p.add_argument("--budget", type=int, default=15, help="simulations allowed")
    p.add_argument("--micro", action="store_true", help="microscopic simulations (default meso)")
    p.add_argument("--meso", action="store_true", help="mesoscopic simulations (the default)")
    p.add_argument("--seed", type=int, help="random seed (default the scenario's)")
    p.add_argument("--regularization", type=float, default=0.01,
                   help="weight of the pull towards the prior OD")
    p.add_argument("--prior-sd", type=float, default=0.5,
                   help="how far the prior's total demand per kind and interval is trusted: "
                   "the sd of its logarithm (0.5: about a factor 1.65; 0: no such prior)")
    p.add_argument("--model-noise", default="estimate", metavar="estimate|none|S,C,T",
                   help="the simulation's own noise in the objective's weights: 'estimate' "
                   "(default: the second simulation replicates the start with another seed), "
                   "'none', or a speed sd in km/h, a count sd as a share and the sd of a "
                   "travel time's logarithm, e.g. 6,0.2,0.3")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder")
    p.set_defaults(func=_cmd_calibrate)


def _add_build_demand(sub) -> None:
    p = sub.add_parser("build-demand", help="build OD tables, trips and routes of a scenario",
                       description="Build the scenario's demand over S2 level-13 cells: OD "
                       "tables (CSV and tazRelation XML), TAZ file, trips and routes.")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("--out", metavar="DIR", help="folder (default: runs/<name>/demand)")
    p.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    p.set_defaults(func=_cmd_build_demand)


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="draw figures (demand heat maps)",
                       description="Draw figures. 'plot demand EVENT NORMAL' draws trips per "
                       "S2 cell for an event evening and a normal evening side by side, "
                       "and their difference.")
    p.add_argument("what", choices=["demand"], help="the figure")
    p.add_argument("event", help="scenario of the event evening")
    p.add_argument("normal", help="scenario of the normal evening")
    p.add_argument("-o", "--output", default="demand.png", metavar="PNG",
                   help="file to write (default: demand.png)")
    p.set_defaults(func=_cmd_plot)


#: Functions that add one subcommand each, in the order of ``egress --help``.
def _cmd_sweep(args: argparse.Namespace) -> None:
    from .sweep import format_summary, load_sweep, run_sweep

    sweep = load_sweep(args.sweep)
    out = Path(args.out) if args.out else Path("runs") / sweep.name
    result = run_sweep(sweep, out, scheduler=args.scheduler, workers=args.workers,
                       progress=not args.quiet)
    print(format_summary(result.summary()))
    print(result)
    if result.failed:
        raise RunError(f"{out / 'failures'}: {len(result.failed)} of {result.tasks} task(s) "
                       "failed after their retries; rerun to try them again")


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="run a batch of simulations on Dask (laptop or cluster)",
                       description="Expand a sweep file (events x policies x fractions x "
                       "seeds) into simulation tasks and run them on Dask: a local cluster "
                       "by default, an existing one with --scheduler. Finished tasks are "
                       "stored in OUT/results and skipped when the sweep is rerun.")
    p.add_argument("sweep", help="sweep file (TOML)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler to use, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--workers", type=int, metavar="N",
                   help="workers of the local cluster, each running one SUMO at a time "
                   "(default: CPUs); ignored with --scheduler")
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/<sweep name>)")
    p.set_defaults(func=_cmd_sweep)


def _cmd_report(args: argparse.Namespace) -> None:
    from .report import write_report

    path = write_report(args.folder, args.output)
    print(f"wrote {path}")


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of a run or sweep",
                       description="Write one HTML file (figures embedded) describing what a "
                       "run, evaluation, calibration or sweep folder holds: scenario, "
                       "calibration fit, policy table with confidence intervals, figures, "
                       "inputs and versions.")
    p.add_argument("folder", help="run, evaluation, calibration or sweep folder")
    p.add_argument("-o", "--output", metavar="HTML",
                   help="file to write (default: FOLDER/report.html)")
    p.set_defaults(func=_cmd_report)


COMMANDS: list[Callable] = [
    _add_build_network, _add_zones, _add_build_demand, _add_plot, _add_simulate,
    _add_observe, _add_calibrate, _add_evaluate_policy, _add_sweep, _add_report,
]


def build_parser() -> argparse.ArgumentParser:
    """The ``egress`` argument parser with all subcommands."""
    parser = _Parser(prog="egress", description="Event egress traffic studies with SUMO.")
    parser.add_argument("--version", action="version", version=f"egress {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``egress`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except RunError as exc:
        print(f"egress {args.command}: run failed: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_RUN
    except EgressError as exc:
        print(f"egress {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"egress {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
