"""Every 4xx command end to end: signed slash command → serve → Redis → worker → thread."""
from __future__ import annotations

import json

import pytest

from tests.conftest import serve_cluster
from tests.helpers import GKE1
from tests.test_edge import final_parent
from tests.test_e2e import post


def answer(served, slack, text):
    post(served, text, trigger=text)
    parent = final_parent(slack)
    reply = slack.thread("C123", parent["ts"])
    assert reply, parent
    return parent, json.dumps([m.get("blocks") or m["text"] for m in reply])


@pytest.fixture
def live(google, kube):
    serve_cluster(google, kube, GKE1, "gke1")


def test_why_401(served, slack, live):
    _, thread = answer(served, slack, "why-401 gke1")
    assert "[FAIL] " in thread and "alice@example.com" in thread  # the asker (Slack email) lacks access
    assert "gke-gcloud-auth-plugin" in thread
    assert "--location=europe-west4-a" in thread


def test_why_400_offers_the_upgrade_button(served, slack, google, live):
    google.cluster(GKE1, "gke1")["nodePools"][0]["version"] = "1.24.10-gke.2300"
    _, thread = answer(served, slack, "why-400 gke1")
    assert "requires recreation" in thread
    assert "Upgrade default-pool to 1.25.7-gke.1000" in thread
    assert '"action_id": "remediate:upgrade_node_pool"' in thread


def test_why_404_suggests(served, slack):
    _, thread = answer(served, slack, "why-404 gke-1")
    assert "gcpdiag-gke1-aaaa/europe-west4-a/gke1" in thread
    assert "gcloud auth login" in thread


def test_doctor_runs_every_cluster_level_check(served, slack, live):
    from checks.registry import for_command
    from bot.render.blocks import escape
    parent, thread = answer(served, slack, "doctor gke1")
    checks = for_command("doctor")
    assert len(checks) >= 8
    for check in checks:
        assert json.dumps(escape(check.title))[1:-1] in thread, check.id
    assert "checking…" not in parent["text"]
