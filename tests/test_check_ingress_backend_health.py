import json

from checks.model import Status
from tests.helpers import one
from tests.test_check_ingress_fixtures import ARGO_BACKEND, argocd, check, ingress, live, web  # noqa: F401

ID = "ingress/backends-healthy"


def test_unhealthy_backend_is_named_with_its_service(kube, live, settings):
    argocd(kube)
    f = one(check(ID, settings), Status.FAIL)
    assert f"`{ARGO_BACKEND}` (Service `argocd/argocd-server:80`)" in f.detail
    assert f.evidence == f'`ingress.kubernetes.io/backends: {{"{ARGO_BACKEND}": "UNHEALTHY"}}`'
    assert (f"gcloud compute backend-services get-health {ARGO_BACKEND} --global --project=gcpdiag-gke1-aaaa"
            in f.remedy)
    assert "ingress/health-check-path" in f.remedy and "ingress/firewall" in f.remedy


def test_instance_group_backend_maps_through_the_node_port(kube, live, settings):
    states = {"k8s-be-30080--c10b95be9dbb48d0": "UNHEALTHY", "k8s-be-31999--c10b95be9dbb48d0": "HEALTHY"}
    web(kube, type_="NodePort", ingress_annotations={"ingress.kubernetes.io/backends": json.dumps(states)})
    f = one(check(ID, settings), Status.FAIL)
    assert "`k8s-be-30080--c10b95be9dbb48d0` (Service `shop/web:80`)" in f.detail
    assert "31999" not in f.detail


def test_internal_ingress_backends_are_regional(kube, live, settings):
    argocd(kube)
    kube.add(ingress("argocd-server-ingress", "argocd", "argocd-server", 80, cls="gce-internal", annotations={
        "ingress.kubernetes.io/backends": json.dumps({ARGO_BACKEND: "UNHEALTHY"})}))
    assert "--region=europe-west4 " in one(check(ID, settings), Status.FAIL).remedy


def test_healthy_and_unknown(kube, live, settings):
    argocd(kube, backends="HEALTHY")
    assert "All 1 backend(s) are HEALTHY" in one(check(ID, settings), Status.OK).detail
    argocd(kube, backends="Unknown")
    assert "(Unknown)" in one(check(ID, settings), Status.WARN).detail


def test_no_annotation_yet(kube, live, settings):
    web(kube)
    assert "does not exist yet" in one(check(ID, settings), Status.SKIP).detail
