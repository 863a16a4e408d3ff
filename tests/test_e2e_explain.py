"""`/gke explain`, `@gke-bot explain` and the message shortcut *Diagnose this error*, end to end: signed Slack
requests to a real `gke-bot serve`, a real redis-server, a real `gke-bot worker`, the fake Slack, Google and
Kubernetes APIs.

Every seed error (tests/corpus/errors.yaml, seeds 000/001/002) pasted into `/gke explain` starts the
diagnosis it calls for, on the cluster it names or else the binding's one cluster; errors whose diagnosis
needs more (a Workload Identity symptom without its service account) are answered with what to add. With
several clusters the asker picks one; a principal named by the error is used only for approvers.
"""
from __future__ import annotations

import copy
import json
import time
import uuid

import pytest
import requests
import yaml

from tests.conftest import SIGNING_SECRET, serve_with
from tests.fakes.slack import (event_callback_body, interactive_body, message_action_payload, select_action_payload,
                               sign, slash_command_body)
from tests.helpers import GKE1
from tests.test_explain import CORPUS

ACME, ACME_NUMBER = "acme-prod", "12340077"
PAYMENTS = f"projects/{ACME}/locations/europe-west4/clusters/payments"
SEEDS = [e for e in CORPUS if e["id"].startswith("seed")]
CHANNELS = {e["id"]: f"CS{i:02d}" for i, e in enumerate(SEEDS)}
POLICY = {
    "bindings": [
        {"name": "payments", "channels": ["C123", *CHANNELS.values()], "projects": [ACME],
         "approvers": ["UAPPROVER"]},
        {"name": "fleet", "channels": ["CMULTI"], "projects": [GKE1], "approvers": ["UAPPROVER"]},
    ],
}
UNAUTHORIZED = '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized",' \
               '"reason":"Unauthorized","code":401}'
FORBIDDEN_BOB = ('Error from server (Forbidden): roles.rbac.authorization.k8s.io is forbidden: User "bob@example.com" '
                 'cannot list resource "roles" in API group "rbac.authorization.k8s.io" in the namespace "kube-system":'
                 ' requires one of ["container.roles.list"] permission(s).')


def acme(google, kube) -> dict:
    """Project acme-prod with one regional cluster, `payments` (the seeds' example), served by the fake
    Kubernetes API: a copy of the recorded gcpdiag project and its regional gke2."""
    st = copy.deepcopy(google.projects[GKE1])
    st.project = dict(st.project, projectId=ACME, name=f"projects/{ACME_NUMBER}", displayName=ACME)
    st.number = ACME_NUMBER
    cluster = copy.deepcopy(google.cluster(GKE1, "gke2"))
    assert cluster["location"] == "europe-west4"
    cluster["name"] = "payments"
    cluster["selfLink"] = cluster["selfLink"].replace(f"/projects/{GKE1}/", f"/projects/{ACME}/").replace(
        "/clusters/gke2", "/clusters/payments")
    cluster["endpoint"] = kube.endpoint
    cluster.setdefault("masterAuth", {})["clusterCaCertificate"] = kube.ca_b64
    st.clusters, st.operations = [cluster], []
    google.projects[ACME] = st
    return cluster


@pytest.fixture
def bot(spawn, env, google, kube, slack, redis_url, tmp_path):
    acme(google, kube)
    for channel in ["CMULTI", *CHANNELS.values()]:
        slack.add_channel(channel)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(POLICY))
    return serve_with(spawn, dict(env, GKE_BOT_POLICY=str(path), GKE_BOT_PROJECTS=f"{ACME},{GKE1}",
                                  GKE_BOT_RATE_USER="500/60", GKE_BOT_RATE_CHANNEL="500/60"), redis_url)


