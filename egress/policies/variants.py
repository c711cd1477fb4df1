"""The SUMO inputs of one policy variant (a policy at a compliance fraction).

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
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, unescape

from .. import sumo
from ..errors import InputError, PolicyError, Problems
from ..files import num, write_xml
from ..network import car_graph, car_successors, read_net
from .file import Policy

log = logging.getLogger(__name__)

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
    infra = [p for p in leaves if p.behaviour.patches_network]
    if infra:
        folder.mkdir(parents=True, exist_ok=True)
        net_file = patch_network(network, infra, folder / "network.net.xml")
    additional: list[Path] = []
    for p in (p for p in leaves if p.behaviour.retimes_signals):
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
    sign_parts = [p for p in policy.leaves() if p.behaviour.uses_signs]
    if sign_parts:
        if fraction is None:
            raise ValueError("a policy with message signs needs a compliance fraction")
        vehicles, _ = demand if demand is not None else read_demand(routes)
        add, route_files, signs = _write_signs(sign_parts, fraction, net_file, routes, vehicles,
                                               folder, begin, end, policy.source)
        additional.insert(0, add)
    return VariantInputs(folder, Path(net_file), additional, route_files, signs,
                         fraction if sign_parts else None)


def _detour(net, p: Policy, sign: str, dest: str) -> list[str] | None:
    """The recommended route from the sign edge to `dest` (fastest free-flow path,
    :meth:`egress.network.graph.CarGraph.path`)."""
    q = p.params
    stops = p.behaviour.stops(q)
    avoid = p.behaviour.avoid(q)
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
                 vehicles: dict[str, _Vehicle], folder: Path,
                 begin: float, end: float, source: str):
    net = read_net(network)
    problems = Problems(source)
    relabel: dict[str, str] = {}          # vehicle -> cloned vType
    clones: dict[str, list[str]] = defaultdict(list)  # original type -> clones
    signs: list[Sign] = []
    add = ET.Element("additional")
    reroute_defs = []
    for p in parts:
        sign = Sign(p.name, target=p.behaviour.target(p.params))
        groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for v in vehicles.values():
            if v.type not in p.params["vtypes"] or v.id in relabel or not v.edges:
                continue
            hit = p.behaviour.eligible(p.params, v.edges)
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
    new_routes = _relabel_routes(routes, relabel, clones, folder)
    n = sum(len(s.vehicles) for s in signs)
    log.info("%d vehicle(s) addressed by %d sign(s) at fraction %.2f", n, len(signs), fraction)
    return add_path, new_routes, signs


_TAG = re.compile(r"<(vType|vehicle)\b[^>]*?(/?)>")
_ID = re.compile(r'\sid="([^"]*)"')
_TYPE = re.compile(r'\stype="([^"]*)"')
_ROUTES = re.compile(r"<routes\b[^>]*>")


def _relabel_routes(routes: list[Path], relabel: dict[str, str], clones: dict[str, list[str]],
                    folder: Path) -> list[Path]:
    """Copies of `routes` in which the vehicles of `relabel` carry their cloned
    vType, each clone defined right after its original.

    Works on the text, tag by tag (a route file of 30,000 vehicles is copied in
    a fraction of a second; parsing and writing it as a tree took seconds per
    variant), so everything else in the files stays byte for byte.
    """
    out = []
    pending = {t: list(labels) for t, labels in clones.items()}
    for i, path in enumerate(routes):
        text = Path(path).read_text(encoding="utf-8")
        pieces: list[str] = []
        pos = 0
        for m in _TAG.finditer(text):
            found = _ID.search(m.group(0))
            if found is None:
                continue
            ident = unescape(found.group(1))
            if m.group(1) == "vehicle" and ident in relabel:
                label = f' type="{escape(relabel[ident])}"'
                tag = m.group(0)
                tag = _TYPE.sub(label, tag, count=1) if _TYPE.search(tag) else \
                    tag.replace("<vehicle", "<vehicle" + label, 1)
                pieces += [text[pos:m.start()], tag]
                pos = m.end()
            elif m.group(1) == "vType" and ident in pending:
                end = m.end() if m.group(2) == "/" else \
                    text.index("</vType>", m.end()) + len("</vType>")
                element = text[m.start():end]
                indent = text[text.rfind("\n", 0, m.start()) + 1:m.start()]
                copies = "".join(f"\n{indent}" + _ID.sub(f' id="{escape(label)}"', element,
                                                          count=1)
                                 for label in pending.pop(ident))
                pieces += [text[pos:end], copies]
                pos = end
        pieces.append(text[pos:])
        text = "".join(pieces)
        if i == 0 and pending:
            # types not defined in the route files (SUMO defaults): plain clones up front
            head = _ROUTES.search(text)
            at = head.end() if head else 0
            plain = "".join(f'\n    <vType id="{escape(label)}"/>'
                            for labels in pending.values() for label in labels)
            text = text[:at] + plain + text[at:]
            pending.clear()
        target = folder / f"routes{i}.rou.xml"
        target.write_text(text, encoding="utf-8")
        out.append(target)
    return out


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
        for e, by_index in p.behaviour.lane_permissions(p.params, net).items():
            for idx, allowed in by_index.items():
                lanes[e][idx] = " ".join(sorted(allowed))
        remove, add = p.behaviour.connections(p.params)
        for con in remove:
            ET.SubElement(cons, "delete", **_con(con))
        for con in add:
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



__all__ = ["Infrastructure", "Sign", "VariantInputs", "check_routes", "patch_network",
           "prepare_infrastructure", "prepare_variant", "read_demand", "retime_signals"]
