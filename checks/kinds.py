"""Resolve a resource as kubectl's users type it (`roles`, `po`, `deployment`, `deployments.apps`,
`pods/log`) to the resource the cluster serves, through the cluster's own discovery documents.

kubectl accepts a plural, a singular, a short name or a kind, optionally qualified with its API group
(`RESOURCE.GROUP`, also `RESOURCE.VERSION.GROUP`). Unqualified names that several groups serve resolve
as kubectl's RESTMapper does: the core group first, then the groups in discovery order. Pure: the
discovery entries come from `Gateway.discovery`.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from checks.i18n import _, sentences

VERSION_RE = re.compile(r"v\d+((alpha|beta)\d+)?$")


@dataclass(frozen=True)
class Served:
    """One resource the cluster serves."""

    group: str
    version: str
    resource: str  # plural
    namespaced: bool
    subresources: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    singular: str = ""
    kind: str = ""

    @property
    def qualified(self) -> str:
        """`roles.rbac.authorization.k8s.io`, or `pods` for the core group (as kubectl writes it)."""
        return f"{self.resource}.{self.group}" if self.group else self.resource


@dataclass
class Resolution:
    served: Served | None  # None: unknown or not served
    subresource: str = ""
    others: list[Served] = field(default_factory=list)  # other resources the same name means (ambiguous)
    problem: str = ""  # why it could not be resolved, for people
    typed: str = ""

    @property
    def resource(self) -> str:
        """`pods/log`, `roles`: the plural with its subresource."""
        assert self.served is not None
        return self.served.resource + (f"/{self.subresource}" if self.subresource else "")


def served(entries: list[dict]) -> list[Served]:
    """Discovery entries (Gateway.discovery) as Served, first version of each (group, resource) only."""
    out, seen = [], set()
    for e in entries:
        key = (e.get("group", ""), e.get("resource", ""))
        if key in seen or not key[1]:
            continue
        seen.add(key)
        out.append(Served(key[0], e.get("version", ""), key[1], e.get("scope") == "Namespaced",
                          tuple(s.get("subresource", "") for s in e.get("subresources") or []),
                          tuple(e.get("shortNames") or []), e.get("singularResource") or "",
                          (e.get("kind") or "").lower()))
    return out


def _names(s: Served) -> set[str]:
    return {s.resource, s.singular, s.kind, *s.short_names} - {""}


def resolve(entries: list[dict], typed: str, group: str = "") -> Resolution:
    """`typed` is RESOURCE[/SUBRESOURCE] in any accepted spelling; `group` as typed after the first dot."""
    resources = served(entries)
    name, _sep, sub = typed.lower().partition("/")
    group = group.lower()
    candidates = [s for s in resources if name in _names(s)]
    if group:
        in_group = [s for s in candidates if s.group == group]
        if not in_group:  # RESOURCE.VERSION.GROUP
            ver, _sep, rest = group.partition(".")
            if VERSION_RE.match(ver):
                in_group = [s for s in candidates if s.group == rest]
        candidates = in_group
    if not candidates:
        spelled = f"{name}.{group}" if group else name
        pool = sorted({s.qualified for s in resources} | {n for s in resources for n in _names(s)})
        near = difflib.get_close_matches(spelled, pool, n=4, cutoff=0.6)
        hint = _("Close matches: {names}.").format(names=", ".join(f"`{n}`" for n in near)) if near else ""
        return Resolution(None, problem=sentences(_("The cluster serves no resource `{resource}`.").format(
            resource=spelled), hint), typed=typed)
    # kubectl's priority: the core group, then discovery order (which `resources` keeps)
    exact = [s for s in candidates if s.resource == name] or candidates
    chosen = next((s for s in exact if s.group == ""), exact[0])
    others = [s for s in candidates if s is not chosen]
    if sub and sub not in chosen.subresources:
        near = difflib.get_close_matches(sub, chosen.subresources, n=3, cutoff=0.5)
        hint = (_("Close matches: {names}.").format(names=", ".join(f"`{chosen.resource}/{n}`" for n in near))
                if near else "")
        return Resolution(None, problem=sentences(_("`{resource}` has no subresource `{subresource}`.").format(
            resource=chosen.qualified, subresource=sub), hint), typed=typed)
    return Resolution(chosen, sub, others, typed=typed)
