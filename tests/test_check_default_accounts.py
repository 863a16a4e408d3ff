from checks.model import ClusterRef, Status
from tests.helpers import GKE1, drop_binding, one, run_check

REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
ID = "gke/default-accounts"
COMPUTE_SA = "12340002-compute@developer.gserviceaccount.com"
CLOUDSERVICES = "serviceAccount:12340002@cloudservices.gserviceaccount.com"


def test_recorded_project_is_ok(google, settings):
    f = one(run_check(ID, settings, REF), Status.OK)
    assert COMPUTE_SA in f.detail and CLOUDSERVICES in f.detail


def test_deleted_compute_default_sa_is_a_fail_with_undelete(google, settings):
    del google.projects[GKE1].service_accounts[COMPUTE_SA]
    f = one(run_check(ID, settings, REF), Status.FAIL)
    assert COMPUTE_SA in f.detail and "deleted" in f.detail
    assert f"gcloud iam service-accounts undelete UNIQUE_ID --project {GKE1}" in f.remedy
    assert f'resource.labels.email_id="{COMPUTE_SA}"' in f.remedy and "--freshness=30d" in f.remedy
    assert "404" in f.evidence


def test_disabled_compute_default_sa_is_a_fail_with_enable(google, settings):
    google.projects[GKE1].service_accounts[COMPUTE_SA]["disabled"] = True
    f = one(run_check(ID, settings, REF), Status.FAIL)
    assert f"gcloud iam service-accounts enable {COMPUTE_SA} --project {GKE1}" in f.remedy
    assert "disabled: true" in f.evidence and "112819826788395589395" in f.evidence


def test_google_apis_agent_without_editor_is_a_fail_with_the_grant(google, settings):
    drop_binding(google.projects[GKE1].iam_policy, "roles/editor", CLOUDSERVICES)
    f = one(run_check(ID, settings, REF), Status.FAIL)
    assert CLOUDSERVICES in f.detail
    assert f"gcloud projects add-iam-policy-binding {GKE1}" in f.remedy
    assert f'--member "{CLOUDSERVICES}"' in f.remedy and "--role roles/editor" in f.remedy


def test_one_finding_per_problem(google, settings):
    google.projects[GKE1].service_accounts[COMPUTE_SA]["disabled"] = True
    drop_binding(google.projects[GKE1].iam_policy, "roles/editor", CLOUDSERVICES)
    found = run_check(ID, settings, REF)
    assert [f.status for f in found] == [Status.FAIL, Status.FAIL]
    assert "service-accounts enable" in found[0].remedy and "roles/editor" in found[1].remedy


def test_bot_without_permission_is_an_error_not_ok(google, settings):
    google.deny("GET", r"/serviceAccounts/", "iam.serviceAccounts.get")
    f = one(run_check(ID, settings, REF), Status.ERROR)
    assert "iam.serviceAccounts.get" in f.detail and "403" in f.detail
    assert f"gcloud iam service-accounts describe {COMPUTE_SA}" in f.detail  # 403 may also mean "deleted"
