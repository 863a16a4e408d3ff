"""`/gke wi`, the network path to the GKE metadata server: NetworkPolicy egress (versions, Dataplane V2,
selectors, CIDRs, ports) and Istio sidecars."""
import re

import pytest
import yaml

from checks.model import Status
from tests.conftest import serve_cluster
from tests.fakes.kube import network_policy, pod
from tests.helpers import GKE1, one
from tests.test_check_wi_cluster import wi

NP = "wi/network-policy-egress"
ISTIO = "wi/istio-sidecar"


@pytest.fixture(autouse=True)
def _served(google, kube):
    serve_cluster(google, kube, GKE1, "gke2")


def app_pod(kube, name="app-1", labels=None, **kw):
    kube.add(pod(name, sa="app", node="gke-gke2-default-pool-1", labels={"app": "app"} if labels is None else labels,
                 **kw))


def allow(cidr, port=None, protocol=None, end_port=None, excepts=None):
    """One egress rule: to an ipBlock, on one port (or range), or on every port when port is None."""
    block = {"cidr": cidr, **({"except": excepts} if excepts else {})}
    ports = [] if port is None and protocol is None else [
        {k: v for k, v in (("protocol", protocol or "TCP"), ("port", port), ("endPort", end_port)) if v is not None}]
    return {"to": [{"ipBlock": block}], **({"ports": ports} if ports else {})}


def set_cluster(google, version=None, dataplane_v2=False):
    cluster = google.cluster(GKE1, "gke2")
    if version:
        cluster["currentMasterVersion"] = version
    if dataplane_v2:
        cluster.setdefault("networkConfig", {})["datapathProvider"] = "ADVANCED_DATAPATH"


# -- 6. NetworkPolicy egress -------------------------------------------------------------------
def test_no_policy_is_ok(google, kube, settings):
    app_pod(kube)
    f = one(wi(NP, settings), Status.OK)
    assert "`169.254.169.252/32` port 988" in f.detail and "0 egress" in f.detail


def test_deny_all_egress_fails_and_the_proposed_policy_fixes_it(google, kube, settings):
    app_pod(kube)
    kube.add(network_policy("deny-egress", pod_selector={"matchLabels": {"app": "app"}}))
    f = one(wi(NP, settings), Status.FAIL)
    assert "pod `app-1`: NetworkPolicy `default/deny-egress` allow(s) no egress to `169.254.169.252/32` port 988" \
        in f.detail
    assert "kubectl describe networkpolicy deny-egress -n default" in f.evidence
    rule = yaml.safe_load(re.search(r"```\n(egress:.*?)\n```", f.remedy, re.S)[1])
    assert rule == {"egress": [{"to": [{"ipBlock": {"cidr": "169.254.169.252/32"}}],
                                "ports": [{"protocol": "TCP", "port": 988}]}]}
    kube.add(yaml.safe_load(re.search(r"```\n(apiVersion:.*?)\n```", f.remedy, re.S)[1]))
    one(wi(NP, settings), Status.OK)


@pytest.mark.parametrize("version, needed", [
    ("1.20.15-gke.6000", "127.0.0.1/32"),
    ("1.21.0-gke.999", "127.0.0.1/32"),
    ("1.21.0-gke.1000", "169.254.169.252/32"),
    ("1.21.10-gke.100", "169.254.169.252/32"),
])
def test_the_address_follows_the_gke_version(google, kube, settings, version, needed):
    set_cluster(google, version)
    app_pod(kube)
    kube.add(network_policy("deny-egress"))
    f = one(wi(NP, settings), Status.FAIL)
    assert f"`{needed}` port 988" in f.detail and version in f.detail
    other = {"127.0.0.1/32", "169.254.169.252/32"} - {needed}
    assert other.pop() not in f.detail + f.remedy


def test_old_cluster_allowing_only_the_new_address_still_fails(google, kube, settings):
    set_cluster(google, "1.20.15-gke.6000")
    app_pod(kube)
    kube.add(network_policy("wi", egress=[allow("169.254.169.252/32", 988)]))
    assert "127.0.0.1/32" in one(wi(NP, settings), Status.FAIL).detail


