"""`/gke rbac CLUSTER VERB RESOURCE [-n NS] [--as P]`: SubjectAccessReview, the bindings that name the
principal, the minimal Role/binding and the IAM alternative, against the fake API server's real RBAC."""
import json
import re

import pytest
import yaml

from bot.grammar import parse
from checks.model import ClusterRef, Status
from tests.conftest import serve_cluster
from tests.helpers import GKE1, one, run_check

GKE2 = ClusterRef(GKE1, "europe-west4", "gke2")
ID = "rbac/access-review"
SEED_SA = "serviceAccount:example-account@example-project.iam.gserviceaccount.com"
SEED = ('Error from server (Forbidden): roles.rbac.authorization.k8s.io is forbidden: User '
        '"example-account@example-project.iam.gserviceaccount.com" cannot list resource "roles" in API group '
        '"rbac.authorization.k8s.io" in the namespace "kube-system": requires one of ["container.roles.list"] '
        'permission(s).')
ALICE = "user:alice@example.com"
RBAC = "rbac.authorization.k8s.io/v1"


@pytest.fixture(autouse=True)
def _served(google, kube):
    serve_cluster(google, kube, GKE1, "gke2")


def rbac(settings, text: str, principal: str = ALICE):
    cmd = parse(f"rbac gke2 {text}")
    return run_check(ID, settings, GKE2, principal, cmd.args)


def reviews(kube) -> list[dict]:
    return [json.loads(c.body)["spec"] for c in kube.calls if c.path.endswith("/subjectaccessreviews")]


def proposal(f) -> list[dict]:
    return list(yaml.safe_load_all(re.search(r"```\n(apiVersion.*?)\n```", f.remedy, re.S)[1]))


def bind(kube, name: str, subject: dict, role: str, namespace: str = "") -> None:
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    kube.add({"apiVersion": RBAC, "kind": kind, "metadata": meta, "subjects": [subject],
              "roleRef": {"kind": "ClusterRole", "name": role, "apiGroup": "rbac.authorization.k8s.io"}})


def test_seed_case_denied_then_the_proposed_role_allows_it(google, kube, settings):
    f = one(rbac(settings, "list roles.rbac.authorization.k8s.io -n kube-system", SEED_SA), Status.FAIL)
    assert SEED in f.detail and "neither Kubernetes RBAC nor IAM (`container.roles.list`) grants it" in f.detail
    assert "No RoleBinding or ClusterRoleBinding names User `example-account@" in f.detail
    docs = proposal(f)
    assert [(d["kind"], d["metadata"].get("namespace")) for d in docs] == [("Role", "kube-system"),
                                                                           ("RoleBinding", "kube-system")]
    assert docs[0]["rules"] == [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["list"]}]
    assert "--role roles/container.viewer" in f.remedy and '--member "' + SEED_SA + '"' in f.remedy
    assert reviews(kube)[0] == {"user": "example-account@example-project.iam.gserviceaccount.com",
                                "groups": ["system:authenticated"], "resourceAttributes": {
                                    "verb": "list", "resource": "roles", "group": "rbac.authorization.k8s.io",
                                    "namespace": "kube-system"}}
    for doc in docs:
        kube.add(doc)
    f = one(rbac(settings, "list roles.rbac.authorization.k8s.io -n kube-system", SEED_SA), Status.OK)
    assert 'RBAC: allowed by RoleBinding "role-reader-example-account' in f.detail


def test_pods_log_maps_to_get_logs_and_a_subresource_rule(google, kube, settings):
    f = one(rbac(settings, "get pods/log -n default"), Status.FAIL)
    assert 'cannot get resource "pods/log" in API group "" in the namespace "default": requires one of ' \
           '["container.pods.getLogs"] permission(s).' in f.detail
    assert reviews(kube)[0]["resourceAttributes"] == {"verb": "get", "resource": "pods", "subresource": "log",
                                                      "group": "", "namespace": "default"}
    assert proposal(f)[0]["rules"][0]["resources"] == ["pods/log"]
    assert "`roles/container.developer`, which includes `container.pods.getLogs`" in f.remedy  # viewer lacks it
    for doc in proposal(f):
        kube.add(doc)
    one(rbac(settings, "get pods/log -n default"), Status.OK)


