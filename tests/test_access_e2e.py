"""The access policy over the real wire: signed slash commands to a real `gke-bot serve`, a real redis-server, a
real `gke-bot worker`, the fake Slack and Google. Deny by default: an unbound channel, a foreign project, a guest,
`--as` someone else are refused privately and cause no Google request; suggestions stay inside the binding."""
from __future__ import annotations

import copy
import json
import time
import uuid

import pytest
import requests

from tests.conftest import SIGNING_SECRET, serve_with
from tests.fakes.slack import sign, slash_command_body
from tests.helpers import GKE1, drop_binding
from tests.test_remediation import buttons, click

GKE4 = "gcpdiag-gke4-aaaa"
GKE4_NUMBER = "12340033"
AGENT4 = f"serviceAccount:service-{GKE4_NUMBER}@container-engine-robot.iam.gserviceaccount.com"
POLICY = f"""
bindings:
  - name: incidents
    channels: [C123]
    projects: [{GKE1}]
    approvers: [UAPPROVER, SAPPROVERS]
  - name: platform
    channels: [CPLAT]
    projects: [{GKE4}]
    approvers: [UPLAT]
    guests: true
  - name: direct messages
    channels: [direct]
    projects: [{GKE1}]
identities:
  UDANA: user:dana@corp.example
"""


def ask(served, slack, text: str, user: str = "U123", channel: str = "C123") -> str:
    """A signed slash command; returns its response_url (where private answers go)."""
    url = slack.new_response_url()
    body = slash_command_body(text=text, user_id=user, channel_id=channel, response_url=url,
                              trigger_id=uuid.uuid4().hex)
    resp = requests.post(f"{served['url']}/slack/events", data=body, headers=sign(SIGNING_SECRET, body), timeout=10)
    assert resp.status_code == 200, resp.text
    return url


def private(slack, url: str) -> str:
    return slack.wait_for(lambda: slack.responses_to(url), timeout=15)[0]["text"]


def answered(served, slack, channel: str, text: str) -> tuple[dict, str]:
    """The finished parent of `/gke text` in `channel`, and its thread as one string."""
    def done():
        for m in slack.messages(channel):
            if (not m.get("thread_ts") or m["thread_ts"] == m["ts"]) and f"`/gke {text}`" in m["text"] \
                    and "checking…" not in m["text"]:
                return m
        return None
    try:
        parent = slack.wait_for(done, timeout=30)
    except AssertionError:
        raise AssertionError("no answer:\n" + served["server"].output() + served["worker"].output())
    thread = slack.thread(channel, parent["ts"])
    return parent, json.dumps([m.get("blocks") or m["text"] for m in thread])


def google_paths(google) -> list[str]:
    return [c.path + " " + c.body.decode(errors="replace") for c in google.calls if c.path != "/token"]


@pytest.fixture
def policy_env(env, google, slack, tmp_path):
    google.load_fixture("gke4")
    slack.add_channel("CPLAT")
    slack.add_channel("CNOWHERE")
    slack.add_channel("D0DM")
    slack.add_user("UPLAT", email="pia@example.com", name="pia")
    slack.add_user("UDANA", email="dana.personal@example.com", name="dana")
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return dict(env, GKE_BOT_POLICY=str(path), GKE_BOT_PROJECTS=f"{GKE1},{GKE4}")


@pytest.fixture
def locked(spawn, policy_env, redis_url):
    return serve_with(spawn, policy_env, redis_url)


def test_unbound_channel_is_refused_privately_with_the_allowed_channels(locked, slack, google):
    text = private(slack, ask(locked, slack, "why-403 gke1", channel="CNOWHERE"))
    assert "not bound to any project" in text and "`CNOWHERE`" in text
    assert "<#C123>" in text and "<#CPLAT>" in text
    time.sleep(0.5)
    assert slack.messages("CNOWHERE") == [] and google_paths(google) == []


