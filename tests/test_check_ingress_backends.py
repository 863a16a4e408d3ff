import pytest

from checks.model import Status
from tests.helpers import GKE1, one
from tests.test_check_ingress_fixtures import (backend_config, check, ingress, live, service,  # noqa: F401
                                               web)

ID = "ingress/backend-services"
ANNOTATE = "kubectl annotate service web -n shop cloud.google.com/neg='{\"ingress\": true}' --overwrite"
TO_NODE_PORT = "kubectl patch service web -n shop -p '{\"spec\": {\"type\": \"NodePort\"}}'"


def fail(settings) -> object:
    return one(check(ID, settings), Status.FAIL)


@pytest.mark.parametrize("edit, reason", [
    (lambda c: c.update(networkPolicy={"enabled": True, "provider": "CALICO"}),
     "GKE network policy is enabled (`networkPolicy.enabled: true`)"),
    (lambda c: c["networkConfig"].update(network="projects/gke-host-aaaa/global/networks/shared"),
     "the cluster uses a Shared VPC network (`projects/gke-host-aaaa/global/networks/shared`)"),
    (lambda c: c.update(initialClusterVersion="1.16.15-gke.6000", currentMasterVersion="1.17.5-gke.9"),
     "the control plane runs 1.17.5-gke.9, older than 1.17.6-gke.7"),
])
def test_cluster_ip_without_negs_fails_naming_the_reason(google, kube, live, settings, edit, reason):
    edit(live)
    web(kube)
    f = fail(settings)
    assert "Service `shop/web` is ClusterIP but gets no NEGs" in f.detail
    assert reason in f.detail
    assert ANNOTATE in f.remedy and TO_NODE_PORT in f.remedy
    assert f.resource == "Ingress shop/web → Service shop/web:80"


def test_routes_based_cluster_can_only_use_node_port(kube, live, settings):
    live["ipAllocationPolicy"]["useIpAliases"] = False
    web(kube)
    f = fail(settings)
    assert "not VPC-native" in f.detail
    assert TO_NODE_PORT in f.remedy and ANNOTATE not in f.remedy


def test_neg_annotation_needs_a_vpc_native_cluster(kube, live, settings):
    live["ipAllocationPolicy"]["useIpAliases"] = False
    web(kube, annotations={"cloud.google.com/neg": '{"ingress": true}'})
    assert "container-native load balancing needs alias IPs" in fail(settings).detail


def test_neg_annotation_or_automatic_negs_are_ok(kube, live, settings):
    web(kube)  # the recorded gke1 qualifies for automatic NEGs
    assert "automatic NEGs" in one(check(ID, settings), Status.OK).detail
    live["networkPolicy"] = {"enabled": True}
    kube.add(service("web", "shop", {"app": "web"}, [{"name": "http", "port": 80, "targetPort": 8080}],
                     annotations={"cloud.google.com/neg": '{"ingress": true}'}))
    assert 'annotation `cloud.google.com/neg: {"ingress": true}`' in one(check(ID, settings), Status.OK).detail


def test_neg_annotation_false_turns_them_off(kube, live, settings):
    web(kube, annotations={"cloud.google.com/neg": '{"ingress": false}'})
    assert "turns NEGs off" in fail(settings).detail


def test_node_port_works_without_negs(kube, live, settings):
    live["networkPolicy"] = {"enabled": True}
    web(kube, type_="NodePort")
    f = one(check(ID, settings), Status.OK)
    assert "`shop/web:80` (NodePort, instance groups on nodePort 30080, 1 running Pod(s))" in f.detail


def test_missing_service_fails(kube, live, settings):
    kube.add(ingress("web", "shop", "nope", 80))
    f = fail(settings)
    assert "Service `shop/nope`, a backend of the Ingress, does not exist" in f.detail
    assert "kubectl get services -n shop" in f.remedy


def test_missing_port_fails(kube, live, settings):
    web(kube)
    kube.add(ingress("web", "shop", "web", "metrics"))
    assert "has no port `metrics`, which the Ingress names (its ports: 80 (http))" in fail(settings).detail


def test_every_rule_backend_is_checked_once(kube, live, settings):
    web(kube)
    paths = [{"path": p, "pathType": "Prefix", "backend": {"service": {"name": svc, "port": {"number": 80}}}}
             for p, svc in (("/", "web"), ("/api", "api"), ("/web", "web"))]
    kube.add(ingress("web", "shop", "web", 80, rules=[{"host": "shop.example.com", "http": {"paths": paths}}]))
    f = fail(settings)
    assert "`shop/api`" in f.detail
    # the Services are read once, with the Ingresses, not one request per backend
    assert [c.path for c in kube.calls if "/services" in c.path] == ["/api/v1/services"]


def test_missing_backend_config_fails(kube, live, settings):
    web(kube, annotations={"cloud.google.com/backend-config": '{"default": "web-hc"}'})
    f = fail(settings)
    assert "names BackendConfig `web-hc`, which does not exist" in f.detail
    assert "kubectl annotate service web -n shop cloud.google.com/backend-config-" in f.remedy
    kube.add(backend_config("web-hc", "shop", {"requestPath": "/ready"}))
    one(check(ID, settings), Status.OK)


def test_service_without_running_pods_fails(kube, live, settings):
    web(kube)
    kube.add(service("web", "shop", {"app": "webb"}, [{"name": "http", "port": 80, "targetPort": 8080}]))
    f = fail(settings)
    assert "selects no running Pod (selector `app=webb`)" in f.detail and "502" in f.detail


def test_automatic_negs_follow_the_version_the_service_was_created_under(kube, live, settings):
    # gke1 was created at 1.16 and upgraded to 1.25: today's version qualifies, but GKE gave automatic NEGs only
    # to Services created after the upgrade (and annotated them then); this one has no annotation.
    live["initialClusterVersion"] = "1.16.15-gke.6000"
    web(kube)
    f = fail(settings)
    assert "Service `shop/web` is ClusterIP but gets no NEGs" in f.detail
    assert "in a cluster created at 1.16.15-gke.6000 and upgraded since (it runs 1.25.7-gke.1000 now)" in f.detail
    assert "it was created before the upgrade" in f.detail
    assert ANNOTATE in f.remedy


def test_a_cluster_created_new_enough_gives_automatic_negs(kube, live, settings):
    live["initialClusterVersion"] = "1.17.6-gke.7"
    web(kube)
    assert "automatic NEGs" in one(check(ID, settings), Status.OK).detail
