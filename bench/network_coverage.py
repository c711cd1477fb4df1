"""How well the SODO network covers the real 2018 observations, and which trips it cannot route.

Prints, for each network (by default the present-day ``networks/sodo/sodo.net.xml``
and the 2018 variant ``networks/sodo-2018/sodo-2018.net.xml`` where it is built):

* for every NPMRDS TMC segment of ``tmc.csv``: its road and direction, whether
  it matches a modelled road and why not, the distances (m) from its start and
  end points to the matched edges, its length against the length of the
  matched car path, and the street names along that path;
* how many TMCs with data match: under this script's rule (below) and under
  ``egress.network.match_part`` with its defaults, the TMC's length and road
  (the matcher that ``egress calibrate`` uses for observations given by
  lon/lat).

With ``--demand`` it also builds the demand of the bundled SODO scenarios
(``egress.build_demand``, about half a minute each) and prints the share
of trips dropped because the network has no car path for them.

Matching rule. A TMC matches when
  1. its start point and its end point each lie within ``--radius`` m (150) of
     an edge that allows cars and runs in the TMC's direction: the edge's
     heading at the nearest point is within ``--angle`` degrees (60) of the
     bearing from the TMC's start to its end;
  2. the network has a car path from such a start edge to such an end edge; and
  3. the length driven along that path (from the start point's projection to
     the end point's projection) is 0.6-1.6 times the TMC's length; for a TMC
     shorter than 100 m, any length up to 250 m.
Lengths are measured through the junctions (internal lanes included). Among
the candidate pairs (up to 6 per end) the one with the smallest ``d_start +
d_end + |driven - length|`` is reported, plus 200 m when no street on the path
carries the TMC's road name (I-5 N counts as I-5, WA-99 as SR 99): a parallel
street is reported only where the TMC's road is missing, and is flagged.

This is a benchmark that prints its figures, not a test.

Usage: python bench/network_coverage.py [--net NET ...] [--tmc TMC_CSV] [--demand]
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = [ROOT / "networks" / "sodo" / "sodo.net.xml",
            ROOT / "networks" / "sodo-2018" / "sodo-2018.net.xml"]
TMC_CSV = ROOT / "scenarios" / "observations" / "seattle-2018" / "tmc.csv"
SCENARIOS = ["sodo-normal-evening", "sodo-small-event", "sodo-large-event"]
MILE = 1609.344
SHORT = 100.0          # m: a TMC shorter than this ...
SHORT_MAX = 250.0      # m: ... matches a path up to this long
RATIO = (0.6, 1.6)     # driven / TMC length otherwise
CANDIDATES = 6
OTHER_ROAD = 200.0     # m added to the score of a path on no road of the TMC's name


@dataclass
class Tmc:
    code: str
    road: str
    direction: str
    start: tuple[float, float]   # lon, lat
    end: tuple[float, float]
    length: float                # m
    hours: int


@dataclass
class Match:
    ok: bool
    why: str = ""
    d_start: float | None = None
    d_end: float | None = None
    driven: float | None = None
    edges: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    near_start: float | None = None   # nearest edge in the TMC's direction, whichever path
    near_end: float | None = None


def read_tmcs(path: Path) -> list[Tmc]:
    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out.append(Tmc(row["tmc"], row["road"], row["direction"],
                           (float(row["start_lon"]), float(row["start_lat"])),
                           (float(row["end_lon"]), float(row["end_lat"])),
                           float(row["miles"]) * MILE, int(row["hours_with_data"] or 0)))
    return out


def _heading(shape, offset: float) -> float:
    run = 0.0
    for (x1, y1), (x2, y2) in zip(shape[:-1], shape[1:], strict=True):
        seg = math.hypot(x2 - x1, y2 - y1)
        if run + seg >= offset:
            return math.atan2(y2 - y1, x2 - x1)
        run += seg
    (x1, y1), (x2, y2) = shape[-2], shape[-1]
    return math.atan2(y2 - y1, x2 - x1)


def _candidates(net, x, y, bearing, radius, angle):
    from sumolib.geomhelper import polygonOffsetAndDistanceToPoint

    out = []
    for edge, dist in net.getNeighboringEdges(x, y, radius, includeJunctions=False):
        if edge.getFunction() == "internal" or not edge.allows("passenger"):
            continue
        shape = [tuple(p[:2]) for p in edge.getShape()]
        offset, _ = polygonOffsetAndDistanceToPoint((x, y), shape)
        offset = min(max(offset, 0.0), edge.getLength())
        diff = abs((_heading(shape, offset) - bearing + math.pi) % (2 * math.pi) - math.pi)
        if math.degrees(diff) <= angle:
            out.append((dist, edge, offset))
    out.sort(key=lambda c: (c[0], c[1].getID()))
    return out[:CANDIDATES]


def _length_ok(driven: float, length: float) -> bool:
    if length < SHORT:
        return 0.0 <= driven <= SHORT_MAX
    return RATIO[0] * length <= driven <= RATIO[1] * length


def match(net, tmc: Tmc, radius: float, angle: float) -> Match:
    x1, y1 = net.convertLonLat2XY(*tmc.start)
    x2, y2 = net.convertLonLat2XY(*tmc.end)
    bearing = math.atan2(y2 - y1, x2 - x1)
    first = _candidates(net, x1, y1, bearing, radius, angle)
    last = _candidates(net, x2, y2, bearing, radius, angle)
    if not first or not last:
        near = []
        for what, (x, y) in (("start", (x1, y1)), ("end", (x2, y2))):
            found = net.getNeighboringEdges(x, y, radius, includeJunctions=False)
            found = [(d, e) for e, d in found if e.allows("passenger")]
            near.append(f"{what}: " + (f"nearest car edge {min(found)[1].getID()} at "
                                       f"{min(found)[0]:.0f} m" if found else "no car edge"))
        where = " and ".join(w for w, c in (("start", first), ("end", last)) if not c)
        return Match(False, f"no edge in the TMC's direction within {radius:g} m of the "
                            f"{where} ({'; '.join(near)})")
    near = (first[0][0], last[0][0])
    best = None
    tried = []
    for d1, e1, o1 in first:
        for d2, e2, o2 in last:
            if e1 is e2 and o2 >= o1:
                edges, driven = [e1], o2 - o1
            else:
                path, _ = net.getShortestPath(e1, e2, vClass="passenger", withInternal=True)
                if not path:
                    continue
                edges = [e for e in path if e.getFunction() != "internal"]
                # lengths through the junctions too, as a TMC is measured
                driven = sum(e.getLength() for e in path) - o1 - (e2.getLength() - o2)
            tried.append(driven)
            if not _length_ok(driven, tmc.length):
                continue
            # a path on a road of the TMC's name is preferred to a parallel one
            named = same_road(tmc, tuple(e.getName() for e in edges))
            score = d1 + d2 + abs(driven - tmc.length) + (0.0 if named else OTHER_ROAD)
            if best is None or score < best[0]:
                best = (score, d1, d2, driven, edges)
    if best is None:
        if not tried:
            return Match(False, "no car path from the edges near the start to those near the end",
                         first[0][0], last[0][0], near_start=near[0], near_end=near[1])
        closest = min(tried, key=lambda d: abs(d - tmc.length))
        return Match(False, f"car paths found, but none of a matching length (closest "
                            f"{closest:.0f} m)", first[0][0], last[0][0], closest,
                     near_start=near[0], near_end=near[1])
    _, d1, d2, driven, edges = best
    names: list[str] = []
    for e in edges:
        if e.getName() and (not names or names[-1] != e.getName()):
            names.append(e.getName())
    return Match(True, "", d1, d2, driven, tuple(e.getID() for e in edges), tuple(names),
                 near[0], near[1])


def _norm(name: str) -> str:
    name = name.upper().replace(".", "")
    name = re.sub(r"\bWA-99\b|\bSR-99\b", "SR 99", name)
    name = re.sub(r"\bAVENUE\b", "AVE", name)
    name = re.sub(r"\bEXTENSION\b", "EXT", name)
    name = re.sub(r"\s+(N|S|E|W)$", "", name)       # "4TH AVE S" -> "4TH AVE", "I-5 N" -> "I-5"
    return name.strip()


def same_road(tmc: Tmc, names: tuple[str, ...]) -> bool:
    """Whether a street on the matched path carries the TMC's road name."""
    want = _norm(tmc.road)
    return any(want == _norm(n) or want in _norm(n) for n in names)


