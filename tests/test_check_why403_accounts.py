"""why-403 and the accounts GKE relies on (001 エラー 400/403: アカウントに編集権限がない; エラー 403: リトライ バジェット
が残っていない), built from the recorded gke1 project (gcpdiag test data)."""
from __future__ import annotations

import re

import pytest

from checks.engine import Context, diagnose
from checks.model import ClusterRef, Status
from tests.helpers import AGENT, GKE1, drop_binding, gateway, one, run_check
from tests.test_check_node_pool_recreation import op

GKE1_REF = ClusterRef(GKE1, "europe-west4-a", "gke1")  # default-pool runs as the Compute Engine default SA
GKE2_REF = ClusterRef(GKE1, "europe-west4", "gke2")  # default-pool: gke2sa; low-pod-per-node-pool: default
GKE3_REF = ClusterRef(GKE1, "europe-west4", "gke3")  # default-pool runs as gke3sa (a custom role)
AUTOPILOT = ClusterRef(GKE1, "europe-west4", "autopilot-gke1")
COMPUTE_SA = "12340002-compute@developer.gserviceaccount.com"
COMPUTE = f"serviceAccount:{COMPUTE_SA}"
GKE3SA = "gke3sa@gcpdiag-gke1-aaaa.iam.gserviceaccount.com"
NODE_ROLE = "roles/container.defaultNodeServiceAccount"
RETRY = ("Retry budget exhausted: Google Compute Engine: Required permission 'compute.regions.get' for "
         f"'projects/{GKE1}/regions/europe-west4'.")


# ---- the Compute Engine default service account keeps Editor (or was replaced on purpose) ------
def test_default_account_without_editor_and_nothing_replacing_it_is_a_fail(google, settings):
    drop_binding(google.projects[GKE1].iam_policy, "roles/editor", COMPUTE)
    f = one(run_check("gke/default-accounts", settings, GKE1_REF), Status.FAIL)
    assert f"`{COMPUTE_SA}` lacks `roles/editor`" in f.detail and "`default-pool`" in f.detail
    assert f'--member "{COMPUTE}" \\\n    --role roles/editor \\\n    --condition=None' in f.remedy
    assert f"--role {NODE_ROLE}" in f.remedy
    assert f"gcloud projects get-iam-policy {GKE1} --flatten=bindings --filter=bindings.role=roles/editor" in f.evidence


def test_editor_replaced_on_purpose_by_the_node_role_is_ok(google, settings):
    policy = google.projects[GKE1].iam_policy
    drop_binding(policy, "roles/editor", COMPUTE)
    policy["bindings"].append({"role": NODE_ROLE, "members": [COMPUTE]})
    f = one(run_check("gke/default-accounts", settings, GKE1_REF), Status.OK)
    assert "replaced on purpose" in f.detail and "always pass a least-privilege account" in f.detail


def test_editor_removed_where_the_node_accounts_lack_the_node_role_too(google, settings):
    drop_binding(google.projects[GKE1].iam_policy, "roles/editor", COMPUTE)
    f = one(run_check("gke/default-accounts", settings, GKE3_REF), Status.FAIL)
    assert f"`{GKE3SA}` (`default-pool`)" in f.detail  # gke3sa's custom role lacks the node permissions


def test_google_apis_agent_finding_carries_its_gcpdiag_rule(google, settings):
    drop_binding(google.projects[GKE1].iam_policy, "roles/editor", "serviceAccount:12340002@cloudservices.gserviceaccount.com")
    f = one(run_check("gke/default-accounts", settings, GKE1_REF), Status.FAIL)
    assert f.gcpdiag == "gke/ERR/2021_008"


# ---- compute.googleapis.com, not only container.googleapis.com -----------------------------------
def test_compute_api_disabled_is_a_fail(google, settings):
    assert one(run_check("gke/compute-api-enabled", settings, GKE1_REF), Status.OK)
    google.projects[GKE1].services["compute.googleapis.com"] = "DISABLED"
    f = one(run_check("gke/compute-api-enabled", settings, GKE1_REF), Status.FAIL)
    assert f"gcloud services enable compute.googleapis.com --project {GKE1}" in f.remedy
    assert "state: DISABLED" in f.evidence


# ---- node pools running as the Compute Engine default service account (gke/SEC/2021_001) -------
def test_pools_on_the_default_account_are_a_warn_with_the_least_privilege_alternative(google, settings):
    f = one(run_check("gke/node-default-service-account", settings, GKE2_REF), Status.WARN)
    assert "`low-pod-per-node-pool`" in f.detail and "`default-pool`" not in f.detail
    assert COMPUTE_SA in f.detail and "Editor" in f.detail and f.gcpdiag == "gke/SEC/2021_001"
    assert f"gcloud iam service-accounts create gke-nodes --project {GKE1}" in f.remedy
    assert (f'--member "serviceAccount:gke-nodes@{GKE1}.iam.gserviceaccount.com" \\\n    --role {NODE_ROLE} '
            "\\\n    --condition=None") in f.remedy
    assert ("gcloud container node-pools create low-pod-per-node-pool-lp --cluster=gke2 --location=europe-west4 "
            f"--project={GKE1} \\\n    --service-account=gke-nodes@{GKE1}.iam.gserviceaccount.com") in f.remedy
    assert "`config.serviceAccount: default`" in f.evidence


