"""Cluster resolution: NAME, LOCATION/NAME, PROJECT/LOCATION/NAME against GKE_BOT_PROJECTS."""
from __future__ import annotations

from checks.resolve import ClusterSpec, resolve
from tests.helpers import GKE1, gateway

GKE4 = "gcpdiag-gke4-aaaa"


def test_bare_name_in_two_projects_asks_which(google, settings):
    google.load_fixture("gke4")
    res = resolve(gateway(settings), ClusterSpec("gke1"), (GKE1, GKE4))
    assert res.ref is None
    assert "more than one place" in res.message
    assert {r.project for r in res.candidates} == {GKE1, GKE4}


def test_location_disambiguates(google, settings):
    google.load_fixture("gke4")
    res = resolve(gateway(settings), ClusterSpec("gke2", "europe-west4"), (GKE1, GKE4))
    assert res.ref and res.ref.path == f"projects/{GKE1}/locations/europe-west4/clusters/gke2"


def test_named_project_without_it_suggests_where_it_is(google, settings):
    google.load_fixture("gke4")
    res = resolve(gateway(settings), ClusterSpec("gke3", "europe-west4", GKE4), (GKE1, GKE4))
    assert res.ref is None
    assert f"No cluster `{GKE4}/europe-west4/gke3`" in res.message
    assert f"`{GKE1}/europe-west4/gke3`" in res.message


def test_typo_gets_closest_names(google, settings):
    res = resolve(gateway(settings), ClusterSpec("gkee2"), (GKE1,))
    assert res.ref is None and "Did you mean" in res.message and "/gke2`" in res.message


def test_project_the_bot_cannot_list_is_reported_not_hidden(google, settings):
    google.deny("GET", r"/v1/projects/gcpdiag-gke1-aaaa/locations/-/clusters$", "container.clusters.list")
    res = resolve(gateway(settings), ClusterSpec("gke2"), (GKE1,))
    assert res.ref is None
    assert "container.clusters.list" in res.message and "403" in res.message
