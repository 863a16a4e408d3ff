"""Japanese and English end to end: signed Slack requests to a real `gke-bot serve`, a real redis-server, a real
`gke-bot worker`, the fake Slack (whose users.info gives a user's locale only when asked with
include_locale=true, as Slack does), Google and Kubernetes.

A ja-JP user reads the parent, the thread, the buttons in Japanese; a ja-JP approver confirms in a Japanese
dialog and reads the result in Japanese, while an en-US approver of the same fix gets English; an en-US user
sees no Japanese at all. `--lang` and a binding's `locale:` override the user's locale.

Until the engine's finding texts are translated (gettext domain `checks`), the findings' own titles and
details stay English in a Japanese thread; everything the bot itself writes is checked here.
"""
from __future__ import annotations

import copy
import json
import re
import uuid

import pytest
import requests

from tests.conftest import SIGNING_SECRET, serve_with
from tests.fakes.slack import sign, slash_command_body
from tests.helpers import AGENT, GKE1, drop_binding
from tests.test_edge import add_cluster_x
from tests.test_remediation import buttons, click, dialog, submit

JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff01-\uff60]")
ROLE = "roles/container.serviceAgent"


@pytest.fixture
def world(google, slack):
    add_cluster_x(google)
    drop_binding(google.projects[GKE1].iam_policy, ROLE, AGENT)
    slack.add_user("UJA", email="hanako@example.com", name="hanako", locale="ja-JP")
    slack.add_user("UAPPJA", email="taro@example.com", name="taro", locale="ja-JP")


@pytest.fixture
def bot(spawn, env, redis_url, world):
    return serve_with(spawn, dict(env, GKE_BOT_APPROVERS="UAPPROVER,UAPPJA"), redis_url)


def ask(bot, slack, text: str, user: str, channel: str = "C123") -> str:
    url = slack.new_response_url()
    body = slash_command_body(text=text, user_id=user, channel_id=channel, response_url=url,
                              trigger_id=uuid.uuid4().hex)
    assert requests.post(f"{bot['url']}/slack/events", data=body, headers=sign(SIGNING_SECRET, body),
                         timeout=10).status_code == 200
    return url


def finished(bot, slack, user: str, channel: str = "C123") -> tuple[dict, dict]:
    """The asker's finished parent (not checking any more) and its report reply."""
    def done():
        for m in slack.messages(channel):
            top = not m.get("thread_ts") or m["thread_ts"] == m["ts"]
            if top and m["text"].startswith(f"<@{user}>") and not m["text"].endswith(("checking…", "確認中…")):
                replies = slack.thread(channel, m["ts"])
                return replies and (m, copy.deepcopy(replies[0]))
        return None
    try:
        return slack.wait_for(done, timeout=40)
    except AssertionError:
        raise AssertionError("no answer:\n" + bot["server"].output()[-3000:] + bot["worker"].output()[-3000:])


def answer(bot, slack, text: str, user: str) -> str:
    """An answer given at once (help, a command that does not parse): in the ack, or right after it through
    the response_url when the asker's language had to be asked from Slack first."""
    url = slack.new_response_url()
    body = slash_command_body(text=text, user_id=user, channel_id="C123", response_url=url,
                              trigger_id=uuid.uuid4().hex)
    resp = requests.post(f"{bot['url']}/slack/events", data=body, headers=sign(SIGNING_SECRET, body), timeout=10)
    got = resp.json() if resp.content else slack.wait_for(lambda: slack.responses_to(url), timeout=15)[0]
    return json.dumps(got, ensure_ascii=False)


