"""The Kubernetes fake, checked with the real `kubectl` installed here (skipped only where it is missing).

kubectl gets a throwaway kubeconfig with the fake's CA and bearer tokens: it must discover the API
(aggregated discovery, apidiscovery.k8s.io/v2, as kubectl 1.30+ asks for it), `get` objects, answer
`auth can-i` (SelfSubjectAccessReview) and act `--as` another user (impersonation headers), with the
fake authorizing every request for its caller as a real API server does. Everything on loopback.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.fakes.kube import FakeKube, pod

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
RBAC = "rbac.authorization.k8s.io/v1"
TOKENS = {"admin-token": None, "alice-token": ("alice@example.com", [])}


@pytest.fixture
def kube():
    fake = FakeKube(token_ok=lambda token: token in TOKENS)
    fake.users["alice-token"] = TOKENS["alice-token"]
    with fake:
        fake.add(pod("web-1", "shop", node="n1"))
        yield fake


@pytest.fixture
def kubectl(kube, tmp_path):
    config = tmp_path / "kubeconfig"
    config.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: https://{kube.endpoint}
    certificate-authority-data: {kube.ca_b64}
users:
- name: admin
  user: {{token: admin-token}}
- name: alice
  user: {{token: alice-token}}
contexts:
- name: admin
  context: {{cluster: fake, user: admin}}
- name: alice
  context: {{cluster: fake, user: alice}}
current-context: admin
""")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "KUBECONFIG": str(config),
           "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL, "--cache-dir", str(tmp_path / "cache"), "--request-timeout", "20s", *args],
                              env=env, capture_output=True, text=True, timeout=60)
    return run


def bind(kube, name: str, role: str, rules: list[dict], subject: dict, namespace: str = "") -> None:
    kind = "Role" if namespace else "ClusterRole"
    meta = {"name": role, **({"namespace": namespace} if namespace else {})}
    kube.add({"apiVersion": RBAC, "kind": kind, "metadata": meta, "rules": rules})
    kube.add({"apiVersion": RBAC, "kind": f"{kind}Binding", "metadata": dict(meta, name=name),
              "subjects": [dict(subject, apiGroup="rbac.authorization.k8s.io")],
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role}})


def test_get_through_aggregated_discovery(kube, kubectl):
    got = kubectl("get", "pods", "-n", "shop", "-o", "json")
    assert got.returncode == 0, got.stderr
    assert [p["metadata"]["name"] for p in json.loads(got.stdout)["items"]] == ["web-1"]
    got = kubectl("get", "namespaces", "-o", "json")
    assert got.returncode == 0 and [n["metadata"]["name"] for n in json.loads(got.stdout)["items"]] == ["shop"]
    discovery = [c for c in kube.calls if c.path in ("/api", "/apis")]
    assert discovery and all("g=apidiscovery.k8s.io;v=v2" in c.headers.get("Accept", "") for c in discovery)
    assert not any(c.path.startswith("/apis/") and c.path.count("/") == 3 for c in kube.calls)  # no per-group lists
    # short names and groups come from the discovery documents
    got = kubectl("get", "po", "-A", "-o", "name")
    assert got.returncode == 0 and got.stdout.split() == ["pod/web-1"], got.stderr
    resources = kubectl("api-resources", "--no-headers")
    assert resources.returncode == 0, resources.stderr
    rows = {tuple(line.split()[:2]) for line in resources.stdout.splitlines()}
    assert ("pods", "po") in rows and ("deployments", "deploy") in rows
    assert any(line.split()[0] == "roles" and "rbac.authorization.k8s.io/v1" in line
               for line in resources.stdout.splitlines())


def test_auth_can_i_is_a_self_subject_access_review(kube, kubectl):
    assert kubectl("auth", "can-i", "list", "pods", "-n", "shop").stdout.strip() == "yes"  # system:masters
    no = kubectl("--context", "alice", "auth", "can-i", "list", "pods", "-n", "shop")
    assert (no.returncode, no.stdout.strip()) == (1, "no")
    review = [c for c in kube.calls if c.path.endswith("/selfsubjectaccessreviews")][-1]
    assert json.loads(review.body)["spec"]["resourceAttributes"] == {"namespace": "shop", "resource": "pods",
                                                                     "verb": "list"}
    denied = kubectl("--context", "alice", "get", "pods", "-n", "shop")
    assert denied.returncode == 1
    assert ('Error from server (Forbidden): pods is forbidden: User "alice@example.com" cannot list resource '
            '"pods" in API group "" in the namespace "shop"') in denied.stderr
    bind(kube, "alice-reads", "pod-reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
         {"kind": "User", "name": "alice@example.com"}, "shop")
    assert kubectl("--context", "alice", "auth", "can-i", "list", "pods", "-n", "shop").stdout.strip() == "yes"
    assert kubectl("--context", "alice", "auth", "can-i", "list", "pods", "-n", "other").stdout.strip() == "no"
    assert kubectl("--context", "alice", "get", "pods", "-n", "shop", "-o", "name").stdout.split() == ["pod/web-1"]


def test_impersonation_needs_the_impersonate_verb(kube, kubectl):
    # kubectl prints a refused *discovery* request as "Forbidden: unknown" (client-go reads it raw), so
    # let it discover first, as the admin, the way any earlier kubectl command leaves its cache
    assert kubectl("api-resources", "-o", "name").returncode == 0
    refused = kubectl("--context", "alice", "get", "pods", "-n", "shop", "--as", "bob@example.com")
    assert refused.returncode == 1
    assert ('Error from server (Forbidden): users "bob@example.com" is forbidden: User "alice@example.com" cannot '
            'impersonate resource "users" in API group "" at the cluster scope') in refused.stderr
    bind(kube, "alice-impersonates", "impersonator",
         [{"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]}],
         {"kind": "User", "name": "alice@example.com"})
    as_bob = kubectl("--context", "alice", "get", "pods", "-n", "shop", "--as", "bob@example.com",
                     "--as-group", "devs@example.com")
    assert 'User "bob@example.com" cannot list resource "pods"' in as_bob.stderr  # now runs as bob
    sent = kube.calls[-1].headers
    assert (sent["Impersonate-User"], sent["Impersonate-Group"]) == ("bob@example.com", "devs@example.com")
    # bob carries devs@example.com and system:authenticated: bindings to either reach him
    bind(kube, "devs-read", "pod-reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
         {"kind": "Group", "name": "devs@example.com"}, "shop")
    assert kubectl("--context", "alice", "auth", "can-i", "list", "pods", "-n", "shop", "--as", "bob@example.com",
                   "--as-group", "devs@example.com").stdout.strip() == "yes"
    assert kubectl("--context", "alice", "auth", "can-i", "list", "pods", "-n", "shop",
                   "--as", "bob@example.com").stdout.strip() == "no"
    bind(kube, "all-read", "all-reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
         {"kind": "Group", "name": "system:authenticated"}, "shop")
    assert kubectl("--context", "alice", "auth", "can-i", "list", "pods", "-n", "shop",
                   "--as", "bob@example.com").stdout.strip() == "yes"