def test_dataplane_v2_also_needs_port_80_of_169_254_169_254(google, kube, settings):
    set_cluster(google, dataplane_v2=True)
    app_pod(kube)
    kube.add(network_policy("wi", egress=[allow("169.254.169.252/32", 988)]))
    f = one(wi(NP, settings), Status.FAIL)
    assert "`169.254.169.254/32` port 80/TCP (the cluster runs GKE Dataplane V2)" in f.detail
    assert "169.254.169.252" not in f.remedy
    kube.add(network_policy("wi-80", egress=[allow("169.254.169.254/32", 80)]))
    one(wi(NP, settings), Status.OK)


@pytest.mark.parametrize("rule", [
    allow("169.254.0.0/16", 988),                       # a wider CIDR
    allow("169.254.169.252/30", 900, end_port=1000),    # a port range
    allow("0.0.0.0/0"),                                  # every port
    {"ports": [{"protocol": "TCP", "port": 988}]},      # every destination
    {},                                                  # everything
    allow("169.254.0.0/16", 988, excepts=["169.254.1.0/24"]),
])
def test_rules_that_allow_the_metadata_server(google, kube, settings, rule):
    app_pod(kube)
    kube.add(network_policy("wi", egress=[{"to": [{"podSelector": {}}]}, rule]))
    one(wi(NP, settings), Status.OK)


@pytest.mark.parametrize("rule", [
    allow("169.254.169.0/24", 988, excepts=["169.254.169.252/32"]),  # excepted
    allow("169.254.169.253/32", 988),                                # next address
    allow("169.254.169.252/32", 989, end_port=1000),                 # range above
    allow("169.254.169.252/32", 988, protocol="UDP"),                # wrong protocol
    allow("169.254.169.252/32", "metadata"),                         # a named port
    {"to": [{"namespaceSelector": {}}, {"podSelector": {}}]},        # pods only
])
def test_rules_that_do_not(google, kube, settings, rule):
    app_pod(kube)
    kube.add(network_policy("wi", egress=[rule]))
    assert "`default/wi`" in one(wi(NP, settings), Status.FAIL).detail


@pytest.mark.parametrize("selector, selected", [
    ({"matchLabels": {"app": "app"}}, True),
    ({"matchLabels": {"app": "web"}}, False),
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["app", "x"]}]}, True),
    ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["app"]}]}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, True),
    ({"matchLabels": {"app": "app"}, "matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
])
def test_pod_selectors(google, kube, settings, selector, selected):
    app_pod(kube)
    kube.add(network_policy("deny", pod_selector=selector))
    one(wi(NP, settings), Status.FAIL if selected else Status.OK)


def test_ingress_only_policy_is_ignored(google, kube, settings):
    app_pod(kube)
    kube.add(network_policy("ingress", policy_types=("Ingress",)))
    one(wi(NP, settings), Status.OK)


def test_policies_add_up_across_pods(google, kube, settings):
    app_pod(kube, "app-1", {"app": "app", "tier": "a"})
    app_pod(kube, "app-2", {"app": "app", "tier": "b"})
    kube.add(network_policy("deny-all"))
    kube.add(network_policy("allow-a", pod_selector={"matchLabels": {"tier": "a"}},
                            egress=[allow("169.254.169.252/32", 988)]))
    f = one(wi(NP, settings), Status.FAIL)
    assert "pod `app-2`" in f.detail and "pod `app-1`" not in f.detail


def test_without_pods_only_policies_for_every_pod_are_evaluated(google, kube, settings):
    kube.add(network_policy("by-label", pod_selector={"matchLabels": {"app": "app"}}))
    f = one(wi(NP, settings), Status.OK)
    assert "only policies that select every pod" in f.detail
    kube.add(network_policy("deny-all"))
    f = one(wi(NP, settings), Status.FAIL)
    assert "any pod of `default/app`" in f.detail and "by-label" not in f.detail


