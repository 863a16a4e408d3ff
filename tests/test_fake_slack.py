"""FakeSlack proven with the real slack_sdk / slack_bolt clients (no mocks)."""
import json
import time

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.fakes.slack import (FakeSlack, block_actions_payload, event_callback_body, interactive_body, sign,
                               slash_command_body, slash_command_payload)

SECRET = "shh-signing-secret"


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        fake.add_channel("C1")
        fake.add_channel("COUT", member=False)
        fake.add_user("U1", email="alice@example.com")
        fake.add_user("U2", name="bob")
        yield fake


@pytest.fixture
def client(slack):
    return WebClient(token="xoxb-test", base_url=slack.api_url)


def slack_error(call, *args, **kwargs):
    with pytest.raises(SlackApiError) as info:
        call(*args, **kwargs)
    return info.value.response


def section(text):
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_post_thread_update_and_records(slack, client):
    parent = client.chat_postMessage(channel="C1", text="checking", blocks=[section("*checking*")])
    reply = client.chat_postMessage(channel="C1", text="step 1", thread_ts=parent["ts"])
    updated = client.chat_update(channel="C1", ts=parent["ts"], text="done", blocks=[section("*done*")])

    assert float(reply["ts"]) > float(parent["ts"]) and parent["channel"] == "C1"
    assert updated["message"]["text"] == "done"
    first, second = slack.messages("C1")
    assert (first["text"], first["blocks"], first["user"]) == ("done", [section("*done*")], "UBOT")
    assert first["edits"][0]["text"] == "checking"
    assert slack.thread("C1", parent["ts"]) == [second]
    assert slack.calls_to("chat.update")[0]["blocks"] == [section("*done*")]
    assert slack_error(client.chat_update, channel="C1", ts="1.000000", text="x")["error"] == "message_not_found"


def test_form_encoded_blocks_are_parsed(slack, client):
    client.api_call("chat.postMessage", data={"channel": "C1", "text": "t", "blocks": json.dumps([section("hi")])})
    assert slack.messages("C1")[0]["blocks"] == [section("hi")]
    assert slack.calls[-1].headers["Content-Type"].startswith("application/x-www-form-urlencoded")


def test_channel_membership(slack, client):
    slack.add_channel("CPRIV", member=False, private=True)
    slack.add_channel("COLD", archived=True)
    assert slack_error(client.chat_postMessage, channel="CPRIV", text="x")["error"] == "channel_not_found"
    assert slack_error(client.chat_postMessage, channel="CNOPE", text="x")["error"] == "channel_not_found"
    assert slack_error(client.chat_postMessage, channel="COLD", text="x")["error"] == "is_archived"
    assert slack_error(client.chat_postEphemeral, channel="COUT", user="U1", text="x")["error"] == "not_in_channel"
    dm = client.chat_postMessage(channel="U1", text="psst")
    assert dm["channel"].startswith("D") and slack.messages(dm["channel"])[0]["text"] == "psst"


def test_public_channel_takes_posts_with_chat_write_public(slack, client):
    """The manifest's chat:write.public lets the bot post (and update its own posts) in a public channel it
    is not in; without the scope Slack answers not_in_channel."""
    posted = client.chat_postMessage(channel="COUT", text="checking")
    client.chat_update(channel="COUT", ts=posted["ts"], text="done")
    assert [m["text"] for m in slack.messages("COUT")] == ["done"]
    no_public = FakeSlack(scopes=["chat:write", "users:read"]).start()
    try:
        no_public.add_channel("COUT", member=False)
        bare = WebClient(token="xoxb-test", base_url=no_public.api_url)
        assert slack_error(bare.chat_postMessage, channel="COUT", text="x")["error"] == "not_in_channel"
        missing = slack_error(bare.usergroups_users_list, usergroup="S1")
        assert (missing["error"], missing["needed"]) == ("missing_scope", "usergroups:read")
    finally:
        no_public.stop()


