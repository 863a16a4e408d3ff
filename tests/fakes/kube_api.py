"""How a real kube-apiserver sees a request, for the Kubernetes fake: who asks, as whom, may they, and the
discovery documents that describe its resources.

- Identity: a bearer token the fake knows names a user and groups (`FakeKube.users`); any other valid
  token is a cluster administrator (group `system:masters`). Every authenticated user also carries
  `system:authenticated`, as the API server adds it.
- Impersonation (`Impersonate-User`, `Impersonate-Group` headers, what `kubectl --as/--as-group` sends):
  the caller must be allowed `impersonate` on `users`/`groups` (core group) with the name, else 403 as the
  apiserver words it; the request then runs as the impersonated user, with `system:authenticated` added
  unless a group says otherwise, and a service account's groups when no group is given.
- Authorization: RBAC over the stored (Cluster)RoleBindings plus the bootstrap policy every cluster has
  (cluster-admin for `system:masters`; system:basic-user, system:discovery and system:public-info-viewer
  for `system:authenticated`), evaluated for every request, resource and non-resource alike.
- Discovery: `/api` and `/apis` as the legacy lists and, when asked for with
  `Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList` (kubectl 1.30+ does),
  as one aggregated document (apidiscovery.k8s.io/v2) with short names, verbs and subresources.
"""
from __future__ import annotations

import json
import re

RBAC_V1 = "rbac.authorization.k8s.io/v1"
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SHORT_NAMES = {("", "pods"): ["po"], ("", "services"): ["svc"], ("", "serviceaccounts"): ["sa"],
               ("", "configmaps"): ["cm"], ("", "namespaces"): ["ns"], ("", "nodes"): ["no"],
               ("", "persistentvolumes"): ["pv"], ("", "persistentvolumeclaims"): ["pvc"], ("", "events"): ["ev"],
               ("", "endpoints"): ["ep"], ("apps", "deployments"): ["deploy"], ("apps", "replicasets"): ["rs"],
               ("apps", "statefulsets"): ["sts"], ("apps", "daemonsets"): ["ds"],
               ("networking.k8s.io", "ingresses"): ["ing"], ("networking.k8s.io", "networkpolicies"): ["netpol"],
               ("events.k8s.io", "events"): ["ev"], ("networking.gke.io", "managedcertificates"): ["mcrt"]}
SUBRESOURCES = {("", "pods"): {"log": ["get"], "exec": ["create", "get"], "attach": ["create", "get"],
                               "portforward": ["create", "get"], "proxy": ["create", "delete", "get", "patch", "update"],
                               "status": ["get", "patch", "update"], "eviction": ["create"], "binding": ["create"],
                               "ephemeralcontainers": ["get", "patch", "update"]},
                ("", "services"): {"proxy": ["create", "delete", "get", "patch", "update"],
                                   "status": ["get", "patch", "update"]},
                ("", "nodes"): {"proxy": ["create", "delete", "get", "patch", "update"],
                                "status": ["get", "patch", "update"]},
                ("", "namespaces"): {"status": ["get", "patch", "update"], "finalize": ["update"]},
                ("", "serviceaccounts"): {"token": ["create"]},
                ("apps", "deployments"): {"scale": ["get", "patch", "update"], "status": ["get", "patch", "update"]},
                ("apps", "statefulsets"): {"scale": ["get", "patch", "update"], "status": ["get", "patch", "update"]},
                ("apps", "replicasets"): {"scale": ["get", "patch", "update"], "status": ["get", "patch", "update"]}}
CATEGORY_ALL = {("", "pods"), ("", "services"), ("apps", "deployments"), ("apps", "replicasets"),
                ("apps", "statefulsets"), ("apps", "daemonsets")}
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def _crb(name: str, role: str, *groups: str) -> dict:
    return {"apiVersion": RBAC_V1, "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups]}


def _cr(name: str, rules: list[dict]) -> dict:
    return {"apiVersion": RBAC_V1, "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}, "rules": rules}


# The bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy), the parts that matter here.
BOOTSTRAP_ROLES = {r["metadata"]["name"]: r for r in [
    _cr("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                          {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
    _cr("system:basic-user", [{"apiGroups": ["authorization.k8s.io"], "verbs": ["create"],
                               "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
                              {"apiGroups": ["authentication.k8s.io"], "verbs": ["create"],
                               "resources": ["selfsubjectreviews"]}]),
    _cr("system:discovery", [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                                  "/openapi", "/openapi/*", "/readyz", "/version", "/version/"],
                              "verbs": ["get"]}]),
    _cr("system:public-info-viewer", [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version",
                                                           "/version/"], "verbs": ["get"]}]),
]}
BOOTSTRAP_BINDINGS = [_crb("cluster-admin", "cluster-admin", "system:masters"),
                      _crb("system:basic-user", "system:basic-user", "system:authenticated"),
                      _crb("system:discovery", "system:discovery", "system:authenticated"),
                      _crb("system:public-info-viewer", "system:public-info-viewer", "system:authenticated",
                           "system:unauthenticated")]


def with_authenticated(user: str, groups: list[str]) -> list[str]:
    """The groups the apiserver gives an authenticated (or impersonated) user."""
    groups = list(groups)
    if user == "system:anonymous":
        return groups if "system:unauthenticated" in groups else groups + ["system:unauthenticated"]
    if "system:authenticated" not in groups and "system:unauthenticated" not in groups:
        groups.append("system:authenticated")
    return groups


