"""The Slack edge's messages in the reader's language (gettext domain `bot`; see checks.i18n).

    from bot.i18n import _, N_
    _("Only approvers can read the audit trail.")

Whose language: `choose(flag, binding_locale, user_locale)` — `--lang ja|en` on the command, else the
binding's `locale:` in the access policy, else the asker's Slack locale (users.info include_locale=true),
else English. Approvers read their confirmation dialogs and fix results in their own language, the same way.
"""
from __future__ import annotations

from pathlib import Path

from checks.i18n import DEFAULT, N_, Domain, current, language, normalize, supported

__all__ = ["BOT", "N_", "_", "choose", "current", "doc_url", "language", "ngettext", "normalize"]

BOT = Domain("bot", Path(__file__).resolve().parent / "locale")


def _(msgid: str) -> str:
    return BOT.gettext(msgid)


def ngettext(singular: str, plural: str, n: int) -> str:
    return BOT.ngettext(singular, plural, n)


def choose(flag: str = "", binding_locale: str = "", user_locale: str = "") -> str:
    """The reader's language ("ja" or "en"): the command's `--lang`, else the binding's, else the user's."""
    for tag in (flag, binding_locale, user_locale):
        if tag and supported(tag):
            return normalize(tag)
    return DEFAULT


def doc_url(url: str, lang: str | None = None) -> str:
    """A documentation link for the reader (checks.i18n.doc_url) in `lang`, or the current language."""
    from checks.i18n import doc_url as for_reader
    if lang is None:
        return for_reader(url)
    with language(lang):
        return for_reader(url)
