"""`/gke ingress` end to end: a signed slash command → `gke-bot serve` → Redis → `gke-bot worker` → thread,
on the field report's world: HTTP load balancing off, and Argo CD's health endpoint redirecting to HTTPS."""
from __future__ import annotations

import json
from collections import Counter

from bot.grammar import parse
from checks.engine import run_command
from tests.helpers import GKE1, gateway
from tests.test_check_ingress_fixtures import ARGO_POD, REDIRECT, argocd, live  # noqa: F401 - live is a fixture
from tests.test_e2e import post
from tests.test_edge import assert_summary_matches, final_parent
from tests.test_remediation import buttons, click, outcome


def test_ingress_answers_in_a_thread_with_the_addon_button(served, slack, google, kube, live):
    world = argocd(kube, google)
    assert post(served, "ingress gke1", trigger="ing-1").status_code == 200
    try:
        parent = final_parent(slack)
    except AssertionError:
        raise AssertionError("no answer:\n" + served["server"].output() + served["worker"].output())
    [reply] = slack.thread("C123", parent["ts"])
    assert_summary_matches(parent, reply)
    blocks = json.dumps(reply["blocks"])
    assert "[FAIL] HTTP load balancing (the GKE Ingress controller) is enabled" in blocks
    assert "--update-addons=HttpLoadBalancing=ENABLED" in blocks
    assert "[FAIL] The load balancer's health check gets 200 from the serving Pods" in blocks
    assert f"Location: {REDIRECT}" in blocks and "--insecure" in blocks
    [button] = buttons(reply)
    assert button["text"]["text"] == "Enable HTTP load balancing"
    assert button["action_id"] == "remediate:enable_http_load_balancing"
    assert world["requests"] == ["/healthz"]  # the worker asked once and did not follow the redirect
    # an approver's click enables the add-on on the (fake) cluster
    click(served, slack, reply, "UAPPROVER")
    outcome(slack, parent, "— done")
    assert google.cluster(GKE1, "gke1")["addonsConfig"]["httpLoadBalancing"].get("disabled") in (False, None)


def test_ingress_command_reads_each_fact_once(google, kube, live, settings):
    argocd(kube, google)
    for text in ("ingress gke1", "ingress gke1 argocd/argocd-server-ingress"):
        cmd = parse(text)
        google.reset_calls()
        kube.reset_calls()
        report = run_command(gateway(settings), cmd.name, cmd.cluster, (GKE1,), "user:alice@example.com", cmd.args)
        assert {f.id for f in report.findings} >= {"ingress/http-lb-addon", "ingress/health-check-path",
                                                  "ingress/firewall"}
        seen = Counter((c.method, c.path, c.body) for c in google.calls if c.path != "/token")
        seen.update((c.method, c.path, c.query, c.body) for c in kube.calls)
        assert not {k: n for k, n in seen.items() if n > 1}
        assert sum(1 for c in kube.calls if c.path.endswith(f"/pods/{ARGO_POD}:8080/proxy/healthz")) == 1
