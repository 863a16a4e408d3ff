"""Checking again, end to end (serve → Redis → worker → Google fake): after a fix the finding's check runs again
(retried while IAM propagates) and the thread, the fix line and the parent say whether it passes now;
`@gke-bot recheck` in a diagnosis thread answers with what changed, and the old buttons are marked superseded."""
from __future__ import annotations

import copy
import json

import pytest
import requests

from tests.conftest import SIGNING_SECRET, serve_with
from tests.fakes.slack import event_callback_body, sign
from tests.helpers import AGENT, GKE1, drop_binding
from tests.test_remediation import ROLE, buttons, click, diagnose, outcome

PASSES = "now passes"


@pytest.fixture
def fast(spawn, env, redis_url):
    """serve + worker re-checking quickly (the pause between tries is for IAM propagation)."""
    return serve_with(spawn, env, redis_url, GKE_BOT_RECHECK_WAIT="0.05", GKE_BOT_RECHECK_TRIES="4")


@pytest.fixture
def broken(google):
    drop_binding(google.projects[GKE1].iam_policy, ROLE, AGENT)


def parent_of(slack, parent):
    return next(m for m in slack.messages("C123") if m["ts"] == parent["ts"])


def stale_reads_after_the_fix(google, n: int) -> list:
    """IAM propagation: the first `n` reads of the project's policy after a write still see the old one."""
    real_get, real_set = google._h_get_iam_policy, google._h_set_iam_policy
    state = {"left": 0, "old": None}
    reads = []

    def set_policy(req, body, p):
        state["old"] = copy.deepcopy(real_get(req, {}, p))
        state["left"] = n
        return real_set(req, body, p)

    def get_policy(req, body, p):
        reads.append(p)
        if state["left"] > 0:
            state["left"] -= 1
            return copy.deepcopy(state["old"])
        return real_get(req, body, p)
    google._h_get_iam_policy, google._h_set_iam_policy = get_policy, set_policy
    return reads


def test_after_the_fix_the_thread_says_the_check_now_passes(fast, slack, google, broken):
    parent, reply = diagnose(fast, slack)
    assert ":x: 2 FAIL" in parent["text"]
    reads = stale_reads_after_the_fix(google, 2)
    click(fast, slack, reply, "UAPPROVER")
    outcome(slack, parent, "— done")
    said = outcome(slack, parent, PASSES)
    assert "GKE service agent" in said[0]["text"] or "service" in said[0]["text"].lower()
    assert len(reads) >= 3  # read again until the grant was seen (two stale reads, then the new policy)
    # the parent's summary and the fix line follow
    slack.wait_for(lambda: ":x: 1 FAIL" in parent_of(slack, parent)["text"])
    fixed = slack.wait_for(lambda: [m for m in slack.thread("C123", parent["ts"]) if m["ts"] == reply["ts"]
                                    and "checked again: passes" in json.dumps(m["blocks"])])
    assert not buttons(fixed[0])


def test_a_fix_not_seen_in_time_is_reported_with_what_the_check_says(fast, slack, google, broken):
    parent, reply = diagnose(fast, slack)
    reads = stale_reads_after_the_fix(google, 100)  # never propagates within the re-check's tries
    click(fast, slack, reply, "UAPPROVER")
    said = outcome(slack, parent, "does not pass yet")
    assert "4 times" in said[0]["text"]
    assert "[FAIL]" in json.dumps(said[0]["blocks"])
    assert len(reads) >= 4
    slack.wait_for(lambda: [m for m in slack.thread("C123", parent["ts"]) if m["ts"] == reply["ts"]
                            and "checked again: FAIL" in json.dumps(m["blocks"])])
    assert ":x: 2 FAIL" in parent_of(slack, parent)["text"]


def mention(served, text: str, thread_ts: str, event_id: str, user="U123") -> None:
    event = {"type": "app_mention", "user": user, "text": f"<@UBOT> {text}", "ts": f"{thread_ts[:-3]}999",
             "thread_ts": thread_ts, "channel": "C123", "event_ts": f"{thread_ts[:-3]}999"}
    body = event_callback_body(event, event_id=event_id)
    resp = requests.post(f"{served['url']}/slack/events", data=body, headers=sign(SIGNING_SECRET, body), timeout=10)
    assert resp.status_code == 200


def test_recheck_answers_with_what_changed(fast, slack, google, broken):
    parent, reply = diagnose(fast, slack)
    before = len(slack.thread("C123", parent["ts"]))
    google.projects[GKE1].iam_policy["bindings"].append({"role": ROLE, "members": [AGENT]})  # fixed by hand
    mention(fast, "recheck", parent["ts"], "EvRecheck1")
    answer = outcome(slack, parent, "Checked again")[0]
    shown = json.dumps(answer["blocks"])
    assert "Fixed since the previous answer" in shown and "New since" not in shown
    assert "[OK]" not in shown  # the difference, not the whole report again
    assert len(slack.thread("C123", parent["ts"])) == before + 1
    # the first answer's button no longer applies
    old = slack.wait_for(lambda: [m for m in slack.thread("C123", parent["ts"]) if m["ts"] == reply["ts"]
                                  and "Superseded" in json.dumps(m["blocks"])])
    assert not buttons(old[0])
    slack.wait_for(lambda: ":x: 1 FAIL" in parent_of(slack, parent)["text"])
    # broken again: the next recheck compares with the re-check's answer and offers a fresh button
    drop_binding(google.projects[GKE1].iam_policy, ROLE, AGENT)
    mention(fast, "recheck", parent["ts"], "EvRecheck2")
    second = slack.wait_for(lambda: [m for m in slack.thread("C123", parent["ts"])
                                     if "New since the previous answer" in json.dumps(m.get("blocks") or [])])[0]
    assert [b["action_id"] for b in buttons(second)] == ["remediate:grant_service_agent"]


def test_recheck_outside_a_diagnosis_thread_says_so(fast, slack):
    mention(fast, "recheck", "1600000000.000100", "EvRecheck3")
    said = slack.wait_for(lambda: [m for m in slack.messages("C123") if "nothing to check again" in m["text"]])
    assert said[0]["thread_ts"] == "1600000000.000100"
