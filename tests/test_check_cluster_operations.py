from checks.model import ClusterRef, Status
from tests.helpers import GKE1, one, run_check

ID = "gke/cluster-operations"
REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
GKE3 = ClusterRef("gcpdiag-gke3-gggg", "us-central1-c", "cluster-1")
IP_EXHAUSTED = ("[IP_SPACE_EXHAUSTED]: Instance 'gke-cluster-1-default-pool-a6ea5e55-h1ms' creation failed: IP space "
                "of 'projects/gcpdiag-gke3-gggg/regions/us-central1/subnetworks/public-subnet' is exhausted.")


def op(google, name: str, cluster: str, status: str = "RUNNING", kind: str = "UPGRADE_NODES",
       zone: str = "europe-west4-a", suffix: str = "") -> dict:
    base = f"https://container.googleapis.com/v1/projects/12340002/zones/{zone}"
    o = {"name": name, "zone": zone, "operationType": kind, "status": status, "selfLink": f"{base}/operations/{name}",
         "targetLink": f"{base}/clusters/{cluster}{suffix}", "startTime": "2024-05-01T10:00:00.000000Z"}
    google.projects[GKE1].operations.append(o)
    return o


def test_recorded_cluster_is_running_without_operations(google, settings):
    f = one(run_check(ID, settings, REF), Status.OK)
    assert "gke1" in f.detail


def test_recorded_error_cluster_quotes_its_conditions(google, settings):
    google.load_fixture("gke3")
    found = run_check(ID, settings, GKE3)
    assert [f.status for f in found] == [Status.FAIL, Status.FAIL]
    cluster, pool = found
    assert "Cluster `cluster-1` is `ERROR`" in cluster.detail and cluster.resource == GKE3.path
    assert "statusMessage: Requested resource is exhausted: Not all instances running in IGM" in cluster.evidence
    assert f"RESOURCE_EXHAUSTED: {IP_EXHAUSTED}" in cluster.evidence
    assert ("gcloud container clusters describe cluster-1 --location=us-central1-c --project=gcpdiag-gke3-gggg"
            in cluster.remedy)
    assert "Node pool `default-pool` is `ERROR`" in pool.detail and IP_EXHAUSTED in pool.evidence
    assert pool.resource.endswith("/nodePools/default-pool")


def test_reconciling_pool_is_a_warn_with_its_status_name(google, settings):
    google.cluster(GKE1, "gke1")["nodePools"][0]["status"] = "RECONCILING"
    f = one(run_check(ID, settings, REF), Status.WARN)
    assert "Node pool `default-pool` is `RECONCILING`" in f.detail and "`status: RECONCILING`" == f.evidence


def test_operations_in_flight_for_this_cluster_are_listed(google, settings):
    mine = op(google, "operation-1714557600000-aaaa", "gke1", suffix="/nodePools/default-pool")
    op(google, "operation-1714557600001-bbbb", "gke1", status="PENDING", kind="UPGRADE_MASTER")
    op(google, "operation-1714557600002-cccc", "gke4")  # another cluster in the same zone
    op(google, "operation-1714557600003-dddd", "gke1", status="DONE")  # finished
    f = one(run_check(ID, settings, REF), Status.WARN)
    assert "2 operation(s) in flight" in f.detail and "`UPGRADE_NODES` since 2024-05-01T10:00:00" in f.detail
    assert "`UPGRADE_MASTER`" in f.detail and "fail" in f.detail
    assert mine["name"] in f.evidence and mine["targetLink"] in f.evidence
    assert "cccc" not in f.evidence and "dddd" not in f.evidence
    assert (f"gcloud container operations wait {mine['name']} --location=europe-west4-a --project={GKE1}"
            in f.remedy)


def test_operation_started_through_the_api_is_seen(google, settings):
    from checks.gateway import Gateway
    gw = Gateway(settings.google_api_url)
    gw.container.update_node_pool(request={"name": f"{REF.path}/nodePools/default-pool",
                                           "node_version": "1.25.8-gke.1000", "image_type": "COS_CONTAINERD"})
    found = run_check(ID, settings, REF)
    assert sorted(f.status for f in found) == [Status.WARN, Status.WARN]
    assert any("UPGRADE_NODES" in f.detail for f in found) and any("RECONCILING" in f.detail for f in found)


def test_bot_without_operations_permission_is_an_error_and_still_reports_status(google, settings):
    google.cluster(GKE1, "gke1")["status"] = "RECONCILING"
    google.deny("GET", r"/operations$", "container.operations.list")
    found = run_check(ID, settings, REF)
    assert sorted(f.status.value for f in found) == ["ERROR", "WARN"]
    err = next(f for f in found if f.status is Status.ERROR)
    assert "container.operations.list" in err.detail and "403" in err.detail
