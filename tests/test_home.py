"""The Home tab end to end (app_home_opened → views.publish; block_actions from the Home view): an approver sees
the fixes waiting for them and approves from there, with the same confirmation, checks and exactly-once as in
the thread; everyone sees their last diagnoses, where they may ask, and a button opening the diagnosis modal."""
from __future__ import annotations

import json
import uuid

import requests

from tests.conftest import SIGNING_SECRET
from tests.fakes.slack import app_home_opened_event, event_callback_body, sign, view_action_payload
from tests.helpers import AGENT, GKE1
from tests.test_modal import interact
from tests.test_remediation import ROLE, audit, broken, diagnose, outcome, submit  # noqa: F401 - fixture

_events = iter(range(1, 10**6))


def open_home(served, slack, user: str) -> dict:
    """The user opens the Home tab; the bot publishes it (a newer version each time)."""
    before = (slack.homes.get(user) or {}).get("hash")
    event = app_home_opened_event(user, view=slack.homes.get(user))
    body = event_callback_body(event, event_id=f"EvHome{next(_events)}")
    resp = requests.post(f"{served['url']}/slack/events", data=body, headers=sign(SIGNING_SECRET, body), timeout=10)
    assert resp.status_code == 200
    return slack.wait_for(lambda: user in slack.homes and slack.homes[user]["hash"] != before and
                          json.loads(json.dumps(slack.homes[user])))


def home_buttons(view: dict) -> list[tuple[str, dict]]:
    return [(b["block_id"], e) for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]


def press(served, view: dict, block_id: str, button: dict, user: str, trigger: str):
    action = {"type": "button", "action_id": button["action_id"], "block_id": block_id, "text": button["text"],
              "value": button.get("value", "")}
    return interact(served, view_action_payload(view, action, user, trigger_id=trigger))


def iam_writes(google) -> list:
    return [c for c in google.calls if c.path.endswith(":setIamPolicy")]


def test_approver_approves_a_pending_fix_from_the_home_tab_once(served, slack, google, broken, redis_url):  # noqa: F811
    parent, reply = diagnose(served, slack)
    home = open_home(served, slack, "UAPPROVER")
    shown = json.dumps(home["blocks"])
    assert "Fixes waiting for your approval" in shown
    assert f"projects/{GKE1}/locations/europe-west4-a/clusters/gke1" in shown and "<@U123>" in shown
    assert f"https://fake.slack.com/archives/C123/p{parent['ts'].replace('.', '')}" in shown
    [(block_id, button)] = [(b, e) for b, e in home_buttons(home) if e["action_id"].startswith("remediate:")]
    assert button["text"]["text"] == f"Re-grant {ROLE}"
    # the same confirmation dialog as in the thread; confirming runs the fix once
    trigger = uuid.uuid4().hex
    press(served, home, block_id, button, "UAPPROVER", trigger)
    dialog = slack.wait_for(lambda: next((v["view"] for v in slack.views if v["trigger_id"] == trigger), None))
    assert dialog["callback_id"] == "remediate_confirm" and AGENT in json.dumps(dialog["blocks"])
    submit(served, dialog, "UAPPROVER")
    outcome(slack, parent, "— done")
    assert len(iam_writes(google)) == 1
    assert any(AGENT in b["members"] for b in google.projects[GKE1].iam_policy["bindings"] if b["role"] == ROLE)
    # the thread's fix line says who approved it, as for a click there
    slack.wait_for(lambda: [m for m in slack.thread("C123", parent["ts"]) if m["ts"] == reply["ts"]
                            and "Approved by <@UAPPROVER>" in json.dumps(m["blocks"])])
    # the approver's Home tab is published again without it
    slack.wait_for(lambda: "remediate:" not in json.dumps(slack.homes["UAPPROVER"]["blocks"]))
    # the stale Home tab's button: nothing runs twice
    trigger2 = uuid.uuid4().hex
    press(served, home, block_id, button, "UAPPROVER2", trigger2)
    again = slack.wait_for(lambda: next((v["view"] for v in slack.views if v["trigger_id"] == trigger2), None)
                           or [m for m in slack.messages("DAPPROVER2")])
    if isinstance(again, dict):
        submit(served, again, "UAPPROVER2")
    slack.wait_for(lambda: [m for m in slack.messages("DAPPROVER2") if "Already approved" in m["text"]])
    assert len(iam_writes(google)) == 1
    assert [e["event"] for e in audit(redis_url)].count("approved") == 1


