from checks.model import ClusterRef, Status
from tests.helpers import GKE1, one, run_check

ID = "gke/node-pool-version-skew"
GKE1_REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
GKE2_REF = ClusterRef(GKE1, "europe-west4", "gke2")


def set_versions(google, name: str, master: str, *pools: str) -> None:
    cluster = google.cluster(GKE1, name)
    cluster["currentMasterVersion"] = master
    for pool, version in zip(cluster["nodePools"], pools):
        pool["version"] = version


def test_recorded_pools_match_the_control_plane(google, settings):
    f = one(run_check(ID, settings, GKE2_REF), Status.OK)
    assert "`default-pool`" in f.detail and "`low-pod-per-node-pool`" in f.detail and "1.24.10-gke.2300" in f.detail


def test_pool_behind_is_skew_a_warn_with_its_own_explanation_and_upgrade(google, settings):
    google.cluster(GKE1, "gke1")["nodePools"][0]["version"] = "1.24.10-gke.2300"
    f = one(run_check(ID, settings, GKE1_REF), Status.WARN)
    # a lagging pool is not "marked for recreation": no claim of the 400 it does not cause
    assert "requires recreation" not in f.detail + f.remedy and "marked for recreation" not in f.detail + f.remedy
    assert "1 minor version(s) behind, within the 2 Kubernetes supports" in f.detail
    assert "auto-upgrade is on" in f.detail
    assert "1.24.10-gke.2300" in f.detail and "1.25.7-gke.1000" in f.detail
    assert (f"gcloud container clusters upgrade gke1 --node-pool=default-pool --location=europe-west4-a "
            f"--project={GKE1}") in f.remedy
    assert f.evidence == ("`currentMasterVersion: 1.25.7-gke.1000`; node pool `default-pool`: "
                          "`version: 1.24.10-gke.2300`.")
    assert f.resource.endswith("/clusters/gke1/nodePools/default-pool")
    assert f.gcpdiag == ""  # gcpdiag's gke/ERR/2021_009 fails only beyond the supported skew
    r = f.remediation
    assert r and r.kind == "upgrade_node_pool" and r.label == "Upgrade default-pool to 1.25.7-gke.1000"
    assert r.params == {"project": GKE1, "location": "europe-west4-a", "cluster": "gke1", "pool": "default-pool",
                        "from_version": "1.24.10-gke.2300", "to_version": "1.25.7-gke.1000", "mode": "upgrade"}


def test_skew_beyond_two_minors_below_1_28_is_a_fail(google, settings):
    google.cluster(GKE1, "gke1")["nodePools"][0]["version"] = "1.22.10-gke.600"
    f = one(run_check(ID, settings, GKE1_REF), Status.FAIL)
    assert "3 minor versions behind" in f.detail and "at most 2" in f.detail
    assert f.gcpdiag == "gke/ERR/2021_009"
    assert f.remediation and f.remediation.params["from_version"] == "1.22.10-gke.600"


def test_three_minors_are_supported_from_1_28_four_are_not(google, settings):
    set_versions(google, "gke2", "1.28.3-gke.1200", "1.25.16-gke.100", "1.24.17-gke.100")
    found = run_check(ID, settings, GKE2_REF)
    assert [(f.status, f.remediation.params["pool"]) for f in found] == [
        (Status.WARN, "default-pool"), (Status.FAIL, "low-pod-per-node-pool")]
    assert "at most 3" in found[1].detail


def test_one_finding_per_pool_that_needs_it(google, settings):
    set_versions(google, "gke2", "1.24.10-gke.2300", "1.24.10-gke.2300", "1.24.9-gke.3200")
    f = one(run_check(ID, settings, GKE2_REF), Status.WARN)
    assert f.remediation.params["pool"] == "low-pod-per-node-pool"
    assert "low-pod-per-node-pool" in f.remedy and "default-pool" not in f.remedy


def test_pool_newer_than_control_plane_is_a_fail(google, settings):
    google.cluster(GKE1, "gke1")["nodePools"][0]["version"] = "1.26.1-gke.100"
    f = one(run_check(ID, settings, GKE1_REF), Status.FAIL)
    assert "newer than the control plane" in f.detail


def test_autopilot_without_pools_is_ok(google, settings):
    f = one(run_check(ID, settings, ClusterRef(GKE1, "europe-west4", "autopilot-gke1")), Status.OK)
    assert "no node pools" in f.detail


def test_bot_without_permission_is_an_error_not_ok(google, settings):
    google.deny("GET", r"/clusters/gke1$", "container.clusters.get")
    f = one(run_check(ID, settings, GKE1_REF), Status.ERROR)
    assert "container.clusters.get" in f.detail and "403" in f.detail
