"""The car graph of a network: reading networks, the one car-connection test,
reachability, the boundary, and the one shortest-path routine.

The *boundary* of a network is where traffic enters and leaves the modelled
area: an edge whose start node has no incoming car edge is a boundary entry,
one whose end node has no outgoing car edge is a boundary exit. Lot exits
(pure sources inside the area) are excluded by the caller.

Shortest paths
    :class:`CarGraph` holds the car edges as a sparse graph whose arcs are
    the connections a car may take (:func:`car_link`). Driving an edge costs
    its free-flow time, length / speed limit, and a turn through a minor
    (yielding) link adds :data:`MINOR_PENALTY` seconds, as duarouter's
    ``--weights.minor-penalty`` does. :meth:`CarGraph.trees` runs Dijkstra's
    algorithm (``scipy.sparse.csgraph``) from many origins at once for any
    edge costs (demand routing perturbs them, :mod:`egress.demand.routing`);
    :meth:`CarGraph.path` finds one path, optionally avoiding edges (the
    detours of message signs, :mod:`egress.policies`) or by length (map
    matching, :mod:`egress.network.matching`).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import MissingFileError, NetworkError
from ..files import check_xml_root

#: The vehicle class a path must allow to count as a car path.
CAR = "passenger"

#: Seconds added for a turn through a minor (yielding) link, as duarouter's
#: ``--weights.minor-penalty`` does.
MINOR_PENALTY = 1.5


def read_net(path: str | Path):
    """Read a SUMO network with sumolib (cached per file and modification time).

    Raises
    ------
    MissingFileError
        If the file does not exist.
    NetworkError
        If it is not a readable SUMO network.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise MissingFileError(path, "network file")
    net = _read_net(str(path), path.stat().st_mtime_ns)
    if not net.getEdges():
        raise NetworkError(str(path), "a SUMO network without edges")
    return net


def check_net_file(path: Path) -> None:
    """Check that `path` is a SUMO network file before it is parsed: text, and a
    ``<net>`` root element (a trips, routes or additional file given as the network
    is named as such instead of giving empty zones)."""
    if path.name.endswith(".gz"):
        return  # sumolib reads gzipped networks; it names any problem itself
    check_xml_root(path, ("net",), "SUMO network (.net.xml)", NetworkError)


@functools.lru_cache(maxsize=8)
def _read_net(path: str, _mtime: int):
    import sumolib

    check_net_file(Path(path))
    try:
        return sumolib.net.readNet(path, withPrograms=True)
    except Exception as exc:  # sumolib raises bare SAX / attribute errors
        raise NetworkError(path, f"not a readable SUMO network ({exc})") from None



def car_link(connections) -> bool:
    """Whether a car can take any of `connections` (sumolib connections between
    two edges): both its lanes allow :data:`CAR`. The one car-connection test."""
    return any(c.getFromLane().allows(CAR) and c.getToLane().allows(CAR) for c in connections)