def test_the_requester_and_non_approvers_see_no_fix_to_approve(served, slack, google, broken):  # noqa: F811
    parent, _ = diagnose(served, slack)
    home = open_home(served, slack, "U123")  # the requester (and no approver)
    shown = json.dumps(home["blocks"])
    assert "Fixes waiting" not in shown and "remediate:" not in shown
    # everyone: their last diagnoses and where they may ask
    assert "Your last diagnoses" in shown and "/gke why-403 gke1" in shown and "FAIL" in shown
    assert f"https://fake.slack.com/archives/C123/p{parent['ts'].replace('.', '')}" in shown
    assert "Where you may ask" in shown and GKE1 in shown
    # a button clicked by someone who is no approver, forged onto their Home tab, is refused
    approver_home = open_home(served, slack, "UAPPROVER")
    [(block_id, button)] = [(b, e) for b, e in home_buttons(approver_home) if e["action_id"].startswith("remediate:")]
    press(served, home, block_id, button, "UNOBODY", uuid.uuid4().hex)
    slack.wait_for(lambda: [m for m in slack.messages("DNOBODY") if "Only approvers" in m["text"]])
    assert iam_writes(google) == []


def test_new_diagnosis_button_opens_the_modal(served, slack):
    home = open_home(served, slack, "U123")
    [(block_id, button)] = [(b, e) for b, e in home_buttons(home) if e["action_id"] == "home_new_diagnosis"]
    trigger = uuid.uuid4().hex
    press(served, home, block_id, button, "U123", trigger)
    modal = slack.wait_for(lambda: next((v["view"] for v in slack.views if v["trigger_id"] == trigger), None))
    assert modal["callback_id"] == "gke_diagnose"
    assert "where" in [b.get("block_id") for b in modal["blocks"]]


def test_an_expired_fix_is_marked_in_its_thread_and_leaves_the_home_tab(spawn, env, redis_url, slack, google,
                                                                         broken):  # noqa: F811
    from tests.conftest import serve_with
    from tests.test_remediation import buttons
    served = serve_with(spawn, env, redis_url, GKE_BOT_PLAN_TTL="8")
    parent, reply = diagnose(served, slack)
    assert buttons(reply)
    home = open_home(served, slack, "UAPPROVER")
    assert "remediate:" in json.dumps(home["blocks"])
    expired = slack.wait_for(lambda: [m for m in slack.thread("C123", parent["ts"]) if m["ts"] == reply["ts"]
                                      and "This fix expired" in json.dumps(m["blocks"])], timeout=30)
    assert not buttons(expired[0])
    slack.wait_for(lambda: "remediate:" not in json.dumps(slack.homes["UAPPROVER"]["blocks"]))


def test_plans_the_approver_cannot_approve_do_not_push_theirs_off_the_home_tab(served, slack, google, broken,
                                                                               redis_url):  # noqa: F811
    """A large sweep elsewhere: the newest pending plans are not this approver's; theirs is still listed."""
    from tests.test_remediation import signed_store
    diagnose(served, slack)
    store = signed_store(redis_url)
    for i in range(120):  # newer, in a project outside the binding: no approver here may approve them
        store.new_plan(kind="regrant_service_agent", label="x", summary="x", params={"project": "other-project-1"},
                       channel="C123", thread_ts=f"1.{i}", requester="U123",
                       cluster=f"projects/other-project-1/locations/europe-west4-a/clusters/c{i}")
    home = open_home(served, slack, "UAPPROVER")
    shown = json.dumps(home["blocks"])
    assert f"projects/{GKE1}/locations/europe-west4-a/clusters/gke1" in shown
    assert len([e for _, e in home_buttons(home) if e["action_id"].startswith("remediate:")]) == 1
    assert "other-project-1" not in shown


def test_home_reuses_a_recent_membership_answer_and_posting_always_asks_afresh(slack):
    """conversations.members is rate-limited and the Home tab is opened often: a membership answer is reused for
    a minute there; the form's check before posting somewhere always asks Slack again."""
    from slack_sdk import WebClient

    from bot import directory
    from tests.conftest import BOT_TOKEN
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
    assert directory.member_of(client, "C123", "U123", cache_seconds=60) == (True, "")
    assert directory.member_of(client, "C123", "U123", cache_seconds=60) == (True, "")
    assert len(slack.calls_to("conversations.members")) == 1
    assert directory.member_of(client, "C123", "U123") == (True, "")  # fresh
    assert len(slack.calls_to("conversations.members")) == 2
    # an error is never remembered
    assert directory.member_of(client, "CNOPE", "U123", cache_seconds=60) == (None, "channel_not_found")
    assert directory.member_of(client, "CNOPE", "U123", cache_seconds=60) == (None, "channel_not_found")
    assert len(slack.calls_to("conversations.members")) == 4
