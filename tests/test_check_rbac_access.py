import json
import re

import pytest
import yaml

from checks import gateway
from checks.engine import Context, diagnose
from checks.model import ClusterRef, Status
from tests.conftest import free_port, serve_cluster
from tests.helpers import GKE1, drop_binding, one, run_check

REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
ID = "gke/principal-rbac"
USER = "user:testuser@example.com"
EMAIL = "testuser@example.com"
SEED = ('Error from server (Forbidden): pods is forbidden: User "testuser@example.com" cannot list resource "pods" '
        'in API group "" in the namespace "default": requires one of ["container.pods.list"] permission(s).')


@pytest.fixture(autouse=True)
def _served(google, kube):
    serve_cluster(google, kube, GKE1, "gke1")


def allow(kube, resources: list[str], namespace: str = "", verbs=("get", "list"), name: str = "reader") -> None:
    """A (Cluster)Role for `resources` bound to the test user."""
    kind = "Role" if namespace else "ClusterRole"
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    kube.add({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
              "rules": [{"apiGroups": [""], "resources": resources, "verbs": list(verbs)}]})
    kube.add({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind + "Binding", "metadata": meta,
              "subjects": [{"kind": "User", "name": EMAIL, "apiGroup": "rbac.authorization.k8s.io"}],
              "roleRef": {"kind": kind, "name": name, "apiGroup": "rbac.authorization.k8s.io"}})


def sar_specs(kube) -> list[dict]:
    return [json.loads(c.body) for c in kube.calls if c.path.endswith("/subjectaccessreviews")]


def test_iam_lets_in_but_rbac_denies_then_the_proposed_yaml_fixes_it(google, kube, settings):
    f = one(run_check(ID, settings, REF, USER), Status.FAIL)
    assert SEED in f.detail
    assert ('User "testuser@example.com" cannot list resource "namespaces" in API group "" at the cluster scope: '
            'requires one of ["container.namespaces.list"] permission(s).') in f.detail
    assert "IAM lets `user:testuser@example.com` into the cluster" in f.detail and "`roles/owner`" in f.detail
    assert "allowed=false" in f.evidence
    assert f"gcloud projects add-iam-policy-binding {GKE1}" in f.remedy and "--role roles/container.viewer" in f.remedy
    docs = list(yaml.safe_load_all(re.search(r"```\n(apiVersion.*?)\n```", f.remedy, re.S)[1]))
    assert [d["kind"] for d in docs] == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    assert docs[3]["metadata"]["namespace"] == "default" and docs[3]["subjects"][0]["name"] == EMAIL
    for doc in docs:  # apply the proposal as a cluster admin would
        kube.add(doc)
    f = one(run_check(ID, settings, REF, USER), Status.OK)
    assert "RBAC: allowed by" in f.evidence and "RoleBinding" in f.evidence


def test_sar_asks_for_the_email_with_type_meta(google, kube, settings):
    allow(kube, ["namespaces", "pods"])
    one(run_check(ID, settings, REF, USER), Status.OK)
    specs = sar_specs(kube)
    assert {(s["apiVersion"], s["kind"]) for s in specs} == {("authorization.k8s.io/v1", "SubjectAccessReview")}
    asked = {(s["spec"]["user"], s["spec"]["resourceAttributes"]["verb"], s["spec"]["resourceAttributes"]["resource"],
              s["spec"]["resourceAttributes"].get("namespace")) for s in specs}
    assert asked == {(EMAIL, v, "namespaces", None) for v in ("get", "list")} | {
        (EMAIL, v, "pods", "default") for v in ("get", "list")}


def test_only_pods_denied_proposes_only_a_role(google, kube, settings):
    allow(kube, ["namespaces"])
    f = one(run_check(ID, settings, REF, USER, {"namespace": "team-a"}), Status.FAIL)
    assert 'in the namespace "team-a": requires one of ["container.pods.list"]' in f.detail
    assert "namespaces" not in f.detail.split("kubectl then says")[1]
    docs = list(yaml.safe_load_all(re.search(r"```\n(apiVersion.*?)\n```", f.remedy, re.S)[1]))
    assert [(d["kind"], d["metadata"].get("namespace")) for d in docs] == [("Role", "team-a"),
                                                                           ("RoleBinding", "team-a")]
    assert docs[0]["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]


def test_iam_refuses_too(google, kube, settings):
    drop_binding(google.projects[GKE1].iam_policy, "roles/owner", USER)
    f = one(run_check(ID, settings, REF, USER), Status.FAIL)
    assert "IAM does not even grant" in f.detail and "roles/container.viewer" in f.detail


def test_unreachable_cluster_is_an_error_while_other_checks_run(google, kube, settings):
    google.cluster(GKE1, "gke1")["endpoint"] = f"127.0.0.1:{free_port()}"  # nothing listens there
    report = diagnose("why-403", Context(gateway.Gateway(settings.google_api_url), REF, "why-403", USER))
    by_id = {f.id: f for f in report.findings}
    assert by_id[ID].status is Status.ERROR and "UNREACHABLE" in by_id[ID].detail
    assert "could not be reached" in by_id[ID].detail
    assert by_id["gke/principal-cluster-access"].status is Status.OK


def test_bot_may_not_create_reviews_is_an_error(google, kube, settings):
    kube.fail("POST", r"subjectaccessreviews$", 403, message="forbidden")
    f = one(run_check(ID, settings, REF, USER), Status.ERROR)
    assert "create subjectaccessreviews" in f.detail and "403" in f.detail


def test_iam_analysis_is_shared_within_a_job(google, kube, settings):
    gw = gateway.Gateway(settings.google_api_url)
    one(run_check("gke/principal-cluster-access", settings, REF, USER, gw=gw), Status.OK)
    one(run_check(ID, settings, REF, USER, gw=gw), Status.FAIL)
    assert sum(":getIamPolicy" in c.path for c in google.calls) == 1
    assert sum(c.path == "/v1/iam:troubleshoot" for c in google.calls) == 1


@pytest.mark.parametrize("principal, args, expect", [
    ("", {"principal_note": "no email in your Slack profile"}, "no email in your Slack profile"),
    ("group:devs@example.com", {}, "--as user:EMAIL"),
])
def test_skipped_without_a_user(google, kube, settings, principal, args, expect):
    f = one(run_check(ID, settings, REF, principal, args), Status.SKIP)
    assert expect in f.detail
    assert sar_specs(kube) == []
