from checks.model import Status
from checks.resolve import ClusterSpec
from tests.helpers import GKE1, one
from tests.test_check_cluster_lookup import GKE2P, PROJECT, of, why404


def test_deleted_project_is_a_fail_with_undelete(google, settings):
    google.deleted_projects.add(GKE1)
    f = one(of(why404(settings, ClusterSpec("gke1", "europe-west4-a", GKE1)), PROJECT), Status.FAIL)
    assert "DELETE_REQUESTED" in f.detail and f"gcloud projects undelete {GKE1}" in f.remedy
    assert "state: DELETE_REQUESTED" in f.evidence


def test_invisible_project_cannot_be_told_from_a_missing_one(google, settings):
    report = why404(settings, ClusterSpec("gke1", "europe-west4-a", "gcpdiag-nope-aaaa"))
    f = one(of(report, PROJECT), Status.ERROR)
    assert "cannot tell" in f.detail and "resourcemanager.projects.get" in f.detail
    assert "gcloud projects describe gcpdiag-nope-aaaa" in f.remedy and "roles/browser" in f.remedy
    assert "403" in f.evidence


def test_no_single_project_skips_the_project_check(google, settings):
    google.load_fixture("gke2")
    report = why404(settings, ClusterSpec("nope"), projects=(GKE1, GKE2P))
    assert one(of(report, PROJECT), Status.SKIP)


def test_active_project_is_ok(google, settings):
    f = one(of(why404(settings, ClusterSpec("gke-1", "", GKE1)), PROJECT), Status.OK)
    assert f.detail == f"Project `{GKE1}` exists and is `ACTIVE`." and f.resource == f"projects/{GKE1}"
