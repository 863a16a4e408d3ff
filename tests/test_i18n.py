"""Catalogs: every message has a Japanese translation with the same placeholders, catalogs match the code,
and the reader's language reaches every thread of a diagnosis."""
from __future__ import annotations

import contextvars
import gettext
import threading

from bot.i18n import _ as bot_
from bot.i18n import catalogs
from checks import i18n
from checks.i18n import _ as checks_
from checks.i18n import from_env, language, normalize


def test_catalogs_are_complete_and_match_the_code():
    assert catalogs.problems() == []


def test_placeholders_are_compared_by_name():
    assert catalogs.fields("Node pool {pool} needs {version}") == ["pool", "version"]
    assert catalogs.fields("ノードプール {pool} には {version} が必要です") == ["pool", "version"]
    assert catalogs.fields("{pool} {pool}") != catalogs.fields("{pool}")
    assert catalogs.fields("{pool") == ["<malformed>"]


def test_languages_from_slack_posix_and_flags():
    assert [normalize(t) for t in ("ja-JP", "ja_JP.UTF-8", "JA", "en-US", "fr-FR", "", None, "C")] == \
        ["ja", "ja", "ja", "en", "en", "en", "en", "en"]
    assert from_env({"LANG": "ja_JP.UTF-8"}) == "ja"
    assert from_env({"LANG": "ja_JP.UTF-8", "LC_ALL": "C"}) == "en"
    assert from_env({"LC_MESSAGES": "ja_JP", "LANG": "en_US"}) == "ja"
    assert from_env({}) == "en"


def test_the_language_is_per_context_and_follows_copied_contexts():
    msg = "`{command}` is not built yet."
    assert checks_(msg) == msg
    with language("ja-JP"):
        assert checks_(msg) == "`{command}` はまだ実装されていません。"
        assert bot_("fix:") == "修正方法:"
        seen = {}
        ctx = contextvars.copy_context()
        t = threading.Thread(target=lambda: seen.update(ja=ctx.run(checks_, msg), plain=checks_(msg)))
        t.start()
        t.join()
        assert seen == {"ja": "`{command}` はまだ実装されていません。", "plain": msg}
    assert bot_("fix:") == "fix:"


def test_compiled_catalogs_load_with_plain_gettext(tmp_path):
    written = catalogs.compile_all(tmp_path)
    assert {p.name for p in written} >= {"checks.mo", "bot.mo"}
    mo = next(p for p in written if p.name == "bot.mo")
    with open(mo, "rb") as fh:
        assert gettext.GNUTranslations(fh).gettext("fix:") == "修正方法:"


def test_an_untranslated_message_is_reported(tmp_path, monkeypatch):
    from babel.messages.pofile import read_po, write_po
    src = i18n.CHECKS.po_path("ja")
    dest = tmp_path / "ja" / "LC_MESSAGES" / "checks.po"
    dest.parent.mkdir(parents=True)
    with open(src, "rb") as fh:
        cat = read_po(fh, locale="ja")
    victim = next(m for m in cat if m.id)
    victim.string = ""
    with open(dest, "wb") as fh:
        write_po(fh, cat)
    monkeypatch.setattr(catalogs, "domains", lambda: [(i18n.Domain("checks", tmp_path), catalogs.ROOT / "checks")])
    assert any("no Japanese translation" in p and victim.id in p for p in catalogs.problems())
