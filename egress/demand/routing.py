"""Routes for sampled vehicles: shortest paths with random alternatives.

egress routes its own vehicles instead of calling ``duarouter``, so that a
vehicle's route depends on nothing but its own origin and destination edges
and its own draw (common random numbers down to the vehicle, which is what
calibration needs; see :func:`egress.demand.sampling.vehicle_draws`).

The model
    The network's car edges form a graph whose arcs are the connections a
    car may take (both lanes allow ``passenger``). Driving an edge costs its
    free-flow travel time, length / speed limit; a turn through a minor
    (yielding) link adds :data:`egress.network.graph.MINOR_PENALTY`. There are ``alternatives``
    perturbed copies of these costs (default 64): in copy *a* every edge's
    cost is multiplied by a factor drawn uniformly from [1,
    ``random_factor``) with ``numpy.random.default_rng([seed, a])`` (the law
    of duarouter's ``--weights.random-factor``, drawn per copy instead of per
    trip). The route of a vehicle from edge *f* to edge *t* is the cheapest
    path in copy ``a = floor(route_draw × alternatives)``: the routes of an
    origin–destination pair spread over up to ``alternatives`` paths near
    the shortest one, and each copy carries 1/``alternatives`` of the
    traffic, so no perturbation moves much of it at once. Paths are found
    with Dijkstra's algorithm on the network's car graph
    (:class:`egress.network.graph.CarGraph`), once per copy from all the
    origins that need it.
Unroutable trips
    A trip whose destination cannot be reached from its origin is dropped
    and counted (reported by the caller).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..network import car_graph, read_net
from .vehicles import vehicle_attributes, vtype_lines

log = logging.getLogger(__name__)


class Router:
    """Cheapest car paths on a SUMO network with random alternatives.

    Parameters
    ----------
    net : str or pathlib.Path
        The ``.net.xml`` file.
    seed : int
    random_factor : float
        Upper bound (exclusive) of the cost factors, >= 1.
    alternatives : int
        Perturbed cost copies, >= 1.
    """

    def __init__(self, net: str | Path, *, seed: int, random_factor: float = 1.3,
                 alternatives: int = 64) -> None:
        self.graph = car_graph(read_net(net))
        self.seed, self.random_factor, self.alternatives = int(seed), random_factor, alternatives
        self._routes: dict[tuple[int, str, str], tuple[str, ...] | None] = {}

    def copy_of(self, draw: float) -> int:
        """The cost copy a route draw in [0, 1) selects."""
        return min(int(draw * self.alternatives), self.alternatives - 1)

    def _search(self, copy: int, pairs: set[tuple[str, str]]) -> None:
        """Cheapest paths of `pairs` in cost copy `copy` (one Dijkstra from all their origins)."""
        g = self.graph
        rng = np.random.default_rng([self.seed, copy])
        cost = g.free_time * (1.0 + (self.random_factor - 1.0) * rng.random(len(g.free_time)))
        rows, pred = g.trees(cost, (g.index[f] for f, _ in pairs))
        row = {o: i for i, o in enumerate(rows)}
        for f, t in pairs:
            o = g.index[f]
            self._routes[(copy, f, t)] = g.unwind(pred[row[o]], o, g.index[t])

    def routes(self, requests) -> list[tuple[str, ...] | None]:
        """Routes for ``(origin edge, destination edge, route draw)`` requests.

        Returns
        -------
        list
            Per request its edges, or None when there is no car path.
        """
        keys = []
        todo: dict[int, set[tuple[str, str]]] = {}
        for f, t, u in requests:
            c = self.copy_of(u)
            keys.append((c, f, t))
            if (c, f, t) in self._routes:
                continue
            if f not in self.graph.index or t not in self.graph.index:
                self._routes[(c, f, t)] = None
            elif f == t:
                self._routes[(c, f, t)] = (f,)
            else:
                todo.setdefault(c, set()).add((f, t))
        for c in sorted(todo):
            self._search(c, todo[c])
        return [self._routes[k] for k in keys]

    def route(self, origin: str, destination: str, draw: float) -> tuple[str, ...] | None:
        """The route of one vehicle with route draw `draw` in [0, 1); None if unreachable."""
        return self.routes([(origin, destination, draw)])[0]


@functools.lru_cache(maxsize=4)
def _router(net: str, _mtime: int, seed: int, random_factor: float, alternatives: int
            ) -> Router:
    """One router per network file and settings, kept for the process (its
    shortest-path trees are reused by every later demand on that network)."""
    return Router(net, seed=seed, random_factor=random_factor, alternatives=alternatives)


def vehicle_routes(net: str | Path, vehicles: pd.DataFrame, *, seed: int,
                   random_factor: float = 1.3, alternatives: int = 64
                   ) -> list[tuple[str, ...] | None]:
    """The route of each of `vehicles` (``from, to, route_draw``), None where
    there is no car path: what :func:`route_vehicles` writes.

    Parameters
    ----------
    net : str or pathlib.Path
    vehicles : pandas.DataFrame
    seed, random_factor, alternatives
        See :class:`Router`.
    """
    router = _router(str(Path(net).resolve()), Path(net).stat().st_mtime_ns, int(seed),
                     float(random_factor), int(alternatives))
    return router.routes(zip(vehicles["from"].tolist(), vehicles["to"].tolist(),
                             vehicles["route_draw"].tolist(), strict=True))


def route_vehicles(net: str | Path, vehicles: pd.DataFrame, output: str | Path, *, seed: int,
                   random_factor: float = 1.3, alternatives: int = 64) -> list[str]:
    """Route sampled vehicles and write them as a SUMO route file.

    Parameters
    ----------
    net : str or pathlib.Path
    vehicles : pandas.DataFrame
        From :func:`egress.demand.sampling.sample_trips` (``id, kind, depart, from,
        to, speed_factor, route_draw``), sorted by departure; with a
        ``route`` column (from :func:`vehicle_routes`) those routes are used.
    output : str or pathlib.Path
        Route file to write: the vTypes (:data:`egress.demand.vehicles.VTYPES`), then
        one ``<vehicle>`` with its ``<route>`` per routed vehicle, in
        departure order.
    seed, random_factor, alternatives
        See :class:`Router`.

    Returns
    -------
    list of str
        Ids of the vehicles that could not be routed (left out of the file).
    """
    output = Path(output)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f"<!-- routed by egress.demand.routing: seed {seed}, random_factor {random_factor}, "
             f"alternatives {alternatives} -->", "<routes>", *vtype_lines()]
    unrouted: list[str] = []
    attrs = {k: vehicle_attributes(k) for k in vehicles["kind"].unique()}
    found = list(vehicles["route"]) if "route" in vehicles.columns else vehicle_routes(
        net, vehicles, seed=seed, random_factor=random_factor, alternatives=alternatives)
    text = {r: " ".join(r) for r in set(found) if r is not None}
    # plain lists: iterating string columns element by element is slow
    for vid, kind, dep, speed, route in zip(vehicles["id"].tolist(), vehicles["kind"].tolist(),
                                            vehicles["depart"].tolist(),
                                            vehicles["speed_factor"].tolist(), found, strict=True):
        if route is None:
            unrouted.append(vid)
            continue
        vtype, extra = attrs[kind]
        lines.append(f'    <vehicle id="{vid}" type="{vtype}" depart="{dep:.2f}" {extra} '
                     f'speedFactor="{speed:.4f}">\n'
                     f'        <route edges="{text[route]}"/>\n    </vehicle>')
    lines.append("</routes>")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines) + "\n")
    return unrouted


__all__ = ["Router", "route_vehicles", "vehicle_routes"]
