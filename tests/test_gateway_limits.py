"""Limits every gateway call obeys, whatever check makes it: the project allowlist of the conversation (nothing is
sent about another project) and the job's deadline (nothing is sent after it). Real clients against the fakes."""
from __future__ import annotations

import time

import pytest

from checks.gateway import ApiError, Gateway
from checks.model import ClusterRef
from tests.helpers import GKE1

GKE4 = "gcpdiag-gke4-aaaa"


def sent(google) -> list[str]:
    return [c.path for c in google.calls if c.path != "/token"]


@pytest.mark.parametrize("call", [
    lambda gw: gw.cluster(ClusterRef(GKE4, "europe-west4-a", "gke1")),
    lambda gw: gw.clusters(GKE4),
    lambda gw: gw.project_iam_policy(GKE4),
    lambda gw: gw.service_enabled(GKE4, "container.googleapis.com"),
    lambda gw: gw.service_account(f"app@{GKE4}.iam.gserviceaccount.com"),
    lambda gw: gw.service_account_policy(f"app@{GKE4}.iam.gserviceaccount.com"),
    lambda gw: gw.network(GKE4, "default"),
    lambda gw: gw.region_effective_firewalls(GKE4, "europe-west4", "default"),
    lambda gw: gw.role(f"projects/{GKE4}/roles/custom"),
])
def test_nothing_is_sent_about_a_project_outside_the_allowlist(google, settings, call):
    google.load_fixture("gke4")
    gw = Gateway(settings.google_api_url, projects=(GKE1,))
    with pytest.raises(ApiError) as exc:
        call(gw)
    assert exc.value.status == "OUTSIDE_ALLOWLIST" and f"project `{GKE4}` is not one" in exc.value.message
    assert sent(google) == []


def test_the_allowlist_lets_its_own_projects_and_google_managed_accounts_through(google, settings):
    gw = Gateway(settings.google_api_url, projects=(GKE1,))
    assert gw.cluster(ClusterRef(GKE1, "europe-west4-a", "gke1")).name == "gke1"
    assert gw.service_account("12340002-compute@developer.gserviceaccount.com") is not None
    assert gw.project_number(GKE1) == "12340002"
    unlimited = Gateway(settings.google_api_url)  # the terminal: the user's own credentials, no allowlist
    google.load_fixture("gke4")
    assert unlimited.cluster(ClusterRef(GKE4, "europe-west4-a", "gke1")).name == "gke1"


def test_nothing_is_sent_after_the_deadline(google, kube, settings):
    from checks.gateway import kube as kc
    from tests.conftest import serve_cluster
    serve_cluster(google, kube, GKE1, "gke1")
    ref = ClusterRef(GKE1, "europe-west4-a", "gke1")
    gw = Gateway(settings.google_api_url, deadline=time.monotonic() - 1)
    for call in (lambda: gw.cluster(ref), lambda: gw.kube_list(ref, kc.PODS_LIST, "default")):
        with pytest.raises(ApiError) as exc:
            call()
        assert exc.value.status == "DEADLINE_EXCEEDED"
    assert sent(google) == [] and kube.calls == []


def test_a_principal_of_another_project_may_still_be_explained_on_an_allowed_cluster(google, settings):
    """Asking whether `ci@other-project…` may get this cluster reads nothing about the other project."""
    gw = Gateway(settings.google_api_url, projects=(GKE1,))
    ref = ClusterRef(GKE1, "europe-west4-a", "gke1")
    try:
        gw.troubleshoot(f"serviceAccount:ci@{GKE4}.iam.gserviceaccount.com",
                        f"//container.googleapis.com/{ref.path}", "container.clusters.get")
    except ApiError as err:  # whatever the troubleshooter answers: it was asked, not refused by the allowlist
        assert err.status != "OUTSIDE_ALLOWLIST"
    assert any("troubleshoot" in p for p in sent(google))
