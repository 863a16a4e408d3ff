"""The diagnosis modal end to end: `/gke` alone and the global shortcut open it (views.open with the trigger id),
choosing a command shows its fields (block_actions from the view → views.update), the cluster select is answered
from the binding's clusters (block_suggestion), and the submission (view_submission) starts the same diagnosis as
the typed command, in the same kind of thread, under the same access rules."""
from __future__ import annotations

import json
import re

import requests

from tests.conftest import SIGNING_SECRET
from tests.fakes.slack import (block_suggestion_payload, fill, global_shortcut_payload, interactive_body,
                               options_errors, sign, slash_command_body, view_action_payload,
                               view_errors, view_submission_payload)
from tests.helpers import AGENT, GKE1, drop_binding
from tests.test_edge import final_parent

GKE1_PATH = f"{GKE1}/europe-west4-a/gke1"


def send(served, body: str) -> requests.Response:
    resp = requests.post(f"{served['url']}/slack/events", data=body, headers=sign(SIGNING_SECRET, body), timeout=10)
    assert resp.status_code == 200, served["server"].output()
    return resp


def interact(served, payload: dict) -> requests.Response:
    return send(served, interactive_body(payload))


def open_by_command(served, slack, user="U123", trigger="m-1") -> dict:
    send(served, slash_command_body(text="", user_id=user, channel_id="C123", trigger_id=trigger))
    return slack.wait_for(lambda: next((v["view"] for v in slack.views if v["trigger_id"] == trigger), None))


def choose(served, slack, view: dict, command: str, user="U123") -> dict:
    """Choose a command in the modal, as Slack sends it; the bot's views.update shows its fields."""
    [block] = [b for b in view["blocks"] if b["block_id"] == "command"]
    option = next(o for o in block["element"]["options"] if o["value"] == command)
    old_hash = view["hash"]
    interact(served, view_action_payload(view, {"type": "static_select", "action_id": "command",
                                                "block_id": "command", "selected_option": option}, user))
    return slack.wait_for(lambda: slack.open_views[view["id"]]["hash"] != old_hash and
                          json.loads(json.dumps(slack.open_views[view["id"]])))


def submit(served, view: dict, entered: dict, user="U123") -> requests.Response:
    return interact(served, view_submission_payload(fill(view, entered), user))


def thread_of(slack, parent) -> str:
    return json.dumps([m.get("blocks") or m["text"] for m in slack.thread("C123", parent["ts"])])


def test_gke_alone_opens_the_modal_and_its_submission_is_the_typed_command(served, slack, google):
    drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    view = open_by_command(served, slack)
    assert view["callback_id"] == "gke_diagnose" and json.loads(view["private_metadata"])["channel"] == "C123"
    commands = [o["value"] for b in view["blocks"] if b["block_id"] == "command" for o in b["element"]["options"]]
    assert commands == ["why-403", "why-401", "why-400", "why-404", "wi", "rbac", "ingress", "doctor", "explain"]
    # the cluster select offers the binding's clusters as the user types
    every = interact(served, block_suggestion_payload(view, "cluster", "cluster", "", "U123")).json()
    assert options_errors(every) == [] and GKE1_PATH in [o["value"] for o in every["options"]]
    assert len(every["options"]) > 1
    answer = interact(served, block_suggestion_payload(view, "cluster", "cluster", "Gke1", "U123")).json()
    assert sorted(o["value"] for o in answer["options"]) == sorted([f"{GKE1}/europe-west4/autopilot-gke1", GKE1_PATH])
    assert answer["options"][0]["text"]["text"] == f"gke1 (europe-west4-a, {GKE1})"
    assert interact(served, block_suggestion_payload(view, "cluster", "cluster", "nothing-like-it", "U123")
                    ).json()["options"] == []
    view = choose(served, slack, view, "why-403")
    resp = submit(served, view, {"command": "why-403", "cluster": GKE1_PATH})
    assert resp.text == ""  # closed: nothing to show in the modal
    parent = final_parent(slack)
    assert f"/gke why-403 {GKE1_PATH}" in parent["text"]
    modal_thread = thread_of(slack, parent)
    assert "[FAIL]" in modal_thread and "remediate:grant_service_agent" in modal_thread
    # the same diagnosis typed gives the same thread (the plan ids of the buttons aside)
    send(served, slash_command_body(text=f"why-403 {GKE1_PATH}", user_id="U123", channel_id="C123",
                                    trigger_id="typed"))
    typed = slack.wait_for(lambda: [m for m in slack.messages("C123") if not m.get("thread_ts")
                                    and m["ts"] != parent["ts"] and "checking…" not in m["text"]])[0]
    assert typed["text"] == parent["text"]

    def without_plans(blocks_json: str) -> str:
        return re.sub(r'"value": "[^"]*"|remediate:[A-Za-z0-9_-]+', "", blocks_json)
    assert without_plans(thread_of(slack, typed)) == without_plans(modal_thread)


