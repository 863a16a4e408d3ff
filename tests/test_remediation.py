"""Remediation buttons end to end: Slack click → `gke-bot serve` → Redis → `gke-bot worker` → Google fake.

Confirmed (a dialog in the approver's language), approvers only, four-eyes, exactly once, audited, never losing
data.
"""
from __future__ import annotations

import copy
import json
import threading
import uuid

import pytest
import redis
import requests

from bot.work.store import Store
from tests.conftest import SIGNING_SECRET
from tests.fakes.slack import (block_actions_payload, interactive_body, sign, slash_command_body,
                               view_submission_payload)
from tests.helpers import AGENT, GKE1, drop_binding
from tests.test_edge import final_parent

ROLE = "roles/container.serviceAgent"


def diagnose(served, slack, text="why-403 gke1", user="U123", trigger="r-1"):
    body = slash_command_body(text=text, user_id=user, channel_id="C123", trigger_id=trigger)
    assert requests.post(f"{served['url']}/slack/events", data=body, headers=sign(SIGNING_SECRET, body),
                         timeout=10).status_code == 200
    parent = final_parent(slack)
    reply = copy.deepcopy(slack.thread("C123", parent["ts"])[0])  # a snapshot: the fake updates messages in place
    return parent, reply


def buttons(reply: dict) -> list[dict]:
    return [e for b in reply["blocks"] if b["type"] == "actions" for e in b["elements"]]


def click(served, slack, reply, user, button=None, channel="C123", confirm=True):
    """Click a fix button as `user`; when the bot opens its confirmation dialog, confirm it (unless
    confirm=False). Returns the click's response_url (where private answers go)."""
    button = button or buttons(reply)[0]
    response_url = slack.new_response_url()
    trigger = uuid.uuid4().hex
    payload = block_actions_payload(button["action_id"], button["value"], user, channel, reply["ts"], response_url,
                                    block_id=next(b["block_id"] for b in reply["blocks"] if b["type"] == "actions"))
    payload["trigger_id"] = trigger
    payload["message"].update(text=reply["text"], blocks=copy.deepcopy(reply["blocks"]))
    body = interactive_body(payload)
    resp = requests.post(f"{served['url']}/slack/events", data=body, headers=sign(SIGNING_SECRET, body), timeout=10)
    assert resp.status_code == 200
    slack.wait_for(lambda: slack.responses_to(response_url) or dialog(slack, trigger), timeout=15)
    view = dialog(slack, trigger)
    if view and confirm:
        submit(served, view, user)
    return response_url


def dialog(slack, trigger: str) -> dict | None:
    """The view the bot opened for a click's trigger_id, if any."""
    return next((v["view"] for v in slack.views if v["trigger_id"] == trigger), None)


def submit(served, view: dict, user: str) -> requests.Response:
    body = interactive_body(view_submission_payload(view, user))
    resp = requests.post(f"{served['url']}/slack/events", data=body, headers=sign(SIGNING_SECRET, body), timeout=10)
    assert resp.status_code == 200
    return resp


def outcome(slack, parent, word):
    return slack.wait_for(lambda: [m for m in slack.thread("C123", parent["ts"]) if word in m["text"]], timeout=20)


def audit(redis_url) -> list[dict]:
    return Store(redis.Redis.from_url(redis_url)).audit_entries(50)


@pytest.fixture
def broken(google):
    drop_binding(google.projects[GKE1].iam_policy, ROLE, AGENT)
    return copy.deepcopy(google.projects[GKE1].iam_policy)


def bindings_of(policy):
    return sorted((b["role"], tuple(sorted(b["members"])), json.dumps(b.get("condition"), sort_keys=True))
                  for b in policy["bindings"])


def test_button_is_confirmed_and_names_the_action(served, slack, google, broken):
    _, reply = diagnose(served, slack)
    [button] = buttons(reply)
    assert button["text"]["text"] == f"Re-grant {ROLE}"
    assert len(button["text"]["text"]) <= 75
    assert len(button["value"]) < 64  # a plan id, not the plan
    # the click opens a confirmation dialog saying exactly what changes; nothing runs until it is confirmed
    click(served, slack, reply, "UAPPROVER", confirm=False)
    [opened] = slack.views
    view = opened["view"]
    assert (view["callback_id"], view["title"]["text"], view["submit"]["text"]) == \
        ("remediate_confirm", "Run this fix?", "Run it")
    shown = json.dumps(view["blocks"])
    assert AGENT in shown and GKE1 in shown and ROLE in shown and "<@U123>" in shown
    assert len(view["private_metadata"]) < 64  # a token: what it stands for stays on the bot's side
    import time
    time.sleep(0.5)
    assert not [c for c in google.calls if c.path.endswith(":setIamPolicy")]
    # a forged or expired dialog runs nothing and says so in the dialog
    resp = submit(served, dict(view, private_metadata="forged-token"), "UAPPROVER")
    assert resp.json()["response_action"] == "update" and "expired" in json.dumps(resp.json()["view"])
    resp = submit(served, view, "UAPPROVER2")  # another approver cannot submit someone else's dialog
    assert resp.json()["response_action"] == "update"
    time.sleep(0.5)
    assert not [c for c in google.calls if c.path.endswith(":setIamPolicy")]


