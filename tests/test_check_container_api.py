from checks.model import ClusterRef, Status
from tests.helpers import AGENT, GKE1, drop_binding, one, run_check

REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
ID = "gke/container-api-enabled"
ENABLE = f"gcloud services enable container.googleapis.com --project {GKE1}"


def test_recorded_project_has_the_api_enabled(google, settings):
    f = one(run_check(ID, settings, REF), Status.OK)
    assert "container.googleapis.com" in f.detail and GKE1 in f.detail


def test_disabled_api_is_a_fail_with_the_enable_command(google, settings):
    google.projects[GKE1].services["container.googleapis.com"] = "DISABLED"
    f = one(run_check(ID, settings, REF), Status.FAIL)
    assert ENABLE in f.remedy
    assert "state: DISABLED" in f.evidence
    assert "add-iam-policy-binding" not in f.remedy  # the service agent binding is intact
    assert f.doc_url.startswith("https://cloud.google.com/kubernetes-engine/docs/troubleshooting/")


def test_disabled_api_and_missing_agent_binding_offers_the_seed_remedy(google, settings):
    google.projects[GKE1].services["container.googleapis.com"] = "DISABLED"
    drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    f = one(run_check(ID, settings, REF), Status.FAIL)
    assert ENABLE in f.remedy
    assert f"gcloud projects add-iam-policy-binding {GKE1}" in f.remedy
    assert f'--member "{AGENT}"' in f.remedy and "--role roles/container.serviceAgent" in f.remedy
    assert f"gcloud services disable container.googleapis.com --project {GKE1}" in f.remedy


def test_agent_binding_unreadable_still_reports_the_disabled_api(google, settings):
    google.projects[GKE1].services["container.googleapis.com"] = "DISABLED"
    google.deny("POST", r":getIamPolicy$", "resourcemanager.projects.getIamPolicy")
    f = one(run_check(ID, settings, REF), Status.FAIL)
    assert ENABLE in f.remedy and "resourcemanager.projects.getIamPolicy" in f.remedy


def test_bot_without_permission_is_an_error_not_ok(google, settings):
    google.deny("GET", r"/services/container\.googleapis\.com$", "serviceusage.services.get")
    f = one(run_check(ID, settings, REF), Status.ERROR)
    assert "serviceusage.services.get" in f.detail and "403" in f.detail
