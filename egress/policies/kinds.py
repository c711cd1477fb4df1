"""The kinds of policy: one class per kind, behind a registry.

A kind says which keys its policies take (:attr:`PolicyKind.fields`), how
their values are checked, alone and against a network, and how it reaches
SUMO: through message signs (:class:`SignKind`: which vehicles a sign
addresses and where it sends them), through a patched copy of the network
(lane permissions and connections), or through signal programs. A new kind
is a subclass registered with :func:`register`; nothing else dispatches on
kind names.

Kinds and their keys (every edge, lane and signal id is checked against the
network; a problem names the file, the policy and the key):

``ramp_diversion``
    ``signs``, ``from_ramp``, ``to_ramp``, optional ``destinations`` and
    ``vtypes``. Eligible: a vehicle of an eligible type whose route passes a
    sign edge and then ``from_ramp`` (and ends on one of ``destinations``, when
    given: e.g. only through traffic on the freeway, not drivers who leave it
    before ramp B joins). A complier is sent from the sign over ``to_ramp`` and
    on to its own destination (the fastest free-flow path).
``alternate_route``
    ``signs``, ``via`` (edges the recommended route uses, in order),
    optional ``avoid`` (only vehicles whose route after the sign uses one of
    these edges are addressed, e.g. the I-5 mainline), optional
    ``destinations`` (only vehicles bound for these edges), ``vtypes``.
``hov_opening``
    ``lanes`` (lane ids ``<edge>_<index>``), optional ``allow`` (vehicle
    classes added to each lane's permissions, default ``["passenger"]``).
``lane_use``
    optional ``lanes = [{lane = "e_1", allow = ["passenger"]}]`` (sets the
    lane's permissions), ``add_connections`` and ``remove_connections``
    (tables with ``from``, ``to`` and optional ``from_lane``, ``to_lane``).
``signal_retiming``
    optional ``tls`` (signal ids; default every signal the demand passes),
    ``min_cycle``, ``max_cycle`` (s), ``yellow`` (s).
``combination``
    ``policies``: names of other policies, applied together.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .. import limits
from ..config.schema import Field
from ..errors import Problems
from ..network import CAR, reachable

#: Vehicle types a sign addresses by default.
DEFAULT_VTYPES = ("event",)

#: Kind name -> class (:func:`register`).
POLICY_KINDS: dict[str, type[PolicyKind]] = {}


def register(cls: type[PolicyKind]) -> type[PolicyKind]:
    """Register a policy kind under its :attr:`PolicyKind.name`."""
    POLICY_KINDS[cls.name] = cls
    return cls


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


class NetworkCheck:
    """What a kind's network check needs: the network, its car graph, helpers
    that record a problem for a missing edge, lane or signal.

    Parameters
    ----------
    net : sumolib.net.Net
    graph : dict
        :func:`egress.network.car_successors` of `net`.
    netname : str
    problems : Problems
    """

    def __init__(self, net, graph: dict[str, set[str]], netname: str, problems: Problems):
        self.net, self.graph, self.netname, self.problems = net, graph, netname, problems
        self.tls = {t.getID() for t in net.getTrafficLights()}

    def edge(self, label: str, key: str, e: str) -> bool:
        """True if `e` is a car edge; else a problem is recorded."""
        if not self.net.hasEdge(e):
            self.problems.add(f"{label}.{key}: edge {e!r} is not in {self.netname}")
            return False
        if e not in self.graph:
            self.problems.add(f"{label}.{key}: edge {e!r} does not allow cars")
            return False
        return True

    def lane(self, label: str, key: str, lane_id: str) -> None:
        """Record a problem unless `lane_id` (``<edge>_<index>``) is a lane of the network."""
        e, _, idx = lane_id.rpartition("_")
        if not (e and idx.isdigit() and self.net.hasEdge(e)
                and int(idx) < len(self.net.getEdge(e).getLanes())):
            self.problems.add(f"{label}.{key}: lane {lane_id!r} is not in {self.netname}")


class PolicyKind:
    """One kind of measure. Subclasses set the class attributes and override
    what applies to them."""

    #: The kind's name in policy files.
    name: ClassVar[str] = ""
    #: Kind-specific keys.
    fields: ClassVar[dict[str, Field]] = {}
    #: Keys whose value is a list of ids; those of :attr:`nonempty` must not be empty.
    id_lists: ClassVar[tuple[str, ...]] = ()
    nonempty: ClassVar[tuple[str, ...]] = ()
    #: Works through message signs (depends on the compliance fraction).
    uses_signs: ClassVar[bool] = False
    #: Changes lane permissions or connections (a patched network copy).
    patches_network: ClassVar[bool] = False
    #: Writes signal programs.
    retimes_signals: ClassVar[bool] = False

    @classmethod
    def defaults(cls, params: dict[str, Any]) -> dict[str, Any]:
        """`params` with the kind's defaults that depend on nothing else filled in."""
        return params

    @classmethod
    def check_shape(cls, params: dict[str, Any], label: str, problems: Problems) -> None:
        """Record problems of the values themselves (before any network is read)."""
        for key in cls.id_lists:
            value = params.get(key)
            if value is None:
                continue
            if not _str_list(value):
                problems.add(f"{label}.{key}: expected a list of ids (strings)")
            elif key in cls.nonempty and not value:
                problems.add(f"{label}.{key}: must not be empty")

    @classmethod
    def check_network(cls, params: dict[str, Any], label: str, check: NetworkCheck) -> None:
        """Record problems of the values against a network."""

    @classmethod
    def lane_permissions(cls, params: dict[str, Any], net) -> dict[str, dict[int, set[str]]]:
        """New permissions per edge and lane index (:attr:`patches_network` kinds)."""
        return {}

    @classmethod
    def connections(cls, params: dict[str, Any]) -> tuple[list[dict], list[dict]]:
        """Connections to remove and to add (:attr:`patches_network` kinds)."""
        return [], []