def test_approver_click_regrants_exactly_one_binding(served, slack, google, broken, redis_url):
    parent, reply = diagnose(served, slack)
    click(served, slack, reply, "UAPPROVER")
    done = outcome(slack, parent, "— done")
    assert AGENT in done[0]["text"]
    after = google.projects[GKE1].iam_policy
    expected = copy.deepcopy(broken)
    expected["bindings"].append({"role": ROLE, "members": [AGENT]})
    assert bindings_of(after) == bindings_of(expected)
    assert after["version"] == broken["version"]
    # the button was replaced by who approved it
    # the fix line is updated just after the result is posted: wait for it
    msg = slack.wait_for(lambda: [m for m in slack.messages("C123") if m["ts"] == reply["ts"]
                                  and "Approved by <@UAPPROVER>" in json.dumps(m["blocks"])])[0]
    assert buttons(msg) == []
    events = [e["event"] for e in audit(redis_url)]
    assert events[:2] == ["succeeded", "approved"]


def test_concurrent_iam_edit_forces_409_and_both_edits_survive(served, slack, google, broken):
    parent, reply = diagnose(served, slack)
    other = {"role": "roles/viewer", "members": ["user:concurrent@example.com"]}
    fired = []

    def concurrent_edit(project):
        if not fired:  # between the bot's read and its write, somebody else writes
            fired.append(1)
            google.projects[project].iam_policy["bindings"].append(other)
    google.on_set_iam_policy = concurrent_edit
    click(served, slack, reply, "UAPPROVER")
    outcome(slack, parent, "— done")
    after = google.projects[GKE1].iam_policy
    expected = copy.deepcopy(broken)
    expected["bindings"] += [other, {"role": ROLE, "members": [AGENT]}]
    assert bindings_of(after) == bindings_of(expected)
    sets = [c for c in google.calls if c.path.endswith(":setIamPolicy")]
    assert len(sets) == 2  # one 409, one success