def test_foreign_project_is_refused_in_every_form_without_a_google_request(locked, slack, google):
    for text in (f"why-403 {GKE4}/europe-west4-a/gke1", f"why-403 gke1 --project {GKE4}",
                 "why-403 some-other-project/us-central1/c1", f"why-404 {GKE4}/europe-west4-a/gke1"):
        said = private(slack, ask(locked, slack, text))
        project = text.split()[1].split("/")[0] if "/" in text else GKE4
        assert f"Project `{project}` is not one this conversation may ask about" in said, said
        assert f"`{GKE1}`" in said  # what may be asked here
    time.sleep(0.5)
    assert google_paths(google) == []
    assert [m for m in slack.messages("C123")] == []


def test_suggestions_and_answers_stay_inside_the_binding(locked, slack, google):
    ask(locked, slack, "why-404 gke-1")
    _, thread = answered(locked, slack, "C123", "why-404 gke-1")
    assert f"{GKE1}/europe-west4-a/gke1" in thread
    assert GKE4 not in thread
    # `gke1` exists in both projects: in each channel it is that binding's, never "which one?"
    ask(locked, slack, "why-400 gke1")
    _, thread = answered(locked, slack, "C123", "why-400 gke1")
    assert "more than one place" not in thread and f"projects/{GKE1}/locations/europe-west4-a/clusters/gke1" in thread
    assert not [p for p in google_paths(google) if GKE4 in p or GKE4_NUMBER in p]  # never even listed
    ask(locked, slack, "why-403 gke-1", user="UPLAT", channel="CPLAT")
    _, thread = answered(locked, slack, "CPLAT", "why-403 gke-1")
    assert f"{GKE4}/europe-west4-a/gke1" in thread and GKE1 not in thread


@pytest.mark.parametrize("kind, expect", [
    (dict(guest="single"), "Guest accounts may not ask"),
    (dict(guest="multi"), "Guest accounts may not ask"),
    (dict(team_id="T9OTHER"), "another workspace (Slack Connect)"),
    (dict(deleted=True), "deactivated"),
    (dict(bot=True), "Bots and apps may not ask"),
])
def test_guests_strangers_deleted_and_bots_are_refused(locked, slack, google, kind, expect):
    slack.add_user("UOUTSIDER", email="out@example.com", name="outsider", **kind)
    assert expect in private(slack, ask(locked, slack, "why-403 gke1", user="UOUTSIDER"))
    time.sleep(0.5)
    assert google_paths(google) == [] and slack.messages("C123") == []


def test_a_binding_may_let_guests_ask(locked, slack, google):
    slack.add_user("UGUEST", email="guest@example.com", name="guest", guest="single")
    ask(locked, slack, "why-400 gke1", user="UGUEST", channel="CPLAT")
    _, thread = answered(locked, slack, "CPLAT", "why-400 gke1")
    assert f"projects/{GKE4}/locations/europe-west4-a/clusters/gke1" in thread


def test_as_someone_else_is_for_approvers_only(locked, slack, google):
    said = private(slack, ask(locked, slack, "why-403 gke1 --as user:someone-else@example.com"))
    assert "Only approvers of this conversation may ask `--as` someone else" in said
    time.sleep(0.5)
    assert google_paths(google) == [] and slack.messages("C123") == []
    # asking as oneself is anyone's right
    ask(locked, slack, "why-401 gke1 --as user:alice@example.com")
    _, thread = answered(locked, slack, "C123", "why-401 gke1 --as user:alice@example.com")
    assert "Diagnosed as `user:alice@example.com` (the email of your Slack profile)" in thread
    # an approver may explain someone else's access, and the answer says whose
    ask(locked, slack, "why-401 gke1 --as user:someone-else@example.com", user="UAPPROVER")
    _, thread = answered(locked, slack, "C123", "why-401 gke1 --as user:someone-else@example.com")
    assert "Diagnosed as `user:someone-else@example.com` (named with `--as`" in thread
    # a member of an approver group counts as an approver
    ask(locked, slack, "why-401 gke1 --as user:third@example.com", user="UGROUPIE")
    answered(locked, slack, "C123", "why-401 gke1 --as user:third@example.com")


