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


def cluster_viewer_only(google) -> None:
    """The test user gets into the cluster (container.clusters.get) but holds no container.pods.* in IAM."""
    drop_binding(google.projects[GKE1].iam_policy, "roles/owner", USER)
    google.projects[GKE1].iam_policy["bindings"].append({"role": "roles/container.clusterViewer", "members": [USER]})


def test_iam_lets_in_but_rbac_denies_then_the_proposed_yaml_fixes_it(google, kube, settings):
    cluster_viewer_only(google)
    f = one(run_check(ID, settings, REF, USER), Status.FAIL)
    assert SEED in f.detail
    assert ('User "testuser@example.com" cannot list resource "namespaces" in API group "" at the cluster scope: '
            'requires one of ["container.namespaces.list"] permission(s).') in f.detail
    assert "IAM lets `user:testuser@example.com` into the cluster" in f.detail
    assert "`roles/container.clusterViewer`" in f.detail
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
    cluster_viewer_only(google)
    allow(kube, ["namespaces"])
    f = one(run_check(ID, settings, REF, USER, {"namespace": "team-a"}), Status.FAIL)
    assert 'in the namespace "team-a": requires one of ["container.pods.list"]' in f.detail
    assert "namespaces" not in f.detail.split("kubectl then says")[1].split("Each request")[0]
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
    one(run_check(ID, settings, REF, USER, gw=gw), Status.OK)  # roles/owner: IAM grants container.pods.list
    assert sum(":getIamPolicy" in c.path for c in google.calls) == 1
    asked = [json.loads(c.body)["accessTuple"]["permission"] for c in google.calls if c.path == "/v3/iam:troubleshoot"]
    assert sorted(asked) == sorted(["container.clusters.get", "container.namespaces.get", "container.namespaces.list",
                                    "container.pods.get", "container.pods.list"])  # each asked once


@pytest.mark.parametrize("principal, args, expect", [
    ("", {"principal_note": "no email in your Slack profile"}, "no email in your Slack profile"),
    ("group:devs@example.com", {}, "--as user:EMAIL"),
])
def test_skipped_without_a_user(google, kube, settings, principal, args, expect):
    f = one(run_check(ID, settings, REF, principal, args), Status.SKIP)
    assert expect in f.detail
    assert sar_specs(kube) == []


# -- issue 12: SubjectAccessReview as GKE sees the user, and IAM as GKE's second authorizer ---------------
def test_iam_grants_what_rbac_denies_so_gke_allows_it(google, kube, settings):
    """roles/owner carries container.pods.list: GKE allows `kubectl get pods` although no RBAC rule does."""
    f = one(run_check(ID, settings, REF, USER), Status.OK)
    assert "IAM grants `container.pods.list` through `roles/owner`" in f.detail
    assert "RBAC alone would deny it" in f.detail and "allowed=false" in f.evidence


def test_bindings_to_system_authenticated_reach_every_google_user(google, kube, settings):
    cluster_viewer_only(google)
    kube.add({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "viewer"},
              "rules": [{"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": ["get", "list"]}]})
    kube.add({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
              "metadata": {"name": "everyone-views"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                                 "kind": "ClusterRole", "name": "viewer"},
              "subjects": [{"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}]})
    f = one(run_check(ID, settings, REF, USER), Status.OK)
    assert 'RBAC allows it (RBAC: allowed by ClusterRoleBinding "everyone-views"' in f.detail
    assert all(s["spec"]["groups"] == ["system:authenticated"] for s in sar_specs(kube))


def test_a_google_group_binding_is_not_concluded_denied(google, kube, settings):
    """With Google Groups for RBAC, GKE adds the user's groups; the bot cannot see them: WARN, not FAIL."""
    cluster_viewer_only(google)
    google.cluster(GKE1, "gke1")["authenticatorGroupsConfig"] = {"enabled": True,
                                                                 "securityGroup": "gke-security-groups@example.com"}
    allow(kube, ["namespaces", "pods"], verbs=("get", "list"), name="devs-read")
    binding = kube.objects("ClusterRoleBinding")[0]
    binding["subjects"] = [{"kind": "Group", "name": "devs@example.com", "apiGroup": "rbac.authorization.k8s.io"}]
    kube.add(binding)
    f = one(run_check(ID, settings, REF, USER), Status.WARN)
    assert "members of `devs@example.com`" in f.detail and "cannot see Google group membership" in f.detail
    with_groups = [s["spec"]["groups"] for s in sar_specs(kube)]
    assert ["system:authenticated", "devs@example.com"] in with_groups and ["system:authenticated"] in with_groups


def test_an_iam_grant_to_a_group_is_not_concluded_denied(google, kube, settings):
    cluster_viewer_only(google)
    google.projects[GKE1].iam_policy["bindings"].append({"role": "roles/container.viewer",
                                                          "members": ["group:gke-readers@example.com"]})
    f = one(run_check(ID, settings, REF, USER), Status.WARN)
    assert "IAM grants `container.pods.list` to `group:gke-readers@example.com` (`roles/container.viewer`)" in f.detail
