import pytest

from checks import gateway
from checks.model import ClusterRef, Status
from tests.helpers import GKE1, drop_binding, one, run_check

ID = "gke/node-service-account"
REGION = "europe-west4"
COMPUTE_SA = "12340002-compute@developer.gserviceaccount.com"
GKE2SA = f"gke2sa@{GKE1}.iam.gserviceaccount.com"
GKE3SA = f"gke3sa@{GKE1}.iam.gserviceaccount.com"
NODE_ROLE = "roles/container.defaultNodeServiceAccount"
NODE_PERMS = ["autoscaling.sites.writeMetrics", "logging.logEntries.create", "monitoring.metricDescriptors.create",
              "monitoring.metricDescriptors.list", "monitoring.timeSeries.create", "monitoring.timeSeries.list"]


@pytest.fixture(autouse=True)
def _fresh_role_cache(monkeypatch):
    monkeypatch.setattr(gateway, "_role_cache", {})  # role definitions outlive a job; not a test


def ref(name: str, location: str = REGION) -> ClusterRef:
    return ClusterRef(GKE1, location, name)


def binding(google, role: str) -> dict:
    return next(b for b in google.projects[GKE1].iam_policy["bindings"] if b["role"] == role)


def test_recorded_gke3_custom_role_lacks_the_node_permissions(google, settings):
    f = one(run_check(ID, settings, ref("gke3")), Status.FAIL)
    assert GKE3SA in f.detail and "`default-pool`" in f.detail
    assert all(f"`{p}`" in f.detail for p in NODE_PERMS)
    assert "Retry budget exhausted: Google Compute Engine: Required permission" in f.detail
    assert f"projects/{GKE1}/roles/gke3_custom_role" in f.evidence
    assert f"gcloud projects add-iam-policy-binding {GKE1}" in f.remedy
    assert f'--member "serviceAccount:{GKE3SA}"' in f.remedy and f"--role {NODE_ROLE}" in f.remedy


def test_recorded_gke2_custom_role_and_default_sa_are_ok(google, settings):
    f = one(run_check(ID, settings, ref("gke2")), Status.OK)
    assert GKE2SA in f.detail and COMPUTE_SA in f.detail and "low-pod-per-node-pool" in f.detail


def test_granting_the_node_role_fixes_gke3(google, settings):
    google.projects[GKE1].iam_policy["bindings"].append({"role": NODE_ROLE, "members": [f"serviceAccount:{GKE3SA}"]})
    one(run_check(ID, settings, ref("gke3")), Status.OK)


def test_custom_role_missing_one_permission(google, settings):
    name = f"projects/{GKE1}/roles/gke2_trimmed"
    google.projects[GKE1].custom_roles[name] = {"name": name, "title": "trimmed", "stage": "GA", "etag": "BwXX",
                                                "includedPermissions": NODE_PERMS[:-1] + ["storage.objects.get"]}
    binding(google, f"projects/{GKE1}/roles/gke2_custom_role")["role"] = name
    f = one(run_check(ID, settings, ref("gke2")), Status.FAIL)
    assert GKE2SA in f.detail and "lacks 1 of the 6 permissions" in f.detail
    assert "`monitoring.timeSeries.list`" in f.detail
    assert not any(f"`{p}`" in f.detail for p in NODE_PERMS[:-1])
    assert name in f.evidence and COMPUTE_SA not in f.detail  # the other pool's account is fine


def test_default_compute_sa_without_editor_fails(google, settings):
    drop_binding(google.projects[GKE1].iam_policy, "roles/editor", f"serviceAccount:{COMPUTE_SA}")
    f = one(run_check(ID, settings, ref("gke1", "europe-west4-a")), Status.FAIL)
    assert COMPUTE_SA in f.detail and "`default-pool`" in f.detail
    assert all(f"`{p}`" in f.detail for p in NODE_PERMS)
    assert "no unconditional role" in f.evidence


def test_conditional_and_vanished_roles_do_not_count(google, settings):
    b = binding(google, f"projects/{GKE1}/roles/gke2_custom_role")
    b["condition"] = {"title": "until-2020", "expression": "request.time < timestamp('2020-01-01T00:00:00Z')"}
    google.projects[GKE1].iam_policy["version"] = 3
    google.projects[GKE1].iam_policy["bindings"].append(
        {"role": f"projects/{GKE1}/roles/deleted_role", "members": [f"serviceAccount:{GKE2SA}"]})
    f = one(run_check(ID, settings, ref("gke2")), Status.FAIL)
    assert GKE2SA in f.detail and all(f"`{p}`" in f.detail for p in NODE_PERMS)
    assert "until-2020" in f.evidence and "deleted_role" in f.evidence and "no longer exists" in f.evidence


def test_disabled_node_sa_is_a_fail_with_enable(google, settings):
    google.projects[GKE1].service_accounts[GKE2SA]["disabled"] = True
    f = one(run_check(ID, settings, ref("gke2")), Status.FAIL)
    assert GKE2SA in f.detail and "`default-pool`" in f.detail and "low-pod" not in f.detail
    assert f"gcloud iam service-accounts enable {GKE2SA} --project {GKE1}" in f.remedy


def test_deleted_node_sa_is_a_fail_with_undelete(google, settings):
    del google.projects[GKE1].service_accounts[GKE3SA]
    f = one(run_check(ID, settings, ref("gke3")), Status.FAIL)
    assert "deleted" in f.detail and "Retry budget exhausted" in f.detail
    assert "gcloud iam service-accounts undelete UNIQUE_ID" in f.remedy


def test_autopilot_uses_the_autoprovisioning_default(google, settings):
    f = one(run_check(ID, settings, ref("autopilot-gke1")), Status.OK)
    assert COMPUTE_SA in f.detail and "autoprovisioning defaults (Autopilot)" in f.detail
    google.cluster(GKE1, "autopilot-gke1")["autoscaling"]["autoprovisioningNodePoolDefaults"]["serviceAccount"] = GKE3SA
    f = one(run_check(ID, settings, ref("autopilot-gke1")), Status.FAIL)
    assert GKE3SA in f.detail and "Autopilot" in f.detail


def test_bot_without_role_permission_is_an_error_not_ok(google, settings):
    google.deny("GET", r"/roles/", "iam.roles.get")
    f = one(run_check(ID, settings, ref("gke3")), Status.ERROR)
    assert "iam.roles.get" in f.detail and "403" in f.detail


def test_one_unreadable_account_hides_no_other_finding(google, settings):
    compute = "serviceAccount:12340002-compute@developer.gserviceaccount.com"
    drop_binding(google.projects[GKE1].iam_policy, "roles/editor", compute)
    google.deny("GET", r"/serviceAccounts/gke2sa@", "iam.serviceAccounts.get")
    findings = run_check(ID, settings, ClusterRef(GKE1, "europe-west4", "gke2"))
    by_status = {f.status.value: f for f in findings}
    assert set(by_status) == {"ERROR", "FAIL"}
    assert "iam.serviceAccounts.get" in by_status["ERROR"].detail
    assert "12340002-compute@developer.gserviceaccount.com" in by_status["FAIL"].detail