def test_identity_comes_from_the_policy_and_the_answer_says_so(locked, slack, google):
    ask(locked, slack, "why-401 gke1", user="UDANA")
    _, thread = answered(locked, slack, "C123", "why-401 gke1")
    assert "Diagnosed as `user:dana@corp.example` (mapped to your Slack account in the access policy)" in thread
    assert "dana.personal@example.com" not in thread
    asked = [p for p in google_paths(google) if "troubleshoot" in p]
    assert asked and all("dana@corp.example" in p for p in asked)


def test_direct_messages_only_where_a_binding_names_them(locked, slack, google):
    ask(locked, slack, "why-400 gke1", channel="D0DM")
    _, thread = answered(locked, slack, "D0DM", "why-400 gke1")
    assert f"projects/{GKE1}/locations/europe-west4-a/clusters/gke1" in thread


def test_fix_approvers_are_those_of_the_channels_binding(locked, slack, google):
    drop_binding(google.projects[GKE4].iam_policy, "roles/container.serviceAgent", AGENT4)
    before = copy.deepcopy(google.projects[GKE4].iam_policy)
    ask(locked, slack, "why-403 gke1", channel="CPLAT")
    parent, _ = answered(locked, slack, "CPLAT", "why-403 gke1")
    reply = copy.deepcopy(slack.thread("CPLAT", parent["ts"])[0])
    assert buttons(reply)
    # approvers of the other binding (and GKE_BOT_APPROVERS, ignored once a policy is set) may not click here
    for user in ("UAPPROVER", "UGROUPIE"):
        url = click(locked, slack, reply, user, channel="CPLAT")
        assert "Only approvers of this conversation" in private(slack, url)
    assert google.projects[GKE4].iam_policy == before
    click(locked, slack, reply, "UPLAT", channel="CPLAT")
    slack.wait_for(lambda: [m for m in slack.thread("CPLAT", parent["ts"]) if "— done" in m["text"]], timeout=20)
    assert any(AGENT4 in b["members"] for b in google.projects[GKE4].iam_policy["bindings"])
    # each binding's approvers read their own binding's audit trail only
    assert "Only approvers of this conversation" in private(slack, ask(locked, slack, "audit 5", channel="CPLAT"))
    mine = private(slack, ask(locked, slack, "audit 5", user="UPLAT", channel="CPLAT"))
    assert "*succeeded* by <@UPLAT>" in mine and "*approved* by <@UPLAT>" in mine
    theirs = private(slack, ask(locked, slack, "audit 5", user="UAPPROVER"))
    assert theirs == "No remediation has been clicked yet."


def test_implicit_binding_makes_gke_bot_projects_a_hard_allowlist(served, slack, google):
    """No GKE_BOT_POLICY: every channel, GKE_BOT_PROJECTS only (the trial setup)."""
    google.load_fixture("gke4")
    said = private(slack, ask(served, slack, f"why-403 {GKE4}/europe-west4-a/gke1"))
    assert f"Project `{GKE4}` is not one this conversation may ask about" in said
    said = private(slack, ask(served, slack, "why-403 some-other-project/us-central1/c1"))
    assert "Project `some-other-project` is not one" in said
    time.sleep(0.5)
    assert google_paths(google) == []
    ask(served, slack, "why-404 gke-1")
    _, thread = answered(served, slack, "C123", "why-404 gke-1")
    assert GKE4 not in thread and not [p for p in google_paths(google) if GKE4 in p]