def test_fields_are_shown_per_command_and_checked_per_field(served, slack):
    view = open_by_command(served, slack)
    assert {b["block_id"] for b in view["blocks"] if b["type"] == "input"} == {"command", "cluster"}
    view = choose(served, slack, view, "rbac")
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == \
        ["command", "cluster", "verb", "resource", "namespace"]
    resp = submit(served, view, {"command": "rbac", "cluster": GKE1_PATH, "verb": "get",
                                 "resource": "pods --as user:boss@example.com", "namespace": "Not_A_Namespace"})
    body = resp.json()
    assert body["response_action"] == "errors" and set(body["errors"]) == {"resource"}
    resp = submit(served, view, {"command": "rbac", "cluster": GKE1_PATH, "verb": "get", "resource": "pods",
                                 "namespace": "Not_A_Namespace"})
    assert resp.json() == {"response_action": "errors", "errors": {"namespace": "That is not a valid namespace name."}}
    view = choose(served, slack, view, "wi")
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == ["command", "cluster", "ksa"]
    resp = submit(served, view, {"command": "wi", "cluster": GKE1_PATH, "ksa": "no-namespace"})
    assert set(resp.json()["errors"]) == {"ksa"}
    # a submission whose fields never reached the view shows them instead of running
    first = open_by_command(served, slack, trigger="m-2")
    resp = submit(served, first, {"command": "ingress", "cluster": GKE1_PATH})
    assert resp.json()["response_action"] == "update"
    assert view_errors(resp.json()["view"]) == []
    assert "ingress" in [b.get("block_id") for b in resp.json()["view"]["blocks"]]
    assert not [m for m in slack.messages("C123") if "asked" in m["text"]]  # nothing started


def test_global_shortcut_asks_where_and_the_policy_still_applies(served, slack, google):
    interact(served, global_shortcut_payload("gke_new_diagnosis", "U123", trigger_id="g-1"))
    view = slack.wait_for(lambda: next((v["view"] for v in slack.views if v["trigger_id"] == "g-1"), None))
    [where] = [b for b in view["blocks"] if b["block_id"] == "where"]
    assert where["element"]["type"] == "conversations_select"
    resp = submit(served, view, {"command": "why-404", "cluster": GKE1_PATH})
    assert set(resp.json()["errors"]) == {"where"}
    view = choose(served, slack, view, "why-404")
    submit(served, view, {"command": "why-404", "cluster": GKE1_PATH, "where": "C123"})
    parent = final_parent(slack)
    assert f"/gke why-404 {GKE1_PATH}" in parent["text"]
    # a project outside the binding is refused privately, as typed; nothing is posted
    view = open_by_command(served, slack, trigger="m-3")
    view = choose(served, slack, view, "why-404")
    submit(served, view, {"command": "why-404", "cluster": "other-project-1/europe-west4-a/gke1"})
    refusal = slack.wait_for(lambda: [e for e in slack.ephemerals if e["user"] == "U123"])
    assert "other-project-1" in refusal[0]["text"] or "project" in refusal[0]["text"]
    assert len([m for m in slack.messages("C123") if not m.get("thread_ts")]) == 1