def test_a_japanese_user_reads_the_thread_buttons_and_dialogs_in_japanese(bot, slack, google):
    ask(bot, slack, "why-403 cluster-x", "UJA")
    parent, reply = finished(bot, slack, "UJA")
    assert parent["text"].startswith("<@UJA> が `/gke why-403 cluster-x` を実行しました — :x: 失敗 ")
    head = reply["blocks"][0]["text"]["text"]
    assert head.startswith(f"*why-403*（`projects/{GKE1}/locations/europe-west4-a/clusters/cluster-x`）: :x: 失敗 ")
    blocks = json.dumps(reply["blocks"], ensure_ascii=False)
    for words in ("[失敗]", "*根拠:*", "*修正方法:*", "|ドキュメント>", "?hl=ja", "として診断しました（Slack プロフィールのメールアドレス）"):
        assert words in blocks, words
    for english in ("[FAIL]", "*Evidence:*", "*Fix:*", "|documentation>", "Diagnosed as"):
        assert english not in blocks, english
    [button] = buttons(reply)
    assert button["text"]["text"] == f"{ROLE} を再付与"

    # a Japanese approver's confirmation dialog is Japanese …
    click(bot, slack, reply, "UAPPJA", confirm=False)
    view = slack.views[-1]["view"]
    assert (view["title"]["text"], view["submit"]["text"], view["close"]["text"]) == \
        ("この修正を実行しますか？", "実行する", "キャンセル")
    shown = json.dumps(view["blocks"], ensure_ascii=False)
    assert f"プロジェクト `{GKE1}` にバインディングを 1 つ追加します" in shown and AGENT in shown
    # … an English approver's dialog for the same fix is English
    click(bot, slack, reply, "UAPPROVER", confirm=False)
    english = slack.views[-1]["view"]
    assert english["title"]["text"] == "Run this fix?" and not JAPANESE.search(json.dumps(english))
    # the Japanese approver confirms: the result is in their language
    submit(bot, view, "UAPPJA")
    result = slack.wait_for(lambda: [m for m in slack.thread("C123", parent["ts"]) if "承認者" in m["text"]],
                            timeout=30)[0]["text"]
    assert result.startswith(f":white_check_mark: *{ROLE} を再付与*（承認者 <@UAPPJA>）— 完了。")
    # the fix line is updated after the result is posted: wait for the update, do not race it
    line = slack.wait_for(lambda: [m for m in slack.messages("C123") if m["ts"] == reply["ts"]
                                   and "に承認 — 完了" in json.dumps(m["blocks"], ensure_ascii=False)], timeout=30)[0]
    assert "<@UAPPJA> が " in json.dumps(line["blocks"], ensure_ascii=False)
    assert any(AGENT in b["members"] for b in google.projects[GKE1].iam_policy["bindings"] if b["role"] == ROLE)
    # the audit trail says which language its result text is in
    import redis
    from bot.work.store import Store
    [done] = [e for e in Store(redis.Redis.from_url(bot["env"]["REDIS_URL"])).audit_entries(20)
              if e["event"] == "succeeded"]
    assert done["lang"] == "ja" and done["user"] == "UAPPJA"


def test_an_english_user_sees_no_japanese(bot, slack):
    ask(bot, slack, "why-403 cluster-x", "U123")
    parent, reply = finished(bot, slack, "U123")
    assert re.match(r"<@U123> asked `/gke why-403 cluster-x` — :x: \d+ FAIL", parent["text"])
    url = click(bot, slack, reply, "UAPPROVER")  # an English approver
    done = slack.wait_for(lambda: [m for m in slack.thread("C123", parent["ts"]) if "— done" in m["text"]], timeout=30)
    assert done[0]["text"].startswith(f":white_check_mark: *Re-grant {ROLE}* (approved by <@UAPPROVER>) — done.")
    everything = json.dumps([slack.messages("C123"), slack.views, slack.ephemerals, slack.responses_to(url)],
                            ensure_ascii=False)
    assert "Run this fix?" in everything and "[FAIL]" in everything
    assert not JAPANESE.search(everything), JAPANESE.search(everything)


def test_lang_flag_help_and_errors_follow_the_asker(bot, slack):
    # an English user asking --lang ja
    ask(bot, slack, "why-404 gke-1 --lang ja", "U123")
    parent, reply = finished(bot, slack, "U123")
    assert "を実行しました" in parent["text"] and JAPANESE.search(reply["text"])
    # a Japanese user asking --lang en
    ask(bot, slack, "why-404 gke-2 --lang en", "UJA")
    parent, _ = finished(bot, slack, "UJA")
    assert parent["text"].startswith("<@UJA> asked `/gke why-404 gke-2`")
    # help and a command that does not parse, in the asker's language
    assert "*gke-bot* は「GKE クラスタに拒否されるのはなぜ？」に答えます" in answer(bot, slack, "help", "UAPPJA")
    assert "どのクラスタですか？" in answer(bot, slack, "why-403", "UAPPJA")  # known now: in the ack itself
    assert "Which cluster?" in answer(bot, slack, "why-403", "UAPPROVER")
    assert "使い方" in answer(bot, slack, "wi gke1 --lang ja", "UAPPROVER")


def test_a_binding_locale_fixes_the_language(spawn, env, redis_url, world, slack, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(f"bindings:\n  - channels: [C123]\n    projects: [{GKE1}]\n    approvers: [UAPPROVER]\n"
                    "    locale: ja-JP\n")
    bot = serve_with(spawn, dict(env, GKE_BOT_POLICY=str(path)), redis_url)
    ask(bot, slack, "why-404 gke-1", "U123")  # an en-US user in a Japanese channel
    parent, _ = finished(bot, slack, "U123")
    assert "を実行しました" in parent["text"]
    assert "使い方" in answer(bot, slack, "wi gke1", "U123")
