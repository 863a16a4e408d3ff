"""`/gke wi`, the identities: the KSA and its annotation, the IAM service account and its
roles/iam.workloadIdentityUser binding (recorded gke2sa policy and broken variants)."""
import pytest

from checks import gateway as gateway_mod
from checks.model import Status
from tests.conftest import serve_cluster
from tests.fakes.kube import service_account
from tests.helpers import GKE1, one
from tests.test_check_wi_cluster import wi as wi_check

ARGS = {"namespace": "team-a", "ksa": "app"}
GSA = f"gke2sa@{GKE1}.iam.gserviceaccount.com"
MEMBER = f"serviceAccount:{GKE1}.svc.id.goog[team-a/app]"
ANNOTATION = "iam.gke.io/gcp-service-account"


@pytest.fixture(autouse=True)
def _served(google, kube):
    serve_cluster(google, kube, GKE1, "gke2")


def wi(check_id, settings, gw=None):
    return wi_check(check_id, settings, gw=gw, args=ARGS)


def annotated(kube, value: str = GSA) -> None:
    kube.add(service_account("app", "team-a", {ANNOTATION: value}))


def grant(google, member: str = MEMBER, condition: dict | None = None, policy: dict | None = None) -> None:
    policy = policy if policy is not None else google.projects[GKE1].sa_policies[GSA]
    policy["bindings"].append({"role": "roles/iam.workloadIdentityUser", "members": [member],
                               **({"condition": condition} if condition else {})})


# -- 4. the KSA and its annotation -----------------------------------------------------------------
def test_missing_ksa_is_a_fail_with_create_and_annotate(google, kube, settings):
    f = one(wi("wi/ksa-annotation", settings), Status.FAIL)
    assert "does not exist in namespace `team-a`" in f.detail
    assert "kubectl create serviceaccount app --namespace team-a" in f.remedy
    assert (f"kubectl annotate serviceaccount app \\\n    --namespace team-a \\\n"
            f"    {ANNOTATION}=GSA_NAME@{GKE1}.iam.gserviceaccount.com") in f.remedy
    assert "kubectl describe serviceaccount --namespace team-a app" in f.evidence


PRINCIPAL = (f"principal://iam.googleapis.com/projects/12340002/locations/global/workloadIdentityPools/"
             f"{GKE1}.svc.id.goog/subject/ns/team-a/sa/app")


def test_ksa_without_annotation_or_direct_grant_warns_with_both_fixes(google, kube, settings):
    kube.add(service_account("app", "team-a", {"owner": "team-a"}))
    f = one(wi("wi/ksa-annotation", settings), Status.WARN)
    assert f"no `{ANNOTATION}` annotation" in f.detail and f"`{PRINCIPAL}`" in f.detail
    assert '{"owner": "team-a"}' in f.evidence and "kubectl annotate serviceaccount app" in f.remedy
    assert f"--member={PRINCIPAL}" in f.remedy and "grants it nothing" in f.detail


@pytest.mark.parametrize("member", [PRINCIPAL, PRINCIPAL.replace("principal://", "principalSet://").replace(
    "/subject/ns/team-a/sa/app", "/namespace/team-a")])
def test_direct_grant_to_the_ksa_principal_needs_no_annotation(google, kube, settings, member):
    """GKE lets IAM grant to the KSA's own principal: no annotation, no IAM service account, no FAIL."""
    kube.add(service_account("app", "team-a"))
    google.projects[GKE1].iam_policy["bindings"].append({"role": "roles/storage.objectViewer", "members": [member]})
    f = one(wi("wi/ksa-annotation", settings), Status.OK)
    assert "needs none" in f.detail and "`roles/storage.objectViewer`" in f.detail
    one(wi("wi/gsa-binding", settings), Status.SKIP)


@pytest.mark.parametrize("value", ["gke2sa", "gke2sa@example.com", "GSA_NAME@PROJECT_ID"])
def test_annotation_that_is_not_a_service_account_email_is_a_fail(google, kube, settings, value):
    annotated(kube, value)
    f = one(wi("wi/ksa-annotation", settings), Status.FAIL)
    assert f"names `{value}`" in f.detail
    one(wi("wi/gsa-binding", settings), Status.SKIP)
    assert not any("serviceAccounts" in c.path for c in google.calls)