# -- 7. Istio sidecars ---------------------------------------------------------------------------------
SIDECAR = [{"name": "main", "image": "app"}, {"name": "istio-proxy", "image": "istio/proxyv2"}]
EXCLUDE = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
HOLD = "proxy.istio.io/config: '{ \"holdApplicationUntilProxyStarts\": true }'"


def test_istio_skipped_without_pods(google, kube, settings):
    one(wi(ISTIO, settings), Status.SKIP)


def test_pods_without_sidecar_are_ok(google, kube, settings):
    app_pod(kube)
    one(wi(ISTIO, settings), Status.OK)


def test_sidecar_without_exclusion_warns_with_the_exact_annotations(google, kube, settings):
    app_pod(kube, containers=SIDECAR)
    f = one(wi(ISTIO, settings), Status.WARN)
    assert "`app-1`" in f.detail
    assert f"    {EXCLUDE}: 169.254.169.254/32\n    {HOLD}" in f.remedy
    assert "global.proxy.excludeIPRanges" in f.remedy and "is not set" in f.evidence


def test_injected_status_with_other_exclusions_keeps_them_in_the_fix(google, kube, settings):
    app_pod(kube, annotations={"sidecar.istio.io/status": '{"containers":["istio-proxy"]}', EXCLUDE: "10.0.0.0/8"})
    f = one(wi(ISTIO, settings), Status.WARN)
    assert f"{EXCLUDE}: 10.0.0.0/8,169.254.169.254/32" in f.remedy and "is `10.0.0.0/8`" in f.evidence


@pytest.mark.parametrize("annotations, init", [
    ({EXCLUDE: "169.254.0.0/16, 10.0.0.0/8"}, None),
    ({"traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/8"}, None),
    ({}, [{"name": "istio-init", "image": "istio/proxyv2", "args": ["istio-iptables", "-p", "15001", "-x",
                                                                       "169.254.169.254/32"]}]),
])
def test_sidecar_that_leaves_the_metadata_server_alone_is_ok(google, kube, settings, annotations, init):
    app_pod(kube, containers=SIDECAR, annotations=dict(annotations, **{
        "proxy.istio.io/config": '{ "holdApplicationUntilProxyStarts": true }'}), init_containers=init)
    one(wi(ISTIO, settings), Status.OK)


def test_exclusion_without_hold_warns_for_the_hold_only(google, kube, settings):
    """002 also asks for holdApplicationUntilProxyStarts: the application must start after the sidecar."""
    app_pod(kube, containers=SIDECAR, annotations={EXCLUDE: "169.254.169.254/32"})
    f = one(wi(ISTIO, settings), Status.WARN)
    assert "start their application before the sidecar is ready" in f.detail and "redirects" not in f.detail
    assert f"    {HOLD}" in f.remedy and EXCLUDE not in f.remedy
    assert "`global.proxy.holdApplicationUntilProxyStarts`" in f.remedy


@pytest.mark.parametrize("containers, init", [
    # mesh-wide hold as the injector renders it: istio-proxy first, with a pilot-agent wait hook
    ([{"name": "istio-proxy", "image": "istio/proxyv2",
       "lifecycle": {"postStart": {"exec": {"command": ["pilot-agent", "wait"]}}}}, {"name": "main", "image": "app"}],
     None),
    # a native sidecar starts before the application containers
    ([{"name": "main", "image": "app"}], [{"name": "istio-proxy", "image": "istio/proxyv2", "restartPolicy": "Always"}]),
])
def test_mesh_wide_or_native_sidecar_hold_is_ok(google, kube, settings, containers, init):
    app_pod(kube, containers=containers, init_containers=init, annotations={EXCLUDE: "169.254.169.254/32"})
    one(wi(ISTIO, settings), Status.OK)


# -- 11b. DNS through NetworkPolicies (002 DNS 解決に関する問題) -------------------------------------------
DNSNP = "wi/dns-network-policy"
KUBE_DNS_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                 "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}


