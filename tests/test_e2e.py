"""End to end: a signed slash command to a real `gke-bot serve`, through a real redis-server, to a
real `gke-bot worker` process, to a thread reply in (fake) Slack."""
from __future__ import annotations

import json

import requests

from tests.conftest import SIGNING_SECRET
from tests.fakes.slack import sign, slash_command_body
from tests.test_edge import assert_summary_matches
from tests.helpers import AGENT, GKE1, drop_binding
from tests.test_edge import add_cluster_x, final_parent


def post(served, text, trigger="e2e-1"):
    body = slash_command_body(text=text, user_id="U123", channel_id="C123", trigger_id=trigger)
    return requests.post(f"{served['url']}/slack/events", data=body, headers=sign(SIGNING_SECRET, body), timeout=10)


def test_why_403_travels_through_redis_and_a_worker_process(served, slack, google, redis_url):
    add_cluster_x(google)
    drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    resp = post(served, "why-403 cluster-x")
    assert resp.status_code == 200, served["server"].output()
    try:
        parent = final_parent(slack)
    except AssertionError:
        raise AssertionError("no answer:\n" + served["server"].output() + served["worker"].output())
    reply = slack.thread("C123", parent["ts"])[0]
    assert_summary_matches(parent, reply)
    blocks = json.dumps(reply["blocks"])
    assert "[FAIL] GKE service agent has roles/container.serviceAgent" in blocks
    assert AGENT.split(":", 1)[1] in blocks
    # the job went through Redis: RQ recorded it as finished
    import redis
    from rq import Queue
    from rq.serializers import JSONSerializer
    q = Queue("gke-bot", connection=redis.Redis.from_url(redis_url), serializer=JSONSerializer)
    assert q.finished_job_registry.count == 1
    # the worker (not the server) talked to Google
    assert any(c.path.endswith(":getIamPolicy") for c in google.calls)


def test_healthz_is_ready_with_redis(served):
    r = requests.get(f"{served['url']}/healthz", timeout=5)
    assert r.status_code == 200 and r.json()["queue"] == "rq"