def test_every_command_is_logged_as_one_json_line(locked, slack, google):
    private(slack, ask(locked, slack, "why-403 gke1", channel="CNOWHERE"))
    ask(locked, slack, "why-400 gke1")
    answered(locked, slack, "C123", "why-400 gke1")
    lines = [json.loads(x) for x in locked["server"].output().splitlines() if x.startswith("{")]
    logged = [x["command_log"] for x in lines if "command_log" in x]
    assert {"where": "edge", "user": "U123", "channel": "CNOWHERE", "command": "why-403", "text": "why-403 gke1",
            "decision": "refused", "reason": "unbound", "binding": ""} in logged
    assert any(x["channel"] == "C123" and x["decision"] == "allowed" and x["binding"] == "incidents"
               for x in logged)
    worker = [json.loads(x) for x in locked["worker"].output().splitlines() if x.startswith("{")]
    assert any(x.get("command_log", {}).get("where") == "worker" for x in worker)
    for out in (locked["server"].output(), locked["worker"].output()):
        assert SIGNING_SECRET not in out and "xoxb-test" not in out


def cluster_options(served, view: dict, user: str, typed: str = "") -> list[str]:
    from tests.fakes.slack import block_suggestion_payload
    from tests.test_modal import interact
    return [o["value"] for o in interact(served, block_suggestion_payload(view, "cluster", "cluster", typed, user)
                                         ).json()["options"]]


def test_the_forms_cluster_list_follows_the_gates_decision(locked, slack, google):
    """The cluster select offers only what a command would be allowed: a guest gets nothing in a channel whose
    binding refuses guests; with no conversation chosen yet (the shortcut), no binding of channels the user may
    not be in is offered; once one is chosen, its binding's, if the person may ask there."""
    from tests.fakes.slack import fill
    from tests.test_modal import choose, open_by_command, shortcut_form
    slack.add_user("UGUEST", email="guest@example.com", name="guest", guest="single")
    mine = cluster_options(locked, choose(locked, slack, open_by_command(locked, slack, trigger="f-1"), "why-404"),
                           "U123")
    assert f"{GKE1}/europe-west4-a/gke1" in mine and not [c for c in mine if GKE4 in c]
    view = choose(locked, slack, open_by_command(locked, slack, user="UGUEST", trigger="f-2"), "why-404",
                  user="UGUEST")
    assert cluster_options(locked, view, "UGUEST") == []
    # the shortcut: U123 may ask in direct messages (GKE1), not in #CPLAT's binding (GKE4)
    view = shortcut_form(locked, slack, "f-3")
    anywhere = cluster_options(locked, view, "U123")
    assert f"{GKE1}/europe-west4-a/gke1" in anywhere and not [c for c in anywhere if GKE4 in c]
    # a guest: direct messages refuse guests; #CPLAT lets them ask, once chosen
    view = shortcut_form(locked, slack, "f-4", user="UGUEST")
    assert cluster_options(locked, view, "UGUEST") == []
    there = cluster_options(locked, fill(view, {"where": "CPLAT"}), "UGUEST")
    assert f"{GKE4}/europe-west4-a/gke1" in there and not [c for c in there if GKE1 in c]
    assert cluster_options(locked, fill(view, {"where": "C123"}), "UGUEST") == []


def test_the_home_tab_lists_only_where_the_person_may_ask(locked, slack, google):
    """The person checks of a command (a guest: only where guests may ask), and a binding of channels only for
    their members (conversations.members): its projects are not told to others."""
    from tests.test_home import open_home
    slack.add_user("UGUEST", email="guest@example.com", name="guest", guest="single")
    slack.add_channel("CPLAT", members=["UPLAT", "UGUEST"])
    slack.add_channel("C123", members=["U123", "UGUEST"])
    shown = json.dumps(open_home(locked, slack, "UGUEST")["blocks"])
    assert "<#CPLAT>" in shown and GKE4 in shown
    assert "<#C123>" not in shown and "direct messages" not in shown and GKE1 not in shown
    shown = json.dumps(open_home(locked, slack, "U123")["blocks"])
    assert "<#C123>" in shown and "direct messages" in shown and "<#direct>" not in shown
    assert "<#CPLAT>" not in shown and GKE4 not in shown