def post(bot, body: str) -> None:
    headers = sign(SIGNING_SECRET, body)
    resp = requests.post(f"{bot['url']}/slack/events", data=body, headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text


def explain(bot, slack, text: str, channel: str = "C123", user: str = "U123") -> str:
    """`/gke explain TEXT`; returns the command's response_url."""
    url = slack.new_response_url()
    post(bot, slash_command_body(text="explain " + text, user_id=user, channel_id=channel, response_url=url,
                                 trigger_id=uuid.uuid4().hex))
    return url


def parents(slack, channel: str) -> list[dict]:
    return [m for m in slack.messages(channel) if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]


def answered(bot, slack, channel: str, thread_of=None, timeout: float = 60) -> tuple[dict, list[dict]]:
    """The finished parent in `channel` (or in the thread `thread_of`) and the replies under it."""
    def done():
        pool = parents(slack, channel) if thread_of is None else slack.thread(channel, thread_of)
        for m in pool:
            if "/gke explain" in m["text"] and "checking…" not in m["text"] and "choose a cluster" not in m["text"]:
                return m
        return None
    try:
        parent = slack.wait_for(done, timeout=timeout)
    except AssertionError:
        raise AssertionError("no answer:\n" + bot["server"].output()[-3000:] + bot["worker"].output()[-3000:])
    thread = slack.thread(channel, parent.get("thread_ts") or parent["ts"])
    return parent, [m for m in thread if m["ts"] != parent["ts"]]


def text_of(messages: list[dict]) -> str:
    return json.dumps([m.get("blocks") or m["text"] for m in messages])


def test_each_seed_error_starts_the_diagnosis_it_calls_for(bot, slack, google):
    urls = {e["id"]: explain(bot, slack, e["text"], channel=CHANNELS[e["id"]]) for e in SEEDS}
    for entry in SEEDS:
        expect, channel = entry["expect"], CHANNELS[entry["id"]]
        if expect["kind"].startswith("wi-") and not expect["args"]:
            # a Workload Identity symptom that names no workload: what to add, privately; nothing started
            answer = slack.wait_for(lambda: slack.responses_to(urls[entry["id"]]), timeout=30)[0]["text"]
            assert "`/gke wi CLUSTER NAMESPACE/KSA`" in answer and "Recognised:" in answer, entry["id"]
            continue
        parent, replies = answered(bot, slack, channel)
        assert replies, entry["id"]
        head = replies[0]["blocks"][0]["text"]["text"] if replies[0].get("blocks") else replies[0]["text"]
        cluster = "asia-northeast1/payments" if expect["cluster"] == "asia-northeast1/payments" else PAYMENTS
        assert head.startswith(f"*{expect['command']}* on `{cluster}`"), (entry["id"], head)
        shown = text_of(replies)
        assert "Recognised:" in shown and f"Diagnosis: `/gke {expect['command']} " in shown, entry["id"]
        for value in expect["args"].values():
            if expect["command"] in ("rbac", "wi", "ingress"):
                assert value in shown, (entry["id"], value)
        if expect["principal"] and expect["principal"] != "user:alice@example.com":
            # named by the error, but the asker is no approver: diagnosed as the asker, and told so
            assert f"The error names `{expect['principal']}`" in shown, entry["id"]
            assert "Diagnosed as `user:alice@example.com`" in shown, entry["id"]
    for entry in SEEDS:  # the wi symptoms without a workload started nothing
        if entry["expect"]["kind"].startswith("wi-") and not entry["expect"]["args"]:
            assert parents(slack, CHANNELS[entry["id"]]) == []


def test_the_shortcut_answers_in_the_messages_thread(bot, slack):
    seed = next(e for e in SEEDS if e["id"] == "seed001-400-node-pool")
    for message in ({"type": "message", "ts": "1700000500.000100", "user": "UNOBODY", "text": seed["text"]},
                    {"type": "message", "ts": "1700000600.000100", "thread_ts": "1700000550.000100",
                     "user": "UNOBODY", "text": "", "blocks": [{"type": "rich_text", "elements": [
                         {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": seed["text"]}]}]}]}):
        url = slack.new_response_url()
        post(bot, interactive_body(message_action_payload("gke_diagnose_error", "U123", "C123", message, url,
                                                          trigger_id=uuid.uuid4().hex)))
        under = message.get("thread_ts") or message["ts"]
        parent, replies = answered(bot, slack, "C123", thread_of=under)
        assert parent["thread_ts"] == under  # the parent is a reply to the message (or in its thread)
        assert replies[0]["thread_ts"] == under
        assert replies[0]["blocks"][0]["text"]["text"].startswith(f"*why-400* on `{PAYMENTS}`")
        assert "`test-pool-1`" in text_of(replies)
    # a message without any text: said privately, nothing started
    url = slack.new_response_url()
    post(bot, interactive_body(message_action_payload("gke_diagnose_error", "U123", "C123",
                                                      {"type": "message", "ts": "1700000700.000100", "text": ""},
                                                      url, trigger_id=uuid.uuid4().hex)))
    assert "no text" in slack.wait_for(lambda: slack.responses_to(url))[0]["text"]


def test_a_mention_explains_in_its_thread(bot, slack):
    event = {"type": "app_mention", "user": "U123", "ts": "1700000800.000200", "thread_ts": "1700000800.000100",
             "channel": "C123", "event_ts": "1700000800.000200", "text": "<@UBOT> explain\n" + UNAUTHORIZED}
    body = event_callback_body(event, event_id="EvExplain")
    resp = requests.post(f"{bot['url']}/slack/events", data=body, timeout=10,
                         headers=sign(SIGNING_SECRET, body) | {"Content-Type": "application/json"})
    assert resp.status_code == 200
    _parent, replies = answered(bot, slack, "C123", thread_of="1700000800.000100")
    assert replies[0]["blocks"][0]["text"]["text"].startswith(f"*why-401* on `{PAYMENTS}`")


def test_several_clusters_ask_with_a_picker_and_the_choice_starts_the_diagnosis(bot, slack, google):
    explain(bot, slack, UNAUTHORIZED, channel="CMULTI")
    picker = slack.wait_for(lambda: [e for e in slack.ephemerals if e["channel"] == "CMULTI" and e["blocks"]],
                            timeout=30)[0]
    # the parent's status is updated just after the picker is posted: wait for it
    parent = slack.wait_for(lambda: [p for p in parents(slack, "CMULTI")
                                     if "waiting for <@U123> to choose a cluster" in p["text"]], timeout=30)[0]
    assert picker["user"] == "U123" and picker.get("thread_ts") == parent["ts"]
    block = picker["blocks"][-1]
    options = [o["value"] for o in block["accessory"]["options"]]
    assert sorted(options) == sorted(f"{GKE1}/{c['location']}/{c['name']}" for c in google.projects[GKE1].clusters)
    assert "Recognised: The cluster's API server answered 401 Unauthorized." in json.dumps(picker["blocks"])

    def choose(user: str, value: str) -> str:
        url = slack.new_response_url()
        post(bot, interactive_body(select_action_payload("explain_pick", block["block_id"], value, value, user,
                                                         "CMULTI", picker["ts"], url)))
        return url
    # only the asker may choose, and only among the clusters offered
    assert "Only <@U123>" in slack.wait_for(lambda: slack.responses_to(choose("UNOBODY", options[0])))[0]["text"]
    other = slack.wait_for(lambda: slack.responses_to(choose("U123", "someone-else/europe-west4/x")))[0]["text"]
    assert "not one of those offered" in other
    time.sleep(0.5)
    assert "choose a cluster" in parents(slack, "CMULTI")[0]["text"]
    url = choose("U123", f"{GKE1}/europe-west4-a/gke1")
    _parent, replies = answered(bot, slack, "CMULTI")
    assert replies[0]["blocks"][0]["text"]["text"].startswith(
        f"*why-401* on `projects/{GKE1}/locations/europe-west4-a/clusters/gke1`")
    assert "Diagnosing `gcpdiag-gke1-aaaa/europe-west4-a/gke1`" in slack.responses_to(url)[0]["text"]
    assert slack.responses_to(url)[0].get("replace_original") is True  # the picker is replaced
    # a second choice on the same picker starts nothing more
    choose("U123", f"{GKE1}/europe-west4/gke2")
    time.sleep(1.5)
    assert len([m for m in slack.thread("CMULTI", parent["ts"]) if m.get("blocks")]) == 1


def test_a_principal_named_by_the_error_is_used_for_approvers_only(bot, slack, kube):
    explain(bot, slack, FORBIDDEN_BOB)
    _parent, replies = answered(bot, slack, "C123")
    shown = text_of(replies)
    assert "The error names `user:bob@example.com`, but only approvers" in shown
    assert "Diagnosed as `user:alice@example.com` (the email of your Slack profile)" in shown
    sar = [json.loads(c.body)["spec"]["user"] for c in kube.calls if c.path.endswith("/subjectaccessreviews")]
    assert sar and set(sar) == {"alice@example.com"}  # nothing was looked up about bob
    kube.reset_calls()
    explain(bot, slack, FORBIDDEN_BOB, channel="CS00", user="UAPPROVER")
    _parent, replies = answered(bot, slack, "CS00")
    shown = text_of(replies)
    assert "Diagnosed as `user:bob@example.com` (named by the error; you are an approver here)" in shown
    assert "but only approvers" not in shown
    sar = [json.loads(c.body)["spec"]["user"] for c in kube.calls if c.path.endswith("/subjectaccessreviews")]
    assert sar and set(sar) == {"bob@example.com"}


def test_unrecognised_text_says_what_the_bot_recognises(bot, slack, google):
    url = explain(bot, slack, "my deployment is slow, any idea?")
    answer = slack.wait_for(lambda: slack.responses_to(url), timeout=15)[0]["text"]
    assert "I did not recognise an error" in answer and "`/gke why-403 CLUSTER`" in answer
    assert answer.count("\n•") >= 25  # every kind the recognizer knows
    time.sleep(0.5)
    assert parents(slack, "C123") == [] and [c for c in google.calls if c.path != "/token"] == []


def test_explain_refuses_a_project_outside_the_binding_before_any_request(bot, slack, google):
    url = explain(bot, slack, f"ERROR: (gcloud.container.clusters.get-credentials) ResponseError: code=404, "
                              f"message=Not found: projects/{GKE1}/locations/europe-west4-a/clusters/gke1.")
    answer = slack.wait_for(lambda: slack.responses_to(url), timeout=15)[0]["text"]
    assert f"Project `{GKE1}` is not one this conversation may ask about" in answer
    time.sleep(0.5)
    assert parents(slack, "C123") == [] and [c for c in google.calls if c.path != "/token"] == []


def test_picks_and_fix_confirmations_written_into_redis_by_someone_else_are_refused(settings, redis_url):
    """What a picker or a confirmation dialog stands for lives in Redis, signed: an edited entry is no entry."""
    import redis as redis_lib

    from bot.work.picks import Picks
    from bot.work.store import Store
    from tests.conftest import PLAN_KEY
    r = redis_lib.Redis.from_url(redis_url)
    picks = Picks(r, (PLAN_KEY.encode(),))
    pick_id = picks.save({"user": "U123", "channel": "C123", "clusters": ["acme-prod/europe-west4/payments"]})
    assert picks.load(pick_id)["clusters"] == ["acme-prod/europe-west4/payments"]
    raw = json.loads(r.get(f"gke-bot:pick:{pick_id}"))
    raw["clusters"].append("other-project/europe-west4/x")
    r.set(f"gke-bot:pick:{pick_id}", json.dumps(raw))
    assert picks.load(pick_id) is None
    assert Picks(r, (b"another-key-" * 4,)).load(pick_id) is None
    assert picks.take("p1") and not picks.take("p1")  # once only
    store = Store(r, keys=(PLAN_KEY.encode(),))
    token = store.save_confirmation({"plan_id": "plan-1", "user": "UAPPROVER", "channel": "C123"})
    assert store.confirmation(token)["plan_id"] == "plan-1"
    raw = json.loads(r.get(f"gke-bot:confirm:{token}"))
    r.set(f"gke-bot:confirm:{token}", json.dumps(dict(raw, user="UNOBODY")))
    assert store.confirmation(token) is None and store.confirmation("no-such-token") is None


def test_the_picker_works_without_redis_too(settings, google, slack):
    """The single-machine trial (no REDIS_URL): the picker's pick lives in the process that serves and runs."""
    from bot.server import make_wsgi
    from bot.work.queue import InProcessQueue
    from tests.fakes.base import ServerThread
    srv = ServerThread(make_wsgi(settings, InProcessQueue(settings))).start()
    try:
        trial = {"url": f"http://127.0.0.1:{srv.port}", "server": None, "worker": None}
        post(trial, slash_command_body(text="explain " + UNAUTHORIZED, user_id="U123", channel_id="C123",
                                       response_url=slack.new_response_url(), trigger_id="trial-1"))
        picker = slack.wait_for(lambda: [e for e in slack.ephemerals if e["blocks"]], timeout=30)[0]
        block = picker["blocks"][-1]
        post(trial, interactive_body(select_action_payload(
            "explain_pick", block["block_id"], f"{GKE1}/europe-west4/gke2", "gke2", "U123", "C123", picker["ts"],
            slack.new_response_url())))
        parent = parents(slack, "C123")[0]
        slack.wait_for(lambda: "choose a cluster" not in parents(slack, "C123")[0]["text"]
                       and "checking…" not in parents(slack, "C123")[0]["text"], timeout=30)
        reply = [m for m in slack.thread("C123", parent["ts"]) if m.get("blocks")][0]
        assert reply["blocks"][0]["text"]["text"].startswith(
            f"*why-401* on `projects/{GKE1}/locations/europe-west4/clusters/gke2`")
    finally:
        srv.stop()
