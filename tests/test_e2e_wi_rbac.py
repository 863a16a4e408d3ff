"""End to end for `/gke wi` and `/gke rbac`: a signed slash command to a real `gke-bot serve`, through a
real redis-server, to a real `gke-bot worker` process that reads the fake Google and Kubernetes APIs,
to the thread reply in (fake) Slack."""
from __future__ import annotations

import json

from tests.conftest import serve_cluster
from tests.fakes.kube import node, pod, service_account
from tests.helpers import GKE1
from tests.test_e2e import post
from tests.test_edge import assert_summary_matches, final_parent

GSA = f"gke2sa@{GKE1}.iam.gserviceaccount.com"


def thread_text(served, slack) -> tuple[dict, dict, str]:
    try:
        parent = final_parent(slack)
    except AssertionError:
        raise AssertionError("no answer:\n" + served["server"].output() + served["worker"].output())
    reply = slack.thread("C123", parent["ts"])[0]
    text = "\n".join(b["text"]["text"] for b in reply["blocks"] if isinstance(b.get("text"), dict))
    text += "\n".join(e["text"] for b in reply["blocks"] for e in b.get("elements") or [] if "text" in e)
    return parent, reply, text


def test_wi_travels_through_redis_and_a_worker(served, slack, google, kube):
    serve_cluster(google, kube, GKE1, "gke2")
    kube.add(service_account("app", "default", {"iam.gke.io/gcp-service-account": GSA}))
    kube.add(node("gke-gke2-default-pool-1", "default-pool"))
    kube.add(pod("app-1", sa="app", node="gke-gke2-default-pool-1", labels={"app": "app"}))
    resp = post(served, "wi gke2 default/app", trigger="e2e-wi")
    assert resp.status_code == 200, served["server"].output()
    parent, reply, text = thread_text(served, slack)
    assert_summary_matches(parent, reply)
    assert "[FAIL] The IAM service account lets the KSA act as it" in text
    assert f"gcloud iam service-accounts add-iam-policy-binding {GSA}" in text
    assert f"serviceAccount:{GKE1}.svc.id.goog[default/app]" in text
    assert ":white_check_mark: The KSA names its IAM service account — `default/app` is annotated" in text
    # the worker (not the server) read the cluster: the KSA's pods by field selector, once
    pods = [c for c in kube.calls if c.path == "/api/v1/namespaces/default/pods"]
    assert len(pods) == 1 and "spec.serviceAccountName%3Dapp" in pods[0].query


def test_rbac_travels_through_redis_and_a_worker(served, slack, google, kube):
    serve_cluster(google, kube, GKE1, "gke2")
    resp = post(served, "rbac gke2 list pods -n default", trigger="e2e-rbac")
    assert resp.status_code == 200, served["server"].output()
    parent, reply, text = thread_text(served, slack)
    assert_summary_matches(parent, reply)
    assert "[FAIL] Kubernetes allows the request (RBAC or IAM)" in text
    assert ('User "alice@example.com" cannot list resource "pods" in API group "" in the namespace "default": '
            'requires one of ["container.pods.list"] permission(s).') in text
    assert "kind: RoleBinding" in text and "name: alice@example.com" in text
    assert "--role roles/container.viewer" in text
    sar = [c for c in kube.calls if c.path.endswith("/subjectaccessreviews")]
    assert len(sar) == 1 and json.loads(sar[0].body)["spec"]["user"] == "alice@example.com"