def car_successors(net) -> dict[str, set[str]]:
    """Map each car edge to the edges a car can turn into from it."""
    graph: dict[str, set[str]] = {}
    for edge in net.getEdges():
        if not edge.allows(CAR):
            continue
        nxt = graph.setdefault(edge.getID(), set())
        for to_edge, conns in edge.getOutgoing().items():
            if car_link(conns):
                nxt.add(to_edge.getID())
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Edges reachable from `start` (included) in a successor graph."""
    seen = {start}
    todo = deque([start])
    while todo:
        for nxt in graph.get(todo.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def boundary_edges(net, exclude: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """Return the boundary entry and exit edges of a network (car edges only).

    Parameters
    ----------
    net : sumolib.net.Net
    exclude : iterable of str
        Edges that are not boundary edges although they look like it (lot
        exits: sources inside the area).

    Returns
    -------
    entries, exits : list of str
        Sorted edge ids.
    """
    skip = set(exclude)
    graph = car_successors(net)
    has_pred = {e for succ in graph.values() for e in succ}
    entries = sorted(e for e in graph if e not in has_pred and e not in skip)
    exits = sorted(e for e, succ in graph.items() if not succ and e not in skip)
    return entries, exits



def _turn_cost(connection) -> float:
    """The minor-link penalty of a connection (0 for major and signalised links)."""
    return MINOR_PENALTY if connection.getState() == "m" else 0.0


class CarGraph:
    """A network's car edges as a graph for shortest paths (module docstring).

    Parameters
    ----------
    net : sumolib.net.Net

    Attributes
    ----------
    edges : list of str
        Car edge ids, sorted; node ``i`` of the graph is ``edges[i]``.
    index : dict
        Edge id -> node.
    length, free_time : numpy.ndarray
        Per node: length (m) and free-flow time (length / speed limit, s).
    arc_from, arc_to : numpy.ndarray
        The arcs (car connections).
    arc_turn : numpy.ndarray
        Their turn cost (s): :data:`MINOR_PENALTY` through a minor link.
    """

    def __init__(self, net) -> None:
        graph = car_successors(net)
        self.edges = sorted(graph)
        self.index = {e: i for i, e in enumerate(self.edges)}
        edge = [net.getEdge(e) for e in self.edges]
        self.length = np.array([e.getLength() for e in edge])
        self.free_time = np.array([e.getLength() / max(e.getSpeed(), 0.1) for e in edge])
        src, dst, turn = [], [], []
        for e, succ in graph.items():
            outgoing = net.getEdge(e).getOutgoing()
            for s in sorted(succ):
                src.append(self.index[e])
                dst.append(self.index[s])
                turn.append(min(_turn_cost(c) for c in outgoing[net.getEdge(s)]
                                if c.getFromLane().allows(CAR) and c.getToLane().allows(CAR)))
        self.arc_from = np.asarray(src, dtype=int)
        self.arc_to = np.asarray(dst, dtype=int)
        self.arc_turn = np.asarray(turn, dtype=float)

    def _matrix(self, cost: np.ndarray, turns: bool, avoid: Iterable[str] = ()):
        """The sparse graph whose arc a -> b weighs the cost of edge b (plus the turn)."""
        from scipy import sparse

        weight = cost[self.arc_to] + (self.arc_turn if turns else 0.0)
        keep = np.ones(len(weight), dtype=bool)
        blocked = [self.index[e] for e in avoid if e in self.index]
        if blocked:
            keep &= ~np.isin(self.arc_to, blocked)
        # a zero weight would read as "no arc" in scipy: keep it positive
        weight = np.maximum(weight, 1e-9)
        n = len(self.edges)
        return sparse.csr_matrix((weight[keep], (self.arc_from[keep], self.arc_to[keep])),
                                 shape=(n, n))

    def trees(self, cost: np.ndarray, origins: Iterable[int], *, turns: bool = True
              ) -> tuple[list[int], np.ndarray]:
        """Shortest-path trees from `origins` (nodes) for edge costs `cost`.

        Returns
        -------
        origins, predecessors
            The origins in row order and scipy's predecessor matrix (-9999
            where a node is unreachable).
        """
        from scipy.sparse import csgraph

        rows = sorted(set(origins))
        _, pred = csgraph.dijkstra(self._matrix(cost, turns), directed=True, indices=rows,
                                   return_predecessors=True)
        return rows, np.atleast_2d(pred)

    def unwind(self, predecessors: np.ndarray, origin: int, target: int) -> tuple[str, ...] | None:
        """The path origin -> target of one row of a predecessor matrix (None if none)."""
        if origin == target:
            return (self.edges[origin],)
        if predecessors[target] < 0:
            return None
        path = [target]
        while path[-1] != origin:
            path.append(predecessors[path[-1]])
        return tuple(self.edges[i] for i in reversed(path))

    def path(self, start: str, goal: str, *, avoid: Iterable[str] = (), by: str = "time",
             turns: bool = False) -> list[str] | None:
        """The cheapest car path from edge `start` to edge `goal`.

        Parameters
        ----------
        start, goal : str
            Edge ids (both included in the path).
        avoid : iterable of str
            Edges the path may not use.
        by : {"time", "length"}
            Free-flow time or length.
        turns : bool, default False
            Add the minor-link turn penalty.

        Returns
        -------
        list of str or None
            None when there is no such path.
        """
        from scipy.sparse import csgraph

        if start not in self.index or goal not in self.index:
            return None
        o, t = self.index[start], self.index[goal]
        if o == t:
            return [start]
        cost = self.free_time if by == "time" else self.length
        _, pred = csgraph.dijkstra(self._matrix(cost, turns, avoid), directed=True, indices=o,
                                   return_predecessors=True)
        found = self.unwind(pred, o, t)
        return list(found) if found is not None else None


def car_graph(net) -> CarGraph:
    """The :class:`CarGraph` of a network (one per network read, kept)."""
    cached = getattr(net, "_egress_car_graph", None)
    if cached is None:
        cached = CarGraph(net)
        net._egress_car_graph = cached
    return cached


__all__ = ["CAR", "CarGraph", "MINOR_PENALTY", "boundary_edges", "car_graph", "car_link",
           "car_successors", "reachable", "read_net"]
