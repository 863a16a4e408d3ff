"""The Slack edge over the real wire: signed requests to the real WSGI app served on loopback,
the in-process queue, the fake Slack Web API and the fake Google APIs."""
from __future__ import annotations

import copy
import json
import re
import time

import pytest
import requests

from bot.work.queue import InProcessQueue
from bot.server import make_wsgi
from tests.conftest import SIGNING_SECRET
from tests.fakes.base import ServerThread
from tests.fakes.slack import event_callback_body, sign, slash_command_body
from tests.helpers import AGENT, GKE1, drop_binding


@pytest.fixture
def edge(settings, google, slack):
    srv = ServerThread(make_wsgi(settings, InProcessQueue(settings))).start()
    yield f"http://127.0.0.1:{srv.port}"
    srv.stop()


def add_cluster_x(google):
    """cluster-x: a copy of the recorded gke1 cluster under another name."""
    cx = copy.deepcopy(google.cluster(GKE1, "gke1"))
    cx["name"] = "cluster-x"
    cx["selfLink"] = cx["selfLink"].replace("/clusters/gke1", "/clusters/cluster-x")
    google.projects[GKE1].clusters.append(cx)
    return cx


def command(edge, slack, text, *, user="U123", channel="C123", trigger="t-1", secret=SIGNING_SECRET,
            timestamp=None, headers=None):
    response_url = slack.new_response_url()
    body = slash_command_body(text=text, user_id=user, channel_id=channel, response_url=response_url,
                              trigger_id=trigger)
    h = sign(secret, body, timestamp)
    h.update(headers or {})
    resp = requests.post(f"{edge}/slack/events", data=body, headers=h, timeout=10)
    resp.response_url = response_url
    return resp


def private_answer(resp, slack) -> dict:
    """An answer given at once: in the ack when the asker's language was known without asking Slack, else
    through the command's response_url right after the ack."""
    if resp.content:
        return resp.json()
    return slack.wait_for(lambda: slack.responses_to(resp.response_url), timeout=10)[0]


def assert_summary_matches(parent: dict, reply: dict) -> None:
    """The parent's summary counts the FAIL findings the thread reply shows (at least one)."""
    m = re.search(r":x: (\d+) FAIL", parent["text"])
    assert m, parent["text"]
    assert int(m.group(1)) == json.dumps(reply["blocks"]).count("[FAIL]") >= 1


def final_parent(slack, channel="C123"):
    """Wait until the parent message is no longer 'checking…'; return it."""
    def done():
        msgs = [m for m in slack.messages(channel) if not m.get("thread_ts") or m.get("thread_ts") == m["ts"]]
        return msgs and "checking…" not in msgs[0]["text"] and msgs[0]
    return slack.wait_for(done, timeout=20)


def test_why_403_answers_in_a_thread_with_the_service_agent_fail(edge, slack, google):
    add_cluster_x(google)
    drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    resp = command(edge, slack, "why-403 cluster-x")
    assert resp.status_code == 200
    parent = final_parent(slack)
    assert parent["text"].startswith("<@U123> asked `/gke why-403 cluster-x`")
    replies = slack.thread("C123", parent["ts"])
    assert len(replies) == 1, "one thread reply of blocks, not a message per finding"
    assert_summary_matches(parent, replies[0])
    text = json.dumps(replies[0]["blocks"])
    assert "[FAIL] GKE service agent has roles/container.serviceAgent" in text
    assert f"gcloud projects add-iam-policy-binding {GKE1}" in text
    assert "projects/gcpdiag-gke1-aaaa/locations/europe-west4-a/clusters/cluster-x" in text


def test_help_is_answered_at_once_without_a_job(edge, slack):
    resp = command(edge, slack, "help")
    assert resp.status_code == 200
    body = private_answer(resp, slack)
    assert body["response_type"] == "ephemeral"
    assert "why-403 CLUSTER" in json.dumps(body["blocks"])
    time.sleep(0.2)
    assert slack.calls_to("chat.postMessage") == []


@pytest.mark.parametrize("text, expected", [
    ("why-403 Bad_Name", "not a valid cluster name"),
    ("why-403 " + "a" * 41, "at most 40 characters"),
    ("wyh-403 cluster-x", "Did you mean `why-403`?"),
    ("why-403", "Which cluster?"),
    ("why-403 p/europe-west4/x", "not a valid project id"),
])
def test_bad_input_gets_a_clear_message_and_no_job(edge, slack, text, expected):
    resp = command(edge, slack, text)
    assert resp.status_code == 200
    assert expected in private_answer(resp, slack)["text"]
    time.sleep(0.2)
    assert slack.calls_to("chat.postMessage") == []


def test_user_text_never_pings_anyone(edge, slack):
    for text in ("why-403 <!channel>", "<!here> why-403", "why-403 x --as <@U999>"):
        resp = command(edge, slack, text)
        answer = json.dumps(private_answer(resp, slack))
        assert "<!" not in answer and "<@" not in answer
    assert slack.calls_to("chat.postMessage") == []