def test_double_click_and_two_approvers_run_once(served, slack, google, broken, redis_url):
    parent, reply = diagnose(served, slack)
    threads = [threading.Thread(target=click, args=(served, slack, reply, u)) for u in
               ("UAPPROVER", "UAPPROVER2", "UAPPROVER", "UGROUPIE")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcome(slack, parent, "— done")
    slack.wait_for(lambda: len([e for e in audit(redis_url) if e["event"] == "duplicate"]) == 3, timeout=10)
    assert len([c for c in google.calls if c.path.endswith(":setIamPolicy")]) == 1
    events = [e["event"] for e in audit(redis_url)]
    assert events.count("approved") == 1 and events.count("succeeded") == 1


def test_non_approver_and_self_approval_change_nothing(served, slack, google, broken, redis_url):
    _, reply = diagnose(served, slack, user="UAPPROVER")  # an approver asks
    url = click(served, slack, reply, "UNOBODY")
    assert "Only approvers" in slack.wait_for(lambda: slack.responses_to(url))[0]["text"]
    url = click(served, slack, reply, "UAPPROVER")  # the requester approves their own fix
    assert "four-eyes" in slack.wait_for(lambda: slack.responses_to(url))[0]["text"]
    assert bindings_of(google.projects[GKE1].iam_policy) == bindings_of(broken)
    assert [e["result"] for e in audit(redis_url)][:2] == ["self-approval (four-eyes)", "not an approver"]
    assert not [c for c in google.calls if c.path.endswith(":setIamPolicy")]


def test_group_member_may_approve(served, slack, google, broken):
    parent, reply = diagnose(served, slack)
    click(served, slack, reply, "UGROUPIE")
    outcome(slack, parent, "— done")


def test_expired_plan_and_foreign_channel(served, slack, google, broken, redis_url):
    _, reply = diagnose(served, slack)
    [button] = buttons(reply)
    slack.add_channel("C999", member=True)
    url = click(served, slack, reply, "UAPPROVER", channel="C999")
    assert "another conversation" in slack.wait_for(lambda: slack.responses_to(url))[0]["text"]
    redis.Redis.from_url(redis_url).delete(f"gke-bot:plan:{button['value']}")
    url = click(served, slack, reply, "UAPPROVER")
    assert "expired" in slack.wait_for(lambda: slack.responses_to(url))[0]["text"]
    url = click(served, slack, reply, "UAPPROVER", button=dict(button, value="no-such-plan"))
    assert "expired or does not exist" in slack.wait_for(lambda: slack.responses_to(url))[0]["text"]
    assert bindings_of(google.projects[GKE1].iam_policy) == bindings_of(broken)


def test_already_fixed_does_nothing(served, slack, google, broken):
    parent, reply = diagnose(served, slack)
    google.projects[GKE1].iam_policy["bindings"].append({"role": ROLE, "members": [AGENT]})
    click(served, slack, reply, "UAPPROVER")
    msg = outcome(slack, parent, "already fixed, nothing done")
    assert "nothing done" in msg[0]["text"]
    assert not [c for c in google.calls if c.path.endswith(":setIamPolicy")]


def test_audit_command_for_approvers_only(served, slack, google, broken, redis_url):
    parent, reply = diagnose(served, slack)
    click(served, slack, reply, "UAPPROVER")
    outcome(slack, parent, "— done")
    for user, expect in (("UAPPROVER2", "approved"), ("UNOBODY", "Only approvers")):
        url = slack.new_response_url()
        body = slash_command_body(text="audit 5", user_id=user, channel_id="C123", response_url=url, trigger_id=user)
        requests.post(f"{served['url']}/slack/events", data=body, headers=sign(SIGNING_SECRET, body), timeout=10)
        assert expect in slack.wait_for(lambda: slack.responses_to(url))[0]["text"]


def signed_store(redis_url) -> Store:
    """The store as the worker sees it: plans signed with the test's GKE_BOT_PLAN_KEY."""
    from tests.conftest import PLAN_KEY
    return Store(redis.Redis.from_url(redis_url), keys=(PLAN_KEY.encode(),))


def planned_button(redis_url, slack, kind, label, params, requester="U123", cluster=""):
    """A fix message as the worker posts it: a plan in Redis and its button in the thread."""
    from slack_sdk import WebClient

    from bot.render import blocks as render
    from checks.model import Finding, Remediation, Status
    client = WebClient(token="xoxb-test", base_url=slack.api_url)
    parent = client.chat_postMessage(channel="C123", text="parent")["ts"]
    plan = signed_store(redis_url).new_plan(
        kind=kind, label=label, summary=label, params=params, channel="C123", thread_ts=parent,
        requester=requester, cluster=cluster or f"projects/{GKE1}/locations/europe-west4-a/clusters/gke1")
    finding = Finding("x", Status.WARN, "t", remediation=Remediation(kind, label, label, params))
    blocks = [render.section("finding"), render.remediation_actions(finding, plan.id)]
    ts = client.chat_postMessage(channel="C123", thread_ts=parent, text="fix", blocks=blocks)["ts"]
    return {"ts": parent}, {"ts": ts, "text": "fix", "blocks": blocks}


POOL = {"project": GKE1, "location": "europe-west4-a", "cluster": "gke1", "pool": "default-pool",
        "from_version": "1.24.10-gke.2300", "to_version": "1.25.7-gke.1000"}


@pytest.fixture
def skewed(google):
    pool = google.cluster(GKE1, "gke1")["nodePools"][0]
    pool["version"] = POOL["from_version"]
    return pool


def test_upgrade_node_pool_to_the_control_plane_version(served, slack, google, skewed, redis_url):
    parent, reply = planned_button(redis_url, slack, "upgrade_node_pool", "Upgrade default-pool to 1.25.7-gke.1000", POOL)
    click(served, slack, reply, "UAPPROVER")
    msg = outcome(slack, parent, "— done")
    assert "operation-" in msg[0]["text"]
    assert skewed["version"] == "1.25.7-gke.1000"
    updates = [c for c in google.calls if c.method == "PUT" and c.path.endswith("/nodePools/default-pool")]
    assert len(updates) == 1 and json.loads(updates[0].body)["nodeVersion"] == "1.25.7-gke.1000"
    assert any("is running" in m["text"] for m in slack.thread("C123", parent["ts"]))  # progress was posted


def test_upgrade_refused_while_another_operation_runs(served, slack, google, skewed, redis_url):
    base = "https://container.googleapis.com/v1/projects/12340002/zones/europe-west4-a"
    google.projects[GKE1].operations.append({
        "name": "operation-123-busy", "zone": "europe-west4-a", "operationType": "UPGRADE_MASTER",
        "status": "RUNNING", "selfLink": f"{base}/operations/operation-123-busy",
        "targetLink": f"{base}/clusters/gke1", "startTime": "2026-11-21T10:00:00Z"})
    parent, reply = planned_button(redis_url, slack, "upgrade_node_pool", "Upgrade default-pool", POOL)
    click(served, slack, reply, "UAPPROVER")
    msg = outcome(slack, parent, "failed: refused")
    assert "operation-123-busy" in msg[0]["text"] and "UPGRADE_MASTER" in msg[0]["text"]
    assert skewed["version"] == POOL["from_version"]
    assert not [c for c in google.calls if c.method == "PUT"]


def test_upgrade_drifted_meanwhile_does_nothing(served, slack, google, skewed, redis_url):
    parent, reply = planned_button(redis_url, slack, "upgrade_node_pool", "Upgrade default-pool", POOL)
    skewed["version"] = "1.24.9-gke.100"
    click(served, slack, reply, "UAPPROVER")
    msg = outcome(slack, parent, "failed: drifted")
    assert "1.24.9-gke.100" in msg[0]["text"]
    assert not [c for c in google.calls if c.method == "PUT"]


def test_enable_http_load_balancing(served, slack, google, redis_url):
    cluster = google.cluster(GKE1, "gke1")
    assert cluster["addonsConfig"]["httpLoadBalancing"]["disabled"] is True
    params = {"project": GKE1, "location": "europe-west4-a", "cluster": "gke1"}
    parent, reply = planned_button(redis_url, slack, "enable_http_load_balancing", "Enable HTTP load balancing", params)
    click(served, slack, reply, "UAPPROVER")
    outcome(slack, parent, "— done")
    assert cluster["addonsConfig"]["httpLoadBalancing"].get("disabled") in (False, None)
    # a second plan for the same fix finds it already done
    parent2, reply2 = planned_button(redis_url, slack, "enable_http_load_balancing", "Enable HTTP load balancing", params)
    click(served, slack, reply2, "UAPPROVER")
    outcome(slack, parent2, "already fixed, nothing done")


def test_operation_error_is_reported_verbatim(served, slack, google, skewed, redis_url):
    message = "Insufficient regional quota to satisfy request: resource \"CPUS\": request requires '4.0' and is short '2.0'."
    google.operation_error = {"code": 8, "message": message}
    parent, reply = planned_button(redis_url, slack, "upgrade_node_pool", "Upgrade default-pool", POOL)
    click(served, slack, reply, "UAPPROVER")
    msg = outcome(slack, parent, "failed: failed")
    assert message.replace('"', "&quot;") in msg[0]["text"] or message in msg[0]["text"]
    assert skewed["version"] == POOL["from_version"]


def test_cluster_changed_between_check_and_write_is_refused_by_etag(served, slack, google, redis_url):
    cluster = google.cluster(GKE1, "gke1")
    params = {"project": GKE1, "location": "europe-west4-a", "cluster": "gke1"}
    parent, reply = planned_button(redis_url, slack, "enable_http_load_balancing", "Enable HTTP load balancing", params)
    real_get = google._h_get_cluster

    def get_then_change(*a, **kw):  # someone changes the cluster right after the bot read it
        out = copy.deepcopy(real_get(*a, **kw))
        cluster["etag"] = "changed-meanwhile"
        return out
    google._h_get_cluster = get_then_change
    click(served, slack, reply, "UAPPROVER")
    msg = outcome(slack, parent, "failed: failed")
    assert "409" in msg[0]["text"]
    assert cluster["addonsConfig"]["httpLoadBalancing"]["disabled"] is True


def test_self_approval_when_allowed(spawn, env, slack, google, broken, redis_url):
    from tests.conftest import serve_with
    served = serve_with(spawn, env, redis_url, GKE_BOT_ALLOW_SELF_APPROVAL="true")
    parent, reply = diagnose(served, slack, user="UAPPROVER")
    click(served, slack, reply, "UAPPROVER")
    outcome(slack, parent, "— done")


def test_two_fixes_of_one_report_keep_each_others_outcome(served, slack, google, broken, redis_url):
    """`doctor` on gke1 offers two fixes (the service agent's role and HTTP load balancing). Both are approved from
    the same view of the message (the second click carries the message as it was before the first update): each
    fix's result is written over the bot's own latest version of the message, so neither brings the other's button
    back nor drops its outcome."""
    parent, reply = diagnose(served, slack, text="doctor gke1", trigger="two-1")
    first, second = buttons(reply)[:2]
    assert {first["text"]["text"], second["text"]["text"]} >= {f"Re-grant {ROLE}", "Enable HTTP load balancing"}
    click(served, slack, reply, "UAPPROVER", button=first)
    click(served, slack, reply, "UAPPROVER", button=second)  # the same (older) view of the message
    slack.wait_for(lambda: len([m for m in slack.thread("C123", parent["ts"]) if "— done" in m["text"]]) == 2,
                   timeout=40)

    def line() -> str:
        return json.dumps(next(m for m in slack.messages("C123") if m["ts"] == reply["ts"])["blocks"], ensure_ascii=False)
    slack.wait_for(lambda: line().count("— done") == 2, timeout=20)
    msg = next(m for m in slack.messages("C123") if m["ts"] == reply["ts"])
    assert buttons(msg) == [] and "running" not in line()
