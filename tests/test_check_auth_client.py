import json

from checks.model import ClusterRef, Status
from checks.registry import for_command
from tests.conftest import serve_cluster
from tests.helpers import GKE1, one, run_check

REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
ID = "gke/auth-client"
FLAGS = "--location=europe-west4-a --project=gcpdiag-gke1-aaaa"


def test_guidance_names_the_real_cluster_and_endpoint(google, kube, settings):
    serve_cluster(google, kube, GKE1, "gke1")
    f = one(run_check(ID, settings, REF, "user:testuser@example.com"), Status.SKIP)
    assert "401" in f.detail and "gke-gcloud-auth-plugin" in f.detail
    r = f.remedy
    assert "kubectl 1.25 and later" in r and "gcloud components install gke-gcloud-auth-plugin" in r
    assert f"gcloud container clusters get-credentials gke1 \\\n    {FLAGS}" in r
    assert "export USE_GKE_GCLOUD_AUTH_PLUGIN=False" in r and "kubectl 1.24 or older" in r
    assert f"APISERVER=https://{kube.endpoint}\n" in r
    assert "TOKEN=$(gcloud auth print-access-token)" in r
    assert "curl https://oauth2.googleapis.com/tokeninfo?access_token=$TOKEN" in r
    assert (f'gcloud container clusters describe gke1 \\\n    {FLAGS} \\\n    --format '
            '"value(masterAuth.clusterCaCertificate)" | \\\n    base64 -d > /tmp/ca.crt') in r
    assert 'curl -s -X GET "${APISERVER}/api/v1/namespaces"' in r and "--cacert /tmp/ca.crt" in r
    assert '"reason": "Unauthorized", "code": 401' in r


def test_never_shows_the_ca_certificate_or_a_token(google, kube, settings):
    serve_cluster(google, kube, GKE1, "gke1")
    text = json.dumps([f.to_json() for f in run_check(ID, settings, REF, "user:testuser@example.com")])
    assert kube.ca_b64 not in text and kube.ca_pem.decode().splitlines()[1] not in text
    assert "ya29." not in text and "BEGIN CERTIFICATE" not in text


def test_without_the_cluster_the_endpoint_comes_from_gcloud(google, settings):
    google.deny("GET", r"/clusters/gke1$", "container.clusters.get")
    f = one(run_check(ID, settings, REF), Status.SKIP)
    assert f'APISERVER=https://$(gcloud container clusters describe gke1 \\\n    {FLAGS} --format "value(endpoint)")' \
        in f.remedy


def test_command_membership():
    why401 = [c.id for c in for_command("why-401")]  # other checks may join; these three keep their order
    mine = ["gke/principal-cluster-access", "gke/auth-client", "gke/control-plane-reachable"]
    assert [i for i in why401 if i in mine] == mine
    doctor = {c.id for c in for_command("doctor")}
    assert "gke/control-plane-reachable" in doctor
    assert not doctor & {"gke/auth-client", "gke/principal-cluster-access", "gke/principal-rbac"}
    why403 = [c.id for c in for_command("why-403")]
    assert why403.index("gke/principal-cluster-access") < why403.index("gke/service-agent-role") < \
        why403.index("gke/principal-rbac")
