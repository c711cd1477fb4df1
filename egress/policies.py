"""Traffic-management policies and the SUMO inputs that apply them.

A policy file (TOML) declares named measures::

    [[policies]]
    name = "cherry_nb"
    description = "I-5 NB traffic: use the Cherry St on-ramp"
    kind = "ramp_diversion"
    signs = ["4th_ave_s_nb_1"]        # edges where the message sign stands
    from_ramp = "i5_nb_onramp_royal_brougham"   # ramp A, the one drivers would take
    to_ramp = "i5_nb_onramp_cherry"   # ramp B, the one the sign recommends
    vtypes = ["event"]                # eligible vehicle types (default)

    [[policies]]
    name = "both"
    description = "Both deployed diversions"
    kind = "combination"
    policies = ["cherry_nb", "spokane_sb"]

Kinds and their keys (every edge, lane and signal id is checked against the
network; a problem names the file, the policy and the key):

``ramp_diversion``
    ``signs``, ``from_ramp``, ``to_ramp``, optional ``destinations`` and
    ``vtypes``. Eligible: a vehicle of an eligible type whose route passes a
    sign edge and then ``from_ramp`` (and ends on one of ``destinations``, when
    given: e.g. only through traffic on the freeway, not drivers who leave it
    before ramp B joins). A complier is sent from the sign over ``to_ramp`` and on to
    its own destination (the fastest free-flow path).
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

How the measures reach SUMO
---------------------------
*Message signs* (``ramp_diversion``, ``alternate_route``) are SUMO
``rerouter`` elements on the sign edges with ``probability`` = compliance
fraction and ``vTypes`` restricted to the eligible vehicles. SUMO 1.28's
``closingReroute`` closes an edge through lane permissions, so drivers who do
not comply could not use it either, and ``viaProbReroute`` ends the route at
the via edge; so each sign uses ``routeProbReroute`` with one explicit route
per destination. To let a rerouter address exactly the vehicles that would
take ramp A towards one destination, those vehicles get a clone of their
vType (same parameters, id ``<type>~<policy>~<k>``) in the variant's copy of
the route files; the clone changes nothing else in the run (checked: a
relabelled run without rerouters is identical to the baseline). SUMO draws
the compliance decision once per vehicle as it enters the sign edge; a
vehicle that passes several sign edges of the same policy is only labelled
for the first. With fraction 0 no rerouter is written, so the run equals the
baseline.

*Infrastructure* measures (``hov_opening``, ``lane_use``) patch a copy of the
network with ``netconvert -s base.net.xml`` and edge/connection patch files;
``signal_retiming`` writes Webster green splits for the demand with SUMO's
``tlsCycleAdaptation.py`` as a ``tlLogic`` additional file (a new program id
that SUMO activates on loading). These apply to every vehicle; the compliance
fraction does not change them.

:func:`prepare_variant` writes all inputs of one variant into a folder.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import sumo
from .config.schema import Field, check_table, positive, read_toml
from .errors import InputError, Problems
from .files import num, write_xml
from .network import car_graph, car_successors, reachable, read_net

log = logging.getLogger(__name__)

KINDS = ("ramp_diversion", "alternate_route", "hov_opening", "lane_use",
         "signal_retiming", "combination")
#: Kinds that work through message signs and so depend on the compliance fraction.
SIGN_KINDS = ("ramp_diversion", "alternate_route")
DEFAULT_VTYPES = ("event",)

_COMMON = {
    "name": Field("str", required=True),
    "description": Field("str", required=True),
    "kind": Field("str", required=True),
}
_KIND_FIELDS: dict[str, dict[str, Field]] = {
    "ramp_diversion": {
        "signs": Field("list", required=True), "from_ramp": Field("str", required=True),
        "to_ramp": Field("str", required=True), "destinations": Field("list", default=[]),
        "vtypes": Field("list"),
    },
    "alternate_route": {
        "signs": Field("list", required=True), "via": Field("list", required=True),
        "avoid": Field("list", default=[]), "destinations": Field("list", default=[]),
        "vtypes": Field("list"),
    },
    "hov_opening": {"lanes": Field("list", required=True), "allow": Field("list")},
    "lane_use": {
        "lanes": Field("list", default=[]), "add_connections": Field("list", default=[]),
        "remove_connections": Field("list", default=[]),
    },
    "signal_retiming": {
        "tls": Field("list", default=[]), "min_cycle": Field("float", default=40.0, check=positive),
        "max_cycle": Field("float", default=120.0, check=positive),
        "yellow": Field("float", default=3.0, check=positive),
    },
    "combination": {"policies": Field("list", required=True)},
}


class PolicyError(InputError):
    """A policy file or policy is invalid, or cannot be applied to the demand."""


@dataclass(frozen=True)
class Policy:
    """One declared measure.

    Attributes
    ----------
    name, description, kind : str
    params : dict
        The kind-specific keys, converted and with defaults filled.
    parts : tuple of Policy
        For a combination: the policies combined (already resolved); else empty.
    source : str
        The file the policy came from (for messages).
    """

    name: str
    description: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    parts: tuple[Policy, ...] = ()
    source: str = ""

    def leaves(self) -> list[Policy]:
        """The elementary policies this one applies (itself unless a combination)."""
        if self.kind != "combination":
            return [self]
        out: list[Policy] = []
        for p in self.parts:
            out += [q for q in p.leaves() if q not in out]
        return out

    @property
    def uses_signs(self) -> bool:
        """True if compliance matters (some part is a message sign)."""
        return any(p.kind in SIGN_KINDS for p in self.leaves())


def load_policies(path: str | Path, network: str | Path | None = None) -> dict[str, Policy]:
    """Read and validate a policy file.

    Parameters
    ----------
    path : str or pathlib.Path
        The policy file (TOML, ``[[policies]]`` tables).
    network : str or pathlib.Path, optional
        Check every edge, lane and signal id against this SUMO network.

    Returns
    -------
    dict
        Policy name -> :class:`Policy`, in file order.

    Raises
    ------
    MissingFileError
    PolicyError
        Listing every problem, each naming the policy and key.
    """
    path = Path(path)
    data = read_toml(path, "policy file", PolicyError)
    problems = Problems(path)
    top = check_table(data, {"policies": Field("list", required=True)}, "", problems, path.parent)
    raw: dict[str, tuple[str, dict]] = {}
    for i, table in enumerate(top["policies"] or []):
        where = f"policies[{i}]"
        if not isinstance(table, dict):
            problems.add(f"{where}: expected a table")
            continue
        name = table.get("name")
        label = f"policy {name!r}" if isinstance(name, str) else where
        kind = table.get("kind")
        fields = dict(_COMMON)
        if kind in _KIND_FIELDS:
            fields.update(_KIND_FIELDS[kind])
        elif kind is not None:
            problems.add(f"{label}.kind: must be one of {', '.join(KINDS)}, got {kind!r}")
            continue
        values = check_table(table, fields, label, problems, path.parent)
        if not isinstance(name, str):
            continue
        if name in raw:
            problems.add(f"{label}.name: duplicate policy name")
        raw[name] = (label, values)
    policies: dict[str, Policy] = {}
    for label, values in raw.values():
        _check_shapes(values, label, problems)
    for name in raw:
        policy = _resolve(name, raw, policies, problems, str(path), ())
        if policy is not None:
            policies[name] = policy
    problems.raise_if_any(PolicyError)
    if network is not None:
        check_against_network(policies.values(), network, str(path))
    return policies


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _check_shapes(v: dict, label: str, problems: Problems) -> None:
    kind = v["kind"]
    for key in ("signs", "via", "avoid", "destinations", "vtypes", "lanes", "tls", "policies",
                "allow"):
        if key in v and v[key] is not None and not (kind == "lane_use" and key == "lanes"):
            if not _str_list(v[key]):
                problems.add(f"{label}.{key}: expected a list of ids (strings)")
            elif key in ("signs", "via", "policies", "lanes") and kind != "lane_use" \
                    and not v[key]:
                problems.add(f"{label}.{key}: must not be empty")
    if kind == "lane_use":
        for i, lane in enumerate(v["lanes"]):
            if not (isinstance(lane, dict) and isinstance(lane.get("lane"), str)
                    and set(lane) <= {"lane", "allow", "disallow"}
                    and all(_str_list(lane[k]) for k in ("allow", "disallow") if k in lane)):
                problems.add(f"{label}.lanes[{i}]: expected {{lane = \"id\", allow = [...]}}")
        for key in ("add_connections", "remove_connections"):
            for i, con in enumerate(v[key]):
                ok = (isinstance(con, dict) and isinstance(con.get("from"), str)
                      and isinstance(con.get("to"), str)
                      and set(con) <= {"from", "to", "from_lane", "to_lane"}
                      and all(isinstance(con[k], int) for k in ("from_lane", "to_lane")
                              if k in con))
                if not ok:
                    problems.add(f"{label}.{key}[{i}]: expected {{from = \"edge\", to = "
                                 "\"edge\", from_lane = 0, to_lane = 0}}")
        if not (v["lanes"] or v["add_connections"] or v["remove_connections"]):
            problems.add(f"{label}: lane_use needs lanes, add_connections or "
                         "remove_connections")
    if kind == "signal_retiming" and (v.get("min_cycle") or 0) > (v.get("max_cycle") or 0):
        problems.add(f"{label}.max_cycle: must not be below min_cycle")


def _resolve(name: str, raw: dict, done: dict, problems: Problems, source: str,
             stack: tuple[str, ...]) -> Policy | None:
    if name in done:
        return done[name]
    label, v = raw[name]
    params = {k: val for k, val in v.items() if k not in _COMMON}
    if "vtypes" in params and params["vtypes"] is None:
        params["vtypes"] = list(DEFAULT_VTYPES)
    if v["kind"] == "hov_opening" and params.get("allow") is None:
        params["allow"] = ["passenger"]
    parts: list[Policy] = []
    if v["kind"] == "combination":
        for child in params.get("policies") or []:
            if child in stack or child == name:
                problems.add(f"{label}.policies: {child!r} includes itself")
                return None
            if child not in raw:
                problems.add(f"{label}.policies: unknown policy {child!r}")
                continue
            sub = _resolve(child, raw, done, problems, source, (*stack, name))
            if sub is not None:
                parts.append(sub)
    policy = Policy(name, v["description"] or "", v["kind"], params, tuple(parts), source)
    done[name] = policy
    return policy


def select(policies: dict[str, Policy], names: list[str] | str, source: str) -> list[Policy]:
    """Pick policies by name (a list or a comma-separated string).

    Raises
    ------
    PolicyError
        Naming every unknown policy (with a close match when there is one).
    """
    import difflib

    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    problems = Problems(source)
    if not names:
        problems.add("no policy named (--policy NAME[,NAME...])")
    out = []
    for n in names:
        if n not in policies:
            hint = difflib.get_close_matches(n, list(policies), n=1)
            problems.add(f"unknown policy {n!r}" + (f" (did you mean {hint[0]!r}?)" if hint
                                                    else f"; known: {', '.join(policies)}"))
        else:
            out.append(policies[n])
    problems.raise_if_any(PolicyError)
    return out


def check_against_network(policies, network: str | Path, source: str) -> None:
    """Check every edge, lane and signal id of `policies` against a network.

    Also checks that each sign reaches its ramps and via edges by car.

    Raises
    ------
    PolicyError
    """
    net = read_net(network)
    graph = car_successors(net)
    netname = Path(network).name
    problems = Problems(source)
    tls_ids = {t.getID() for t in net.getTrafficLights()}

    def edge(label: str, key: str, e: str) -> bool:
        if not net.hasEdge(e):
            problems.add(f"{label}.{key}: edge {e!r} is not in {netname}")
            return False
        if e not in graph:
            problems.add(f"{label}.{key}: edge {e!r} does not allow cars")
            return False
        return True

    def lane(label: str, key: str, lane_id: str) -> None:
        e, _, idx = lane_id.rpartition("_")
        if not (e and idx.isdigit() and net.hasEdge(e)
                and int(idx) < len(net.getEdge(e).getLanes())):
            problems.add(f"{label}.{key}: lane {lane_id!r} is not in {netname}")

    seen = set()
    for policy in policies:
        for p in policy.leaves():
            if p.name in seen:
                continue
            seen.add(p.name)
            label, q = f"policy {p.name!r}", p.params
            if p.kind == "ramp_diversion":
                signs = [s for s in q["signs"] if edge(label, "signs", s)]
                a = edge(label, "from_ramp", q["from_ramp"])
                b = edge(label, "to_ramp", q["to_ramp"])
                for e in q["destinations"]:
                    edge(label, "destinations", e)
                for s in signs:
                    reach = reachable(graph, s)
                    for key in ("from_ramp", "to_ramp"):
                        if (a if key == "from_ramp" else b) and q[key] not in reach:
                            problems.add(f"{label}.{key}: {q[key]!r} cannot be reached "
                                         f"from sign edge {s!r}")
            elif p.kind == "alternate_route":
                signs = [s for s in q["signs"] if edge(label, "signs", s)]
                via = [v for v in q["via"] if edge(label, "via", v)]
                for key in ("avoid", "destinations"):
                    for e in q[key]:
                        edge(label, key, e)
                if len(via) == len(q["via"]):
                    for s in signs:
                        at = s
                        for v in via:
                            if v not in reachable(graph, at):
                                problems.add(f"{label}.via: {v!r} cannot be reached from "
                                             f"{at!r}")
                                break
                            at = v
            elif p.kind == "hov_opening":
                for lane_id in q["lanes"]:
                    lane(label, "lanes", lane_id)
            elif p.kind == "lane_use":
                for i, item in enumerate(q["lanes"]):
                    lane(label, f"lanes[{i}].lane", item["lane"])
                for key in ("add_connections", "remove_connections"):
                    for i, con in enumerate(q[key]):
                        for end in ("from", "to"):
                            if not net.hasEdge(con[end]):
                                problems.add(f"{label}.{key}[{i}].{end}: edge {con[end]!r} "
                                             f"is not in {netname}")
            elif p.kind == "signal_retiming":
                for t in q["tls"]:
                    if t not in tls_ids:
                        problems.add(f"{label}.tls: traffic light {t!r} is not in {netname}")
    problems.raise_if_any(PolicyError)


# --------------------------------------------------------------------------- variants


@dataclass
class Sign:
    """A message sign of one variant: which vehicles it addresses and where it sends them."""

    policy: str
    rerouters: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    #: vehicle id -> sign edge, for every vehicle labelled for this sign
    vehicles: dict[str, str] = field(default_factory=dict)
    #: the edge whose use marks a complier (ramp B, or the first via edge)
    target: str = ""


@dataclass
class VariantInputs:
    """The SUMO inputs of one policy variant (paths relative to nothing: absolute).

    Attributes
    ----------
    folder : pathlib.Path
    network : pathlib.Path
        The network to run on (a patched copy, or the scenario's network).
    additional : list of pathlib.Path
        Additional files (cloned vTypes, rerouters, signal programs).
    routes : list of pathlib.Path
        Route files (relabelled copies when signs address vehicles).
    signs : list of Sign
    fraction : float or None
        Compliance fraction (None when no part of the policy uses signs).
    """

    folder: Path
    network: Path
    additional: list[Path]
    routes: list[Path]
    signs: list[Sign]
    fraction: float | None


@dataclass
class _Vehicle:
    id: str
    type: str
    depart: float
    edges: tuple[str, ...]


def read_demand(routes: list[Path]) -> tuple[dict[str, _Vehicle], dict[str, ET.Element]]:
    """Read vehicles (id, type, scheduled depart, route edges) and vTypes from route files.

    Vehicles defined by ``flow`` or ``trip`` have no fixed route and are
    returned with empty edges (no sign can address them in advance).
    """
    vehicles: dict[str, _Vehicle] = {}
    vtypes: dict[str, ET.Element] = {}
    named: dict[str, tuple[str, ...]] = {}
    for path in routes:
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as exc:
            raise InputError(str(path), f"unreadable route file ({exc})") from None
        for el in root:
            if el.tag == "vType":
                vtypes[el.get("id")] = el
            elif el.tag == "route" and el.get("id"):
                named[el.get("id")] = tuple(el.get("edges", "").split())
            elif el.tag in ("vehicle", "trip", "flow"):
                edges: tuple[str, ...] = ()
                if el.tag == "vehicle":
                    if el.get("route"):
                        edges = named.get(el.get("route"), ())
                    elif el.find("route") is not None:
                        edges = tuple(el.find("route").get("edges", "").split())
                    elif el.find("routeDistribution") is not None:
                        dist = el.find("routeDistribution")
                        alts = dist.findall("route")
                        pick = int(dist.get("last", len(alts) - 1)) if alts else 0
                        edges = tuple(alts[pick].get("edges", "").split()) if alts else ()
                depart = el.get("depart", el.get("begin", "0"))
                try:
                    t = float(depart)
                except ValueError:
                    t = 0.0
                vehicles[el.get("id")] = _Vehicle(el.get("id"), el.get("type", "DEFAULT_VEHTYPE"),
                                                  t, edges)
    return vehicles, vtypes


@dataclass
class Infrastructure:
    """The inputs of a policy's infrastructure measures, shared by all its variants.

    Attributes
    ----------
    network : pathlib.Path
        The network to run on (a patched copy, or the scenario's network).
    additional : list of pathlib.Path
        Signal programs.
    """

    network: Path
    additional: list[Path] = field(default_factory=list)


def prepare_infrastructure(policy: Policy, network: Path, routes: list[Path], folder: Path, *,
                           begin: float) -> Infrastructure:
    """Write the network patch and signal programs of `policy` into `folder`.

    They do not depend on the compliance fraction, and they are planned for
    the expected demand (the route files given), so every fraction and
    every replication of the policy runs on the same infrastructure.
    """
    leaves = policy.leaves()
    net_file = network
    infra = [p for p in leaves if p.kind in ("hov_opening", "lane_use")]
    if infra:
        folder.mkdir(parents=True, exist_ok=True)
        net_file = patch_network(network, infra, folder / "network.net.xml")
    additional: list[Path] = []
    for p in (p for p in leaves if p.kind == "signal_retiming"):
        folder.mkdir(parents=True, exist_ok=True)
        additional.append(retime_signals(net_file, routes, folder / f"{p.name}.tls.xml",
                                         begin=begin, tls=p.params["tls"], policy=p))
    return Infrastructure(Path(net_file), additional)


def prepare_variant(policy: Policy, fraction: float | None, network: Path, routes: list[Path],
                    folder: Path, *, begin: float, end: float,
                    demand: tuple[dict, dict] | None = None,
                    infrastructure: Infrastructure | None = None) -> VariantInputs:
    """Write every SUMO input of one policy variant into `folder`.

    Parameters
    ----------
    policy : Policy
    fraction : float or None
        Compliance fraction for message signs (ignored without signs).
    network : pathlib.Path
        The baseline network.
    routes : list of pathlib.Path
        The baseline route files (the same vehicles are used).
    folder : pathlib.Path
    begin, end : float
        The simulated window; signs and signal programs act during it.
    demand : tuple, optional
        The result of :func:`read_demand` on `routes` (to avoid re-reading).
    infrastructure : Infrastructure, optional
        The policy's network patch and signal programs, prepared once
        (:func:`prepare_infrastructure`); default: prepared in `folder`.

    Returns
    -------
    VariantInputs

    Raises
    ------
    PolicyError
        If some addressed vehicles would be left without a route.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if infrastructure is None:
        infrastructure = prepare_infrastructure(policy, network, routes, folder, begin=begin)
    net_file = infrastructure.network
    additional = list(infrastructure.additional)
    signs: list[Sign] = []
    route_files = list(routes)
    sign_parts = [p for p in policy.leaves() if p.kind in SIGN_KINDS]
    if sign_parts:
        if fraction is None:
            raise ValueError("a policy with message signs needs a compliance fraction")
        vehicles, vtypes = demand if demand is not None else read_demand(routes)
        add, route_files, signs = _write_signs(sign_parts, fraction, net_file, routes, vehicles,
                                               vtypes, folder, begin, end, policy.source)
        additional.insert(0, add)
    return VariantInputs(folder, Path(net_file), additional, route_files, signs,
                         fraction if sign_parts else None)


def _eligible(p: Policy, edges: tuple[str, ...]) -> tuple[int, str] | None:
    """(index of the sign edge, destination) if a route is addressed by sign policy `p`."""
    q = p.params
    signs = set(q["signs"])
    for i, e in enumerate(edges):
        if e in signs:
            rest = edges[i + 1:]
            if p.kind == "ramp_diversion":
                ok = q["from_ramp"] in rest and (not q["destinations"]
                                                 or edges[-1] in q["destinations"])
            else:
                ok = ((not q["avoid"] or any(a in rest for a in q["avoid"]))
                      and (not q["destinations"] or edges[-1] in q["destinations"])
                      and not all(v in rest for v in q["via"]))
            return (i, edges[-1]) if ok else None
    return None


def _detour(net, p: Policy, sign: str, dest: str) -> list[str] | None:
    """The recommended route from the sign edge to `dest` (fastest free-flow path,
    :meth:`egress.network.graph.CarGraph.path`)."""
    q = p.params
    stops = [q["to_ramp"]] if p.kind == "ramp_diversion" else list(q["via"])
    avoid = {q["from_ramp"]} if p.kind == "ramp_diversion" else set(q["avoid"])
    path = [sign]
    for target in [*stops, dest]:
        if path[-1] == target:
            continue
        leg = car_graph(net).path(path[-1], target, avoid=avoid)
        if leg is None:
            return None
        path += leg[1:]
    return path




def _write_signs(parts: list[Policy], fraction: float, network: Path, routes: list[Path],
                 vehicles: dict[str, _Vehicle], vtypes: dict[str, ET.Element], folder: Path,
                 begin: float, end: float, source: str):
    net = read_net(network)
    problems = Problems(source)
    relabel: dict[str, str] = {}          # vehicle -> cloned vType
    clones: dict[str, list[str]] = defaultdict(list)  # original type -> clones
    signs: list[Sign] = []
    add = ET.Element("additional")
    reroute_defs = []
    for p in parts:
        sign = Sign(p.name, target=p.params["to_ramp"] if p.kind == "ramp_diversion"
                    else p.params["via"][0])
        groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for v in vehicles.values():
            if v.type not in p.params["vtypes"] or v.id in relabel or not v.edges:
                continue
            hit = _eligible(p, v.edges)
            if hit is not None:
                groups[(v.type, v.edges[hit[0]], hit[1])].append(v.id)
        missing: dict[tuple[str, str], int] = defaultdict(int)
        for k, ((vtype, sign_edge, dest), ids) in enumerate(sorted(groups.items())):
            detour = _detour(net, p, sign_edge, dest)
            if detour is None:
                missing[(sign_edge, dest)] += len(ids)
                continue
            label = f"{vtype}~{p.name}~{k}"
            clones[vtype].append(label)
            for vid in ids:
                relabel[vid] = label
                sign.vehicles[vid] = sign_edge
            sign.labels.append(label)
            reroute_defs.append((p.name, k, sign_edge, label, detour))
        for (sign_edge, dest), n in sorted(missing.items()):
            problems.add(f"policy {p.name!r}: {n} vehicle(s) passing sign {sign_edge!r} bound "
                         f"for {dest!r} would be left without a route via the recommended "
                         "edges")
        signs.append(sign)
    problems.raise_if_any(PolicyError)
    # recommended routes; the vType clones go into the route-file copies
    for p_name, k, _sign, _label, detour in reroute_defs:
        ET.SubElement(add, "route", id=f"{p_name}~{k}", edges=" ".join(detour))
    if fraction > 0:
        for p_name, k, sign_edge, label, _ in reroute_defs:
            rid = f"sign~{p_name}~{k}"
            r = ET.SubElement(add, "rerouter", id=rid, edges=sign_edge,
                              probability=repr(float(fraction)), vTypes=label)
            interval = ET.SubElement(r, "interval", begin=num(begin), end=num(end + 1))
            ET.SubElement(interval, "routeProbReroute", id=f"{p_name}~{k}")
            next(s for s in signs if s.policy == p_name).rerouters.append(rid)
    add_path = folder / "signs.add.xml"
    write_xml(add, add_path)
    new_routes = _relabel_routes(routes, relabel, clones, vtypes, folder)
    n = sum(len(s.vehicles) for s in signs)
    log.info("%d vehicle(s) addressed by %d sign(s) at fraction %.2f", n, len(signs), fraction)
    return add_path, new_routes, signs


def _relabel_routes(routes: list[Path], relabel: dict[str, str], clones: dict[str, list[str]],
                    vtypes: dict[str, ET.Element], folder: Path) -> list[Path]:
    out = []
    pending = {t: labels for t, labels in clones.items()}
    for i, path in enumerate(routes):
        root = ET.parse(path).getroot()
        children = list(root)
        for el in children:
            if el.tag == "vType" and el.get("id") in pending:
                pos = list(root).index(el) + 1
                for label in pending.pop(el.get("id")):
                    clone = ET.fromstring(ET.tostring(el))
                    clone.set("id", label)
                    root.insert(pos, clone)
                    pos += 1
            elif el.tag == "vehicle" and el.get("id") in relabel:
                el.set("type", relabel[el.get("id")])
        if i == 0 and pending:
            # types not defined in the route files (SUMO defaults): plain clones up front
            for t, labels in list(pending.items()):
                for label in labels:
                    root.insert(0, ET.Element("vType", id=label))
                pending.pop(t)
        target = folder / f"routes{i}.rou.xml"
        write_xml(root, target)
        out.append(target)
    return out


# --------------------------------------------------------------------------- network patches


def patch_network(network: Path, policies: list[Policy], output: Path) -> Path:
    """Write a copy of `network` with the lane and connection changes of `policies`.

    Uses ``netconvert -s network -e patch.edg.xml -x patch.con.xml``, so the
    junctions' internal lanes follow the new permissions.

    Returns
    -------
    pathlib.Path
        The patched network.
    """
    net = read_net(network)
    lanes: dict[str, dict[int, str]] = defaultdict(dict)
    cons = ET.Element("connections")
    for p in policies:
        q = p.params
        if p.kind == "hov_opening":
            for lane_id in q["lanes"]:
                e, _, idx = lane_id.rpartition("_")
                lane = net.getEdge(e).getLanes()[int(idx)]
                allowed = set(lane.getPermissions()) | set(q["allow"])
                lanes[e][int(idx)] = " ".join(sorted(allowed))
        elif p.kind == "lane_use":
            for item in q["lanes"]:
                e, _, idx = item["lane"].rpartition("_")
                lane = net.getEdge(e).getLanes()[int(idx)]
                allowed = set(lane.getPermissions())
                if "allow" in item:
                    allowed = set(item["allow"])
                allowed -= set(item.get("disallow", []))
                lanes[e][int(idx)] = " ".join(sorted(allowed))
            for con in q["remove_connections"]:
                ET.SubElement(cons, "delete", **_con(con))
            for con in q["add_connections"]:
                ET.SubElement(cons, "connection", **_con(con))
    edges = ET.Element("edges")
    for e, by_index in lanes.items():
        el = ET.SubElement(edges, "edge", id=e)
        for idx, allow in sorted(by_index.items()):
            ET.SubElement(el, "lane", index=str(idx), allow=allow or "none")
    output.parent.mkdir(parents=True, exist_ok=True)
    edg, con = output.with_name("patch.edg.xml"), output.with_name("patch.con.xml")
    write_xml(edges, edg)
    write_xml(cons, con)
    sumo.run(["netconvert", "-s", network, "-e", edg, "-x", con, "-o", output],
             what=f"netconvert patching {Path(network).name}")
    return output


def _con(con: dict) -> dict[str, str]:
    out = {"from": con["from"], "to": con["to"]}
    if "from_lane" in con:
        out["fromLane"] = str(con["from_lane"])
    if "to_lane" in con:
        out["toLane"] = str(con["to_lane"])
    return out


def check_routes(network: Path, vehicles: dict[str, _Vehicle], source: str, policy: str) -> None:
    """Check that every fixed route still drives on a (patched) network.

    Raises
    ------
    PolicyError
        Naming the first broken link and how many vehicles use it.
    """
    graph = car_successors(read_net(network))
    broken: dict[tuple[str, str], int] = defaultdict(int)
    for v in vehicles.values():
        for a, b in zip(v.edges, v.edges[1:], strict=False):
            if b not in graph.get(a, ()):
                broken[(a, b)] += 1
                break
    if broken:
        (a, b), n = max(broken.items(), key=lambda kv: kv[1])
        raise PolicyError(source, f"policy {policy!r}: {sum(broken.values())} vehicle(s) left "
                          f"without a route, e.g. {n} from {a!r} to {b!r}")


# --------------------------------------------------------------------------- signals


def retime_signals(network: Path, routes: list[Path], output: Path, *, begin: float,
                   tls: list[str] | None = None, policy: Policy | None = None) -> Path:
    """Webster green splits for the demand, as a ``tlLogic`` additional file.

    Runs SUMO's ``tlsCycleAdaptation.py`` on the routes (the busiest hour from
    `begin`), keeps the signals in `tls` (all when empty) and gives the new
    programs the id ``retimed``.
    """
    q = policy.params if policy is not None else {}
    raw = output.with_suffix(".all.xml")
    args = [sumo.tool("tlsCycleAdaptation.py"), "-n", network, "-r",
            ",".join(str(r) for r in routes), "-o", raw, "-b", num(begin), "-p", "retimed",
            "--min-cycle", num(q.get("min_cycle", 40.0)),
            "--max-cycle", num(q.get("max_cycle", 120.0)),
            "-y", num(q.get("yellow", 3.0))]
    sumo.run(args, what="tlsCycleAdaptation.py", cwd=output.parent)
    root = ET.parse(raw).getroot()
    keep = set(tls or [])
    for el in list(root):
        if el.tag == "tlLogic" and keep and el.get("id") not in keep:
            root.remove(el)
    write_xml(root, output)
    raw.unlink()
    return output


__all__ = ["KINDS", "Infrastructure", "Policy", "PolicyError", "Sign", "VariantInputs",
           "check_against_network", "check_routes", "load_policies", "patch_network",
           "prepare_infrastructure", "prepare_variant", "read_demand", "retime_signals", "select"]
