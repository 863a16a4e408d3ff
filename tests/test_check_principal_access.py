import json

import pytest

from checks import gateway
from checks.model import ClusterRef, Status
from tests.helpers import GKE1, drop_binding, one, run_check

REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
ID = "gke/principal-cluster-access"
USER = "user:testuser@example.com"
REQUIRED = ('Required "container.clusters.get" permission(s) for '
            '"projects/gcpdiag-gke1-aaaa/locations/europe-west4-a/clusters/gke1"')


def policy(google) -> dict:
    return google.projects[GKE1].iam_policy


def bind(google, role: str, member: str, condition: dict | None = None) -> None:
    binding = {"role": role, "members": [member]}
    if condition:
        binding["condition"] = condition
        policy(google)["version"] = 3
    policy(google)["bindings"].append(binding)


def custom_role(google, name: str, permissions: list[str]) -> str:
    full = f"projects/{GKE1}/roles/{name}"
    google.projects[GKE1].custom_roles[full] = {"name": full, "title": name, "includedPermissions": permissions,
                                                "stage": "GA", "etag": "BwXXp/+O7cs="}
    return full


def troubleshoot_bodies(google) -> list[dict]:
    return [json.loads(c.body) for c in google.calls if c.path == "/v3/iam:troubleshoot"]


def test_owner_is_ok_from_the_local_analysis_when_troubleshooter_refuses(google, settings):
    f = one(run_check(ID, settings, REF, USER), Status.OK)
    assert "`roles/owner` on `projects/gcpdiag-gke1-aaaa`" in f.detail
    assert "project IAM policy" in f.detail and "403" in f.detail  # says why it did not use the troubleshooter
    assert len(troubleshoot_bodies(google)) == 1
    # the real permissions the troubleshooter needs (it has none of its own), and what was not evaluated
    assert "policytroubleshooter.iam" not in f.detail
    assert "`iam.denypolicies.get`" in f.detail and "`resourcemanager.organizations.getIamPolicy`" in f.detail
    assert "IAM deny policies were not evaluated" in f.detail


def test_troubleshooter_gets_the_bare_email_and_decides(google, settings):
    google.troubleshooter_enabled = True
    f = one(run_check(ID, settings, REF, USER), Status.OK)
    assert "Policy Troubleshooter" in f.detail and "`roles/owner`" in f.detail
    [body] = troubleshoot_bodies(google)
    assert body["accessTuple"] == {
        "principal": "testuser@example.com", "permission": "container.clusters.get",
        "fullResourceName": f"//container.googleapis.com/projects/{GKE1}/locations/europe-west4-a/clusters/gke1"}
    assert "cannot be seen locally" not in f.detail  # the troubleshooter's verdict, not the local analysis


@pytest.mark.parametrize("troubleshooter", [False, True])
def test_binding_removed_is_a_fail_with_the_smallest_role(google, settings, troubleshooter):
    google.troubleshooter_enabled = troubleshooter
    drop_binding(policy(google), "roles/owner", USER)
    f = one(run_check(ID, settings, REF, USER), Status.FAIL)
    assert f"`{USER}` lacks `container.clusters.get`" in f.detail
    assert REQUIRED in f.evidence
    assert f"gcloud projects add-iam-policy-binding {GKE1}" in f.remedy
    assert f'--member "{USER}"' in f.remedy and "--role roles/container.clusterViewer" in f.remedy
    assert "gcloud auth list" in f.remedy
    assert f.doc_url.startswith("https://cloud.google.com/kubernetes-engine/docs/troubleshooting/")
    local = "cannot be seen locally" in f.detail
    assert local is not troubleshooter
    assert ("Policy Troubleshooter: `NOT_GRANTED`" in f.evidence) is troubleshooter
    if not troubleshooter:
        assert f"gcloud projects get-iam-policy {GKE1}" in f.evidence and f"no binding names `{USER}`" in f.evidence


