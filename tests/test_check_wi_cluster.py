"""`/gke wi`, the cluster side: IAM Credentials API, workload pool, node pools' metadata mode, control plane,
GKE service agent — on the recorded Workload Identity cluster gke2 and its broken variants."""
import pytest

from checks.engine import Context, diagnose
from checks.model import ClusterRef, Status
from tests.conftest import serve_cluster
from tests.fakes.kube import node, pod
from tests.helpers import AGENT, GKE1, drop_binding, gateway, one, run_check
from tests.test_check_cluster_operations import op

GKE2 = ClusterRef(GKE1, "europe-west4", "gke2")
GKE1_ZONAL = ClusterRef(GKE1, "europe-west4-a", "gke1")
ARGS = {"namespace": "default", "ksa": "app"}
SEED_ORDER = ["wi/iamcredentials-api", "wi/workload-pool", "wi/metadata-server-pools", "wi/ksa-annotation",
              "wi/gsa-binding", "wi/network-policy-egress", "wi/istio-sidecar", "wi/metadata-server-pods", "wi/metadata-server-logs",
              "wi/ksa-count", "wi/control-plane-availability", "gke/service-agent-role", "wi/dns",
              "wi/dns-network-policy",
              "wi/startup-timeout"]


@pytest.fixture(autouse=True)
def _served(google, kube):
    serve_cluster(google, kube, GKE1, "gke2")
    serve_cluster(google, kube, GKE1, "gke1")


def wi(check_id, settings, ref=GKE2, gw=None, args=None):
    """Run one `/gke wi` check for default/app (or `args`) on gke2 (or `ref`)."""
    return run_check(check_id, settings, ref, args=args or ARGS, gw=gw)


# -- 1. IAM Service Account Credentials API ------------------------------------------------------
def test_iamcredentials_enabled_in_the_recorded_project(google, settings):
    f = one(wi("wi/iamcredentials-api", settings), Status.OK)
    assert "iamcredentials.googleapis.com" in f.detail and GKE1 in f.detail


def test_iamcredentials_disabled_is_a_fail_with_the_enable_command(google, settings):
    google.projects[GKE1].services["iamcredentials.googleapis.com"] = "DISABLED"
    f = one(wi("wi/iamcredentials-api", settings), Status.FAIL)
    assert f"gcloud services enable iamcredentials.googleapis.com --project {GKE1}" in f.remedy
    assert f.resource == f"projects/{GKE1}/services/iamcredentials.googleapis.com"


def test_iamcredentials_unreadable_is_an_error_not_ok(google, settings):
    google.deny("GET", r"/services/iamcredentials\.googleapis\.com$", "serviceusage.services.get")
    f = one(wi("wi/iamcredentials-api", settings), Status.ERROR)
    assert "serviceusage.services.get" in f.detail


# -- 2. workload pool ----------------------------------------------------------------------------
def test_workload_pool_of_gke2_is_the_projects(google, settings):
    f = one(wi("wi/workload-pool", settings), Status.OK)
    assert f"`{GKE1}.svc.id.goog`" in f.detail and "workloadIdentityConfig.workloadPool" in f.evidence


def test_workload_identity_off_is_a_fail_with_the_update_command(google, settings):
    f = one(wi("wi/workload-pool", settings, GKE1_ZONAL), Status.FAIL)
    assert "prints nothing" in f.evidence
    assert (f"gcloud container clusters update gke1 --location=europe-west4-a --project={GKE1} "
            f"--workload-pool={GKE1}.svc.id.goog") in f.remedy


def test_foreign_workload_pool_is_a_warning(google, settings):
    google.cluster(GKE1, "gke2")["workloadIdentityConfig"]["workloadPool"] = "fleet-host.svc.id.goog"
    f = one(wi("wi/workload-pool", settings), Status.WARN)
    assert "serviceAccount:fleet-host.svc.id.goog[NAMESPACE/KSA]" in f.detail


