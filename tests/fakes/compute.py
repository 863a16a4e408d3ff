"""Compute Engine v1 for FakeGoogle: networks and their effective firewalls (global and regional), and the
load balancers the GKE Ingress controller builds (backend services, health checks, getHealth, zonal NEGs and
their endpoints).

Shapes follow the real API: the recorded gcpdiag answers (tests/fixtures/gcpdiag/gke1: backendServices.json,
healthChecks.json, compute-effective-firewalls-default.json) are the templates of every object built here, and
field names were checked against google.cloud.compute_v1's types (BackendServiceGroupHealth.healthStatus,
NetworkEndpointWithHealthStatus.networkEndpoint/healths, RegionNetworkFirewallPoliciesGetEffectiveFirewallsResponse
with firewallPolicys[].type HIERARCHY / SYSTEM_GLOBAL / SYSTEM_REGIONAL / NETWORK / NETWORK_REGIONAL and no
shortName, Network.networkFirewallPolicyEnforcementOrder).

What is modelled, as the real service does it:
- regionNetworkFirewallPolicies.getEffectiveFirewalls (GET …/regions/R/firewallPolicies/getEffectiveFirewalls
  ?network=URL) answers the network's VPC rules plus every policy in effect in that region: the hierarchical
  and global network policies of networks.getEffectiveFirewalls (whose type SYSTEM is SYSTEM_GLOBAL here) and the
  regional ones of that region only;
- networks.get carries networkFirewallPolicyEnforcementOrder (AFTER_CLASSIC_FIREWALL unless set);
- backendServices.getHealth (POST, body {"group": URL}) answers the health of the endpoints of that one
  backend, and refuses a group that is not a backend of the service;
- networkEndpointGroups.listNetworkEndpoints (POST, body {"healthStatus": "SHOW"|"SKIP"}) pages with
  maxResults/pageToken and shows, with SHOW, one health entry per backend service using the NEG.
"""
from __future__ import annotations

import copy
import json
import re
import urllib.parse
import zlib
from dataclasses import dataclass, field
from pathlib import Path

SELF = "https://www.googleapis.com/compute/v1"
_ID = r"[^/:]+"
_CP = rf"/compute/v1/projects/(?P<p>{_ID})"
COMPUTE_ROUTES = [
    ("GET", rf"{_CP}/global/networks/(?P<n>{_ID})", "network"),
    ("GET", rf"{_CP}/global/networks/(?P<n>{_ID})/getEffectiveFirewalls", "effective_firewalls"),
    ("GET", rf"{_CP}/regions/(?P<r>{_ID})/firewallPolicies/getEffectiveFirewalls", "region_effective_firewalls"),
    ("GET", rf"{_CP}/(?P<scope>global|regions/{_ID})/backendServices/(?P<bs>{_ID})", "backend_service"),
    ("POST", rf"{_CP}/(?P<scope>global|regions/{_ID})/backendServices/(?P<bs>{_ID})/getHealth", "backend_health"),
    ("GET", rf"{_CP}/(?P<scope>global|regions/{_ID})/healthChecks/(?P<hc>{_ID})", "health_check"),
    ("GET", rf"{_CP}/zones/(?P<z>{_ID})/networkEndpointGroups/(?P<neg>{_ID})", "neg"),
    ("POST", rf"{_CP}/zones/(?P<z>{_ID})/networkEndpointGroups/(?P<neg>{_ID})/listNetworkEndpoints",
     "neg_endpoints"),
]


def _scope(scope: str) -> str:
    """"global" or the region name, from a path's "global" / "regions/R"."""
    return scope.split("/", 1)[1] if scope.startswith("regions/") else "global"


def _where(scope: str) -> str:
    return "global" if scope == "global" else f"regions/{scope}"


