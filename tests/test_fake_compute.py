"""The Compute fake (tests/fakes/compute.py) answers the real google-cloud-compute clients (REST transport) with
the real shapes: every answer parses into compute_v1's own types with unknown fields refused."""
from __future__ import annotations

import json

import pytest
from google.api_core import exceptions as gexc
from google.auth import default as default_credentials
from google.cloud import compute_v1

from tests.fakes.compute import gke_backend
from tests.helpers import GKE1

NAME = "k8s1-c10b95be-shop-web-80-aa11bb22"
ZONE = "europe-west4-a"
NEG_URL = f"https://www.googleapis.com/compute/v1/projects/{GKE1}/zones/{ZONE}/networkEndpointGroups/{NAME}"


@pytest.fixture
def clients(google, sa_key, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", sa_key)
    creds, _ = default_credentials(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    opts = {"api_endpoint": google.url}

    def make(cls):
        return cls(credentials=creds, transport="rest", client_options=opts)
    return make


def strict(message_type, message) -> None:
    """The answer, re-read as JSON into the client's type with unknown fields refused."""
    message_type.from_json(type(message).to_json(message), ignore_unknown_fields=False)


def test_recorded_backend_service_and_health_check_are_served(google, clients):
    bs = clients(compute_v1.BackendServicesClient).get(project=GKE1, backend_service="web-backend-service")
    assert bs.health_checks == [f"https://www.googleapis.com/compute/v1/projects/{GKE1}/global/healthChecks/"
                                "http-basic-check"]
    hc = clients(compute_v1.HealthChecksClient).get(project=GKE1, health_check="http-basic-check")
    assert hc.http_health_check.request_path == "/" and hc.type_ == "HTTP"


def test_a_gke_neg_backend_through_the_real_clients(google, clients):
    gke_backend(google, GKE1, NAME, service="shop/web", service_port=80, request_path="/healthz",
                endpoints={ZONE: [(f"10.8.0.{i}", 8080, "gke-gke1-default-pool-671518f6-x7k2",
                                   "HEALTHY" if i % 2 else "UNHEALTHY") for i in range(1, 8)]})
    bs = clients(compute_v1.BackendServicesClient).get(project=GKE1, backend_service=NAME)
    strict(compute_v1.BackendService, bs)
    assert [b.group for b in bs.backends] == [NEG_URL]
    assert json.loads(bs.description)["kubernetes.io/service-name"] == "shop/web"
    hc = clients(compute_v1.HealthChecksClient).get(project=GKE1, health_check=NAME)
    strict(compute_v1.HealthCheck, hc)
    assert hc.http_health_check.port_specification == "USE_SERVING_PORT"
    assert hc.http_health_check.request_path == "/healthz"

    health = clients(compute_v1.BackendServicesClient).get_health(
        project=GKE1, backend_service=NAME, resource_group_reference_resource=compute_v1.ResourceGroupReference(
            group=NEG_URL))
    strict(compute_v1.BackendServiceGroupHealth, health)
    assert [(s.ip_address, s.port, s.health_state) for s in health.health_status][:2] == [
        ("10.8.0.1", 8080, "HEALTHY"), ("10.8.0.2", 8080, "UNHEALTHY")]

    negs = clients(compute_v1.NetworkEndpointGroupsClient)
    body = compute_v1.NetworkEndpointGroupsListEndpointsRequest(health_status="SHOW")
    pager = negs.list_network_endpoints(request=compute_v1.ListNetworkEndpointsNetworkEndpointGroupsRequest(
        project=GKE1, zone=ZONE, network_endpoint_group=NAME, max_results=3,
        network_endpoint_groups_list_endpoints_request_resource=body))
    items = list(pager)
    assert len(items) == 7  # three pages of at most 3
    assert sum(1 for c in google.calls if c.path.endswith("/listNetworkEndpoints")) == 3
    strict(compute_v1.NetworkEndpointWithHealthStatus, items[0])
    assert items[0].network_endpoint.instance == "gke-gke1-default-pool-671518f6-x7k2"
    assert items[0].healths[0].backend_service.backend_service.endswith(f"/backendServices/{NAME}")


def test_get_health_refuses_a_group_that_is_not_a_backend(google, clients):
    gke_backend(google, GKE1, NAME, service="shop/web", service_port=80, endpoints={ZONE: []})
    with pytest.raises(gexc.BadRequest):
        clients(compute_v1.BackendServicesClient).get_health(
            project=GKE1, backend_service=NAME, resource_group_reference_resource=compute_v1.ResourceGroupReference(
                group=NEG_URL.replace(NAME, "other")))
    with pytest.raises(gexc.NotFound):
        clients(compute_v1.BackendServicesClient).get(project=GKE1, backend_service="nope")


def test_regional_backend_services_and_health_checks(google, clients):
    gke_backend(google, GKE1, NAME, service="shop/web", service_port=80, scope="europe-west4",
                endpoints={ZONE: [("10.8.0.7", 8080, "node-1", "HEALTHY")]})
    bs = clients(compute_v1.RegionBackendServicesClient).get(project=GKE1, region="europe-west4",
                                                            backend_service=NAME)
    assert bs.load_balancing_scheme == "INTERNAL_MANAGED" and bs.region.endswith("/regions/europe-west4")
    hc = clients(compute_v1.RegionHealthChecksClient).get(project=GKE1, region="europe-west4", health_check=NAME)
    assert hc.self_link.endswith(f"/regions/europe-west4/healthChecks/{NAME}")
    with pytest.raises(gexc.NotFound):  # not a global one
        clients(compute_v1.BackendServicesClient).get(project=GKE1, backend_service=NAME)


def test_network_and_regional_effective_firewalls(google, clients):
    net = clients(compute_v1.NetworksClient).get(project=GKE1, network="default")
    strict(compute_v1.Network, net)
    assert net.network_firewall_policy_enforcement_order == "AFTER_CLASSIC_FIREWALL"
    got = clients(compute_v1.RegionNetworkFirewallPoliciesClient).get_effective_firewalls(
        project=GKE1, region="europe-west4",
        network=f"https://www.googleapis.com/compute/v1/projects/{GKE1}/global/networks/default")
    strict(compute_v1.RegionNetworkFirewallPoliciesGetEffectiveFirewallsResponse, got)
    assert [p.type_ for p in got.firewall_policys] == ["HIERARCHY"] and len(got.firewalls) > 30
    with pytest.raises(gexc.NotFound):
        clients(compute_v1.RegionNetworkFirewallPoliciesClient).get_effective_firewalls(
            project=GKE1, region="europe-west4", network="nope")


def test_compute_permission_denied_names_the_permission(google, clients):
    google.deny("GET", r"/backendServices/", "compute.backendServices.get")
    with pytest.raises(gexc.Forbidden) as info:
        clients(compute_v1.BackendServicesClient).get(project=GKE1, backend_service="web-backend-service")
    assert "compute.backendServices.get" in str(info.value)
