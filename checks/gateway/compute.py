"""Compute Engine (compute v1, REST transport): networks and their firewalls; the load balancers that the
GKE Ingress controller builds (backend services, their health checks and health, network endpoint groups).

Every answer is returned as the API's JSON (camelCase, as `gcloud … --format=json` shows it), which checks
quote as evidence. "scope" is "global" or a region name (internal Ingresses build regional load balancers).
"""
from __future__ import annotations

import json

from checks.gateway.core import GatewayCore
from checks.gateway.permissions import google

COMPUTE = "compute.googleapis.com"
NETWORKS_GET = google("networks.get", COMPUTE, "compute.networks.get",
                      purpose="the network's firewall policy enforcement order")
REGION_EFFECTIVE_FIREWALLS = google(
    "regionNetworkFirewallPolicies.getEffectiveFirewalls", COMPUTE, "compute.networks.getRegionEffectiveFirewalls",
    purpose="VPC firewall rules and every firewall policy (hierarchical, system, network, regional) that applies "
            "in the nodes' region, to see whether Google's health checkers reach the nodes")
BACKEND_SERVICES_GET = google("backendServices.get", COMPUTE, "compute.backendServices.get",
                              purpose="an Ingress's backend service: its backends and health check")
BACKEND_SERVICES_GET_HEALTH = google("backendServices.getHealth", COMPUTE, "compute.backendServices.get",
                                     purpose="the load balancer's health verdict for each endpoint of an Ingress")
REGION_BACKEND_SERVICES_GET = google("regionBackendServices.get", COMPUTE, "compute.regionBackendServices.get",
                                     purpose="an internal Ingress's backend service: its backends and health check")
REGION_BACKEND_SERVICES_GET_HEALTH = google(
    "regionBackendServices.getHealth", COMPUTE, "compute.regionBackendServices.get",
    purpose="the internal load balancer's health verdict for each endpoint of an Ingress")
HEALTH_CHECKS_GET = google("healthChecks.get", COMPUTE, "compute.healthChecks.get",
                           purpose="the request the load balancer's health check really sends (path, port, protocol)")
REGION_HEALTH_CHECKS_GET = google("regionHealthChecks.get", COMPUTE, "compute.regionHealthChecks.get",
                                  purpose="the request an internal load balancer's health check really sends")
NEG_LIST_ENDPOINTS = google("networkEndpointGroups.listNetworkEndpoints", COMPUTE, "compute.networkEndpointGroups.get",
                            purpose="which Pods (IP:port) an Ingress backend's network endpoint group holds")

NEG_ENDPOINTS_CAP = 2000  # endpoints read per NEG at most


def _json(resp) -> dict:
    return json.loads(type(resp).to_json(resp))


def network_url(project: str, network: str) -> str:
    return f"https://www.googleapis.com/compute/v1/projects/{project}/global/networks/{network}"