def test_cluster_wide_request_proposes_a_cluster_role(google, kube, settings):
    f = one(rbac(settings, "list pods"), Status.FAIL)
    assert 'cannot list resource "pods" in API group "" at the cluster scope' in f.detail
    assert [d["kind"] for d in proposal(f)] == ["ClusterRole", "ClusterRoleBinding"]
    assert "namespace" not in reviews(kube)[0]["resourceAttributes"]


def test_bindings_that_name_the_principal_are_listed(google, kube, settings):
    me = {"kind": "User", "name": "alice@example.com", "apiGroup": "rbac.authorization.k8s.io"}
    bind(kube, "alice-view", me, "view", "team-b")
    bind(kube, "alice-nodes", me, "node-reader")
    bind(kube, "bob-admin", dict(me, name="bob@example.com"), "cluster-admin")
    f = one(rbac(settings, "delete pods -n default"), Status.FAIL)
    assert "RoleBinding `team-b/alice-view` → ClusterRole `view`" in f.detail
    assert "ClusterRoleBinding `alice-nodes` → ClusterRole `node-reader`" in f.detail
    assert "bob" not in f.detail and "(none allows this)" in f.detail


def test_bindings_unreadable_leave_the_verdict_and_say_so(google, kube, settings):
    kube.fail("GET", r"/rolebindings$", 403, message="rolebindings.rbac.authorization.k8s.io is forbidden")
    f = one(rbac(settings, "list pods -n default"), Status.FAIL)
    assert "Bindings could not be listed" in f.detail and "list rolebindings (cluster-wide)" in f.detail


def test_group_principal_is_asked_as_the_group(google, kube, settings):
    group = "group:devs@example.com"
    f = one(rbac(settings, "list pods -n default", group), Status.FAIL)
    spec = reviews(kube)[0]
    assert spec["groups"] == ["devs@example.com", "system:authenticated"] and not spec.get("user")
    docs = proposal(f)
    assert docs[1]["subjects"] == [{"kind": "Group", "name": "devs@example.com",
                                    "apiGroup": "rbac.authorization.k8s.io"}]
    assert "--security-group=gke-security-groups@YOUR_DOMAIN" in f.remedy  # gke2 has Groups for RBAC off
    for doc in docs:
        kube.add(doc)
    f = one(rbac(settings, "list pods -n default", group), Status.WARN)
    assert 'to Group "devs@example.com"' in f.detail and "its members do not get it" in f.detail
    google.cluster(GKE1, "gke2")["authenticatorGroupsConfig"] = {
        "enabled": True, "securityGroup": "gke-security-groups@example.com"}
    f = one(rbac(settings, "list pods -n default", group), Status.OK)
    assert 'to Group "devs@example.com"' in f.detail and "security-group" not in f.remedy


def test_allowed_without_a_reason_names_the_iam_binding(google, kube, settings):
    kube.sar_handler = lambda spec: {"allowed": True}  # GKE's IAM authorizer gives no RBAC reason
    f = one(rbac(settings, "list pods -n default", "user:testuser@example.com"), Status.OK)
    assert "IAM grants `container.pods.list` through `roles/owner`" in f.detail


def test_cluster_scoped_resource_ignores_the_namespace(google, kube, settings):
    f = one(rbac(settings, "get nodes -n default"), Status.FAIL)
    assert "namespace" not in reviews(kube)[0]["resourceAttributes"]
    assert "`nodes` are cluster-scoped" in f.detail and proposal(f)[0]["kind"] == "ClusterRole"


def test_custom_resources_map_to_third_party_objects(google, kube, settings):
    kube.add({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}})
    f = one(rbac(settings, "list widgets.example.com -n default"), Status.FAIL)
    assert '["container.thirdPartyObjects.list"]' in f.detail and "roles/container.viewer" in f.remedy
    assert 'widgets.example.com is forbidden' in f.detail


def test_no_principal_skips_without_asking(google, kube, settings):
    cmd = parse("rbac gke2 list pods")
    f = one(run_check(ID, settings, GKE2, "", dict(cmd.args, principal_note="no email in your profile")), Status.SKIP)
    assert "no email in your profile" in f.detail and reviews(kube) == []


