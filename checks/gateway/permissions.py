"""Every call the bot makes to Google Cloud or to a cluster's Kubernetes API, declared once.

A gateway method names its declaration when it calls out; the declaration says which permission
(Google IAM) or which verb on which resource (Kubernetes RBAC) the bot's own identity needs for it.
Errors quote it ("the bot's own identity needs `container.clusters.get`"), and the deploy files are
derived from it and tested against it: `deploy/iam/` (the bot's custom roles) and the ClusterRole
the bot is given in each diagnosed cluster. Nothing calls out without a declaration:
`Gateway` refuses an undeclared call.
"""
from __future__ import annotations

from dataclasses import dataclass

from checks.i18n import _


@dataclass(frozen=True)
class GoogleCall:
    name: str  # the method, as people read it: "clusters.get"
    api: str  # the service: "container.googleapis.com"
    permission: str  # the IAM permission the bot's identity needs: "container.clusters.get"
    also: tuple[str, ...] = ()  # further permissions the call needs (e.g. to see inherited policies)
    write: bool = False  # changes something (only the fix buttons do)
    fix: str = ""  # the fix kind that needs it (write calls)
    optional: bool = False  # the bot works without it (says what it could not see)
    purpose: str = ""

    @property
    def permissions(self) -> tuple[str, ...]:
        return (self.permission, *self.also)


@dataclass(frozen=True)
class KubeCall:
    name: str  # "pods.list"
    verb: str  # RBAC verb: get, list, create
    group: str  # API group, "" for the core group
    version: str
    resource: str  # plural resource, with "/subresource" where there is one ("pods/proxy")
    namespaced: bool
    purpose: str = ""

    @property
    def plural(self) -> str:
        return self.resource.partition("/")[0]

    @property
    def subresource(self) -> str:
        return self.resource.partition("/")[2]

    def permission(self, namespace: str = "") -> str:
        """The RBAC the bot needs, for people: "list pods in kube-system", "list nodes (cluster-wide)"."""
        if namespace and self.namespaced:
            return _("{verb} {resource} in {namespace}").format(verb=self.verb, resource=self.resource,
                                                                namespace=namespace)
        return _("{verb} {resource} (cluster-wide)").format(verb=self.verb, resource=self.resource)


@dataclass(frozen=True)
class KubePathCall:
    """A read of a non-resource URL (discovery: `/api`, `/apis`, `/apis/GROUP/VERSION`).

    RBAC grants these with `nonResourceURLs` rules, not `resources`: the bot's ClusterRole carries one rule
    `{nonResourceURLs: [path, ...], verbs: [get]}` for them (`kube_nonresource_rules()`), kept apart from the
    (group, resource, verb) rules of `kube_rules()`. `path` may end in `/*` (every path below it), as in
    RBAC. Every authenticated user already has them through the bootstrap ClusterRole `system:discovery`;
    they are declared so the bot's own ClusterRole states everything it reads.
    """

    name: str  # "discovery /apis"
    verb: str  # "get"
    path: str  # "/apis" or "/apis/*"
    purpose: str = ""

    def permission(self, namespace: str = "") -> str:
        return _("{verb} {path} (non-resource URL)").format(verb=self.verb, path=self.path)


GOOGLE_CALLS: dict[str, GoogleCall] = {}
KUBE_CALLS: dict[str, KubeCall] = {}
KUBE_PATH_CALLS: dict[str, KubePathCall] = {}


def google(name: str, api: str, permission: str, *, also: tuple[str, ...] = (), write: bool = False, fix: str = "",
           optional: bool = False, purpose: str = "") -> GoogleCall:
    decl = GoogleCall(name, api, permission, tuple(also), write, fix, optional, purpose)
    if GOOGLE_CALLS.setdefault(name, decl) != decl:
        raise ValueError(f"Google call {name} declared twice, differently")
    return decl


def kube(name: str, verb: str, group: str, version: str, resource: str, namespaced: bool,
         purpose: str = "") -> KubeCall:
    decl = KubeCall(name, verb, group, version, resource, namespaced, purpose)
    if KUBE_CALLS.setdefault(name, decl) != decl:
        raise ValueError(f"Kubernetes call {name} declared twice, differently")
    return decl


def kube_path(name: str, verb: str, path: str, purpose: str = "") -> KubePathCall:
    decl = KubePathCall(name, verb, path, purpose)
    if KUBE_PATH_CALLS.setdefault(name, decl) != decl:
        raise ValueError(f"Kubernetes call {name} declared twice, differently")
    return decl


def read_permissions() -> set[str]:
    """The IAM permissions of every read the bot makes (its custom read role)."""
    return {p for c in GOOGLE_CALLS.values() if not c.write for p in c.permissions}


def fix_permissions() -> dict[str, set[str]]:
    """fix kind → the IAM permissions its writes need (beyond the read role)."""
    out: dict[str, set[str]] = {}
    for c in GOOGLE_CALLS.values():
        if c.write:
            out.setdefault(c.fix, set()).update(c.permissions)
    return out


def kube_rules() -> set[tuple[str, str, str]]:
    """(API group, resource, verb) of every Kubernetes request the bot makes (its ClusterRole)."""
    return {(c.group, c.resource, c.verb) for c in KUBE_CALLS.values()}


def kube_nonresource_rules() -> set[tuple[str, str]]:
    """(non-resource URL, verb) of every non-resource read the bot makes (its ClusterRole's nonResourceURLs)."""
    return {(c.path, c.verb) for c in KUBE_PATH_CALLS.values()}