@dataclass
class ComputeState:
    """One project's Compute Engine objects, in wire format; tests edit them directly."""
    networks: dict = field(default_factory=dict)           # name -> Network (networks.get); synthesized if absent
    regional_policies: dict = field(default_factory=dict)  # (region, network) -> [effective policy dicts]
    backend_services: dict = field(default_factory=dict)   # (scope, name) -> BackendService
    health_checks: dict = field(default_factory=dict)      # (scope, name) -> HealthCheck
    negs: dict = field(default_factory=dict)               # (zone, name) -> NetworkEndpointGroup
    endpoints: dict = field(default_factory=dict)          # NEG URL -> [{ipAddress, port, instance, health}]
    ig_health: dict = field(default_factory=dict)          # (backend service URL, instance group URL) -> same
    recorded: dict = field(default_factory=dict)           # "backendService"/"healthCheck" -> recorded template

    def load(self, folder: Path, read) -> None:
        """The recorded backendServices.json / healthChecks.json of a gcpdiag project (real objects)."""
        for fname, kind, key in (("backendServices.json", "backendService", self.backend_services),
                                 ("healthChecks.json", "healthCheck", self.health_checks)):
            for item in (read(folder / fname) or {}).get("items", []):
                m = re.search(r"/(global|regions/[^/]+)/\w+/[^/]+$", item.get("selfLink", ""))
                key[(_scope(m[1]) if m else "global", item["name"])] = item
                self.recorded.setdefault(kind, item)