def kube_dns_pod(kube):
    p = pod("kube-dns-5c9f4b9c7-abcde", "kube-system", sa="kube-dns", node="node-1", labels={"k8s-app": "kube-dns"})
    p["status"]["podIP"] = "10.8.0.10"
    kube.add(p)


def dns(port=53, protocol="UDP", peer=None):
    return {"to": [peer or KUBE_DNS_PEER], "ports": [{"protocol": protocol, "port": port}]}


def test_metadata_only_egress_blocks_dns_and_the_proposed_rule_fixes_it(google, kube, settings):
    kube_dns_pod(kube)
    app_pod(kube)
    kube.add(network_policy("metadata-only", pod_selector={"matchLabels": {"app": "app"}},
                            egress=[allow("169.254.169.252/32", 988)]))
    one(wi(NP, settings), Status.OK)  # the metadata server itself is reachable ...
    f = one(wi(DNSNP, settings), Status.FAIL)  # ... but its name does not resolve
    assert "pod `app-1`: NetworkPolicy `default/metadata-only` allow(s) no egress to the kube-dns pods" in f.detail
    assert "GOOGLE_APPLICATION_CREDENTIALS" in f.detail and "GCE_METADATA_HOST=169.254.169.254" in f.remedy
    kube.add(yaml.safe_load(re.search(r"```\n(apiVersion:.*?)\n```", f.remedy, re.S)[1]))
    f = one(wi(DNSNP, settings), Status.OK)
    assert "TCP 53" not in f.detail  # the proposed policy allows both


@pytest.mark.parametrize("rule, status", [
    (dns(), Status.OK),
    (dns(protocol="TCP"), Status.FAIL),  # DNS is UDP first
    (dns(port=5353), Status.FAIL),
    (dns(peer={"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}), Status.OK),
    (dns(peer={"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}), Status.FAIL),  # default namespace only
    (dns(peer={"namespaceSelector": {"matchLabels": {"team": "a"}}}), Status.FAIL),
    (dns(peer={"ipBlock": {"cidr": "10.8.0.0/24"}}), Status.OK),  # the kube-dns pod IPs
    (dns(peer={"ipBlock": {"cidr": "10.8.0.0/24", "except": ["10.8.0.10/32"]}}), Status.FAIL),
    ({"ports": [{"protocol": "UDP", "port": 53}]}, Status.OK),  # to anywhere
])
def test_dns_rules_are_evaluated_as_the_dataplane_does(google, kube, settings, rule, status):
    kube_dns_pod(kube)
    app_pod(kube)
    kube.add(network_policy("dns", pod_selector={"matchLabels": {"app": "app"}}, egress=[rule]))
    one(wi(DNSNP, settings), status)


@pytest.mark.parametrize("cluster_edit, address", [
    ({"addonsConfig": {"dnsCacheConfig": {"enabled": True}}}, "169.254.20.10"),
    ({"networkConfig": {"dnsConfig": {"clusterDns": "CLOUD_DNS"}}}, "169.254.169.254"),
])
def test_nodelocal_dnscache_and_cloud_dns_need_an_ipblock(google, kube, settings, cluster_edit, address):
    for key, value in cluster_edit.items():
        google.cluster(GKE1, "gke2").setdefault(key, {}).update(value)
    app_pod(kube)
    kube.add(network_policy("dns", pod_selector={"matchLabels": {"app": "app"}}, egress=[dns()]))  # kube-dns peer
    f = one(wi(DNSNP, settings), Status.FAIL)
    assert f"`{address}`" in f.detail and f"cidr: {address}/32" in f.remedy
    kube.add(network_policy("dns", pod_selector={"matchLabels": {"app": "app"}},
                            egress=[dns(peer={"ipBlock": {"cidr": f"{address}/32"}})]))
    one(wi(DNSNP, settings), Status.OK)


def test_no_egress_policy_is_ok_without_reading_kube_system(google, kube, settings):
    app_pod(kube)
    one(wi(DNSNP, settings), Status.OK)
    assert not any(c.path.endswith("/namespaces/kube-system") for c in kube.calls)
