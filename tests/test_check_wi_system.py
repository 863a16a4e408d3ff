"""`/gke wi`, the system side: gke-metadata-server health, the service-account count, kube-dns, and the
start-up initContainer guidance."""
import json

import pytest

from checks import gateway as gateway_mod
from checks.model import ClusterRef, Status
from tests.conftest import serve_cluster
from tests.fakes.kube import pod, service_account
from tests.helpers import GKE1, one
from tests.test_check_wi_cluster import wi

PODS, COUNT, DNS, START = "wi/metadata-server-pods", "wi/ksa-count", "wi/dns", "wi/startup-timeout"
CRASHING = [{"name": "gke-metadata-server", "ready": False, "restartCount": 194,
             "image": "gke.gcr.io/gke-metadata-server", "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff",
                                                  "message": "back-off 5m0s restarting failed container"}},
             "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                          "finishedAt": "2024-05-01T10:00:00Z"}}}]


@pytest.fixture(autouse=True)
def _served(google, kube):
    serve_cluster(google, kube, GKE1, "gke2")
    serve_cluster(google, kube, GKE1, "gke1")


def metadata_pod(kube, name, statuses=None):
    kube.add(pod(name, "kube-system", sa="gke-metadata-server", node=f"node-{name[-5:]}",
                 labels={"k8s-app": "gke-metadata-server"}, container_statuses=statuses or [
                     {"name": "gke-metadata-server", "ready": True, "restartCount": 0, "image": "x", "imageID": "",
                      "state": {"running": {"startedAt": "2024-05-01T10:00:00Z"}}}]))


def many_accounts(kube, n):
    for i in range(n):
        kube.add(service_account(f"sa-{i:04d}", f"ns-{i % 7}"))


# -- 8. gke-metadata-server pods and the service-account count ---------------------------------------
def test_healthy_metadata_server_pods_are_ok(google, kube, settings):
    metadata_pod(kube, "gke-metadata-server-hfs6l")
    f = one(wi(PODS, settings), Status.OK)
    assert "1 `gke-metadata-server` pod(s)" in f.detail


def test_crashlooping_oomkilled_pod_is_a_fail_quoting_its_status(google, kube, settings):
    metadata_pod(kube, "gke-metadata-server-8sm2l", CRASHING)
    metadata_pod(kube, "gke-metadata-server-hfs6l")
    many_accounts(kube, 12)
    f = one(wi(PODS, settings), Status.FAIL)
    assert "1 of 2" in f.detail and "`gke-metadata-server-8sm2l` on `node-8sm2l` (CrashLoopBackOff, OOMKilled)" \
        in f.detail
    assert "has 12 Kubernetes service accounts" in f.detail
    assert json.dumps(CRASHING, sort_keys=True) in f.evidence
    assert "kubectl get pods -n=kube-system | grep CrashLoopBackOff" in f.remedy
    assert "kubectl describe pod gke-metadata-server-8sm2l --namespace=kube-system | grep OOMKilled" in f.remedy


def test_crashloop_without_oom_does_not_count_accounts(google, kube, settings):
    statuses = [dict(CRASHING[0], lastState={"terminated": {"reason": "Error", "exitCode": 1}})]
    metadata_pod(kube, "gke-metadata-server-x4bl4", statuses)
    f = one(wi(PODS, settings), Status.FAIL)
    assert "(CrashLoopBackOff)" in f.detail and "service accounts;" not in f.detail
    assert not any("serviceaccounts" in c.path for c in kube.calls)


def test_no_metadata_server_pod_on_a_workload_identity_cluster_warns(google, kube, settings):
    f = one(wi(PODS, settings), Status.WARN)
    assert "kubectl get daemonset gke-metadata-server -n kube-system" in f.remedy


def test_no_metadata_server_pod_without_workload_identity_skips(google, kube, settings):
    one(wi(PODS, settings, ClusterRef(GKE1, "europe-west4-a", "gke1")), Status.SKIP)


def test_few_accounts_are_ok(google, kube, settings):
    many_accounts(kube, 5)
    f = one(wi(COUNT, settings), Status.OK)
    assert f.detail.startswith("5 Kubernetes service accounts")


