"""Road classes: what kind of road a segment of edges is.

Observed speeds are compared by class (a freeway and a signalised arterial
fail in different ways), and a class is read from the network's edge types:
the type covering most of a segment's length, mapped onto a few classes by
name, so that hand-built networks (``freeway``, ``arterial_major``) and
OpenStreetMap imports (``highway.motorway``, ``highway.primary``) agree.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Road classes, with the words in an edge type that put it in the class
#: (checked in this order; anything else is an arterial).
ROAD_CLASSES = {"freeway": ("freeway", "motorway", "trunk"),
                "ramp": ("ramp", "_link"),
                "arterial": ()}


def road_class(edge_type: str) -> str:
    """The road class of an edge type (see :data:`ROAD_CLASSES`).

    Ramps are checked first: ``highway.motorway_link`` is a ramp.
    """
    t = (edge_type or "").lower()
    if any(w in t for w in ROAD_CLASSES["ramp"]):
        return "ramp"
    if any(w in t for w in ROAD_CLASSES["freeway"]):
        return "freeway"
    return "arterial"


def segment_type(net, edges: Iterable[str]) -> str:
    """The edge type covering most of the length of `edges` (``"(none)"`` for untyped)."""
    length: dict[str, float] = {}
    for e in edges:
        edge = net.getEdge(e)
        kind = edge.getType() or "(none)"
        length[kind] = length.get(kind, 0.0) + edge.getLength()
    return max(length, key=length.get) if length else "(none)"


__all__ = ["ROAD_CLASSES", "road_class", "segment_type"]
