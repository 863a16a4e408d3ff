"""The fake Google APIs checked against the real `gcloud` (the reference client): whatever gcloud sends
must get what Google would answer. gcloud talks only to the fake on loopback (endpoint overrides, a
token file, a throwaway config, no metadata-server probe, no usage reporting, and the loopback guard
inside gcloud's own Python). Skipped only where gcloud is not installed."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import GUARD_DIR
from tests.helpers import AGENT, GKE1

GCLOUD = shutil.which("gcloud")
pytestmark = pytest.mark.skipif(GCLOUD is None, reason="gcloud is not installed")
WHERE = "--location=europe-west4-a"


class Gcloud:
    """Runs the real gcloud against the fake Google APIs."""

    def __init__(self, google, tmp_path, email: str = "alice@example.com"):
        self.google = google
        config = tmp_path / "gcloud-config"
        config.mkdir()
        (config / "gce").write_text("False")  # "not on GCE": gcloud never probes the metadata server
        token = tmp_path / "token"
        token.write_text(google.issue_token(email))
        self.kubeconfig = tmp_path / "kubeconfig"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("CLOUDSDK_", "GOOGLE_", "KUBECONFIG", "HTTP", "http"))}
        self.env.update({
            "CLOUDSDK_CONFIG": str(config),
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(token),
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER": google.url + "/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER": google.url + "/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM": google.url + "/",
            "CLOUDSDK_CORE_PROJECT": GKE1,
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "true",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_SURVEY_DISABLE_PROMPTS": "true",
            "CLOUDSDK_METRICS_ENVIRONMENT": "gke-bot-tests",
            # the loopback guard inside gcloud's bundled Python (sitecustomize needs its site packages)
            "CLOUDSDK_PYTHON_SITEPACKAGES": "1",
            "PYTHONPATH": str(GUARD_DIR),
            "KUBECONFIG": str(self.kubeconfig),
            "NO_PROXY": "127.0.0.1,localhost",
        })

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([GCLOUD, *args], env=self.env, capture_output=True, text=True, timeout=180)
        assert "loopback guard: refused" not in proc.stderr, proc.stderr
        if check:
            assert proc.returncode == 0, f"gcloud {' '.join(args)}\n{proc.stderr}"
        return proc

    def json(self, *args: str):
        return json.loads(self.run(*args, "--format=json").stdout)


@pytest.fixture
def gcloud(google, tmp_path):
    return Gcloud(google, tmp_path)


def test_describes_clusters_node_pools_and_operations(google, gcloud):
    cluster = gcloud.json("container", "clusters", "describe", "gke1", WHERE)
    assert cluster["currentMasterVersion"] == "1.25.7-gke.1000" and cluster["nodePools"][0]["name"] == "default-pool"
    pool = gcloud.json("container", "node-pools", "describe", "default-pool", "--cluster=gke1", WHERE)
    assert pool["config"]["serviceAccount"] == "default" and pool["version"] == "1.25.7-gke.1000"
    pools = gcloud.json("container", "node-pools", "list", "--cluster=gke2", "--location=europe-west4")
    assert [p["name"] for p in pools] == ["default-pool", "low-pod-per-node-pool"]
    assert gcloud.json("container", "operations", "list", WHERE) == []
    gcloud.run("container", "clusters", "upgrade", "gke1", "--node-pool=default-pool", WHERE, "--quiet")
    (op,) = gcloud.json("container", "operations", "list", WHERE)
    assert (op["operationType"], op["status"]) == ("UPGRADE_NODES", "DONE")
    assert op["targetLink"].endswith("/clusters/gke1/nodePools/default-pool")
    described = gcloud.json("container", "operations", "describe", op["name"], WHERE)
    assert described["name"] == op["name"] and described["operationType"] == "UPGRADE_NODES"


def test_upgrade_with_node_pool_changes_the_pool_not_the_cluster(google, gcloud):
    """`gcloud container clusters upgrade CLUSTER --node-pool=POOL` (the seed's recreation command) sends
    ClusterUpdate{desiredNodePoolId, desiredNodeVersion: "-"} to clusters.update: the pool is recreated at
    the control plane's version; the cluster's own fields stay as they were."""
    cluster = google.cluster(GKE1, "gke2")
    cluster["currentMasterVersion"] = "1.25.7-gke.1000"
    before = {k: v for k, v in json.loads(json.dumps(cluster)).items() if k != "nodePools"}
    etag = cluster["nodePools"][1]["etag"]
    gcloud.run("container", "clusters", "upgrade", "gke2", "--node-pool=low-pod-per-node-pool",
               "--location=europe-west4", "--quiet")
    after = google.cluster(GKE1, "gke2")
    default, low = after["nodePools"]
    assert (low["version"], low["status"]) == ("1.25.7-gke.1000", "RUNNING") and low["etag"] != etag
    assert default["version"] == "1.24.10-gke.2300"  # only the named pool
    assert {k: v for k, v in after.items() if k not in ("nodePools", "currentNodeVersion")} == \
        {k: v for k, v in before.items() if k != "currentNodeVersion"}
    # the same version again is a recreation, as the seed says
    gcloud.run("container", "clusters", "upgrade", "gke2", "--node-pool=low-pod-per-node-pool",
               "--location=europe-west4", "--quiet")
    ops = gcloud.json("container", "operations", "list", "--location=europe-west4")
    assert [o["operationType"] for o in ops] == ["UPGRADE_NODES", "UPGRADE_NODES"]
    # without --node-pool on a cluster with two pools, GKE refuses
    bad = gcloud.run("container", "clusters", "upgrade", "gke2", "--location=europe-west4", "--quiet",
                     "--cluster-version=1.25.7-gke.1000", check=False)
    assert bad.returncode != 0


def test_reads_the_project_iam_policy_as_the_seed_does(google, gcloud):
    import base64

    policy = gcloud.json("projects", "get-iam-policy", GKE1)  # gcloud prints the bytes etag URL-safe
    assert base64.urlsafe_b64decode(policy["etag"]) == base64.b64decode(google.projects[GKE1].iam_policy["etag"])
    rows = gcloud.json("projects", "get-iam-policy", GKE1, "--flatten=bindings",
                       "--filter=bindings.role=roles/container.serviceAgent")
    assert [r["bindings"]["role"] for r in rows] == ["roles/container.serviceAgent"]
    assert AGENT in rows[0]["bindings"]["members"]
    number = gcloud.run("projects", "describe", GKE1, "--format=get(projectNumber)").stdout.strip()
    assert number == "12340002"


def test_reads_service_account_policies(google, gcloud):
    policy = gcloud.json("iam", "service-accounts", "get-iam-policy", "12340002-compute@developer.gserviceaccount.com")
    assert policy["bindings"][0]["role"] == "roles/iam.serviceAccountUser"


def test_printed_grant_command_works_on_a_policy_with_conditions(google, gcloud):
    """The bot's `gcloud projects add-iam-policy-binding` (with --condition=None) adds exactly one
    unconditional binding even when the policy already holds conditional ones; without the flag,
    gcloud refuses to guess in non-interactive mode."""
    import shlex

    from checks.iam import grant_command
    from tests.helpers import drop_binding

    st = google.projects[GKE1]
    drop_binding(st.iam_policy, "roles/container.serviceAgent", AGENT)
    st.iam_policy["version"] = 3
    st.iam_policy["bindings"].append({"role": "roles/container.viewer", "members": ["user:temp@example.com"],
                                      "condition": {"title": "until-2030", "expression":
                                                    "request.time < timestamp('2030-01-01T00:00:00Z')"}})
    before = json.loads(json.dumps(st.iam_policy["bindings"]))
    command = grant_command(GKE1, AGENT, "roles/container.serviceAgent")
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:3] == ["gcloud", "projects", "add-iam-policy-binding"]
    no_flag = gcloud.run(*[w for w in words[1:] if not w.startswith("--condition")], check=False)
    assert no_flag.returncode != 0 and "condition" in no_flag.stderr.lower()
    gcloud.run(*words[1:])
    after = st.iam_policy["bindings"]
    added = [b for b in after if b not in before]
    assert added == [{"role": "roles/container.serviceAgent", "members": [AGENT]}]
    assert all(b in after for b in before) and st.iam_policy["version"] == 3


@pytest.mark.parametrize("shape, mode, flags", [
    ("public", "auto", []),
    ("dns_only", "auto", []),
    ("private", "private", ["--internal-ip"]),
    ("dns_open", "dns", ["--dns-endpoint"]),
])
def test_bot_connects_where_get_credentials_points_kubectl(google, gcloud, settings, shape, mode, flags):
    """The bot's endpoint choice (GKE_BOT_ENDPOINT=mode) and verification match the kubeconfig that
    `gcloud container clusters get-credentials` (with the matching flag) writes."""
    import yaml

    from checks.gateway import Gateway
    from checks.gateway.endpoints import choose
    from checks.model import ClusterRef

    cluster = google.cluster(GKE1, "gke1")
    cluster["masterAuth"]["clusterCaCertificate"] = "UkVEQUNURUQ="
    dns = {"endpoint": "gke-0123456789abcdef.europe-west4-a.gke.goog", "allowExternalTraffic": True}
    if shape == "dns_only":
        cluster["controlPlaneEndpointsConfig"] = {"dnsEndpointConfig": dns, "ipEndpointsConfig": {"enabled": False}}
    elif shape == "private":
        cluster["privateClusterConfig"] = {"enablePrivateNodes": True, "privateEndpoint": "127.0.0.2",
                                           "publicEndpoint": "127.0.0.1"}
    elif shape == "dns_open":
        cluster["controlPlaneEndpointsConfig"] = {"dnsEndpointConfig": dns, "ipEndpointsConfig": {"enabled": True}}
    gcloud.run("container", "clusters", "get-credentials", "gke1", WHERE, *flags)
    kubeconfig = yaml.safe_load(gcloud.kubeconfig.read_text())
    (entry,) = kubeconfig["clusters"]
    ref = ClusterRef(GKE1, "europe-west4-a", "gke1")
    ep = choose(Gateway(settings.google_api_url).cluster(ref), ref, mode)
    assert entry["cluster"]["server"] == f"https://{ep.address}"
    # gcloud's kubeconfig verifies the IP endpoints with the cluster CA, the DNS endpoint with system roots
    assert ("certificate-authority-data" in entry["cluster"]) == (not ep.dns)


def test_dns_endpoint_closed_to_external_traffic_is_refused_by_both(google, gcloud, settings):
    from checks.gateway import ApiError, Gateway
    from checks.gateway.endpoints import choose
    from checks.model import ClusterRef

    google.cluster(GKE1, "gke1")["controlPlaneEndpointsConfig"] = {
        "dnsEndpointConfig": {"endpoint": "gke-0123456789abcdef.europe-west4-a.gke.goog",
                              "allowExternalTraffic": False}}
    out = gcloud.run("container", "clusters", "get-credentials", "gke1", WHERE, "--dns-endpoint", check=False)
    assert out.returncode != 0
    ref = ClusterRef(GKE1, "europe-west4-a", "gke1")
    with pytest.raises(ApiError) as info:
        choose(Gateway(settings.google_api_url).cluster(ref), ref, "dns")
    assert info.value.status == "ENDPOINT_REFUSED"