class SignKind(PolicyKind):
    """A measure that works through message signs: SUMO rerouters on the sign
    edges send a share of the addressed vehicles along a recommended route."""

    uses_signs = True

    @classmethod
    def defaults(cls, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("vtypes") is None:
            params["vtypes"] = list(DEFAULT_VTYPES)
        return params

    @classmethod
    def eligible(cls, params: dict[str, Any], edges: tuple[str, ...]) -> tuple[int, str] | None:
        """(index of the sign edge, destination) if a route is addressed; else None."""
        raise NotImplementedError

    @classmethod
    def target(cls, params: dict[str, Any]) -> str:
        """The edge whose use marks a complier."""
        raise NotImplementedError

    @classmethod
    def stops(cls, params: dict[str, Any]) -> list[str]:
        """Edges the recommended route passes, in order, before the destination."""
        raise NotImplementedError

    @classmethod
    def avoid(cls, params: dict[str, Any]) -> set[str]:
        """Edges the recommended route does not use."""
        raise NotImplementedError

    @staticmethod
    def _sign_index(params: dict[str, Any], edges: tuple[str, ...]) -> int | None:
        signs = set(params["signs"])
        return next((i for i, e in enumerate(edges) if e in signs), None)

    @staticmethod
    def _bound_for(params: dict[str, Any], edges: tuple[str, ...]) -> bool:
        return not params["destinations"] or edges[-1] in params["destinations"]


@register
class RampDiversion(SignKind):
    """Signs send traffic from the nearest ramp (``from_ramp``) to another (``to_ramp``)."""

    name = "ramp_diversion"
    fields = {"signs": Field("list", required=True), "from_ramp": Field("str", required=True),
              "to_ramp": Field("str", required=True), "destinations": Field("list", default=[]),
              "vtypes": Field("list")}
    id_lists = ("signs", "destinations", "vtypes")
    nonempty = ("signs",)

    @classmethod
    def eligible(cls, params, edges):
        i = cls._sign_index(params, edges)
        if i is None:
            return None
        ok = params["from_ramp"] in edges[i + 1:] and cls._bound_for(params, edges)
        return (i, edges[-1]) if ok else None

    @classmethod
    def target(cls, params):
        return params["to_ramp"]

    @classmethod
    def stops(cls, params):
        return [params["to_ramp"]]

    @classmethod
    def avoid(cls, params):
        return {params["from_ramp"]}

    @classmethod
    def check_network(cls, params, label, check):
        signs = [s for s in params["signs"] if check.edge(label, "signs", s)]
        ok = {k: check.edge(label, k, params[k]) for k in ("from_ramp", "to_ramp")}
        for e in params["destinations"]:
            check.edge(label, "destinations", e)
        for s in signs:
            reach = reachable(check.graph, s)
            for key in ("from_ramp", "to_ramp"):
                if ok[key] and params[key] not in reach:
                    check.problems.add(f"{label}.{key}: {params[key]!r} cannot be reached "
                                       f"from sign edge {s!r}")


@register
class AlternateRoute(SignKind):
    """Signs recommend a route through ``via`` edges (e.g. SR 99 instead of I-5)."""

    name = "alternate_route"
    fields = {"signs": Field("list", required=True), "via": Field("list", required=True),
              "avoid": Field("list", default=[]), "destinations": Field("list", default=[]),
              "vtypes": Field("list")}
    id_lists = ("signs", "via", "avoid", "destinations", "vtypes")
    nonempty = ("signs", "via")

    @classmethod
    def eligible(cls, params, edges):
        i = cls._sign_index(params, edges)
        if i is None:
            return None
        rest = edges[i + 1:]
        ok = ((not params["avoid"] or any(a in rest for a in params["avoid"]))
              and cls._bound_for(params, edges)
              and not all(v in rest for v in params["via"]))
        return (i, edges[-1]) if ok else None

    @classmethod
    def target(cls, params):
        return params["via"][0]

    @classmethod
    def stops(cls, params):
        return list(params["via"])

    @classmethod
    def avoid(cls, params):
        return set(params["avoid"])

    @classmethod
    def check_network(cls, params, label, check):
        signs = [s for s in params["signs"] if check.edge(label, "signs", s)]
        via = [v for v in params["via"] if check.edge(label, "via", v)]
        for key in ("avoid", "destinations"):
            for e in params[key]:
                check.edge(label, key, e)
        if len(via) != len(params["via"]):
            return
        for s in signs:
            at = s
            for v in via:
                if v not in reachable(check.graph, at):
                    check.problems.add(f"{label}.via: {v!r} cannot be reached from {at!r}")
                    break
                at = v


def _lane(net, lane_id: str):
    e, _, idx = lane_id.rpartition("_")
    return e, int(idx), net.getEdge(e).getLanes()[int(idx)]


@register
class HovOpening(PolicyKind):
    """Lanes reserved for vehicle class ``hov`` opened to more classes."""

    name = "hov_opening"
    fields = {"lanes": Field("list", required=True), "allow": Field("list")}
    id_lists = ("lanes", "allow")
    nonempty = ("lanes",)
    patches_network = True

    @classmethod
    def defaults(cls, params):
        if params.get("allow") is None:
            params["allow"] = [CAR]
        return params

    @classmethod
    def check_network(cls, params, label, check):
        for lane_id in params["lanes"]:
            check.lane(label, "lanes", lane_id)

    @classmethod
    def lane_permissions(cls, params, net):
        out: dict[str, dict[int, set[str]]] = {}
        for lane_id in params["lanes"]:
            e, idx, lane = _lane(net, lane_id)
            out.setdefault(e, {})[idx] = set(lane.getPermissions()) | set(params["allow"])
        return out


_CONNECTION_KEYS = {"from", "to", "from_lane", "to_lane"}


@register
class LaneUse(PolicyKind):
    """Lane permissions set, connections added or removed."""

    name = "lane_use"
    fields = {"lanes": Field("list", default=[]), "add_connections": Field("list", default=[]),
              "remove_connections": Field("list", default=[])}
    patches_network = True

    @classmethod
    def check_shape(cls, params, label, problems):
        for i, lane in enumerate(params["lanes"] or []):
            if not (isinstance(lane, dict) and isinstance(lane.get("lane"), str)
                    and set(lane) <= {"lane", "allow", "disallow"}
                    and all(_str_list(lane[k]) for k in ("allow", "disallow") if k in lane)):
                problems.add(f"{label}.lanes[{i}]: expected {{lane = \"id\", allow = [...]}}")
        for key in ("add_connections", "remove_connections"):
            for i, con in enumerate(params[key] or []):
                ok = (isinstance(con, dict) and isinstance(con.get("from"), str)
                      and isinstance(con.get("to"), str) and set(con) <= _CONNECTION_KEYS
                      and all(isinstance(con[k], int) for k in ("from_lane", "to_lane")
                              if k in con))
                if not ok:
                    problems.add(f"{label}.{key}[{i}]: expected {{from = \"edge\", to = "
                                 "\"edge\", from_lane = 0, to_lane = 0}}")
        if not (params["lanes"] or params["add_connections"] or params["remove_connections"]):
            problems.add(f"{label}: lane_use needs lanes, add_connections or "
                         "remove_connections")

    @classmethod
    def check_network(cls, params, label, check):
        for i, item in enumerate(params["lanes"]):
            check.lane(label, f"lanes[{i}].lane", item["lane"])
        for key in ("add_connections", "remove_connections"):
            for i, con in enumerate(params[key]):
                for end in ("from", "to"):
                    if not check.net.hasEdge(con[end]):
                        check.problems.add(f"{label}.{key}[{i}].{end}: edge {con[end]!r} is "
                                           f"not in {check.netname}")

    @classmethod
    def lane_permissions(cls, params, net):
        out: dict[str, dict[int, set[str]]] = {}
        for item in params["lanes"]:
            e, idx, lane = _lane(net, item["lane"])
            allowed = set(item["allow"]) if "allow" in item else set(lane.getPermissions())
            out.setdefault(e, {})[idx] = allowed - set(item.get("disallow", []))
        return out

    @classmethod
    def connections(cls, params):
        return list(params["remove_connections"]), list(params["add_connections"])


@register
class SignalRetiming(PolicyKind):
    """Webster green splits for the demand at the given signals (all by default)."""

    name = "signal_retiming"
    fields = {"tls": Field("list", default=[]),
              "min_cycle": Field("float", default=40.0, check=limits.within(0, 600, lo_open=True)),
              "max_cycle": Field("float", default=120.0, check=limits.within(0, 600, lo_open=True)),
              "yellow": Field("float", default=3.0, check=limits.within(0, 10, lo_open=True))}
    id_lists = ("tls",)
    retimes_signals = True

    @classmethod
    def check_shape(cls, params, label, problems):
        super().check_shape(params, label, problems)
        if (params.get("min_cycle") or 0) > (params.get("max_cycle") or 0):
            problems.add(f"{label}.max_cycle: must not be below min_cycle")

    @classmethod
    def check_network(cls, params, label, check):
        for t in params["tls"]:
            if t not in check.tls:
                check.problems.add(f"{label}.tls: traffic light {t!r} is not in "
                                   f"{check.netname}")


@register
class Combination(PolicyKind):
    """Other policies applied together."""

    name = "combination"
    fields = {"policies": Field("list", required=True)}
    id_lists = ("policies",)
    nonempty = ("policies",)


def kind_of(name: str) -> type[PolicyKind]:
    """The class of a registered kind."""
    return POLICY_KINDS[name]


__all__ = ["AlternateRoute", "Combination", "DEFAULT_VTYPES", "HovOpening", "LaneUse",
           "NetworkCheck", "POLICY_KINDS", "PolicyKind", "RampDiversion", "SignKind",
           "SignalRetiming", "kind_of", "register"]