def report_network(net_path: Path, tmcs: list[Tmc], radius: float, angle: float,
                   verbose: bool) -> dict[str, int]:
    from egress.network import read_net
    from egress.network.matching import MATCH_ANGLE, MATCH_RADIUS, match_part

    net = read_net(net_path)
    print(f"\n== {net_path.relative_to(ROOT) if net_path.is_relative_to(ROOT) else net_path}: "
          f"{len([e for e in net.getEdges() if e.getFunction() != 'internal'])} edges")
    counts = {"with data": 0, "matched": 0, "same road": 0, "egress matcher": 0,
              "worst end distance": 0, "worst nearest": 0}
    rows = []
    for tmc in tmcs:
        m = match(net, tmc, radius, angle)
        legacy_ok = match_part(net, tmc.start, tmc.end, length=tmc.length, road=tmc.road).ok
        if tmc.hours:
            counts["with data"] += 1
            counts["matched"] += m.ok
            counts["egress matcher"] += legacy_ok
            if m.ok:
                counts["same road"] += same_road(tmc, m.names)
                counts["worst end distance"] = max(counts["worst end distance"],
                                                   round(max(m.d_start, m.d_end)))
                counts["worst nearest"] = max(counts["worst nearest"],
                                              round(max(m.near_start, m.near_end)))
        rows.append((tmc, m, legacy_ok))
    if verbose:
        print(f"{'tmc':10} {'road / direction':28} {'h':>3} {'ok':3} {'d_start':>7} {'d_end':>6} "
              f"{'near':>7} {'tmc m':>6} {'path m':>6} {'60m':3}  path streets / why not")
        for tmc, m, legacy_ok in rows:
            ds = f"{m.d_start:.0f}" if m.d_start is not None else "-"
            de = f"{m.d_end:.0f}" if m.d_end is not None else "-"
            dr = f"{m.driven:.0f}" if m.driven is not None else "-"
            nr = (f"{m.near_start:.0f}/{m.near_end:.0f}" if m.near_start is not None else "-")
            ok = "yes" if m.ok else "NO"
            if m.ok and not same_road(tmc, m.names):
                ok = "yes*"
            what = " > ".join(m.names) if m.ok else m.why
            road = f"{tmc.road} {tmc.direction[:1]}B"
            print(f"{tmc.code:10} {road:28} {tmc.hours:3} {ok:4}{ds:>7} {de:>6} {nr:>7} "
                  f"{tmc.length:6.0f} {dr:>6} {'yes' if legacy_ok else 'no':3}  {what}")
        print("(h = hours with data; d_start, d_end = distances (m) of the end points to the "
              "matched path; near = to the nearest edge in the TMC's direction; yes* = matched, "
              "but no street on the path carries the TMC's road name; 60m = matched by "
              "egress.network.match_part)")
    n = counts["with data"]
    print(f"TMCs with data matched: {counts['matched']} of {n} "
          f"(radius {radius:g} m, heading within {angle:g} deg, path length "
          f"{RATIO[0]:g}-{RATIO[1]:g}x, < {SHORT:g} m TMCs up to {SHORT_MAX:g} m); "
          f"{counts['same road']} of them on a road of the TMC's name; "
          f"largest end-point distance of a matched TMC {counts['worst end distance']} m to "
          f"its path, {counts['worst nearest']} m to the nearest edge in its direction")
    print(f"TMCs with data matched by egress.network.match_part "
          f"({MATCH_RADIUS:g} m, {MATCH_ANGLE:g} deg): {counts['egress matcher']} of {n}")
    return counts