# -- 3. GKE metadata server on the KSA's node pools ------------------------------------------------
def schedule(kube, pool: str, name: str = "app-1", node_name: str = "") -> None:
    node_name = node_name or f"gke-gke2-{pool}-a1b2"
    kube.add(node(node_name, pool))
    kube.add(pod(name, sa="app", node=node_name, labels={"app": "app"}))


def set_mode(google, pool: str, mode: str | None) -> None:
    config = next(p for p in google.cluster(GKE1, "gke2")["nodePools"] if p["name"] == pool)["config"]
    if mode is None:
        config.pop("workloadMetadataConfig", None)
    else:
        config["workloadMetadataConfig"] = {"mode": mode}


def test_every_pool_checked_while_no_pod_runs(google, kube, settings):
    f = one(wi("wi/metadata-server-pools", settings), Status.OK)
    assert "`default-pool`" in f.detail and "`low-pod-per-node-pool`" in f.detail and "no pod" in f.detail


def test_only_the_pools_running_the_ksa_pods_count(google, kube, settings):
    set_mode(google, "low-pod-per-node-pool", "GCE_METADATA")
    schedule(kube, "default-pool")
    kube.add(pod("other", sa="other", node="gke-gke2-low-pod-per-node-pool-x"))
    f = one(wi("wi/metadata-server-pools", settings), Status.OK)
    assert "`default-pool`" in f.detail and "low-pod-per-node-pool" not in f.detail
    assert "(pods: app-1)" in f.evidence


def test_pool_without_gke_metadata_is_a_fail_with_the_update_command(google, kube, settings):
    set_mode(google, "low-pod-per-node-pool", "GCE_METADATA")
    schedule(kube, "low-pod-per-node-pool")
    f = one(wi("wi/metadata-server-pools", settings), Status.FAIL)
    assert "`low-pod-per-node-pool`" in f.detail and "default-pool" not in f.detail
    assert ("gcloud container node-pools update low-pod-per-node-pool --cluster=gke2 --location=europe-west4 "
            f"--project={GKE1} --workload-metadata=GKE_METADATA") in f.remedy
    assert 'value(config.workloadMetadataConfig.mode)" → GCE_METADATA' in f.evidence


def test_unset_mode_without_pods_fails_every_such_pool(google, kube, settings):
    set_mode(google, "default-pool", None)
    f = one(wi("wi/metadata-server-pools", settings), Status.FAIL)
    assert "`default-pool`" in f.detail and "→ (unset)" in f.evidence and "First enable" not in f.remedy


def test_workload_identity_off_says_to_enable_it_first(google, kube, settings):
    f = one(wi("wi/metadata-server-pools", settings, GKE1_ZONAL), Status.FAIL)
    assert f.remedy.startswith("First enable Workload Identity")


def test_autopilot_always_runs_the_metadata_server(google, kube, settings):
    f = one(wi("wi/metadata-server-pools", settings, ClusterRef(GKE1, "europe-west4", "autopilot-gke1")), Status.OK)
    assert "Autopilot" in f.detail
    assert not kube.calls


def test_pods_list_denied_is_an_error_naming_the_rbac(google, kube, settings):
    kube.fail("GET", r"/namespaces/default/pods$", 403, message='pods is forbidden: User "bot" cannot list')
    f = one(wi("wi/metadata-server-pools", settings), Status.ERROR)
    assert "list pods in default" in f.detail and "403" in f.detail


# -- 9. zonal control plane ----------------------------------------------------------------------
def test_regional_control_plane_is_ok(google, settings):
    f = one(wi("wi/control-plane-availability", settings), Status.OK)
    assert "regional" in f.detail and "none" in f.evidence


def test_zonal_control_plane_warns_with_the_500_and_the_log_line(google, kube, settings):
    f = one(wi("wi/control-plane-availability", settings, GKE1_ZONAL), Status.WARN)
    assert f"dial tcp {kube.endpoint}:443: connect: connection refused" in f.detail
    assert "answers 500" in f.detail and "--location=europe-west4 " in f.remedy