class ComputeMixin:
    """Handlers mixed into FakeGoogle (which provides _project, _lock and the error types)."""

    def _compute_project(self, p: str, permission: str, resource: str):
        from tests.fakes.google import _service_disabled, permission_denied

        st = self._project(p)
        if st is None:
            raise permission_denied(permission, resource)
        if st.services.get("compute.googleapis.com") != "ENABLED":
            raise _service_disabled(st, "compute.googleapis.com", "Compute Engine API")
        return st

    @staticmethod
    def _not_found(resource: str):
        from tests.fakes.google import GoogleError
        return GoogleError(404, f"The resource '{resource}' was not found")

    # ---- networks and firewalls -------------------------------------------------------------
    def _h_network(self, req, body, p, n):
        st = self._compute_project(p, "compute.networks.get", f"projects/{p}/global/networks/{n}")
        if n not in st.networks and n not in st.compute.networks:
            raise self._not_found(f"projects/{p}/global/networks/{n}")
        return network_resource(st, n)

    def _h_effective_firewalls(self, req, body, p, n):
        st = self._compute_project(p, "compute.networks.getEffectiveFirewalls", f"projects/{p}/global/networks/{n}")
        if n not in st.networks:
            raise self._not_found(f"projects/{p}/global/networks/{n}")
        return st.networks[n]

    def _h_region_effective_firewalls(self, req, body, p, r):
        from tests.fakes.google import GoogleError

        ref = req.args.get("network", "")
        m = re.fullmatch(rf"(?:(?:https://www\.googleapis\.com/compute/v1/)?projects/(?P<p>{_ID})/global/networks/)?"
                         rf"(?P<n>{_ID})", ref)
        if not ref or not m:
            raise GoogleError(400, f"Invalid value for field 'network': '{ref}'. The URL is malformed.")
        n = m["n"]
        st = self._compute_project(p, "compute.networks.getRegionEffectiveFirewalls",
                                   f"projects/{p}/global/networks/{n}")
        if (m["p"] and m["p"] not in (p, st.number)) or n not in st.networks:
            raise self._not_found(f"projects/{m['p'] or p}/global/networks/{n}")
        answer = st.networks[n]
        policies = []
        for pol in answer.get("firewallPolicys") or []:
            pol = {k: v for k, v in copy.deepcopy(pol).items() if k != "shortName"}  # not in the regional type
            if pol.get("type") == "SYSTEM":
                pol["type"] = "SYSTEM_GLOBAL"
            policies.append(pol)
        policies += copy.deepcopy(st.compute.regional_policies.get((r, n), []))
        out = {}
        if answer.get("firewalls"):
            out["firewalls"] = copy.deepcopy(answer["firewalls"])
        if policies:
            out["firewallPolicys"] = policies
        return out

    # ---- load balancers ---------------------------------------------------------------------
    def _h_backend_service(self, req, body, p, scope, bs):
        scope = _scope(scope)
        perm = "compute.backendServices.get" if scope == "global" else "compute.regionBackendServices.get"
        resource = f"projects/{p}/{_where(scope)}/backendServices/{bs}"
        st = self._compute_project(p, perm, resource)
        found = st.compute.backend_services.get((scope, bs))
        if found is None:
            raise self._not_found(resource)
        return found

    def _h_backend_health(self, req, body, p, scope, bs):
        from tests.fakes.google import GoogleError

        service = self._h_backend_service(req, body, p, scope, bs)
        group = body.get("group", "")
        groups = {_norm(b.get("group", "")) for b in service.get("backends") or []}
        if _norm(group) not in groups:
            raise GoogleError(400, f"Invalid value for field 'resource.group': '{group}'. The resource is not a "
                                   f"backend of backend service '{bs}'.")
        statuses = []
        members = (self._project(p).compute.ig_health.get((_norm(service["selfLink"]), _norm(group)), [])
                   if "/instanceGroups/" in group else self._endpoints(p, group))
        for e in members:
            if e.get("health") is None:  # no verdict yet: the load balancer reports nothing for it
                continue
            statuses.append({"ipAddress": e["ipAddress"], "port": e["port"], "instance": e["instance"],
                             "healthState": e["health"]})
        out = {"kind": "compute#backendServiceGroupHealth"}
        if statuses:
            out["healthStatus"] = statuses
        return out

    def _h_health_check(self, req, body, p, scope, hc):
        scope = _scope(scope)
        perm = "compute.healthChecks.get" if scope == "global" else "compute.regionHealthChecks.get"
        resource = f"projects/{p}/{_where(scope)}/healthChecks/{hc}"
        st = self._compute_project(p, perm, resource)
        found = st.compute.health_checks.get((scope, hc))
        if found is None:
            raise self._not_found(resource)
        return found

    def _neg(self, p, z, neg) -> dict:
        resource = f"projects/{p}/zones/{z}/networkEndpointGroups/{neg}"
        st = self._compute_project(p, "compute.networkEndpointGroups.get", resource)
        found = st.compute.negs.get((z, neg))
        if found is None:
            raise self._not_found(resource)
        return found

    def _h_neg(self, req, body, p, z, neg):
        return dict(self._neg(p, z, neg), size=len(self._endpoints(p, self._neg(p, z, neg)["selfLink"])))

    def _h_neg_endpoints(self, req, body, p, z, neg):
        from tests.fakes.google import GoogleError

        url = self._neg(p, z, neg)["selfLink"]
        show = (body.get("healthStatus") or "SKIP") == "SHOW"
        if body.get("healthStatus") not in (None, "SHOW", "SKIP"):
            raise GoogleError(400, f"Invalid value for field 'resource.healthStatus': '{body['healthStatus']}'.")
        st = self._project(p)
        users = [(key, s) for key, s in st.compute.backend_services.items()
                 if _norm(url) in {_norm(b.get("group", "")) for b in s.get("backends") or []}]
        items = []
        for e in self._endpoints(p, url):
            item = {"networkEndpoint": {"ipAddress": e["ipAddress"], "port": e["port"],
                                        "instance": e["instance"].rsplit("/", 1)[-1]}}
            if show:
                healths = []
                for (scope, _name), s in users:
                    h = {"backendService": {"backendService": s["selfLink"]}}
                    if s.get("healthChecks"):
                        h["healthCheck"] = {"healthCheck": s["healthChecks"][0]}
                    if e.get("health"):
                        h["healthState"] = e["health"]
                    healths.append(h)
                if healths:
                    item["healths"] = healths
            items.append(item)
        size = min(int(req.args.get("maxResults") or 500), 500)
        start = int(req.args.get("pageToken") or 0)
        out = {"kind": "compute#networkEndpointGroupsListNetworkEndpoints", "items": items[start:start + size]}
        if start + size < len(items):
            out["nextPageToken"] = str(start + size)
        return out

    def _endpoints(self, p: str, group: str) -> list:
        return self._project(p).compute.endpoints.get(_norm(group), [])