class ComputeMixin(GatewayCore):
    def _compute(self, name: str):
        from google.cloud import compute_v1

        return self._client(f"compute.{name}", getattr(compute_v1, name))

    # ---- networks and firewalls ---------------------------------------------------------------
    def network(self, project: str, network: str) -> dict:
        """compute v1 networks.get (networkFirewallPolicyEnforcementOrder, firewallPolicy, …)."""
        client = self._compute("NetworksClient")
        return self._fact(("network", project, network), NETWORKS_GET, f"projects/{project}/global/networks/{network}",
                          lambda: _json(client.get(project=project, network=network)))

    def region_effective_firewalls(self, project: str, region: str, network: str) -> dict:
        """compute v1 regionNetworkFirewallPolicies.getEffectiveFirewalls: the VPC's firewall rules and every
        firewall policy in effect in `region` (types HIERARCHY, SYSTEM_GLOBAL, SYSTEM_REGIONAL, NETWORK,
        NETWORK_REGIONAL), as gcloud's `compute network-firewall-policies get-effective-firewalls` shows them."""
        client = self._compute("RegionNetworkFirewallPoliciesClient")
        url = network_url(project, network)
        return self._fact(("region_firewalls", project, region, network), REGION_EFFECTIVE_FIREWALLS,
                          f"projects/{project}/regions/{region} network={network}",
                          lambda: _json(client.get_effective_firewalls(project=project, region=region, network=url)))

    # ---- load balancers ----------------------------------------------------------------------
    def backend_service(self, project: str, scope: str, name: str) -> dict:
        where = "global" if scope == "global" else f"regions/{scope}"
        target = f"projects/{project}/{where}/backendServices/{name}"
        if scope == "global":
            client = self._compute("BackendServicesClient")
            return self._fact(("backend_service", project, scope, name), BACKEND_SERVICES_GET, target,
                              lambda: _json(client.get(project=project, backend_service=name)))
        client = self._compute("RegionBackendServicesClient")
        return self._fact(("backend_service", project, scope, name), REGION_BACKEND_SERVICES_GET, target,
                          lambda: _json(client.get(project=project, region=scope, backend_service=name)))

    def backend_health(self, project: str, scope: str, name: str, group: str) -> dict:
        """getHealth of one backend (an instance group or NEG URL): {"healthStatus": [{ipAddress, port,
        instance, healthState}, …]}; an empty answer when the load balancer has no verdict yet."""
        from google.cloud import compute_v1

        ref = compute_v1.ResourceGroupReference(group=group)
        where = "global" if scope == "global" else f"regions/{scope}"
        target = f"projects/{project}/{where}/backendServices/{name} group={'/'.join(group.split('/')[-4:])}"
        if scope == "global":
            client = self._compute("BackendServicesClient")
            return self._fact(("backend_health", project, scope, name, group), BACKEND_SERVICES_GET_HEALTH, target,
                              lambda: _json(client.get_health(project=project, backend_service=name,
                                                              resource_group_reference_resource=ref)))
        client = self._compute("RegionBackendServicesClient")
        return self._fact(("backend_health", project, scope, name, group), REGION_BACKEND_SERVICES_GET_HEALTH, target,
                          lambda: _json(client.get_health(project=project, region=scope, backend_service=name,
                                                          resource_group_reference_resource=ref)))

    def health_check(self, project: str, scope: str, name: str) -> dict:
        where = "global" if scope == "global" else f"regions/{scope}"
        target = f"projects/{project}/{where}/healthChecks/{name}"
        if scope == "global":
            client = self._compute("HealthChecksClient")
            return self._fact(("health_check", project, scope, name), HEALTH_CHECKS_GET, target,
                              lambda: _json(client.get(project=project, health_check=name)))
        client = self._compute("RegionHealthChecksClient")
        return self._fact(("health_check", project, scope, name), REGION_HEALTH_CHECKS_GET, target,
                          lambda: _json(client.get(project=project, region=scope, health_check=name)))

    def neg_endpoints(self, project: str, zone: str, name: str) -> list[dict]:
        """Every endpoint of a zonal NEG with its health ([{networkEndpoint: {ipAddress, port, instance},
        healths: [...]}, …]), up to NEG_ENDPOINTS_CAP."""
        from google.cloud import compute_v1

        client = self._compute("NetworkEndpointGroupsClient")
        body = compute_v1.NetworkEndpointGroupsListEndpointsRequest(health_status="SHOW")

        def go():
            out = []
            for item in client.list_network_endpoints(project=project, zone=zone, network_endpoint_group=name,
                                                      network_endpoint_groups_list_endpoints_request_resource=body):
                out.append(_json(item))
                if len(out) >= NEG_ENDPOINTS_CAP:
                    break
            return out
        return self._fact(("neg_endpoints", project, zone, name), NEG_LIST_ENDPOINTS,
                          f"projects/{project}/zones/{zone}/networkEndpointGroups/{name}", go)