def test_custom_role_missing_the_permission_then_granting_it(google, settings):
    drop_binding(policy(google), "roles/owner", USER)
    role = custom_role(google, "kubectl_users", ["container.pods.list", "resourcemanager.projects.get"])
    bind(google, role, USER)
    f = one(run_check(ID, settings, REF, USER), Status.FAIL)
    assert f"`{role}`" in f.evidence
    gateway._role_cache.clear()
    google.projects[GKE1].custom_roles[role]["includedPermissions"].append("container.clusters.get")
    f = one(run_check(ID, settings, REF, USER), Status.OK)
    assert f"`{role}` on `projects/{GKE1}`" in f.detail


def test_binding_to_a_deleted_custom_role(google, settings):
    drop_binding(policy(google), "roles/owner", USER)
    bind(google, f"projects/{GKE1}/roles/deleted_role", USER)
    f = one(run_check(ID, settings, REF, USER), Status.FAIL)
    assert f"`projects/{GKE1}/roles/deleted_role`, a role that no longer exists" in f.detail


@pytest.mark.parametrize("troubleshooter", [False, True])
def test_conditional_binding_is_reported_not_counted(google, settings, troubleshooter):
    google.troubleshooter_enabled = troubleshooter
    drop_binding(policy(google), "roles/owner", USER)
    bind(google, "roles/container.clusterViewer", USER,
         {"title": "weekdays", "expression": "request.time.getDayOfWeek() < 5"})
    f = one(run_check(ID, settings, REF, USER), Status.FAIL)
    assert "Conditional bindings that would grant it are not counted" in f.detail
    assert "`roles/container.clusterViewer`" in f.detail and "condition 'weekdays'" in f.detail


def test_group_and_domain_members(google, settings):
    drop_binding(policy(google), "roles/owner", USER)
    bind(google, "roles/container.clusterViewer", "domain:example.com")
    f = one(run_check(ID, settings, REF, USER), Status.OK)
    assert "`roles/container.clusterViewer`" in f.detail
    group = "group:gke-admins@example.com"
    bind(google, "roles/container.admin", group)
    google.troubleshooter_enabled = True
    google.reset_calls()
    f = one(run_check(ID, settings, REF, group), Status.OK)
    assert "`roles/container.admin`" in f.detail and "not groups" in f.detail
    assert troubleshoot_bodies(google) == []  # the troubleshooter takes no groups


def test_troubleshooter_unavailable_falls_back(google, settings):
    google.troubleshooter_enabled = True
    google.fail("POST", r"iam:troubleshoot$", 503)
    f = one(run_check(ID, settings, REF, USER), Status.OK)
    assert "503" in f.detail and "project IAM policy" in f.detail


def test_bot_without_policy_permission_is_an_error_not_ok(google, settings):
    google.deny("POST", r":getIamPolicy$", "resourcemanager.projects.getIamPolicy")
    f = one(run_check(ID, settings, REF, USER), Status.ERROR)
    assert "resourcemanager.projects.getIamPolicy" in f.detail and "403" in f.detail


def test_bot_without_roles_get_is_an_error_not_ok(google, settings):
    google.deny("GET", r"/v1/roles/owner$", "iam.roles.get")
    f = one(run_check(ID, settings, REF, USER), Status.ERROR)
    assert "iam.roles.get" in f.detail and "roles.get roles/owner" in f.detail


def test_unknown_asker_is_skipped_with_the_note(google, settings):
    note = "Your Slack profile shows no email address: add `--as user:EMAIL`."
    f = one(run_check(ID, settings, REF, "", {"principal_note": note}), Status.SKIP)
    assert f.detail == note
    assert not any("troubleshoot" in c.path or "IamPolicy" in c.path for c in google.calls)


