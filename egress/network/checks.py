"""Checks of inputs against a network: venues' lot exits and route files."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError, NetworkError, Problems, ScenarioError
from ..files import check_xml_root
from .graph import boundary_edges, car_successors, reachable, read_net


def check_venues(scenario) -> None:
    """Check a scenario's venues against its network.

    Every lot exit must be an edge of the network that allows cars, and every
    venue must reach every boundary exit by car.

    Raises
    ------
    ScenarioError
        Naming each missing edge and each venue/exit pair without a path.
    """
    if scenario.venues is None:
        return
    net = read_net(scenario.network)
    problems = Problems(scenario.venues.path)
    graph = car_successors(net)
    _, exits = boundary_edges(net, exclude=scenario.venues.lot_exits)
    for venue in scenario.venues.venues.values():
        for lot in venue.lots:
            for edge in lot.exits:
                if not net.hasEdge(edge):
                    problems.add(f"venue {venue.id} lot {lot.id}: exit edge {edge!r} "
                                 f"is not in {Path(scenario.network).name}")
                elif edge not in graph:
                    problems.add(f"venue {venue.id} lot {lot.id}: exit edge {edge!r} "
                                 "does not allow cars")
                else:
                    missing = sorted(set(exits) - reachable(graph, edge))
                    if missing:
                        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
                        problems.add(f"venue {venue.id} lot {lot.id}: no car path from exit "
                                     f"{edge!r} to boundary exit(s) {shown}")
    problems.raise_if_any(ScenarioError)


_ROUTE_EDGES = re.compile(r'<(?:route|vehicle|trip|flow)\s[^>]*?\b(edges|from|to|via)="([^"]*)"')


_ROUTE_ID = re.compile(r'<(vehicle|trip|flow|route)\s[^>]*?\bid="([^"]*)"')


def check_route_files(network: str | Path, routes: Iterable[str | Path]) -> None:
    """Check that every edge the route files name is an edge of `network`.

    Raises
    ------
    InputError
        Naming each route file, the first element that uses an unknown edge,
        and how many edges are unknown.
    """
    known = {e.getID() for e in read_net(network).getEdges()}
    problems = []
    for path in routes:
        check_xml_root(path, ("routes",), "SUMO route or trip file (<routes>)")
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        unknown: dict[str, int] = {}
        for m in _ROUTE_EDGES.finditer(text):
            for edge in m.group(2).split():
                if edge not in known:
                    unknown.setdefault(edge, m.start())
        if unknown:
            edge, at = min(unknown.items(), key=lambda kv: kv[1])
            owner = [o for o in _ROUTE_ID.finditer(text, 0, at + 1)]
            where = f" ({owner[-1].group(1)} {owner[-1].group(2)!r})" if owner else ""
            more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
            problems.append(f"{path}: edge {edge!r}{where}{more} not in {Path(network).name}")
    if problems:
        raise InputError("routes", problems)



def check_edge_types(spec, network: str | Path) -> None:
    """Every edge type a supply spec (:class:`egress.config.supply.SupplySpec`) names
    exists in the network.

    Raises
    ------
    NetworkError
    """
    net = read_net(network)
    known = {e.getType() for e in net.getEdges()}
    unknown = sorted(spec.edge_types() - known)
    if unknown:
        raise NetworkError(str(network), f"supply names edge type(s) {', '.join(unknown)} "
                           f"that no edge has (types: {', '.join(sorted(t for t in known if t))})")


__all__ = ["check_edge_types", "check_route_files", "check_venues"]