def test_the_modal_speaks_the_askers_language(served, slack):
    slack.add_user("UJA", email="taro@example.com", name="taro", locale="ja-JP")
    view = open_by_command(served, slack, user="UJA", trigger="ja-1")
    assert view["title"]["text"] == "GKE を診断" and view["submit"]["text"] == "診断する"
    view = choose(served, slack, view, "wi", user="UJA")
    resp = submit(served, view, {"command": "wi", "cluster": GKE1_PATH, "ksa": "a b"}, user="UJA")
    assert resp.json()["errors"]["ksa"] == "スペースを含まず、'-' で始まらない 1 語で入力してください。"


def test_where_the_bot_may_not_post_the_asker_is_told_through_the_commands_response_url(served, slack):
    slack.add_channel("CSECRET", member=False, private=True)
    response_url = slack.new_response_url()
    send(served, slash_command_body(text="", user_id="U123", channel_id="CSECRET", trigger_id="m-secret",
                                    response_url=response_url))
    view = slack.wait_for(lambda: next((v["view"] for v in slack.views if v["trigger_id"] == "m-secret"), None))
    view = choose(served, slack, view, "why-404")
    assert submit(served, view, {"command": "why-404", "cluster": GKE1_PATH}).text == ""
    told = slack.wait_for(lambda: slack.responses_to(response_url))
    assert "invite" in told[0]["text"].lower() or "/invite" in told[0]["text"]
    assert told[0]["response_type"] == "ephemeral"
    assert not slack.messages("CSECRET")


def shortcut_form(served, slack, trigger: str, user: str = "U123") -> dict:
    interact(served, global_shortcut_payload("gke_new_diagnosis", user, trigger_id=trigger))
    view = slack.wait_for(lambda: next((v["view"] for v in slack.views if v["trigger_id"] == trigger), None))
    return choose(served, slack, view, "why-404", user=user)


def test_the_form_posts_only_where_its_user_is_a_member(served, slack, google):
    """The bot may post in any public channel (chat:write.public): a conversation chosen in the form must be
    one the user is in (conversations.members, read page by page), else nothing is posted or read."""
    slack.add_channel("CPUBLIC", member=False, name="general", members=[f"U{i:05d}" for i in range(2500)])
    view = shortcut_form(served, slack, "w-1")
    submit(served, view, {"command": "why-404", "cluster": GKE1_PATH, "where": "CPUBLIC"})
    told = slack.wait_for(lambda: [m for m in slack.messages("D123") if "not a member" in m["text"]])
    assert "<#CPUBLIC>" in told[0]["text"]
    assert slack.messages("CPUBLIC") == [] and [c for c in google.calls if c.path != "/token"] == []
    pages = slack.calls_to("conversations.members")
    assert len(pages) == 3  # 2,500 members in pages of 1,000: every page was read before saying no
    # a member of that channel (on its last page) gets the diagnosis there
    slack.add_user("U02499", email="late@example.com", name="late")
    view = shortcut_form(served, slack, "w-2", user="U02499")
    submit(served, view, {"command": "why-404", "cluster": GKE1_PATH, "where": "CPUBLIC"}, user="U02499")
    parent = slack.wait_for(lambda: [m for m in slack.messages("CPUBLIC") if "checking" not in m["text"]
                                     and not m.get("thread_ts")], timeout=30)[0]
    assert f"/gke why-404 {GKE1_PATH}" in parent["text"]


def test_without_the_scope_to_check_membership_nothing_is_posted(served, slack, google):
    slack.scopes.discard("channels:read")
    view = shortcut_form(served, slack, "w-3")
    submit(served, view, {"command": "why-404", "cluster": GKE1_PATH, "where": "C123"})
    told = slack.wait_for(lambda: [m for m in slack.messages("D123") if "could not check" in m["text"]])
    assert "missing_scope" in told[0]["text"]
    assert not [m for m in slack.messages("C123") if "asked" in m["text"]]
    assert [c for c in google.calls if c.path != "/token"] == []