def test_scopes_come_from_the_app_manifest(slack):
    from tests.fakes.slack import manifest_scopes
    assert slack.scopes == set(manifest_scopes())
    assert {"chat:write", "chat:write.public", "users:read", "users:read.email"} <= slack.scopes


def test_ephemeral(slack, client):
    resp = client.chat_postEphemeral(channel="C1", user="U1", text="only you", blocks=[section("only you")])
    assert resp["message_ts"]
    assert slack.ephemerals == [{"channel": "C1", "user": "U1", "text": "only you", "blocks": [section("only you")],
                                 "ts": resp["message_ts"]}]
    assert slack.messages("C1") == []


def test_users_and_usergroups(slack, client):
    alice = client.users_info(user="U1")["user"]
    assert alice["profile"]["email"] == "alice@example.com" and alice["tz"] == "UTC" and alice["name"] == "alice"
    assert "locale" not in alice  # Slack sends it only with include_locale=true
    assert "email" not in client.users_info(user="U2")["user"]["profile"]
    assert slack_error(client.users_info, user="U404")["error"] == "user_not_found"
    slack.add_usergroup("S1", ["U1", "U2"])
    assert client.usergroups_users_list(usergroup="S1")["users"] == ["U1", "U2"]
    assert slack_error(client.usergroups_users_list, usergroup="S404")["error"] == "no_such_subteam"


def test_locale_only_when_asked(slack, client):
    slack.add_user("U3", name="kenji", locale="ja-JP")
    assert client.users_info(user="U3", include_locale=True)["user"]["locale"] == "ja-JP"
    assert client.api_call("users.info", params={"user": "U3", "include_locale": "true"})["user"]["locale"] == "ja-JP"
    assert "locale" not in client.users_info(user="U3")["user"]
    assert "locale" not in client.users_info(user="U3", include_locale=False)["user"]


def test_auth(slack, client):
    assert client.auth_test()["user_id"] == "UBOT"
    assert slack_error(WebClient(token="xoxb-wrong", base_url=slack.api_url).auth_test)["error"] == "invalid_auth"
    app_client = WebClient(token="xapp-test", base_url=slack.api_url)
    assert slack_error(app_client.chat_postMessage, channel="C1", text="x")["error"] == "not_allowed_token_type"
    assert app_client.apps_connections_open(app_token="xapp-test")["url"].startswith("ws://127.0.0.1:")
    assert slack_error(client.api_call, "chat.nope")["error"] == "unknown_method"


def test_injected_failures(slack, client):
    slack.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=1)
    slack.fail_next("chat.postMessage", error="msg_too_long")
    limited = slack_error(client.chat_postMessage, channel="C1", text="x")
    assert (limited.status_code, limited.headers["Retry-After"], limited["error"]) == (429, "1", "ratelimited")
    too_long = slack_error(client.chat_postMessage, channel="C1", text="x")
    assert (too_long.status_code, too_long["error"]) == (200, "msg_too_long")
    assert client.chat_postMessage(channel="C1", text="x")["ok"]
    assert [m["text"] for m in slack.messages("C1")] == ["x"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
@pytest.mark.parametrize("kwargs, error", [
    ({"text": "x", "blocks": [section("b")] * 51}, "invalid_blocks"),
    ({"text": "x", "blocks": [section("b" * 3001)]}, "invalid_blocks"),
    ({"text": "x", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]},
     "invalid_blocks"),
    ({"text": "x" * 40001}, "msg_too_long"),
    ({"text": ""}, "no_text"),
])
def test_message_limits(client, kwargs, error):
    resp = slack_error(client.chat_postMessage, channel="C1", **kwargs)
    assert resp["error"] == error
    if error == "invalid_blocks":
        assert resp["errors"] and "json-pointer:/blocks" in resp["errors"][0]


def test_limits_are_inclusive(slack, client):
    client.chat_postMessage(channel="C1", text="x" * 40000, blocks=[section("b" * 3000)] + [{"type": "divider"}] * 49)
    assert len(slack.messages("C1")[0]["blocks"]) == 50


