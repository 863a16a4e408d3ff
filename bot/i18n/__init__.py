"""The Slack edge's messages in the reader's language (gettext domain `bot`; see checks.i18n).

    from bot.i18n import _, N_
    _("Only approvers can read the audit trail.")
"""
from __future__ import annotations

from pathlib import Path

from checks.i18n import N_, Domain, current, language, normalize

__all__ = ["BOT", "N_", "_", "current", "language", "ngettext", "normalize"]

BOT = Domain("bot", Path(__file__).resolve().parent / "locale")


def _(msgid: str) -> str:
    return BOT.gettext(msgid)


def ngettext(singular: str, plural: str, n: int) -> str:
    return BOT.ngettext(singular, plural, n)
