"""`gke-bot check` in a terminal: exit codes, JSON shape, one-line reasons."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import product_env
from tests.helpers import AGENT, GKE1, drop_binding


def gke_bot(env: dict, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "bot", *args], env=product_env(env), capture_output=True, text=True,
                         timeout=60)
    assert "loopback guard: refused" not in out.stderr, out.stderr
    return out


def test_check_json_fail_exits_1(env, google):
    drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    out = gke_bot(env, "check", "why-403", "gke1", "--format", "json")
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert data["command"] == "why-403"
    assert data["cluster"] == f"projects/{GKE1}/locations/europe-west4-a/clusters/gke1"
    f = next(f for f in data["findings"] if f["id"] == "gke/service-agent-role")
    assert f["status"] == "FAIL"
    assert set(f) >= {"id", "status", "title", "detail", "remedy", "doc_url"}


def test_check_text_ok_exits_0(env, google):
    out = gke_bot(env, "check", "why-403", "europe-west4-a/gke1", "--project", GKE1)
    assert out.returncode in (0, 1), out.stderr
    assert "[ OK ] gke/service-agent-role" in out.stdout


def test_check_usage_errors_exit_2_with_one_line(env):
    out = gke_bot(env, "check", "why-403", "Bad_Name")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "not a valid cluster name" in out.stderr
    out = gke_bot(env, "check", "nope", "gke1")
    assert out.returncode == 2 and "unknown command" in out.stderr


def test_check_unknown_cluster_exit_2(env):
    out = gke_bot(env, "check", "why-403", "gke-1")
    assert out.returncode == 2
    assert "Did you mean" in out.stderr


def test_missing_setting_names_the_variable(env):
    out = gke_bot({k: v for k, v in env.items() if k != "SLACK_BOT_TOKEN"}, "serve", "--port", "1")
    assert out.returncode == 2
    assert out.stderr.strip() == "gke-bot: SLACK_BOT_TOKEN is not set (see README, 'Configuration')"
