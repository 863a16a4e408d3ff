"""why-404 end to end through the engine (resolution first); `why404` and `of` serve the other why-404 tests."""
from checks.engine import run_command
from checks.model import Status
from checks.resolve import ClusterSpec
from tests.helpers import GKE1, gateway, one

GKE2P = "gcpdiag-gke-cluster-autoscaler-rrrr"
LOOKUP, PROJECT, CREDS = "gke/cluster-lookup", "gke/project-visible", "gke/stale-credentials"


def why404(settings, spec: ClusterSpec, projects=(GKE1,)):
    report = run_command(gateway(settings), "why-404", spec, projects)
    assert [f.id for f in report.findings if f.id in (LOOKUP, PROJECT, CREDS)][-1] == CREDS
    return report


def of(report, check_id: str) -> list:
    return [f for f in report.findings if f.id == check_id]


def test_found_cluster_is_ok_with_its_exact_path(google, settings):
    report = why404(settings, ClusterSpec("gke1", "europe-west4-a", GKE1))
    f = one(of(report, LOOKUP), Status.OK)
    assert f"`projects/{GKE1}/locations/europe-west4-a/clusters/gke1` exists" in f.detail
    assert f"gcloud container clusters get-credentials gke1 --location=europe-west4-a --project={GKE1}" in f.detail
    assert one(of(report, PROJECT), Status.OK).detail == f"Project `{GKE1}` exists and is `ACTIVE`."


def test_wrong_location_suggests_the_real_one(google, settings):
    report = why404(settings, ClusterSpec("gke1", "europe-west4", GKE1))
    f = one(of(report, LOOKUP), Status.FAIL)
    assert f"No cluster `{GKE1}/europe-west4/gke1`" in f.detail
    assert f"gcloud container clusters get-credentials gke1 --location=europe-west4-a --project={GKE1}" in f.remedy
    assert report.cluster == f"{GKE1}/europe-west4/gke1"


def test_typo_suggests_close_names_across_locations(google, settings):
    f = one(of(why404(settings, ClusterSpec("gke-3")), LOOKUP), Status.FAIL)
    assert f"gcloud container clusters get-credentials gke3 --location=europe-west4 --project={GKE1}" in f.remedy
    assert "Did you mean" in f.detail and "autopilot" not in f.remedy


def test_nothing_close_lists_the_clusters(google, settings):
    f = one(of(why404(settings, ClusterSpec("zzzz-prod", "us-east1", GKE1)), LOOKUP), Status.FAIL)
    assert f"gcloud container clusters list --project {GKE1}" in f.remedy and "get-credentials" not in f.remedy


def test_same_name_in_two_places_is_a_warn_listing_both(google, settings):
    google.load_fixture("gke2")
    f = one(of(why404(settings, ClusterSpec("gcp-cluster"), projects=(GKE2P,)), LOOKUP), Status.WARN)
    assert f.remedy.count("get-credentials gcp-cluster") == 2 and "more than one place" in f.detail


def test_bot_cannot_list_clusters_is_an_error_never_not_found(google, settings):
    google.deny("GET", r"/clusters$", "container.clusters.list")
    found = of(why404(settings, ClusterSpec("gke-1")), LOOKUP)
    assert [f.status for f in found] == [Status.ERROR, Status.WARN]
    assert "container.clusters.list" in found[0].detail and "403" in found[0].detail
    assert "could not search everywhere" in found[1].detail and "container.clusters.list" in found[1].evidence


def test_disabled_api_says_so(google, settings):
    google.projects[GKE1].services["container.googleapis.com"] = "DISABLED"
    found = of(why404(settings, ClusterSpec("gke1", "europe-west4-a", GKE1)), LOOKUP)
    assert found[0].status is Status.FAIL and "Kubernetes Engine API is disabled" in found[0].detail
    assert f"gcloud services enable container.googleapis.com --project {GKE1}" in found[0].remedy
    assert Status.OK not in [f.status for f in found]


def test_bot_cannot_get_the_named_cluster_is_one_error(google, settings):
    google.deny("GET", r"/clusters/gke1$", "container.clusters.get")
    f = one(of(why404(settings, ClusterSpec("gke1", "europe-west4-a", GKE1)), LOOKUP), Status.ERROR)
    assert "container.clusters.get" in f.detail and "403" in f.detail