def report_demand(networks: list[Path]) -> None:
    import logging

    from egress.config.scenario import load_scenario
    from egress.demand import build_demand

    logging.getLogger("egress").setLevel(logging.ERROR)
    print("\n== trips without a car path (egress.demand.build_demand, scenario seed)")
    for name in SCENARIOS:
        path = ROOT / "scenarios" / f"{name}.toml"
        if not path.exists():
            continue
        base = load_scenario(path)
        for net in networks:
            scenario = base if net.resolve() == base.network.resolve() else \
                replace(base, network=net)
            with tempfile.TemporaryDirectory(prefix="egress-coverage-") as tmp:
                built = build_demand(scenario, tmp)
            total = sum(built.vehicles.values())
            label = net.relative_to(ROOT) if net.is_relative_to(ROOT) else net
            print(f"{name:22} on {label}: {built.unrouted} of {total} trips dropped "
                  f"({100 * built.unrouted / max(total, 1):.2f}%)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", action="append", type=Path,
                        help="network(s) to check (default: the shipped SODO networks)")
    parser.add_argument("--tmc", type=Path, default=TMC_CSV, help=f"TMC table (default {TMC_CSV})")
    parser.add_argument("--radius", type=float, default=150.0)
    parser.add_argument("--angle", type=float, default=60.0)
    parser.add_argument("--demand", action="store_true",
                        help="also build the bundled scenarios' demand and count unroutable "
                             "trips (about a minute)")
    parser.add_argument("--quiet", action="store_true", help="totals only, no per-TMC table")
    args = parser.parse_args()
    nets = args.net or [n for n in NETWORKS if n.exists()]
    if not args.tmc.exists():
        sys.exit(f"no TMC table at {args.tmc} (give one with --tmc)")
    tmcs = read_tmcs(args.tmc)
    print(f"{args.tmc}: {len(tmcs)} TMCs, {sum(t.hours > 0 for t in tmcs)} with data")
    for net in nets:
        report_network(net.resolve(), tmcs, args.radius, args.angle, not args.quiet)
    if args.demand:
        report_demand([n.resolve() for n in nets])


if __name__ == "__main__":
    main()