def test_forged_and_stale_signatures_get_401_and_nothing_posted(edge, slack):
    assert command(edge, slack, "why-403 gke1", secret="wrong-secret").status_code == 401
    assert command(edge, slack, "why-403 gke1", timestamp=int(time.time()) - 600).status_code == 401
    body = slash_command_body(text="why-403 gke1")
    assert requests.post(f"{edge}/slack/events", data=body, timeout=5).status_code == 401
    time.sleep(0.2)
    assert slack.calls_to("chat.postMessage") == []


def test_bot_not_in_private_channel_answers_privately(edge, slack):
    slack.add_channel("COUT", member=False, private=True)
    resp = command(edge, slack, "why-403 gke1", channel="COUT")
    assert resp.status_code == 200
    answers = slack.wait_for(lambda: slack.responses_to(resp.response_url))
    assert "/invite @gke-bot" in answers[0]["text"]
    assert answers[0].get("response_type") == "ephemeral"
    assert slack.messages("COUT") == []


def test_public_channel_the_bot_is_not_in_gets_the_answer_there(edge, slack):
    """chat:write.public (app-manifest.yaml) lets the bot post in any public channel without an invite."""
    slack.add_channel("CPUB", member=False)
    command(edge, slack, "why-403 gke1", channel="CPUB")
    parent = final_parent(slack, channel="CPUB")
    assert slack.thread("CPUB", parent["ts"]) and slack.responses == []


def test_slack_retry_of_a_handled_command_starts_no_second_job(edge, slack):
    command(edge, slack, "why-403 gke1", trigger="trig-7")
    command(edge, slack, "why-403 gke1", trigger="trig-7",
            headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    final_parent(slack)
    time.sleep(0.3)
    parents = [m for m in slack.messages("C123") if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
    assert len(parents) == 1


def test_not_found_suggests_the_closest_names(edge, slack):
    command(edge, slack, "why-403 gke-1")
    parent = final_parent(slack)
    reply = slack.thread("C123", parent["ts"])[0]
    assert "No cluster `gke-1`" in reply["text"]
    assert "gcpdiag-gke1-aaaa/europe-west4-a/gke1" in reply["text"]


def test_api_error_is_reported_in_the_thread_never_silence(edge, slack, google):
    google.deny("GET", r"/v1/projects/[^/]+/locations/-/clusters$", "container.clusters.list")
    command(edge, slack, "why-403 gke1")
    parent = final_parent(slack)
    reply = slack.thread("C123", parent["ts"])[0]
    assert "container.clusters.list" in reply["text"]
    assert "403" in reply["text"]


def test_mention_inside_a_thread_answers_in_that_thread(edge, slack, google):
    drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    event = {"type": "app_mention", "user": "U123", "text": "<@UBOT> why-403 gke1", "ts": "1600000100.000200",
             "thread_ts": "1600000000.000100", "channel": "C123", "event_ts": "1600000100.000200"}
    body = event_callback_body(event, event_id="Ev42")
    resp = requests.post(f"{edge}/slack/events", data=body, headers=sign(SIGNING_SECRET, body) | {
        "Content-Type": "application/json"}, timeout=5)
    assert resp.status_code == 200

    def answered():
        replies = slack.thread("C123", "1600000000.000100")
        return len(replies) >= 2 and "checking…" not in replies[0]["text"] and replies
    replies = slack.wait_for(answered, timeout=20)
    assert_summary_matches(replies[0], replies[1])
    assert all(m.get("thread_ts") == "1600000000.000100" for m in slack.messages("C123"))


def test_healthz_and_metrics(edge):
    health = requests.get(f"{edge}/healthz", timeout=5)
    assert health.status_code == 200 and health.json() == {"ok": True, "queue": "inprocess"}
    metrics = requests.get(f"{edge}/metrics", timeout=5)
    assert metrics.status_code == 200
    assert "gke_bot_commands_total" in metrics.text
    # /livez: what the Kubernetes probes and the load balancer's health check ask (deploy/overlays/http)
    assert requests.get(f"{edge}/livez", timeout=5).status_code == 200
    assert requests.get(f"{edge}/", timeout=5).status_code == 404  # why the LB's default check (GET /) would fail


@pytest.fixture
def edge_with(google, slack, env, monkeypatch):
    """An edge built with extra settings."""
    servers = []

    def build(**extra):
        from bot.config import Settings
        for k, v in extra.items():
            monkeypatch.setenv(k, v)
        s = Settings.from_env()
        srv = ServerThread(make_wsgi(s, InProcessQueue(s))).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.port}"
    yield build
    for srv in servers:
        srv.stop()


def test_per_user_rate_limit_is_polite_and_starts_nothing(edge_with, slack):
    edge = edge_with(GKE_BOT_RATE_USER="2/60")
    # three commands in a row: the limit is counted after each ack, on a pool, so which of the three is the one
    # over the limit is not fixed; exactly one is told to wait and starts nothing
    sent = {cluster: command(edge, slack, f"why-400 {cluster}", trigger=f"rl-{cluster}")
            for cluster in ("gke1", "gke2", "gke3")}
    slack.wait_for(lambda: sum(bool(slack.responses_to(r.response_url)) for r in sent.values()) == 1)
    [limited] = [c for c, r in sent.items() if slack.responses_to(r.response_url)]
    assert "please wait" in slack.responses_to(sent[limited].response_url)[0]["text"]

    def parents() -> list[str]:
        return [m["text"] for m in slack.messages("C123") if not m.get("thread_ts")]
    slack.wait_for(lambda: len(parents()) == 2)
    time.sleep(0.3)
    assert len(parents()) == 2 and not [p for p in parents() if f"why-400 {limited}`" in p]
    other = command(edge, slack, f"why-400 {limited}", user="UAPPROVER", trigger="rl-4")  # someone else may ask
    assert other.status_code == 200
    slack.wait_for(lambda: len(parents()) == 3)


def test_identical_concurrent_diagnoses_coalesce_into_one_job(edge_with, slack, google):
    edge = edge_with()
    google.latency = 0.5
    command(edge, slack, "doctor gke1", trigger="co-1")
    second = command(edge, slack, "doctor gke1", user="UAPPROVER", trigger="co-2")
    told = slack.wait_for(lambda: slack.responses_to(second.response_url))
    assert "already running" in told[0]["text"]
    final_parent(slack)
    google.latency = 0.0
    assert len([m for m in slack.messages("C123") if not m.get("thread_ts")]) == 1
    # finished: may run again (the job lets go of its key just after its final update: allow for that moment)
    def parents() -> int:
        return len([m for m in slack.messages("C123") if not m.get("thread_ts")])
    for attempt in range(20):
        again = command(edge, slack, "doctor gke1", user="UAPPROVER", trigger=f"co-3-{attempt}")
        slack.wait_for(lambda: parents() == 2 or slack.responses_to(again.response_url))
        if parents() == 2:
            break
        assert "already running" in slack.responses_to(again.response_url)[0]["text"]
        time.sleep(0.25)
    assert parents() == 2
    slack.wait_for(lambda: all("checking" not in m["text"] for m in slack.messages("C123") if not m.get("thread_ts")),
                   timeout=30)  # answered before the fakes stop


def test_slack_rate_limit_is_retried_after_retry_after(edge, slack, google):
    slack.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=1, times=1)
    command(edge, slack, "why-403 gke1", trigger="rl-slack")
    parent = final_parent(slack)
    assert slack.thread("C123", parent["ts"])
    assert len(slack.calls_to("chat.postMessage")) >= 3  # the refused one, the parent, the reply