def request_attributes(method: str, path: str, args) -> dict:
    """A SubjectAccessReview-style spec fragment for a request: resourceAttributes or nonResourceAttributes."""
    m = re.fullmatch(r"/api/(v1)(/.*)?|/apis/([^/]+)/([^/]+)(/.*)?", path)
    segs = [s for s in ((m[2] or m[5] or "") if m else "").split("/") if s]
    if not m or not segs:
        return {"nonResourceAttributes": {"path": path, "verb": method.lower()}}
    group = m[3] or ""
    namespace = ""
    if segs[0] == "namespaces" and len(segs) >= 2:
        namespace = segs[1]
        if len(segs) >= 3 and segs[2] not in ("status", "finalize"):
            segs = segs[2:]
    resource, name = segs[0], segs[1] if len(segs) > 1 else ""
    sub = segs[2] if len(segs) > 2 else ""
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method)
    if method == "GET":
        verb = "get" if name else ("watch" if args.get("watch") in ("true", "1") else "list")
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    attrs = {"verb": verb or method.lower(), "group": group, "version": m[1] or m[4], "resource": resource}
    for key, value in (("namespace", namespace), ("name", name), ("subresource", sub)):
        if value:
            attrs[key] = value
    return {"resourceAttributes": attrs}


def forbidden_message(user: str, spec: dict) -> tuple[str, dict]:
    """The apiserver's 403 message and details for a denied request (responsewriters.Forbidden)."""
    ra = spec.get("resourceAttributes")
    if ra is None:
        nra = spec["nonResourceAttributes"]
        return f'forbidden: User {json.dumps(user)} cannot {nra["verb"]} path {json.dumps(nra["path"])}', {}
    resource = ra["resource"] + (f"/{ra['subresource']}" if ra.get("subresource") else "")
    scope = (f'in the namespace {json.dumps(ra["namespace"])}' if ra.get("namespace") else "at the cluster scope")
    what = ra["resource"] + (f".{ra['group']}" if ra.get("group") else "")
    head = f'{what} {json.dumps(ra["name"])} is forbidden' if ra.get("name") else f"{what} is forbidden"
    details = {**({"name": ra["name"]} if ra.get("name") else {}), **({"group": ra["group"]} if ra.get("group") else {}),
               "kind": ra["resource"]}
    return (f'{head}: User {json.dumps(user)} cannot {ra["verb"]} resource {json.dumps(resource)} in API group '
            f'{json.dumps(ra.get("group", ""))} {scope}'), details


def resource_entry(group: str, plural: str, res: dict, aggregated: bool) -> list[dict]:
    """Discovery entries of one resource: one for v2 (subresources nested), several for APIResourceList."""
    verbs = ["create"] if res["kind"].endswith("AccessReview") or res["kind"].endswith("RulesReview") else VERBS
    subs = SUBRESOURCES.get((group, plural), {})
    short = SHORT_NAMES.get((group, plural))
    scope = "Namespaced" if res["namespaced"] else "Cluster"
    if aggregated:
        out = {"resource": plural, "responseKind": {"group": "", "version": "", "kind": res["kind"]},
               "scope": scope, "singularResource": res["kind"].lower(), "verbs": verbs}
        if short:
            out["shortNames"] = short
        if (group, plural) in CATEGORY_ALL:
            out["categories"] = ["all"]
        if subs:
            out["subresources"] = [{"subresource": s, "responseKind": {"group": "", "version": "", "kind": res["kind"]},
                                    "verbs": v} for s, v in sorted(subs.items())]
        return [out]
    entries = [{"name": plural, "singularName": res["kind"].lower(), "namespaced": res["namespaced"],
                "kind": res["kind"], "verbs": verbs, **({"shortNames": short} if short else {}),
                **({"categories": ["all"]} if (group, plural) in CATEGORY_ALL else {})}]
    entries += [{"name": f"{plural}/{s}", "singularName": "", "namespaced": res["namespaced"], "kind": res["kind"],
                 "verbs": v} for s, v in sorted(subs.items())]
    return entries


def wants_aggregated(accept: str) -> bool:
    """True when the client accepts apidiscovery.k8s.io/v2 (it lists it first, as kubectl does)."""
    for part in accept.split(","):
        params = dict(p.strip().partition("=")[::2] for p in part.split(";")[1:])
        if params.get("g") == "apidiscovery.k8s.io" and params.get("v") == "v2" and \
                params.get("as") == "APIGroupDiscoveryList":
            return True
    return False


def aggregated(resources: dict, legacy: bool) -> dict:
    """APIGroupDiscoveryList of the core group (legacy=True, for /api) or of the named groups (/apis)."""
    groups: dict[str, dict[str, list]] = {}
    for (group, plural), res in sorted(resources.items()):
        if bool(group) == legacy:
            continue
        for version in res["versions"]:
            groups.setdefault(group, {}).setdefault(version, []).extend(resource_entry(group, plural, res, True))
    items = []
    for group, versions in sorted(groups.items()):
        meta = {"name": group, "creationTimestamp": None} if group else {"creationTimestamp": None}
        items.append({"metadata": meta, "versions": [
            {"version": v, "resources": rs, "freshness": "Current"} for v, rs in sorted(versions.items(), reverse=True)]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}
