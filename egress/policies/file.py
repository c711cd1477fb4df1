"""Policy files: reading, validating and resolving declared measures.

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

The kinds and their keys are in :mod:`egress.policies.kinds`.

Places by coordinates
    Wherever a key takes edge ids (``signs``, ``from_ramp``, ``to_ramp``,
    ``via``, ``avoid``, ``destinations``), an entry may instead be a point::

        signs = [{ lon = -122.3290, lat = 47.5925, heading = 0 }]
        to_ramp = { lon = -122.3235, lat = 47.6068 }

    ``heading`` (degrees clockwise from north) is the direction of the
    traffic the sign addresses; give it on two-way streets. Points are snapped
    to the network the policies are loaded against (:mod:`egress.network.snapping`):
    ``from_ramp`` and ``to_ramp`` to the nearest ramp, the others to the
    nearest street edge. What was snapped where is kept in
    :attr:`Policy.snapped` and written by ``evaluate-policy`` to
    ``snapped.csv``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..config.schema import Field, check_table, read_toml
from ..errors import NetworkError, PolicyError, Problems
from ..network import car_successors, read_net
from ..network.snapping import Snap, snap
from .kinds import POLICY_KINDS, NetworkCheck, PolicyKind

_COMMON = {
    "name": Field("str", required=True),
    "description": Field("str", required=True),
    "kind": Field("str", required=True),
}


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
    snapped : tuple of Snap
        Entries given by coordinates and the edges they were snapped to.
    """

    name: str
    description: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    parts: tuple[Policy, ...] = ()
    source: str = ""
    snapped: tuple[Snap, ...] = ()

    @property
    def behaviour(self) -> type[PolicyKind]:
        """The class of the policy's kind (:data:`egress.policies.kinds.POLICY_KINDS`)."""
        return POLICY_KINDS[self.kind]

    def leaves(self) -> list[Policy]:
        """The elementary policies this one applies (itself unless a combination)."""
        if not self.parts:
            return [self]
        out: list[Policy] = []
        for p in self.parts:
            out += [q for q in p.leaves() if q not in out]
        return out

    @property
    def uses_signs(self) -> bool:
        """True if compliance matters (some part is a message sign)."""
        return any(p.behaviour.uses_signs for p in self.leaves())


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
        if isinstance(kind, str) and kind in POLICY_KINDS:
            fields.update(POLICY_KINDS[kind].fields)
        elif kind is not None:
            problems.add(f"{label}.kind: must be one of {', '.join(POLICY_KINDS)}, got {kind!r}")
            continue
        table, snaps = _snap_points(table, label, network, problems)
        values = check_table(table, fields, label, problems, path.parent)
        if not isinstance(name, str):
            continue
        if name in raw:
            problems.add(f"{label}.name: duplicate policy name")
        raw[name] = (label, {**values, _SNAPS: snaps})
    for label, values in raw.values():
        if isinstance(values["kind"], str) and values["kind"] in POLICY_KINDS:
            POLICY_KINDS[values["kind"]].check_shape(values, label, problems)
    policies: dict[str, Policy] = {}
    for name in raw:
        policy = _resolve(name, raw, policies, problems, str(path), ())
        if policy is not None:
            policies[name] = policy
    problems.raise_if_any(PolicyError)
    if network is not None:
        check_against_network(policies.values(), network, str(path))
    return policies


_SNAPS = "__snapped__"
#: Keys whose entries may be points, and the kind of edge a point snaps to.
_POINT_KEYS = {"signs": "street", "from_ramp": "ramp", "to_ramp": "ramp", "via": "any",
               "avoid": "any", "destinations": "any"}


def _is_point(v: Any) -> bool:
    return isinstance(v, dict) and "lon" in v and "lat" in v


def _snap_points(table: dict, label: str, network: str | Path | None, problems: Problems
                 ) -> tuple[dict, list[Snap]]:
    """`table` with every point entry replaced by the edge it snaps to."""
    found = [k for k in _POINT_KEYS if _is_point(table.get(k)) or (
        isinstance(table.get(k), list) and any(_is_point(x) for x in table[k]))]
    if not found:
        return table, []
    if network is None:
        problems.add(f"{label}: {', '.join(found)} given by coordinates need the network "
                     "(load the policies with the scenario's network)")
        return table, []
    net = read_net(network)
    out, snaps = dict(table), []

    def one(v: Any, where: str, kind: str) -> Any:
        if not _is_point(v):
            return v
        try:
            lon, lat = float(v["lon"]), float(v["lat"])
            heading = float(v["heading"]) if v.get("heading") is not None else None
            s = snap(net, lon, lat, where, heading=heading, kind=kind)
        except (TypeError, ValueError):
            problems.add(f"{where}: expected {{lon, lat[, heading]}} in degrees, got {v!r}")
            return v
        except NetworkError as exc:
            problems.add(str(exc))
            return v
        snaps.append(s)
        return s.edge

    for key in found:
        v, kind = table[key], _POINT_KEYS[key]
        out[key] = [one(x, f"{label}.{key}[{i}]", kind) for i, x in enumerate(v)] \
            if isinstance(v, list) else one(v, f"{label}.{key}", kind)
    return out, snaps


def _resolve(name: str, raw: dict, done: dict, problems: Problems, source: str,
             stack: tuple[str, ...]) -> Policy | None:
    if name in done:
        return done[name]
    label, v = raw[name]
    if v["kind"] not in POLICY_KINDS:
        return None
    params = POLICY_KINDS[v["kind"]].defaults({k: val for k, val in v.items()
                                               if k not in _COMMON and k != _SNAPS})
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
    policy = Policy(name, v["description"] or "", v["kind"], params, tuple(parts), source,
                    tuple(v.get(_SNAPS, ())))
    done[name] = policy
    return policy


def select(policies: dict[str, Policy], names: list[str] | str, source: str) -> list[Policy]:
    """Pick policies by name (a list or a comma-separated string).

    Raises
    ------
    PolicyError
        Naming every unknown policy (with a close match when there is one).
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    problems = Problems(source)
    if not names:
        problems.add("no policy named (--policy NAME[,NAME...])")
    out = []
    for n in sorted({n for n in names if names.count(n) > 1}):
        problems.add(f"policy {n!r} named twice")
    for n in dict.fromkeys(names):
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
    problems = Problems(source)
    check = NetworkCheck(net, car_successors(net), Path(network).name, problems)
    seen = set()
    for policy in policies:
        for p in policy.leaves():
            if p.name not in seen:
                seen.add(p.name)
                p.behaviour.check_network(p.params, f"policy {p.name!r}", check)
    problems.raise_if_any(PolicyError)


def write_snapped(path: Path, venues: list, policies: list[Policy]) -> Path | None:
    """A table (CSV) of every place given by coordinates and the edge it was snapped
    to: the lots of `venues` (:class:`egress.config.venues.Venues` or None) and the
    points of `policies`. Nothing is written (and an old table is removed) when
    no place was given by coordinates."""
    rows = [vars(s) | {"source": "venues"} for v in venues if v is not None
            for s in v.snapped]
    rows += [vars(s) | {"source": "policies"} for pol in policies for q in pol.leaves()
             for s in q.snapped]
    path = Path(path)
    path.unlink(missing_ok=True)
    if not rows:
        return None
    pd.DataFrame(rows).drop_duplicates().to_csv(path, index=False)
    return path


__all__ = ["Policy", "check_against_network", "load_policies", "select", "write_snapped"]