def _norm(url: str) -> str:
    """A resource URL without scheme/host/version, project by id: comparable across forms."""
    return re.sub(r"^(https://[^/]+)?(/compute/(v1|beta|alpha))?/?", "", urllib.parse.unquote(url))


def network_resource(st, name: str) -> dict:
    """networks.get: the stored Network, else one synthesized in the recorded network's shape (an auto-mode
    VPC as gcpdiag's gke1 `default`), enforcement order AFTER_CLASSIC_FIREWALL (the API's default)."""
    if name in st.compute.networks:
        return st.compute.networks[name]
    link = f"{SELF}/projects/{st.project_id}/global/networks/{name}"
    return {"kind": "compute#network", "id": _id("net", st.project_id, name),
            "creationTimestamp": "2021-09-30T06:28:04.120-07:00", "name": name,
            "description": "Default network for the project" if name == "default" else "", "selfLink": link,
            "selfLinkWithId": link, "autoCreateSubnetworks": True, "routingConfig": {"routingMode": "REGIONAL"},
            "networkFirewallPolicyEnforcementOrder": "AFTER_CLASSIC_FIREWALL"}


# ---- builders for tests: the GKE Ingress controller's objects -----------------------------------------
def _id(*parts) -> str:
    """A stable numeric id, shaped like Compute Engine's."""
    return str(zlib.crc32("/".join(map(str, parts)).encode()) * 1000003 + 4000000000000000000)


def _template(st, kind: str, fallback: dict) -> dict:
    out = copy.deepcopy(st.compute.recorded.get(kind) or fallback)
    for k in ("id", "creationTimestamp", "fingerprint", "backends", "healthChecks", "logConfig", "iap",
              "httpHealthCheck", "tcpHealthCheck", "portName", "description"):
        out.pop(k, None)
    return out