def test_bot_may_not_create_reviews_is_an_error(google, kube, settings):
    kube.fail("POST", r"subjectaccessreviews$", 403, message="forbidden")
    f = one(rbac(settings, "list pods -n default"), Status.ERROR)
    assert "create subjectaccessreviews" in f.detail


# -- issue 14: the resource resolved through the cluster's discovery -------------------------------
SEED_ROLE = [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["list"]}]


def test_the_seeds_own_command_resolves_roles_to_its_api_group(google, kube, settings):
    """`rbac CLUSTER list roles -n kube-system`, as 002 writes it: roles are rbac.authorization.k8s.io's."""
    f = one(rbac(settings, "list roles -n kube-system", SEED_SA), Status.FAIL)
    assert SEED in f.detail
    docs = proposal(f)
    assert docs[0]["rules"] == SEED_ROLE and docs[0]["metadata"]["namespace"] == "kube-system"
    assert reviews(kube)[0]["resourceAttributes"]["group"] == "rbac.authorization.k8s.io"
    assert "`roles.rbac.authorization.k8s.io` (API group `rbac.authorization.k8s.io`, namespaced)" in f.evidence
    found = [c for c in kube.calls if c.path in ("/api", "/apis")]
    assert len(found) == 2 and all("as=APIGroupDiscoveryList" in c.headers["Accept"] for c in found)
    for doc in docs:
        kube.add(doc)
    one(rbac(settings, "list roles -n kube-system", SEED_SA), Status.OK)


@pytest.mark.parametrize("typed, resource, group", [
    ("po", "pods", ""), ("pod", "pods", ""), ("deploy", "deployments", "apps"), ("deployment.apps", "deployments", "apps"),
    ("deployments.v1.apps", "deployments", "apps"), ("netpol", "networkpolicies", "networking.k8s.io"),
    ("rolebinding", "rolebindings", "rbac.authorization.k8s.io"), ("po/log", "pods", "")])
def test_short_names_singulars_and_groups(google, kube, settings, typed, resource, group):
    f = one(rbac(settings, f"get {typed} -n default"), Status.FAIL)
    attrs = reviews(kube)[0]["resourceAttributes"]
    assert (attrs["resource"], attrs["group"]) == (resource, group)
    assert proposal(f)[0]["rules"][0]["apiGroups"] == [group]


def test_ambiguous_name_takes_the_core_group_and_says_so(google, kube, settings):
    f = one(rbac(settings, "list events -n default"), Status.FAIL)
    assert reviews(kube)[0]["resourceAttributes"]["group"] == ""
    assert "`events` also names `events.events.k8s.io`; kubectl takes `events`" in f.detail
    one(rbac(settings, "list events.events.k8s.io -n default"), Status.FAIL)
    assert reviews(kube)[-1]["resourceAttributes"]["group"] == "events.k8s.io"


@pytest.mark.parametrize("typed, hint", [("rolez", "`roles`"), ("pods/logs", "`pods/log`"),
                                         ("roles.rbac.authorization.k8s.com", "`roles.rbac.authorization.k8s.io`")])
def test_unknown_names_are_answered_with_close_matches(google, kube, settings, typed, hint):
    f = one(rbac(settings, f"list {typed} -n default"), Status.SKIP)
    assert "Close matches" in f.detail and hint in f.detail
    assert reviews(kube) == []


def test_servers_without_aggregated_discovery_are_read_group_by_group(google, kube, settings):
    kube.aggregated_discovery = False
    f = one(rbac(settings, "list roles -n kube-system", SEED_SA), Status.FAIL)
    assert SEED in f.detail
    assert "/apis/rbac.authorization.k8s.io/v1" in {c.path for c in kube.calls}


def test_discovery_is_declared_as_non_resource_urls():
    from checks.gateway import permissions
    assert {("/api", "get"), ("/apis", "get"), ("/api/*", "get"), ("/apis/*", "get")} <= \
        permissions.kube_nonresource_rules()
    assert not any(r[1].startswith("/") for r in permissions.kube_rules())
