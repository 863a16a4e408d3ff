"""`gke-bot socket`: the same app over Socket Mode, as a real process against the fake Slack's
websocket endpoint."""
from __future__ import annotations

import json

from tests.fakes.slack import slash_command_payload
from tests.test_edge import assert_summary_matches
from tests.helpers import AGENT, GKE1, drop_binding


def test_socket_mode_command_is_acked_and_answered_in_a_thread(spawn, env, slack, google):
    drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    proc = spawn(["socket"], env, "socket")
    try:
        slack.wait_socket_connected(timeout=20)
    except Exception:
        raise AssertionError(proc.output())
    envelope = slack.socket_send("slash_commands", slash_command_payload(
        text="why-403 gke1", user_id="U123", channel_id="C123", response_url=slack.new_response_url()))
    slack.wait_for(lambda: [a for a in slack.socket_acks if a["envelope_id"] == envelope], timeout=10)

    def answered():
        parents = [m for m in slack.messages("C123") if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
        return parents and "checking…" not in parents[0]["text"] and parents[0]
    parent = slack.wait_for(answered, timeout=30)
    reply = slack.thread("C123", parent["ts"])[0]
    assert_summary_matches(parent, reply)
    assert "service-12340002@container-engine-robot" in json.dumps(reply["blocks"])


def test_socket_mode_needs_the_app_token(spawn, env):
    proc = spawn(["socket"], {k: v for k, v in env.items() if k != "SLACK_APP_TOKEN"}, "socket")
    assert proc.proc.wait(30) == 2
    assert "SLACK_APP_TOKEN is not set" in proc.output()


def test_socket_mode_modal_options_and_submission(spawn, env, slack, google):
    """Over Socket Mode the modal's options and field errors travel in the envelope's ack payload."""
    from tests.fakes.slack import block_suggestion_payload, fill, options_errors, view_submission_payload
    proc = spawn(["socket"], env, "socket")
    try:
        slack.wait_socket_connected(timeout=20)
    except Exception:
        raise AssertionError(proc.output())
    slack.socket_send("slash_commands", slash_command_payload(text="", user_id="U123", channel_id="C123",
                                                              trigger_id="sock-m1",
                                                              response_url=slack.new_response_url()))
    view = slack.wait_for(lambda: next((v["view"] for v in slack.views if v["trigger_id"] == "sock-m1"), None))

    def answer(envelope: str) -> dict:
        return slack.wait_for(lambda: next((a for a in slack.socket_acks if a["envelope_id"] == envelope), None))
    ack = answer(slack.socket_send("interactive", block_suggestion_payload(view, "cluster", "cluster", "gke1", "U123")))
    assert options_errors(ack["payload"]) == []
    assert f"{GKE1}/europe-west4-a/gke1" in [o["value"] for o in ack["payload"]["options"]]
    ack = answer(slack.socket_send("interactive", view_submission_payload(
        fill(view, {"command": "why-404", "cluster": "bad name"}), "U123")))
    assert ack["payload"]["response_action"] == "errors" and "cluster" in ack["payload"]["errors"]
    ack = answer(slack.socket_send("interactive", view_submission_payload(
        fill(view, {"command": "why-404", "cluster": f"{GKE1}/europe-west4-a/gke1"}), "U123")))
    assert not ack.get("payload")
    parent = slack.wait_for(lambda: [m for m in slack.messages("C123") if "checking…" not in m["text"]
                                     and not m.get("thread_ts")], timeout=30)[0]
    assert f"/gke why-404 {GKE1}/europe-west4-a/gke1" in parent["text"]