@pytest.mark.parametrize("n, status", [(2999, Status.OK), (3000, Status.FAIL)])
def test_accounts_are_counted_across_pages(google, kube, settings, n, status):
    many_accounts(kube, n)
    f = one(wi(COUNT, settings), status)
    pages = [c for c in kube.calls if c.path == "/api/v1/serviceaccounts"]
    assert len(pages) == -(-n // 500) and all("limit=500" in c.query for c in pages)
    assert ["continue=" in c.query for c in pages] == [False] + [True] * (len(pages) - 1)
    if status is Status.FAIL:
        assert "has 3,000 Kubernetes service accounts, not fewer than 3,000" in f.detail  # 002: "3,000 未満"
        assert "(at least 1)" in f.remedy and f.gcpdiag == "gke/WARN/2024_002"


def test_accounts_are_not_counted_without_workload_identity(google, kube, settings):
    many_accounts(kube, 5)
    f = one(wi(COUNT, settings, ClusterRef(GKE1, "europe-west4-a", "gke1")), Status.SKIP)
    assert "Workload Identity is off" in f.detail
    assert not any(c.path == "/api/v1/serviceaccounts" for c in kube.calls)


def test_the_count_is_shared_between_checks(google, kube, settings):
    metadata_pod(kube, "gke-metadata-server-8sm2l", CRASHING)
    many_accounts(kube, 3)
    gw = gateway_mod.Gateway(settings.google_api_url)
    one(wi(PODS, settings, gw=gw), Status.FAIL)
    one(wi(COUNT, settings, gw=gw), Status.OK)
    assert sum(c.path == "/api/v1/serviceaccounts" for c in kube.calls) == 1
    assert sum(c.path == "/api/v1/namespaces/kube-system/pods" for c in kube.calls) == 1


# -- 11. DNS -------------------------------------------------------------------------------------
def kube_dns(kube, name, ready=True):
    kube.add(pod(name, "kube-system", sa="kube-dns", node="node-1", labels={"k8s-app": "kube-dns"}, ready=ready))


def test_ready_kube_dns_is_ok_with_the_advice(google, kube, settings):
    kube_dns(kube, "kube-dns-5c9f4b9c7-abcde")
    f = one(wi(DNS, settings), Status.OK)
    assert "1 kube-dns pod(s) Ready" in f.detail and "GCE_METADATA_HOST=169.254.169.254" in f.detail


def test_no_kube_dns_is_a_fail_with_the_env_manifest(google, kube, settings):
    f = one(wi(DNS, settings), Status.FAIL)
    assert "metadata.google.internal" in f.detail
    assert ("  serviceAccountName: app\n  containers:\n  - image: debian\n    name: main\n"
            "    command: [\"sleep\", \"infinity\"]\n    env:\n    - name: GCE_METADATA_HOST\n"
            "      value: \"169.254.169.254\"") in f.remedy


def test_some_kube_dns_not_ready_warns(google, kube, settings):
    kube_dns(kube, "kube-dns-a")
    kube_dns(kube, "kube-dns-b", ready=False)
    f = one(wi(DNS, settings), Status.WARN)
    assert "1 of 2" in f.detail and "`kube-dns-b`" in f.detail and "Ready=False" in f.evidence


def test_cloud_dns_needs_no_kube_dns(google, kube, settings):
    google.cluster(GKE1, "gke2").setdefault("networkConfig", {})["dnsConfig"] = {"clusterDns": "CLOUD_DNS"}
    assert "Cloud DNS" in one(wi(DNS, settings), Status.OK).detail


# -- 12. start-up timeouts -------------------------------------------------------------------------
SEED_CURL = ("curl -sS -H 'Metadata-Flavor: Google' 'http://169.254.169.254/computeMetadata/v1/instance/service-"
             "accounts/default/token' --retry 30 --retry-connrefused --retry-max-time 60 --connect-timeout 3 --fail "
             "--retry-all-errors > /dev/null && exit 0 || echo 'Retry limit exceeded. Failed to wait for metadata "
             "server to be available. Check if the gke-metadata-server Pod in the kube-system namespace is healthy.' "
             ">&2; exit 1")


def test_guidance_shows_the_seed_initcontainer_with_the_ksa(google, kube, settings):
    kube.add(pod("app-1", sa="app", node="n1"))
    f = one(wi(START, settings), Status.SKIP)
    assert "spec:\n  serviceAccountName: app\n  initContainers:" in f.remedy
    assert "name: workload-identity-initcontainer" in f.remedy and SEED_CURL in f.remedy


def test_pods_that_already_wait_are_ok(google, kube, settings):
    init = [{"name": "workload-identity-initcontainer", "image": "gcr.io/google.com/cloudsdktool/cloud-sdk:alpine",
             "command": ["/bin/bash", "-c", SEED_CURL]}]
    kube.add(pod("app-1", sa="app", node="n1", init_containers=init))
    one(wi(START, settings), Status.OK)
    kube.add(pod("app-2", sa="app", node="n1"))
    one(wi(START, settings), Status.SKIP)


# -- log evidence: gke-metadata-server's errors in Cloud Logging ------------------------------------
from datetime import datetime, timedelta, timezone  # noqa: E402

from tests.fakes.logging import container_entry  # noqa: E402

LOGS = "wi/metadata-server-logs"
POD_IP = ("Unable to find pod: generic::not_found: retry budget exhausted: Pod with IP 10.8.1.7 was not recorded "
          "in the snapshot")
REFUSED = "failed to get token: dial tcp 35.232.136.58:443: connect: connection refused"


def ago(hours: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def log(google, message, hours=1.0, cluster="gke2", container="gke-metadata-server", severity="ERROR",
        location="europe-west4"):
    google.log_entries.append(container_entry(GKE1, location, cluster, "kube-system", "gke-metadata-server-8sm2l",
                                              container, message, ago(hours), severity))


def test_recent_pod_ip_errors_are_quoted_as_a_fail_with_gcpdiag_id(google, kube, settings):
    log(google, POD_IP, hours=2)
    log(google, REFUSED, hours=1)
    # entries the tight filter must leave out: other clusters, other containers, too old, too mild, unrelated
    log(google, POD_IP, cluster="gke3")
    log(google, POD_IP, location="europe-west4-a")
    log(google, POD_IP, container="app")
    log(google, POD_IP, hours=30)
    log(google, POD_IP, severity="INFO")
    log(google, "serving metadata for pod default/app-1")
    f = one(wi(LOGS, settings), Status.FAIL)
    assert f.gcpdiag == "gke/ERR/2023_011"
    assert POD_IP in f.detail and REFUSED in f.detail and f.detail.count("gke-metadata-server-8sm2l") == 2
    assert f.detail.index(REFUSED) < f.detail.index(POD_IP)  # newest first
    [call] = [c for c in google.calls if c.path == "/v2/entries:list"]
    body = json.loads(call.body)
    assert body["resourceNames"] == [f"projects/{GKE1}"] and body["orderBy"] == "timestamp desc"
    assert 'resource.labels.cluster_name="gke2"' in body["filter"] and "severity>=WARNING" in body["filter"]


def test_connection_refused_alone_warns_and_the_control_plane_check_quotes_it(google, kube, settings):
    log(google, REFUSED)
    f = one(wi(LOGS, settings), Status.WARN)
    assert f.gcpdiag == "gke/WARN/2022_001" and "wi/control-plane-availability" in f.detail
    gw = gateway_mod.Gateway(settings.google_api_url)
    f = one(wi("wi/control-plane-availability", settings, gw=gw), Status.OK)  # gke2 is regional
    assert REFUSED in f.evidence


def test_no_errors_is_ok(google, kube, settings):
    log(google, POD_IP, hours=48)
    f = one(wi(LOGS, settings), Status.OK)
    assert "last 24 hours" in f.detail and 'resource.labels.container_name="gke-metadata-server"' in f.evidence


def test_without_logging_permission_says_so_once(google, kube, settings):
    google.deny("POST", r"/v2/entries:list$", "logging.logEntries.list")
    report = diagnose_wi(settings)
    said = [f for f in report.findings if "logging.logEntries.list" in f.detail]
    assert [f.id for f in said] == [LOGS] and said[0].status is Status.SKIP
    assert "roles/logging.viewer" in said[0].detail


def test_logs_are_not_read_without_workload_identity(google, kube, settings):
    one(wi(LOGS, settings, ClusterRef(GKE1, "europe-west4-a", "gke1")), Status.SKIP)
    assert not any(c.path == "/v2/entries:list" for c in google.calls)


def diagnose_wi(settings):
    from checks.engine import Context, diagnose
    from tests.test_check_wi_cluster import ARGS, GKE2
    return diagnose("wi", Context(gateway_mod.Gateway(settings.google_api_url), GKE2, "wi", "", dict(ARGS)))