def gke_backend(google, project: str, name: str, *, service: str, service_port: int | str,
                endpoints: dict | None = None, instance_groups: dict | None = None, request_path: str = "/",
                hc_type: str = "HTTP", hc_port: int | None = None, scope: str = "global",
                hc_name: str | None = None) -> dict:
    """The backend service, health check and groups the GKE Ingress controller makes for one Service port.

    endpoints: {zone: [(ip, port, node, health), …]} for a NEG backend (container-native: the backend
    service, health check and NEG all share `name`); instance_groups: {zone: [(ip, nodePort, node, health),
    …]} for an instance-group backend (k8s-be-…; the zone's one instance group `k8s-ig--UID` is shared by
    every such backend service, each with its own verdicts). health: "HEALTHY", "UNHEALTHY" or None (no
    verdict yet).
    The health check is as the controller creates it: NEG backends check the serving port
    (USE_SERVING_PORT), instance groups a fixed port (the nodePort)."""
    st = google.projects[project]
    pid, where = st.project_id, _where(scope)
    desc = json.dumps({"kubernetes.io/service-name": service, "kubernetes.io/service-port": str(service_port),
                       **({"x-features": ["NEG"]} if endpoints is not None else {})}, separators=(",", ":"))
    hc_name = hc_name or name
    hc = _template(st, "healthCheck", {"kind": "compute#healthCheck", "checkIntervalSec": 5, "timeoutSec": 5,
                                       "unhealthyThreshold": 2, "healthyThreshold": 2})
    spec = {"portSpecification": "USE_SERVING_PORT", "requestPath": request_path, "proxyHeader": "NONE"}
    if endpoints is None or hc_port:
        spec = {"port": hc_port or next(iter(instance_groups.values()))[0][1], "portSpecification": "USE_FIXED_PORT",
                "requestPath": request_path, "proxyHeader": "NONE"}
    hc.update({"id": _id("hc", pid, hc_name), "creationTimestamp": "2024-05-02T01:12:09.482-07:00",
               "name": hc_name, "description": desc, "type": hc_type,
               {"HTTP": "httpHealthCheck", "HTTPS": "httpsHealthCheck", "HTTP2": "http2HealthCheck"}[hc_type]: spec,
               "checkIntervalSec": 15, "timeoutSec": 15, "unhealthyThreshold": 2, "healthyThreshold": 1,
               "selfLink": f"{SELF}/projects/{pid}/{where}/healthChecks/{hc_name}"})
    if scope != "global":
        hc["region"] = f"{SELF}/projects/{pid}/regions/{scope}"
    st.compute.health_checks[(scope, hc_name)] = hc
    bs = _template(st, "backendService", {"kind": "compute#backendService", "timeoutSec": 30, "port": 80,
                                          "protocol": "HTTP", "sessionAffinity": "NONE",
                                          "connectionDraining": {"drainingTimeoutSec": 0}})
    backends = []
    for zone, eps in (endpoints or {}).items():
        url = f"{SELF}/projects/{pid}/zones/{zone}/networkEndpointGroups/{name}"
        st.compute.negs[(zone, name)] = {
            "kind": "compute#networkEndpointGroup", "id": _id("neg", pid, zone, name),
            "creationTimestamp": "2024-05-02T01:11:58.113-07:00", "selfLink": url, "name": name,
            "description": json.dumps({"cluster-uid": name.split("-")[1], "namespace": service.split("/")[0],
                                       "service-name": service.split("/")[1], "port": str(service_port)},
                                      separators=(",", ":")),
            "networkEndpointType": "GCE_VM_IP_PORT", "zone": f"{SELF}/projects/{pid}/zones/{zone}",
            "network": f"{SELF}/projects/{pid}/global/networks/default",
            "subnetwork": f"{SELF}/projects/{pid}/regions/{zone.rsplit('-', 1)[0]}/subnetworks/default",
            "defaultPort": 9376}
        st.compute.endpoints[_norm(url)] = [
            {"ipAddress": ip, "port": port, "instance": f"{SELF}/projects/{pid}/zones/{zone}/instances/{node}",
             "health": health} for ip, port, node, health in eps]
        backends.append({"group": url, "balancingMode": "RATE", "maxRatePerEndpoint": 1, "capacityScaler": 1})
    for zone, members in (instance_groups or {}).items():
        ig = "k8s-ig--" + name.rsplit("--", 1)[-1]
        url = f"{SELF}/projects/{pid}/zones/{zone}/instanceGroups/{ig}"
        st.compute.ig_health[(_norm(f"{SELF}/projects/{pid}/{where}/backendServices/{name}"), _norm(url))] = [
            {"ipAddress": ip, "port": port, "instance": f"{SELF}/projects/{pid}/zones/{zone}/instances/{node}",
             "health": health} for ip, port, node, health in members]
        backends.append({"group": url, "balancingMode": "RATE", "maxRatePerInstance": 1, "capacityScaler": 1})
    bs.update({"id": _id("bs", pid, name), "creationTimestamp": "2024-05-02T01:12:11.917-07:00",
               "name": name, "description": desc, "selfLink": f"{SELF}/projects/{pid}/{where}/backendServices/{name}",
               "backends": backends, "healthChecks": [hc["selfLink"]], "fingerprint": "lV2bqfz9Q0c=",
               "portName": "port0" if endpoints is not None else f"port{next(iter(instance_groups.values()))[0][1]}",
               "loadBalancingScheme": "EXTERNAL" if scope == "global" else "INTERNAL_MANAGED"})
    if scope != "global":
        bs["region"] = f"{SELF}/projects/{pid}/regions/{scope}"
    st.compute.backend_services[(scope, name)] = bs
    return bs
