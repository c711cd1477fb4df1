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
from .errors import EgressError

EXIT_USER_ERROR = 2
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


def _cmd_simulate(args: argparse.Namespace) -> None:
    from .simulation import format_summary, simulate

    result = simulate(args.scenario, args.out, seed=args.seed,
                      meso=True if args.meso else None, progress=not args.quiet)
    print(format_summary({**result.summary, "run_dir": result.run_dir}))


def _cmd_zones(args: argparse.Namespace) -> None:
    import pandas as pd

    from .zones import write_zones

    out = Path(args.out) if args.out else Path(args.network).resolve().parent
    files = write_zones(args.network, out, args.venues)
    table = pd.read_csv(files["zones"])
    with pd.option_context("display.max_rows", None, "display.width", 120):
        print(table.to_string(index=False, float_format=lambda x: f"{x:.5f}"))
    print(f"wrote {files['zones']} and {files['taz']}")


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
    p.add_argument("--meso", action="store_true", help="mesoscopic simulation (faster)")
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


#: Functions that add one subcommand each, in the order of ``egress --help``.
COMMANDS: list[Callable] = [_add_build_network, _add_zones, _add_simulate]


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