def test_zonal_control_plane_under_maintenance_is_a_fail_listing_the_operation(google, settings):
    op(google, "operation-1-upgrade", "gke1", kind="UPGRADE_MASTER")
    op(google, "operation-2-other", "gke4", kind="UPGRADE_MASTER")
    f = one(wi("wi/control-plane-availability", settings, GKE1_ZONAL), Status.FAIL)
    assert "operation-1-upgrade" in f.detail and "operation-2-other" not in f.detail
    assert "gcloud container operations wait operation-1-upgrade --location=europe-west4-a" in f.remedy


def test_zonal_with_a_node_operation_only_stays_a_warning(google, settings):
    op(google, "operation-3-nodes", "gke1", kind="UPGRADE_NODES")
    f = one(wi("wi/control-plane-availability", settings, GKE1_ZONAL), Status.WARN)
    assert "operation-3-nodes" in f.evidence


def test_operations_unreadable_keep_the_zonal_verdict(google, settings):
    google.deny("GET", r"/operations$", "container.operations.list")
    f = one(wi("wi/control-plane-availability", settings, GKE1_ZONAL), Status.WARN)
    assert "container.operations.list" in f.evidence


# -- 10. GKE service agent (DeployPatch failed), reused ----------------------------------------------
def test_service_agent_check_runs_for_wi_in_the_seed_order(google, kube, settings):
    drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    report = diagnose("wi", Context(gateway(settings), GKE2, "wi", "", dict(ARGS)))
    assert [f.id for f in report.findings] == SEED_ORDER
    agent = next(f for f in report.findings if f.id == "gke/service-agent-role")
    assert agent.status is Status.FAIL and "DeployPatch failed" in agent.detail


# -- doctor: the cluster-level Workload Identity checks (no KSA) ------------------------------------
GKE4_ZONAL = ClusterRef(GKE1, "europe-west4-a", "gke4")  # recorded: zonal, with Workload Identity
DOCTOR_WI = ["wi/workload-pool", "wi/metadata-server-pools", "wi/control-plane-availability", "wi/ksa-count",
             "wi/metadata-server-pods"]


def doctor(check_id, settings, ref):
    return run_check(check_id, settings, ref, args={})


def test_doctor_runs_the_cluster_level_workload_identity_checks():
    from checks.registry import for_command
    assert set(DOCTOR_WI) <= {c.id for c in for_command("doctor")}


def test_doctor_warns_for_a_zonal_control_plane_with_workload_identity(google, kube, settings):
    serve_cluster(google, kube, GKE1, "gke4")
    f = one(doctor("wi/control-plane-availability", settings, GKE4_ZONAL), Status.WARN)
    assert f.gcpdiag == "gke/WARN/2022_001" and "zonal control plane" in f.detail
    one(doctor("wi/control-plane-availability", settings, GKE2), Status.OK)  # regional
    one(doctor("wi/control-plane-availability", settings, GKE1_ZONAL), Status.SKIP)  # zonal, no Workload Identity


def test_doctor_checks_every_pool_of_a_workload_identity_cluster(google, kube, settings):
    f = one(doctor("wi/metadata-server-pools", settings, GKE2), Status.OK)
    assert "`default-pool`" in f.detail and "`low-pod-per-node-pool`" in f.detail
    set_mode(google, "low-pod-per-node-pool", "GCE_METADATA")
    f = one(doctor("wi/metadata-server-pools", settings, GKE2), Status.WARN)
    assert "`low-pod-per-node-pool`" in f.detail and "--workload-metadata=GKE_METADATA" in f.remedy
    assert not any("/pods" in c.path for c in kube.calls)  # no KSA: no pods read
    one(doctor("wi/metadata-server-pools", settings, GKE1_ZONAL), Status.SKIP)


def test_doctor_warns_when_workload_identity_is_off(google, kube, settings):
    f = one(doctor("wi/workload-pool", settings, GKE1_ZONAL), Status.WARN)
    assert f.gcpdiag == "gke/SEC/2023_001" and "--workload-pool=" in f.remedy
    one(doctor("wi/workload-pool", settings, ClusterRef(GKE1, "europe-west4", "autopilot-gke1")), Status.OK)
