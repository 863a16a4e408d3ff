"""why-400 "Node pool requires recreation" (001 エラー 400: ノードプールの再作成が必要), from live state.

The credential rotation is started and completed through the real container client against the fake,
which models GKE: starting adds a new CA beside the old one and marks every pool for recreation;
completing is refused with `Node pool "POOL" requires recreation.` until each pool was recreated (an
upgrade, to the same version included)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from google.api_core import exceptions as gexc

from checks.engine import Context, diagnose
from checks.fixes import ALREADY, DONE, execute
from checks.gateway import Gateway
from checks.model import ClusterRef, Status
from checks.operations import maintenance_note, next_window
from tests.helpers import GKE1, one, run_check

ID = "gke/node-pool-recreation"
REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
MASTER = "1.25.7-gke.1000"
SEED_ERROR = ('ERROR: (gcloud.container.clusters.update) ResponseError: code=400, '
              'message=Node pool "default-pool" requires recreation.')


@pytest.fixture
def gw(google, settings):
    google.operation_polls = 0  # operations finish at once
    return Gateway(settings.google_api_url)


def start_rotation(gw, ref=REF):
    gw.container.start_ip_rotation(request={"name": ref.path, "rotate_credentials": True})


def op(google, name, cluster="gke1", status="DONE", kind="UPGRADE_NODES", suffix="", error="", ended=None,
       started=None, zone="europe-west4-a"):
    base = f"https://container.googleapis.com/v1/projects/12340002/zones/{zone}"
    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    o = {"name": name, "zone": zone, "operationType": kind, "status": status,
         "selfLink": f"{base}/operations/{name}", "targetLink": f"{base}/clusters/{cluster}{suffix}",
         "startTime": started or now}
    if status == "DONE":
        o["endTime"] = ended or now
    if error:
        o["error"] = {"code": 9, "message": error}
        o["statusMessage"] = error
    google.projects[GKE1].operations.append(o)
    return o


def test_rotation_leaves_a_pool_at_the_control_plane_version_needing_recreation(google, gw, settings):
    pool = google.cluster(GKE1, "gke1")["nodePools"][0]
    assert pool["version"] == MASTER  # nothing lags: the version check alone says OK
    start_rotation(gw)
    f = one(run_check(ID, settings, REF), Status.FAIL)
    assert "Node pool `default-pool` requires recreation" in f.detail and SEED_ERROR in f.detail
    assert "credential or IP rotation started" in f.detail and "holds 2 CA certificates" in f.evidence
    assert f"already runs the control plane's version `{MASTER}`" in f.detail
    assert "gcloud container clusters upgrade gke1 \\\n    --node-pool=default-pool" in f.remedy
    assert "hours, days or even weeks depending on maintenance windows and exclusions" in f.remedy
    assert "sets no maintenance window" in f.remedy  # gke1 as recorded has none
    assert "--complete-credential-rotation" in f.remedy
    assert f.gcpdiag == "gke/ERR/2026_002" and f.resource.endswith("/nodePools/default-pool")
    r = f.remediation
    assert r.kind == "upgrade_node_pool" and r.label == f"Recreate default-pool at {MASTER}"
    assert "Recreate node pool default-pool of gke1 with an upgrade to the version it already runs" in r.summary
    assert r.params["mode"] == "recreate" and r.params["from_version"] == r.params["to_version"] == MASTER
    assert datetime.fromisoformat(r.params["since"]) <= datetime.now(timezone.utc)
    report = diagnose("why-400", Context(gw, REF, "why-400"))
    by_id = {x.id: x.status for x in report.findings}
    assert by_id[ID] is Status.FAIL and by_id["gke/node-pool-version-skew"] is Status.OK


def test_completing_the_rotation_is_refused_until_the_recreation_button_ran(google, gw, settings):
    start_rotation(gw)
    with pytest.raises(gexc.GoogleAPICallError) as info:
        gw.container.complete_ip_rotation(name=REF.path)
    assert info.value.code == 400 and 'Node pool "default-pool" requires recreation.' in info.value.message
    f = one(run_check(ID, settings, REF), Status.FAIL)
    progress = []
    outcome = execute(gw, f.remediation.kind, f.remediation.params, progress.append, poll=0.01)
    assert outcome.status == DONE and "Recreation of `default-pool`" in outcome.message
    pool = google.cluster(GKE1, "gke1")["nodePools"][0]
    assert pool["version"] == MASTER
    # the same plan again: already recreated since the rotation began, nothing sent
    puts = len([c for c in google.calls if c.method == "PUT"])
    again = execute(gw, f.remediation.kind, f.remediation.params, progress.append, poll=0.01)
    assert again.status == ALREADY and "was recreated since" in again.message
    assert len([c for c in google.calls if c.method == "PUT"]) == puts
    w = one(run_check(ID, settings, REF), Status.WARN)
    assert "only waits to be completed" in w.detail and "--complete-credential-rotation" in w.remedy
    gw.container.complete_ip_rotation(name=REF.path)
    assert one(run_check(ID, settings, REF), Status.OK)


def test_failed_operation_naming_the_pool_is_quoted_verbatim(google, settings):
    error = 'Node pool "default-pool" requires recreation.'
    op(google, "operation-1-fail", kind="UPDATE_CLUSTER", error=error)
    f = one(run_check(ID, settings, REF), Status.FAIL)
    assert f"failed with `{error}`" in f.detail and "operation-1-fail" in f.evidence
    assert f.gcpdiag == ""  # evidence from an operation, not a rotation
    assert f.remediation.params["mode"] == "recreate"


def test_a_pool_recreated_after_the_failure_no_longer_waits(google, settings):
    op(google, "operation-1-fail", kind="UPDATE_CLUSTER", error='Node pool "default-pool" requires recreation.',
       ended="2026-01-01T10:00:00Z", started="2026-01-01T09:59:00Z")
    op(google, "operation-2-up", suffix="/nodePools/default-pool", started="2026-01-01T11:00:00Z",
       ended="2026-01-01T11:30:00Z")
    # another cluster's pool of the same name, failed: not this cluster's business
    op(google, "operation-3-other", cluster="gke4", kind="UPDATE_CLUSTER",
       error='Node pool "default-pool" requires recreation.')
    assert one(run_check(ID, settings, REF)).status in (Status.OK,)


def test_a_pool_that_merely_lags_is_not_said_to_need_recreation(google, settings):
    google.cluster(GKE1, "gke1")["nodePools"][0]["version"] = "1.24.10-gke.2300"
    f = one(run_check(ID, settings, REF), Status.OK)
    assert "No node pool of `gke1` waits for recreation" in f.detail


def test_the_note_says_when_the_next_maintenance_window_opens(google, gw, settings):
    """gke6 as recorded: weekdays 09:00–17:00 UTC."""
    ref = ClusterRef(GKE1, "europe-west4-a", "gke6")
    start_rotation(gw, ref)
    f = one(run_check(ID, settings, ref), Status.FAIL)
    assert "maintenance window" in f.remedy and "UTC" in f.remedy
    cluster = gw.cluster(ref)
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    start, end = next_window(cluster, saturday)
    assert (start, end) == (datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc),
                            datetime(2026, 11, 30, 17, 0, tzinfo=timezone.utc))
    assert "opens 2026-11-30 09:00 UTC and closes 2026-11-30 17:00 UTC" in maintenance_note(cluster, saturday)
    monday = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)
    assert "open now, until 2026-11-30 17:00 UTC" in maintenance_note(cluster, monday)


def test_daily_window_and_exclusions(google, settings):
    from google.cloud import container_v1
    cluster = container_v1.Cluster.from_json(
        '{"maintenancePolicy": {"window": {"dailyMaintenanceWindow": {"startTime": "03:00", "duration": "PT4H0M0S"},'
        ' "maintenanceExclusions": {"black-friday": {"startTime": "2026-11-27T00:00:00Z",'
        ' "endTime": "2026-12-01T00:00:00Z", "maintenanceExclusionOptions": {"scope": "NO_UPGRADES"}}}}}}')
    now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    note = maintenance_note(cluster, now)
    assert "opens 2026-11-29 03:00 UTC and closes 2026-11-29 07:00 UTC" in note
    assert "exclusion `black-friday` from 2026-11-27 00:00 UTC to 2026-12-01 00:00 UTC (scope NO_UPGRADES)" in note


def test_bot_without_operations_permission_still_reads_the_rotation(google, gw, settings):
    start_rotation(gw)
    google.deny("GET", r"/operations$", "container.operations.list")
    found = run_check(ID, settings, REF)
    assert sorted(f.status.value for f in found) == ["ERROR", "FAIL"]
    assert "container.operations.list" in next(f for f in found if f.status is Status.ERROR).detail
