"""The road network stage: building networks, their car graph, geometry,
map matching, S2 zones, and checks of inputs against a network.

Modules
-------
:mod:`.build`
    netconvert on plain XML or OpenStreetMap.
:mod:`.graph`
    Reading networks, the car-connection test, reachability, the boundary,
    shortest paths.
:mod:`.geometry`
    Midpoints, point-in-polygon, the study area's edges.
:mod:`.matching`
    Segments given by WGS84 end points onto directed edges; the part of a
    real segment that lies in the model and its matched share.
:mod:`.zones`
    S2 level-13 cells and the edges trips start and end on.
:mod:`.checks`
    Venues' lot exits and route files against a network.
:mod:`.classes`
    Road classes (freeway, ramp, arterial) from edge types.
"""

from __future__ import annotations

from .build import build_network, build_osm
from .checks import check_route_files, check_venues
from .classes import ROAD_CLASSES, road_class, segment_type
from .geometry import inside_polygon, midpoint, study_area_edges
from .graph import (
    CAR,
    CarGraph,
    boundary_edges,
    car_graph,
    car_link,
    car_successors,
    reachable,
    read_net,
)
from .matching import SegmentMatch, match_part, match_segment
from .zones import Zones, build_zones, cell_of, write_zones, zones_table

__all__ = [
    "CAR", "CarGraph", "ROAD_CLASSES", "SegmentMatch", "Zones", "boundary_edges",
    "build_network", "build_osm", "build_zones", "car_graph", "car_link", "car_successors",
    "cell_of", "check_route_files", "check_venues", "inside_polygon", "match_part",
    "match_segment", "midpoint", "reachable", "read_net", "road_class", "segment_type",
    "study_area_edges", "write_zones", "zones_table",
]
