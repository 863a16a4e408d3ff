"""Which control-plane endpoint the bot connects to, and how it verifies it (issue 12: private clusters).

The fake Kubernetes API serves its IP endpoint with a certificate of the cluster CA and its DNS endpoint
(`localhost:PORT`, told apart by TLS SNI) with a certificate of a "public" root, which the bot must find
in the system trust store (SSL_CERT_FILE), as with Google's DNS endpoints."""
from __future__ import annotations

import pytest

from bot.config import ENDPOINT_MODES, ConfigError, Settings
from checks.gateway import ApiError, Gateway
from checks.gateway.endpoints import MODES
from checks.gateway.kube import NODES_LIST
from checks.model import ClusterRef, Status
from tests.conftest import free_port, serve_cluster
from tests.helpers import GKE1, one, run_check

REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
USER = "user:testuser@example.com"


def dead() -> str:
    return f"127.0.0.1:{free_port()}"  # nothing listens there


def dns_only(google, kube, allow_external: bool = True) -> dict:
    """gke1 with its IP endpoints disabled and a DNS endpoint served by the fake API server."""
    cluster = serve_cluster(google, kube, GKE1, "gke1")
    cluster["endpoint"] = dead()
    cluster["controlPlaneEndpointsConfig"] = {
        "dnsEndpointConfig": {"endpoint": kube.dns_endpoint, "allowExternalTraffic": allow_external},
        "ipEndpointsConfig": {"enabled": False}}
    return cluster


@pytest.fixture
def public_roots(kube, tmp_path, monkeypatch):
    """The system trust store holds the DNS endpoint's public root (and not the cluster CA)."""
    monkeypatch.setenv("SSL_CERT_FILE", kube.public_ca_file(tmp_path))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def nodes(settings, endpoint: str = "auto"):
    return Gateway(settings.google_api_url, endpoint=endpoint).kube_list(REF, NODES_LIST)


def test_ip_endpoints_disabled_uses_the_dns_endpoint_with_system_roots(google, kube, settings, public_roots):
    dns_only(google, kube)
    google.cluster(GKE1, "gke1")["masterAuth"]["clusterCaCertificate"] = "UkVEQUNURUQ="  # no CA is needed for DNS
    assert nodes(settings) == []
    assert kube.calls and kube.calls[0].path == "/api/v1/nodes" and kube.calls[0].headers["Host"].startswith("localhost")


def test_dns_endpoint_is_not_verified_with_the_cluster_ca(google, kube, settings, tmp_path, monkeypatch):
    dns_only(google, kube)
    ca_only = tmp_path / "cluster-ca.pem"
    ca_only.write_bytes(kube.ca_pem)  # trusting the cluster CA does not make the DNS endpoint's certificate valid
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_only))
    with pytest.raises(ApiError) as info:
        nodes(settings)
    err = info.value
    assert err.status == "TLS_VERIFY_FAILED" and kube.dns_endpoint in err.message
    assert "system's trusted root certificates" in err.message and "SSL_CERT_FILE" in err.hint


def test_dns_endpoint_closed_to_external_traffic_is_refused_without_a_connection(google, kube, settings,
                                                                                public_roots):
    dns_only(google, kube, allow_external=False)
    f = one(run_check("gke/principal-rbac", settings, REF, USER), Status.ERROR)
    assert "allowExternalTraffic: false" in f.detail and kube.dns_endpoint in f.detail
    assert "gcloud container clusters update gke1 --location=europe-west4-a" in f.remedy
    assert "--enable-dns-access" in f.remedy
    assert kube.calls == []


def test_private_setting_prefers_the_private_endpoint(google, kube, settings):
    cluster = serve_cluster(google, kube, GKE1, "gke1")
    cluster["endpoint"] = dead()
    cluster["privateClusterConfig"] = {"enablePrivateNodes": True, "privateEndpoint": kube.endpoint,
                                       "publicEndpoint": cluster["endpoint"]}
    assert nodes(settings, "private") == []
    with pytest.raises(ApiError) as info:
        nodes(settings, "auto")  # `endpoint`, as gcloud: nothing answers there
    assert info.value.status == "UNREACHABLE"


def test_public_setting_on_a_private_only_cluster_uses_the_dns_endpoint(google, kube, settings, public_roots):
    cluster = serve_cluster(google, kube, GKE1, "gke1")
    cluster["endpoint"] = dead()  # the private address a bot outside the VPC cannot reach
    cluster["privateClusterConfig"] = {"enablePrivateNodes": True, "enablePrivateEndpoint": True,
                                       "privateEndpoint": cluster["endpoint"]}
    cluster["controlPlaneEndpointsConfig"] = {
        "dnsEndpointConfig": {"endpoint": kube.dns_endpoint, "allowExternalTraffic": True},
        "ipEndpointsConfig": {"enabled": True, "enablePublicEndpoint": False}}
    assert nodes(settings, "public") == []
    assert nodes(settings, "dns") == []


def test_unreachable_names_the_endpoint_why_and_what_to_change(google, kube, settings):
    cluster = serve_cluster(google, kube, GKE1, "gke1")
    cluster["endpoint"] = address = dead()
    cluster["masterAuthorizedNetworksConfig"] = {"enabled": True, "cidrBlocks": [{"cidrBlock": "203.0.113.0/24"}]}
    f = one(run_check("gke/principal-rbac", settings, REF, USER), Status.ERROR)
    assert f"`{address}` (endpoint), chosen because GKE_BOT_ENDPOINT=auto" in f.detail
    assert "could not be reached" in f.detail
    assert "--master-authorized-networks=203.0.113.0/24,BOT_EGRESS_IP/32" in f.remedy
    assert "--enable-dns-access" in f.remedy and "GKE_BOT_ENDPOINT=dns" in f.remedy


def test_setting_is_validated_and_reaches_the_gateway(env):
    assert Settings.from_env({**env, "GKE_BOT_ENDPOINT": "DNS"}).endpoint == "dns"
    assert Settings.from_env(env).endpoint == "auto"
    with pytest.raises(ConfigError, match="GKE_BOT_ENDPOINT is one of auto, public, private, dns"):
        Settings.from_env({**env, "GKE_BOT_ENDPOINT": "vpn"})
    assert ENDPOINT_MODES == MODES
    with pytest.raises(ValueError):
        Gateway("http://127.0.0.1:9", endpoint="vpn")


def test_worker_and_cli_pass_the_setting(env, google, kube, tmp_path):
    """`gke-bot check` (the worker builds its Gateway the same way) connects where GKE_BOT_ENDPOINT says."""
    from tests.test_cli import gke_bot
    dns_only(google, kube)
    full = {**env, "GKE_BOT_ENDPOINT": "dns", "SSL_CERT_FILE": kube.public_ca_file(tmp_path)}
    out = gke_bot(full, "check", "why-403", "gke1", "--as", USER, "--format", "json")
    assert out.returncode in (0, 1), out.stderr
    assert "could not be reached" not in out.stdout and "ENDPOINT_REFUSED" not in out.stdout
    assert any(c.path.startswith("/apis/") for c in kube.calls)
    bad = gke_bot({**env, "GKE_BOT_ENDPOINT": "vpn"}, "check", "why-403", "gke1")
    assert bad.returncode == 2 and "GKE_BOT_ENDPOINT" in bad.stderr
