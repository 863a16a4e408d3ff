import pytest

from checks.model import ClusterRef, Status
from tests.helpers import GKE1, one, run_check

REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
ID = "gke/control-plane-reachable"
FLAGS = "--location=europe-west4-a --project=gcpdiag-gke1-aaaa"
NETWORKS = {"enabled": True, "cidrBlocks": [{"displayName": "office", "cidrBlock": "203.0.113.0/24"},
                                            {"cidrBlock": "198.51.100.7/32"}]}


def test_recorded_cluster_is_reachable(google, settings):
    f = one(run_check(ID, settings, REF), Status.OK)
    assert "`127.0.0.1`" in f.detail and "public" in f.detail


def test_private_endpoint_only(google, settings):
    google.cluster(GKE1, "gke1")["privateClusterConfig"]["enablePrivateEndpoint"] = True
    f = one(run_check(ID, settings, REF), Status.WARN)
    assert "private endpoint only" in f.detail and "`127.0.0.2`" in f.detail and "times out" in f.detail
    assert f"gcloud container clusters get-credentials gke1 \\\n    {FLAGS} --internal-ip" in f.remedy
    assert "enablePrivateEndpoint: true" in f.evidence and "--dns-endpoint" not in f.remedy


def test_private_endpoint_only_new_style_with_dns_endpoint(google, settings):
    google.cluster(GKE1, "gke1")["controlPlaneEndpointsConfig"] = {
        "ipEndpointsConfig": {"enabled": True, "enablePublicEndpoint": False, "privateEndpoint": "127.0.0.2"},
        "dnsEndpointConfig": {"endpoint": "gke-1234.europe-west4-a.gke.goog", "allowExternalTraffic": True}}
    f = one(run_check(ID, settings, REF), Status.WARN)
    assert "`127.0.0.2`" in f.detail
    assert "`gke-1234.europe-west4-a.gke.goog`" in f.remedy and "--dns-endpoint" in f.remedy


def test_authorized_networks_name_the_cidrs(google, settings):
    google.cluster(GKE1, "gke1")["masterAuthorizedNetworksConfig"] = dict(NETWORKS)
    f = one(run_check(ID, settings, REF), Status.WARN)
    assert "`203.0.113.0/24` (office), `198.51.100.7/32`" in f.detail
    assert "timeouts, not 401" in f.detail and "Google Cloud's public IP" not in f.detail
    assert "--master-authorized-networks=203.0.113.0/24,198.51.100.7/32,YOUR_IP/32" in f.remedy
    assert f"gcloud container clusters update gke1 \\\n    {FLAGS}" in f.remedy
    assert f.evidence == "masterAuthorizedNetworksConfig.enabled: true, cidrBlocks: 203.0.113.0/24, 198.51.100.7/32"


def test_both_restrictions_give_two_warnings(google, settings):
    cluster = google.cluster(GKE1, "gke1")
    cluster["privateClusterConfig"]["enablePrivateEndpoint"] = True
    cluster["masterAuthorizedNetworksConfig"] = dict(NETWORKS, gcpPublicCidrsAccessEnabled=True)
    findings = run_check(ID, settings, REF)
    assert [f.status for f in findings] == [Status.WARN, Status.WARN]
    assert "and in its authorized networks" in findings[0].detail
    assert "Google Cloud's public IP addresses" in findings[1].detail


@pytest.mark.parametrize("deny", [True, False])
def test_bot_without_cluster_access_is_an_error(google, settings, deny):
    if deny:
        google.deny("GET", r"/clusters/gke1$", "container.clusters.get")
    f = one(run_check(ID, settings, REF))
    assert (f.status is Status.ERROR) is deny
    assert ("container.clusters.get" in f.detail) is deny


def test_ip_endpoints_disabled_means_the_dns_endpoint(google, settings):
    cluster = google.cluster(GKE1, "gke1")
    cluster["controlPlaneEndpointsConfig"] = {
        "dnsEndpointConfig": {"endpoint": "gke-0123.europe-west4-a.gke.goog", "allowExternalTraffic": True},
        "ipEndpointsConfig": {"enabled": False}}
    f = one(run_check(ID, settings, REF), Status.OK)
    assert "gke-0123.europe-west4-a.gke.goog" in f.detail and "DNS endpoint" in f.detail
    cluster["controlPlaneEndpointsConfig"]["dnsEndpointConfig"]["allowExternalTraffic"] = False
    f = one(run_check(ID, settings, REF), Status.WARN)
    assert "--enable-dns-access" in f.remedy
