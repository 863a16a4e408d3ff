import pytest

from checks.model import Status
from tests.helpers import GKE1, one
from tests.test_check_ingress_fixtures import check, event, ingress, live  # noqa: F401 - live is a fixture

ID = "ingress/address"
TRANSLATION = 'Translation failed: invalid ingress spec: could not find service "shop/nope"'


@pytest.fixture
def controller_on(google):
    google.cluster(GKE1, "gke1")["addonsConfig"]["httpLoadBalancing"] = {}


def test_no_address_after_minutes_quotes_the_controllers_events(kube, live, controller_on, settings):
    kube.add(ingress("shop", "shop", "nope", 80, age=20 * 60 + 30))
    kube.add(event("shop", "shop", "Sync", TRANSLATION, count=7, age=30))
    kube.add(event("shop", "shop", "Sync", "Scheduled for sync", type_="Normal", age=1200))
    kube.add(event("shop", "other", "Sync", "not about this Ingress", age=10))
    f = one(check(ID, settings), Status.WARN)
    assert "`shop/shop` has had no address for 20m" in f.detail
    assert f.resource == "Ingress shop/shop"
    assert "kubectl describe ingress shop -n shop" in f.evidence
    lines = f.evidence.split("```")[1].strip().splitlines()
    assert lines == ["Normal Sync from loadbalancer-controller: Scheduled for sync",
                     f"Warning Sync (x7) from loadbalancer-controller: {TRANSLATION}"]


def test_addon_off_explains_why_nothing_logs(kube, live, settings):
    kube.add(ingress("web", "shop", "web", 80, age=4 * 3600))
    f = one(check(ID, settings), Status.WARN)
    assert "no address for 4h 0m" in f.detail
    assert "HTTP load balancing is disabled" in f.detail and "nothing logs anything" in f.detail
    assert "ingress/http-lb-addon" in f.remedy
    assert f.evidence == "`kubectl describe ingress web -n shop` shows no events."


def test_a_new_ingress_may_still_be_provisioning(kube, live, controller_on, settings):
    kube.add(ingress("web", "shop", "web", 80, age=90))
    f = one(check(ID, settings), Status.SKIP)
    assert "1m ago" in f.detail


def test_a_new_ingress_with_a_warning_is_reported_at_once(kube, live, controller_on, settings):
    kube.add(ingress("web", "shop", "web", 80, age=90))
    kube.add(event("shop", "web", "Sync", TRANSLATION))
    assert TRANSLATION in one(check(ID, settings), Status.WARN).evidence


def test_with_an_address_it_is_ok(kube, live, settings):
    kube.add(ingress("web", "shop", "web", 80, address="34.120.9.9"))
    assert "34.120.9.9" in one(check(ID, settings), Status.OK).detail


def test_only_gce_class_ingresses_are_diagnosed(kube, live, settings):
    kube.add(ingress("a-nginx", "shop", "web", 80, cls="nginx", age=7200))
    kube.add(ingress("b-internal", "shop", "web", 80, cls="gce-internal", address="10.0.0.9"))
    kube.add(ingress("c-gce", "shop", "web", 80, cls="gce", address="34.1.1.1"))
    found = check(ID, settings)
    assert [(f.status, f.resource) for f in found] == [(Status.OK, "Ingress shop/b-internal"),
                                                       (Status.OK, "Ingress shop/c-gce")]
    kube.remove("Ingress", "b-internal", "shop")
    kube.remove("Ingress", "c-gce", "shop")
    assert "classes: `nginx`" in one(check(ID, settings), Status.SKIP).detail


def class_name(name: str, value: str, **kw) -> dict:
    ing = ingress(name, "shop", "web", 80, **kw)
    ing["spec"]["ingressClassName"] = value
    return ing


def test_ingress_class_name_gce_alone_is_ignored_by_the_gke_controller(kube, live, settings):
    # GKE's controller processes an Ingress only by the annotation (gce, gce-internal) or with no class at all:
    # `spec.ingressClassName: gce` alone makes it ignore the Ingress, and no load balancer will ever exist.
    kube.add(class_name("d-class-name", "gce", address="34.2.2.2"))
    kube.add(ingress("c-gce", "shop", "web", 80, cls="gce", address="34.1.1.1"))
    ignored, ok = check(ID, settings)
    assert ok.status is Status.OK and ok.resource == "Ingress shop/c-gce"
    assert ignored.status is Status.FAIL and ignored.resource == "Ingress shop/d-class-name"
    assert ("Ingress `shop/d-class-name` sets `spec.ingressClassName: gce` and no `kubernetes.io/ingress.class` "
            "annotation") in ignored.detail
    assert "it ignores an Ingress with only `spec.ingressClassName` (any value, `gce` included)" in ignored.detail
    assert ("kubectl patch ingress d-class-name -n shop --type=merge -p '{\"spec\": {\"ingressClassName\": null}, "
            "\"metadata\": {\"annotations\": {\"kubernetes.io/ingress.class\": \"gce\"}}}'") in ignored.remedy
    # the other checks do not diagnose a load balancer that will never exist
    assert [f.resource for f in check("ingress/backend-services", settings)] == [
        "Ingress shop/c-gce → Service shop/web:80"]


def test_named_ingress_with_only_a_class_name(kube, live, settings):
    kube.add(class_name("internal", "gce-internal"))
    kube.add(class_name("nginx", "nginx"))
    f = one(check(ID, settings, namespace="shop", ingress="internal"), Status.FAIL)
    assert "sets `spec.ingressClassName: gce-internal`" in f.detail and '\"gce-internal\"' in f.remedy
    skip = one(check("ingress/health-check-path", settings, namespace="shop", ingress="internal"), Status.SKIP)
    assert "will never build a load balancer for `shop/internal`" in skip.detail
    other = one(check(ID, settings, namespace="shop", ingress="nginx"), Status.SKIP)
    assert "sets `spec.ingressClassName: nginx`" in other.detail and "another controller serves class `nginx`" in \
        other.detail


def test_named_ingress(kube, live, settings):
    kube.add(ingress("a-nginx", "shop", "web", 80, cls="nginx"))
    kube.add(ingress("web", "shop", "web", 80, address="34.120.9.9"))
    assert one(check(ID, settings, namespace="shop", ingress="web"), Status.OK)
    missing = one(check(ID, settings, namespace="shop", ingress="nope"), Status.FAIL)
    assert "no Ingress `nope` in namespace `shop`" in missing.detail
    assert "`nginx`" in one(check(ID, settings, namespace="shop", ingress="a-nginx"), Status.SKIP).detail
    assert "no Ingress" in one(check("ingress/backend-services", settings, namespace="shop", ingress="nope"),
                               Status.SKIP).detail


def test_bot_not_allowed_to_list_ingresses_is_an_error(kube, live, settings):
    kube.fail("GET", r"/ingresses$", 403, message='ingresses.networking.k8s.io is forbidden: User "gke-bot" '
                                                  'cannot list resource "ingresses"')
    f = one(check(ID, settings), Status.ERROR)
    assert "403" in f.detail and "cannot list resource" in f.detail and "list ingresses (cluster-wide)" in f.detail
