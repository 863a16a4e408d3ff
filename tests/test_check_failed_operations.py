"""Recent failed operations are always shown, verbatim, with what they mean (why-400, why-403, doctor)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from checks.engine import Context, diagnose
from checks.model import ClusterRef, Status
from checks.registry import for_command
from tests.helpers import GKE1, gateway, one, run_check
from tests.test_check_node_pool_recreation import op

ID = "gke/recent-failed-operations"
REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
RETRY = ("Retry budget exhausted: Google Compute Engine: Required permission 'compute.regions.get' for "
         "'projects/gcpdiag-gke1-aaaa/regions/europe-west4'.")


def ago(**kw) -> str:
    return (datetime.now(timezone.utc) - timedelta(**kw)).isoformat().replace("+00:00", "Z")


def test_runs_in_why_400_why_403_and_doctor():
    for command in ("why-400", "why-403", "doctor"):
        assert ID in [c.id for c in for_command(command)]


def test_no_failure_is_ok(google, settings):
    op(google, "operation-ok", suffix="/nodePools/default-pool")
    f = one(run_check(ID, settings, REF), Status.OK)
    assert "No operation on `gke1` failed in the last 7 days (1 operation(s) read)" in f.detail


def test_each_failure_quoted_verbatim_with_its_meaning(google, settings):
    op(google, "operation-1", kind="UPDATE_CLUSTER", error="DeployPatch failed", started=ago(hours=3), ended=ago(hours=3))
    op(google, "operation-2", kind="CREATE_NODE_POOL", suffix="/nodePools/pool-2", error=RETRY, started=ago(hours=2),
       ended=ago(hours=2))
    op(google, "operation-3", kind="UPDATE_CLUSTER", error='Node pool "default-pool" requires recreation.',
       started=ago(hours=1), ended=ago(hours=1))
    op(google, "operation-4", kind="UPDATE_CLUSTER", error="DeployPatch failed", started=ago(minutes=5),
       ended=ago(minutes=5))
    op(google, "operation-old", kind="UPDATE_CLUSTER", error="Ancient history", started=ago(days=9), ended=ago(days=9))
    op(google, "operation-other", cluster="gke4", kind="UPDATE_CLUSTER", error="Not this cluster")
    found = run_check(ID, settings, REF)
    assert [f.status for f in found] == [Status.WARN] * 3
    deploy, recreation, retry = found  # newest first; identical errors grouped
    assert "```\nDeployPatch failed\n```" in deploy.detail and "2 times, last `operation-4`" in deploy.detail
    assert "roles/container.serviceAgent" in deploy.detail
    assert "operation-1" in deploy.evidence and "operation-4" in deploy.evidence
    assert 'Node pool "default-pool" requires recreation.' in recreation.detail
    assert "gke/node-pool-recreation" in recreation.detail
    assert RETRY in retry.detail and "on node pool `pool-2`" in retry.detail and "gke/retry-budget" in retry.detail
    assert ("gcloud container operations describe operation-2 --location=europe-west4-a "
            f"--project={GKE1}") in retry.remedy
    text = "".join(f.detail + f.evidence for f in found)
    assert "Ancient history" not in text and "Not this cluster" not in text


def test_failures_are_in_every_report_that_should_show_them(google, settings):
    op(google, "operation-1", kind="UPDATE_CLUSTER", error="DeployPatch failed")
    for command in ("why-400", "why-403", "doctor"):
        report = diagnose(command, Context(gateway(settings), REF, command, "user:testuser@example.com"))
        assert any(f.id == ID and "DeployPatch failed" in f.detail for f in report.findings), command


def test_bot_without_operations_permission_is_an_error(google, settings):
    google.deny("GET", r"/operations$", "container.operations.list")
    f = one(run_check(ID, settings, REF), Status.ERROR)
    assert "container.operations.list" in f.detail