def test_report_refused_as_too_long_is_uploaded_as_a_file(edge, slack, google):
    command(edge, slack, "why-403 gke1", trigger="long-1")
    slack.wait_for(lambda: slack.calls_to("chat.postMessage"))  # the parent is out
    slack.fail_next("chat.postMessage", error="msg_too_long", times=1)
    parent = final_parent(slack)
    files = slack.wait_for(lambda: slack.files)
    assert files[0]["thread_ts"] == parent["ts"]
    content = files[0]["content"]
    content = content.decode() if isinstance(content, bytes) else content
    assert content.startswith("gke-bot why-403 projects/gcpdiag-gke1-aaaa/locations/europe-west4-a/clusters/gke1")
    assert "gke/service-agent-role" in content


def test_a_replayed_signed_request_starts_no_second_job(edge, slack):
    body = slash_command_body(text="why-400 gke1", user_id="U123", channel_id="C123", trigger_id="replay-1",
                              response_url=slack.new_response_url())
    headers = sign(SIGNING_SECRET, body)
    for _ in range(3):  # byte-for-byte the same request, signature included
        assert requests.post(f"{edge}/slack/events", data=body, headers=headers, timeout=5).status_code == 200
    final_parent(slack)
    time.sleep(0.3)
    assert len([m for m in slack.messages("C123") if not m.get("thread_ts")]) == 1


def test_mention_with_an_email_slack_turned_into_a_mailto_link(edge, slack, google):
    # `--as` someone else: an approver asks (anyone else is refused; see tests/test_access_e2e.py)
    event = {"type": "app_mention", "user": "UAPPROVER", "channel": "C123", "ts": "1600000200.000100",
             "text": "<@UBOT> why-403 gke1 --as <mailto:testuser@example.com|testuser@example.com>"}
    body = event_callback_body(event, event_id="Ev77")
    for _ in range(2):  # Slack retries the event: one answer only
        requests.post(f"{edge}/slack/events", data=body, headers=sign(SIGNING_SECRET, body) | {
            "Content-Type": "application/json"}, timeout=5)

    def answered():
        replies = slack.thread("C123", "1600000200.000100")
        return len(replies) >= 2 and "checking…" not in replies[0]["text"] and replies
    replies = slack.wait_for(answered, timeout=20)
    assert "--as user:testuser@example.com" in replies[0]["text"]
    time.sleep(0.3)
    assert len(slack.thread("C123", "1600000200.000100")) == 2
