"""ingress/backends-healthy reads the load balancer itself (backend services, getHealth, NEG endpoints) from the
Compute fake, whose objects are shaped from gcpdiag's recorded backendServices.json / healthChecks.json."""
import json

from checks.model import Status
from tests.fakes.compute import gke_backend
from tests.helpers import GKE1, one
from tests.test_check_ingress_fixtures import (ARGO_BACKEND, ARGO_IP, ARGO_POD, NODE, ZONE, argocd, check,  # noqa
                                               container, ingress, live, pod, web)

ID = "ingress/backends-healthy"
NEG = f"zones/{ZONE}/networkEndpointGroups/{ARGO_BACKEND}"


def test_unhealthy_endpoint_is_named_with_its_pod(google, kube, live, settings):
    argocd(kube, google)
    f = one(check(ID, settings), Status.FAIL)
    assert (f"The load balancer's health checks fail for `{ARGO_BACKEND}` (Service `argocd/argocd-server:80`): "
            f"{ARGO_IP}:8080 (Pod `argocd/{ARGO_POD}`)") in f.detail
    assert f"{ARGO_BACKEND} {NEG} {ARGO_IP}:8080 UNHEALTHY" in f.evidence
    assert (f"gcloud compute backend-services get-health {ARGO_BACKEND} --global --project=gcpdiag-gke1-aaaa"
            in f.remedy)
    assert "ingress/health-check-path" in f.remedy and "ingress/firewall" in f.remedy
    assert f.gcpdiag == "lb/unhealthy-backends"


def test_the_annotation_is_not_the_truth(google, kube, live, settings):
    # the controller's copy in the annotation says HEALTHY; the load balancer says otherwise
    argocd(kube, google, backends="HEALTHY")
    google.projects[GKE1].compute.endpoints[f"projects/{GKE1}/{NEG}"][0]["health"] = "UNHEALTHY"
    assert f"{ARGO_IP}:8080 (Pod `argocd/{ARGO_POD}`)" in one(check(ID, settings), Status.FAIL).detail


def test_healthy_and_no_verdict_yet(google, kube, live, settings):
    argocd(kube, google, backends="HEALTHY")
    f = one(check(ID, settings), Status.OK)
    assert "All 1 endpoint(s) of 1 backend service(s) are HEALTHY" in f.detail
    argocd(kube, google, backends="Unknown")
    f = one(check(ID, settings), Status.WARN)
    assert f"no health result yet for `{ARGO_BACKEND}` (Service `argocd/argocd-server:80`): {ARGO_IP}:8080" in f.detail


def test_several_endpoints_only_the_unhealthy_ones_are_named(google, kube, live, settings):
    argocd(kube, google)
    kube.add(pod("argocd-server-7d4f8b9c5d-b2b2b", "argocd", {"app.kubernetes.io/name": "argocd-server"},
                 [container("argocd-server", ports=((None, 8080),))], ip="10.8.1.9"))
    gke_backend(google, GKE1, ARGO_BACKEND, service="argocd/argocd-server", service_port=80, request_path="/healthz",
                endpoints={ZONE: [(ARGO_IP, 8080, NODE, "HEALTHY"), ("10.8.1.9", 8080, NODE, "UNHEALTHY")]})
    f = one(check(ID, settings), Status.FAIL)
    assert "10.8.1.9:8080 (Pod `argocd/argocd-server-7d4f8b9c5d-b2b2b`)" in f.detail and ARGO_IP not in f.detail


def test_a_neg_without_endpoints_has_nowhere_to_send_traffic(google, kube, live, settings):
    argocd(kube, google)
    gke_backend(google, GKE1, ARGO_BACKEND, service="argocd/argocd-server", service_port=80, endpoints={ZONE: []})
    f = one(check(ID, settings), Status.FAIL)
    assert f"`{ARGO_BACKEND}` (Service `argocd/argocd-server:80`): NEG `{NEG}` has no endpoint" in f.detail
    assert "502" in f.detail


def test_instance_group_backend_maps_through_the_node_port(google, kube, live, settings):
    states = {"k8s-be-30080--c10b95be9dbb48d0": "UNHEALTHY", "k8s-be-31999--c10b95be9dbb48d0": "HEALTHY"}
    web(kube, type_="NodePort", ingress_annotations={"ingress.kubernetes.io/backends": json.dumps(states)})
    gke_backend(google, GKE1, "k8s-be-30080--c10b95be9dbb48d0", service="shop/web", service_port=80,
                instance_groups={ZONE: [("10.164.0.3", 30080, NODE, "UNHEALTHY")]})
    gke_backend(google, GKE1, "k8s-be-31999--c10b95be9dbb48d0", service="kube-system/default-http-backend",
                service_port=80, instance_groups={ZONE: [("10.164.0.3", 31999, NODE, "HEALTHY")]})
    f = one(check(ID, settings), Status.FAIL)
    assert (f"`k8s-be-30080--c10b95be9dbb48d0` (Service `shop/web:80`): 10.164.0.3:30080 (node `{NODE}`)"
            in f.detail)
    assert "31999" not in f.detail


def test_internal_ingress_backends_are_regional(google, kube, live, settings):
    argocd(kube, google, lb=False)
    kube.add(ingress("argocd-server-ingress", "argocd", "argocd-server", 80, cls="gce-internal", annotations={
        "ingress.kubernetes.io/backends": json.dumps({ARGO_BACKEND: "UNHEALTHY"})}))
    gke_backend(google, GKE1, ARGO_BACKEND, service="argocd/argocd-server", service_port=80, scope="europe-west4",
                endpoints={ZONE: [(ARGO_IP, 8080, NODE, "UNHEALTHY")]})
    f = one(check(ID, settings), Status.FAIL)
    assert "--region=europe-west4 " in f.remedy and f"{ARGO_IP}:8080" in f.detail
    assert any(f"/regions/europe-west4/backendServices/{ARGO_BACKEND}/getHealth" in c.path for c in google.calls)


def test_no_annotation_yet(kube, live, settings):
    web(kube)
    assert "does not exist yet" in one(check(ID, settings), Status.SKIP).detail


def test_backend_service_named_but_missing(google, kube, live, settings):
    argocd(kube, google)
    del google.projects[GKE1].compute.backend_services[("global", ARGO_BACKEND)]
    f = one(check(ID, settings), Status.WARN)
    assert "Compute Engine has none of that name" in f.detail


def test_bot_without_compute_permissions_is_an_error_not_ok(google, kube, live, settings):
    argocd(kube, google, backends="HEALTHY")
    google.deny("POST", r"/getHealth$", "compute.backendServices.get")
    found = check(ID, settings)
    assert [f.status for f in found] == [Status.ERROR]
    assert "compute.backendServices.get" in found[0].detail and "backendServices.getHealth" in found[0].detail
    google.deny("POST", r"/listNetworkEndpoints$", "compute.networkEndpointGroups.get")
    assert "compute.networkEndpointGroups.get" in check(ID, settings)[0].detail