def test_files_upload_v2(slack, client):
    parent = client.chat_postMessage(channel="C1", text="report")
    resp = client.files_upload_v2(channel="C1", thread_ts=parent["ts"], content="line1\nline2",
                                  filename="report.txt", title="Report", initial_comment="full output")
    assert resp["file"]["title"] == "Report"
    (upload,) = slack.files
    assert (upload["content"], upload["channel"], upload["thread_ts"]) == (b"line1\nline2", "C1", parent["ts"])
    assert slack.thread("C1", parent["ts"])[0]["files"][0]["name"] == "report.txt"


def test_response_url(slack):
    url = slack.new_response_url()
    resp = WebhookClient(url).send(text="working", response_type="ephemeral", replace_original=False)
    assert (resp.status_code, resp.body) == (200, "ok")
    assert slack.responses == slack.responses_to(url) == [
        {"text": "working", "response_type": "ephemeral", "replace_original": False}]
    assert WebhookClient(url).send(text="x", blocks=[section("b" * 3001)]).status_code == 400


def test_wait_for(slack, client):
    client.chat_postMessage(channel="C1", text="hello")
    assert slack.wait_for(lambda: slack.messages("C1"), timeout=1)[0]["text"] == "hello"
    with pytest.raises(AssertionError, match="chat.postMessage"):
        slack.wait_for(lambda: slack.messages("C2"), timeout=0.1)


def test_sign_verifies_with_slack_sdk():
    body = slash_command_body(text="why-403 prod")
    headers = sign(SECRET, body)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    old = sign(SECRET, body, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(body, old)


def test_request_builders_drive_bolt(slack):
    """The helper bodies are what Bolt's HTTP path expects from Slack (signature, parsing, routing)."""
    app = App(signing_secret=SECRET, client=WebClient(token="xoxb-test", base_url=slack.api_url),
              process_before_response=True)
    seen = []
    app.command("/gke")(lambda ack, command: (seen.append(command["text"]), ack("on it")))
    app.action("retry")(lambda ack, body: (seen.append(body["actions"][0]["value"]), ack()))
    app.event("app_mention")(lambda event: seen.append(event["text"]))
    url = slack.new_response_url()
    bodies = [slash_command_body(text="why-403 prod", response_url=url),
              interactive_body(block_actions_payload("retry", "run-7", "U1", "C1", "1700000000.000100", url)),
              event_callback_body({"type": "app_mention", "user": "U1", "text": "<@UBOT> hi", "channel": "C1",
                                   "ts": "1700000000.000200", "event_ts": "1700000000.000200"})]
    statuses = [app.dispatch(BoltRequest(body=b, headers=sign(SECRET, b))).status for b in bodies]
    assert statuses == [200, 200, 200]
    assert seen == ["why-403 prod", "run-7", "<@UBOT> hi"]
    bad = app.dispatch(BoltRequest(body=bodies[0], headers=sign("wrong", bodies[0])))
    assert bad.status == 401


def close_socket_mode(handler, slack) -> None:
    """Close a SocketModeHandler quickly, and without racing slack_sdk's receive thread (which
    disconnects without a lock): let the server drop the socket, wait until the client saw it."""
    handler.client.auto_reconnect_enabled = False
    slack.socket_disconnect(reason=None)
    slack.wait_for(lambda: not handler.client.is_connected(), timeout=5)
    handler.close()


def test_socket_mode_round_trip(slack):
    app = App(client=WebClient(token="xoxb-test", base_url=slack.api_url))
    app.command("/gke")(lambda ack, command: ack(f"on it: {command['text']}"))
    handler = SocketModeHandler(app, "xapp-test")
    handler.connect()
    try:
        slack.wait_socket_connected(timeout=5)
        envelope_id = slack.socket_send("slash_commands", slash_command_payload(response_url=slack.new_response_url()))
        acks = slack.wait_for(lambda: [a for a in slack.socket_acks if a["envelope_id"] == envelope_id], timeout=5)
        assert acks[0]["payload"] == {"text": "on it: why-403 cluster-x"}
    finally:
        close_socket_mode(handler, slack)