def test_project_access_lists_permissions_with_their_bindings(google, settings):
    """The shared helper the rbac command builds on: which permissions, from which bindings."""
    from checks.access import project_access
    from tests.helpers import gateway as make_gateway
    sa = "serviceAccount:gke2sa@gcpdiag-gke1-aaaa.iam.gserviceaccount.com"
    bind(google, "roles/container.clusterViewer", sa, {"title": "never", "expression": "false"})
    access = project_access(make_gateway(settings), GKE1, sa)
    assert [b.role for b in access.bindings] == [f"projects/{GKE1}/roles/gke2_custom_role",
                                                 "roles/container.clusterViewer"]
    perms = access.permissions()
    assert [b.role for b in perms["monitoring.timeSeries.create"]] == [f"projects/{GKE1}/roles/gke2_custom_role"]
    assert "container.clusters.get" not in perms  # only through the conditional binding
    assert [b.condition for b in access.granting("container.clusters.get", conditional=True)] == ["never"]


def deny_policy(google, principal_email: str, permission: str = "container.googleapis.com/clusters.get") -> dict:
    policy = {"name": f"policies/cloudresourcemanager.googleapis.com%2Fprojects%2F12340002/denypolicies/no-gke",
              "kind": "DenyPolicy", "displayName": "no GKE", "etag": "MTc=",
              "rules": [{"denyRule": {"deniedPrincipals": [f"principal://goog/subject/{principal_email}"],
                                      "deniedPermissions": [permission]}}]}
    google.projects[GKE1].deny_policies.append(policy)
    return policy


def test_a_deny_policy_overrides_the_owner_binding(google, settings):
    """Troubleshooter v3 evaluates deny policies: the owner binding grants, a deny rule denies (v1 said OK)."""
    google.troubleshooter_enabled = True
    deny_policy(google, "testuser@example.com")
    f = one(run_check(ID, settings, REF, USER), Status.FAIL)
    assert "denied by deny policy `policies/cloudresourcemanager.googleapis.com%2Fprojects%2F12340002/denypolicies/" \
           "no-gke` on `projects/gcpdiag-gke1-aaaa`" in f.detail
    assert "`roles/owner` on `projects/gcpdiag-gke1-aaaa`" in f.detail  # the allow binding it overrides
    assert "exceptionPrincipals" in f.remedy


def test_deny_policies_unreadable_are_said_not_ignored(google, settings):
    google.troubleshooter_enabled = True
    google.troubleshooter_reads_deny = False
    f = one(run_check(ID, settings, REF, USER), Status.OK)
    assert "Policy Troubleshooter" in f.detail and "IAM deny policies were not evaluated" in f.detail
    assert "`iam.denypolicies.get`" in f.detail


def test_deleted_custom_role_grants_nothing(google, settings):
    """IAM keeps a deleted custom role for 7 days, permissions listed and `deleted: true`: it grants nothing."""
    drop_binding(policy(google), "roles/owner", USER)
    role = custom_role(google, "kubectl_users", ["container.clusters.get"])
    google.projects[GKE1].custom_roles[role]["deleted"] = True
    bind(google, role, USER)
    for troubleshooter in (False, True):
        google.troubleshooter_enabled = troubleshooter
        gateway._role_cache.clear()
        f = one(run_check(ID, settings, REF, USER), Status.FAIL)
        if not troubleshooter:
            assert f"`{role}`, a custom role marked deleted" in f.detail and "gcloud iam roles undelete" in f.detail


def test_organization_custom_role_resolves(google, settings):
    drop_binding(policy(google), "roles/owner", USER)
    role = "organizations/11112222/roles/gkeAccess"
    google.org_roles[role] = {"name": role, "title": "GKE access", "includedPermissions": ["container.clusters.get"],
                              "stage": "GA", "etag": "BwXXp/+O7cs="}
    bind(google, role, USER)
    f = one(run_check(ID, settings, REF, USER), Status.OK)
    assert f"`{role}` on `projects/{GKE1}`" in f.detail
    assert any(c.path == f"/v1/{role}" for c in google.calls)
