from checks.model import ClusterRef, Status
from tests.helpers import AGENT, GKE1, drop_binding, one, run_check

REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
ID = "gke/service-agent-role"


def test_recorded_project_has_the_binding(google, settings):
    f = one(run_check(ID, settings, REF), Status.OK)
    assert AGENT in f.detail


def test_binding_removed_is_a_fail_with_the_exact_fix(google, settings):
    drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    f = one(run_check(ID, settings, REF), Status.FAIL)
    assert AGENT in f.detail and "roles/container.serviceAgent" in f.detail
    assert f"gcloud projects add-iam-policy-binding {GKE1}" in f.remedy
    assert "service-12340002@container-engine-robot.iam.gserviceaccount.com" in f.remedy
    assert "gcloud services enable container.googleapis.com" in f.remedy
    assert f.doc_url.startswith("https://cloud.google.com/kubernetes-engine/docs/troubleshooting/")
    assert f.remediation and f.remediation.kind == "grant_service_agent"
    assert f.remediation.params == {"project": GKE1, "member": AGENT, "role": "roles/container.serviceAgent"}


def test_only_conditional_binding_does_not_count(google, settings):
    policy = google.projects[GKE1].iam_policy
    for b in policy["bindings"]:
        if b["role"] == "roles/container.serviceAgent":
            b["condition"] = {"title": "until-2020", "expression": "request.time < timestamp('2020-01-01T00:00:00Z')"}
    policy["version"] = 3
    f = one(run_check(ID, settings, REF), Status.FAIL)
    assert "until-2020" in f.evidence


def test_bot_without_permission_is_an_error_not_ok(google, settings):
    google.deny("POST", r":getIamPolicy$", "resourcemanager.projects.getIamPolicy")
    f = one(run_check(ID, settings, REF), Status.ERROR)
    assert "resourcemanager.projects.getIamPolicy" in f.detail
    assert "403" in f.detail