def test_annotated_ksa_is_ok(google, kube, settings):
    annotated(kube)
    f = one(wi("wi/ksa-annotation", settings), Status.OK)
    assert f"{ANNOTATION}: {GSA}" in f.detail


def test_ksa_unreadable_is_an_error_naming_the_rbac(google, kube, settings):
    kube.fail("GET", r"/serviceaccounts/app$", 403, message="serviceaccounts \"app\" is forbidden")
    f = one(wi("wi/ksa-annotation", settings), Status.ERROR)
    assert "get serviceaccounts in team-a" in f.detail


# -- 5. the IAM service account and its binding ------------------------------------------------------
def test_recorded_gsa_policy_lacks_the_binding_and_the_fix_is_filled_in(google, kube, settings):
    annotated(kube)
    f = one(wi("wi/gsa-binding", settings), Status.FAIL)
    assert f"does not let `{MEMBER}` act as it" in f.detail
    assert (f"gcloud iam service-accounts add-iam-policy-binding {GSA} \\\n    --project {GKE1} \\\n"
            f"    --role roles/iam.workloadIdentityUser \\\n    --member \"{MEMBER}\"") in f.remedy
    assert "bindings of `roles/iam.workloadIdentityUser`: none" in f.evidence


def test_binding_in_place_is_ok(google, kube, settings):
    annotated(kube)
    grant(google)
    f = one(wi("wi/gsa-binding", settings), Status.OK)
    assert MEMBER in f.detail and MEMBER in f.evidence


def test_binding_for_another_ksa_does_not_count(google, kube, settings):
    annotated(kube)
    grant(google, f"serviceAccount:{GKE1}.svc.id.goog[default/app]")
    one(wi("wi/gsa-binding", settings), Status.FAIL)


def test_conditional_binding_does_not_count(google, kube, settings):
    annotated(kube)
    grant(google, condition={"title": "weekdays", "expression": "request.time.getDayOfWeek() < 5"})
    f = one(wi("wi/gsa-binding", settings), Status.FAIL)
    assert "weekdays" in f.detail


def test_project_level_binding_counts(google, kube, settings):
    annotated(kube)
    grant(google, policy=google.projects[GKE1].iam_policy)
    f = one(wi("wi/gsa-binding", settings), Status.OK)
    assert f"on project `{GKE1}`" in f.detail


def test_deleted_gsa_is_a_fail(google, kube, settings):
    annotated(kube, f"gone@{GKE1}.iam.gserviceaccount.com")
    f = one(wi("wi/gsa-binding", settings), Status.FAIL)
    assert "does not exist" in f.detail and f"gcloud iam service-accounts create gone --project {GKE1}" in f.remedy


def test_disabled_gsa_is_a_fail(google, kube, settings):
    annotated(kube)
    grant(google)
    google.projects[GKE1].service_accounts[GSA]["disabled"] = True
    f = one(wi("wi/gsa-binding", settings), Status.FAIL)
    assert f"gcloud iam service-accounts enable {GSA} --project {GKE1}" in f.remedy


def test_gsa_policy_unreadable_is_an_error(google, kube, settings):
    annotated(kube)
    google.deny("POST", r"serviceAccounts/.*:getIamPolicy$", "iam.serviceAccounts.getIamPolicy")
    f = one(wi("wi/gsa-binding", settings), Status.ERROR)
    assert "iam.serviceAccounts.getIamPolicy" in f.detail


def test_member_follows_the_clusters_workload_pool(google, kube, settings):
    google.cluster(GKE1, "gke2")["workloadIdentityConfig"]["workloadPool"] = "fleet-host.svc.id.goog"
    annotated(kube)
    grant(google)  # bound for the project's pool, but the cluster uses another
    f = one(wi("wi/gsa-binding", settings), Status.FAIL)
    assert "serviceAccount:fleet-host.svc.id.goog[team-a/app]" in f.remedy


def test_without_annotation_the_gsa_check_skips_and_the_ksa_is_read_once(google, kube, settings):
    kube.add(service_account("app", "team-a"))
    gw = gateway_mod.Gateway(settings.google_api_url)
    one(wi("wi/ksa-annotation", settings, gw), Status.WARN)
    f = one(wi("wi/gsa-binding", settings, gw), Status.SKIP)
    assert "wi/ksa-annotation" in f.detail
    assert sum(c.path.endswith("/serviceaccounts/app") for c in kube.calls) == 1
