from checks.model import Status
from checks.resolve import ClusterSpec
from tests.helpers import GKE1, one
from tests.test_check_cluster_lookup import CREDS, of, why404


def test_credentials_guidance_has_real_names(google, settings):
    f = one(of(why404(settings, ClusterSpec("gke1", "europe-west4-a", GKE1)), CREDS), Status.SKIP)
    assert "gcloud auth login" in f.remedy
    assert f"gcloud config get-value project    # should print {GKE1}" in f.remedy
    assert f"gcloud container clusters get-credentials gke1 --location=europe-west4-a --project={GKE1}" in f.remedy
    assert "`europe-west4-a` is a zone" in f.remedy


def test_credentials_guidance_uses_the_one_suggestion(google, settings):
    f = one(of(why404(settings, ClusterSpec("gke3", "europe-west4-b", GKE1)), CREDS), Status.SKIP)
    assert f"get-credentials gke3 --location=europe-west4 --project={GKE1}" in f.remedy
    assert "`europe-west4` is a region" in f.remedy