def test_dedicated_accounts_and_autopilot_defaults(google, settings):
    assert one(run_check("gke/node-default-service-account", settings, GKE3_REF), Status.OK)
    f = one(run_check("gke/node-default-service-account", settings, AUTOPILOT), Status.WARN)
    assert "--autoprovisioning-service-account=gke-nodes@" in f.remedy


# ---- Retry budget exhausted: the named permission on the account the cluster uses ---------------
def test_no_retry_budget_error_is_ok(google, settings):
    f = one(run_check("gke/retry-budget", settings, GKE1_REF), Status.OK)
    assert "Retry budget exhausted" in f.detail


def test_failed_operation_names_the_permission_the_default_account_lacks(google, settings):
    drop_binding(google.projects[GKE1].iam_policy, "roles/editor", COMPUTE)
    op(google, "operation-rb", kind="CREATE_NODE_POOL", suffix="/nodePools/default-pool", error=RETRY)
    f = one(run_check("gke/retry-budget", settings, GKE1_REF), Status.FAIL)
    assert f"`{COMPUTE_SA}` (the service account of default-pool) lacks `compute.regions.get`" in f.detail
    assert f"operation `operation-rb` failed with `{RETRY}`" in f.detail
    # fix 1: a least-privilege account (with the permission) named with --service-account
    assert f"gcloud iam service-accounts create gke-nodes --project {GKE1}" in f.remedy
    assert "--permissions=compute.regions.get" in f.remedy
    assert f"--service-account=gke-nodes@{GKE1}.iam.gserviceaccount.com" in f.remedy
    # fix 2: omit --service-account: the default account, which here lost Editor
    assert "omit `--service-account`" in f.remedy and "no longer holds `roles/editor`" in f.remedy
    assert all("--condition=None" in c for c in re.findall(r"add-iam-policy-binding[^`]*?(?=\n(?:gcloud|```))",
                                                            f.remedy + "\n```"))


def test_args_name_the_permission_for_a_custom_account(google, settings):
    """What `/gke explain` passes: the permission and resource of a pasted error."""
    args = {"permission": "compute.regions.get", "resource": f"projects/{GKE1}/regions/europe-west4"}
    f = one(run_check("gke/retry-budget", settings, GKE3_REF, args=args), Status.FAIL)
    assert f"`{GKE3SA}`" in f.detail and "`projects/gcpdiag-gke1-aaaa/roles/gke3_custom_role`" in f.evidence
    assert f'--member "serviceAccount:{GKE3SA}"' in f.remedy and f"--role {NODE_ROLE}" in f.remedy
    assert "gcloud iam service-accounts create" not in f.remedy  # modify the account in use
    assert f"--service-account={GKE3SA}" in f.remedy
    assert f"`{COMPUTE_SA}`, which has the required permissions by default" in f.remedy


def test_pasted_error_text_is_parsed_and_a_held_permission_is_ok(google, settings):
    args = {"error": f"Error: googleapi: Error 403: {RETRY}"}
    f = one(run_check("gke/retry-budget", settings, GKE1_REF, args=args), Status.OK)
    assert "holds `compute.regions.get`" in f.detail and "`roles/editor`" in f.detail


def test_a_cluster_not_created_yet_would_use_the_default_account(google, settings):
    drop_binding(google.projects[GKE1].iam_policy, "roles/editor", COMPUTE)
    ref = ClusterRef(GKE1, "europe-west4-a", "new-cluster")
    f = one(run_check("gke/retry-budget", settings, ref, args={"error": RETRY}), Status.FAIL)
    assert f"`{COMPUTE_SA}` (the service account of a cluster `new-cluster` created without" in f.detail
    assert "gcloud container clusters create new-cluster --location=europe-west4-a" in f.remedy


# ---- the service agent's evidence is the seed's own command --------------------------------------
def test_service_agent_evidence_uses_the_seed_command(google, settings):
    cmd = f"gcloud projects get-iam-policy {GKE1} --flatten=bindings --filter=bindings.role=roles/container.serviceAgent"
    assert cmd in one(run_check("gke/service-agent-role", settings, GKE1_REF), Status.OK).evidence
    drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    f = one(run_check("gke/service-agent-role", settings, GKE1_REF), Status.FAIL)
    assert cmd in f.evidence and f.gcpdiag == "gke/ERR/2021_007"


# ---- every add-iam-policy-binding the bot prints carries --condition=None ------------------------
@pytest.mark.parametrize("command, ref", [("why-403", GKE1_REF), ("why-403", GKE3_REF), ("doctor", GKE2_REF)])
def test_every_printed_grant_has_condition_none(google, settings, command, ref):
    policy = google.projects[GKE1].iam_policy
    drop_binding(policy, "roles/container.serviceAgent", AGENT)
    drop_binding(policy, "roles/editor", COMPUTE)
    drop_binding(policy, "roles/editor", "serviceAccount:12340002@cloudservices.gserviceaccount.com")
    drop_binding(policy, "roles/owner", "user:testuser@example.com")
    op(google, "operation-rb", cluster=ref.name, kind="CREATE_NODE_POOL", error=RETRY,
       zone=ref.location)
    report = diagnose(command, Context(gateway(settings), ref, command, "user:testuser@example.com"))
    text = "\n".join(f.remedy for f in report.findings)
    commands = re.findall(r"gcloud (?:projects|iam service-accounts) add-iam-policy-binding(?:[^\n]*\\\n)*[^\n]*", text)
    assert len(commands) >= 3, text
    for c in commands:
        assert "--condition=None" in c, c
