"""Messages in the reader's language: gettext catalogs, English source, Japanese translation.

Every user-facing string is written in English in the code and wrapped: `_("Node pool {pool} …")` for
text produced now, `N_("…")` for a constant translated where it is used (`_(TITLE)`). Placeholders are
named (`{pool}`) and filled with `.format(...)` after translation, so a translation may reorder them.
Identifiers (roles, permissions, commands, resource names, quoted error strings) stay verbatim.

The language is a context variable: the job sets it from the asker's locale (`with language("ja"):`)
and every `_()` below it — in checks running on other threads too, when started with
`contextvars.copy_context()` — answers in that language.

Two catalogs (gettext domains), one per layer: `checks` (finding texts, here in checks/locale) and
`bot` (Slack texts, in bot/i18n/locale). `.po` files live in the repository; `.mo` files are compiled
at build/install (setup.py) and, where absent or older than the `.po` (a source checkout), compiled in
memory on first use. Maintenance (extract, update, compile, check): `python -m bot.i18n.catalogs`.
"""
from __future__ import annotations

import contextvars
import gettext as _gettext
import io
import os
import threading
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

LANGUAGES = ("en", "ja")
DEFAULT = "en"
_lang: contextvars.ContextVar[str] = contextvars.ContextVar("gke_bot_language", default=DEFAULT)


def normalize(tag: str | None) -> str:
    """A Slack locale (`ja-JP`), a POSIX locale (`ja_JP.UTF-8`) or a language (`ja`) → "ja" or "en"."""
    t = (tag or "").strip().lower().replace("_", "-")
    return "ja" if t.split("-")[0].split(".")[0] == "ja" else DEFAULT


def supported(tag: str | None) -> bool:
    t = (tag or "").strip().lower().replace("_", "-")
    return t.split("-")[0].split(".")[0] in LANGUAGES


def from_env(env=None) -> str:
    """The terminal's language, as POSIX orders it: LC_ALL, then LC_MESSAGES, then LANG."""
    env = os.environ if env is None else env
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if env.get(var):
            return normalize(env[var])
    return DEFAULT


def current() -> str:
    return _lang.get()


@contextmanager
def language(lang: str | None):
    """Answer in `lang` inside the block (this thread, and threads started with a copy of this context)."""
    token = _lang.set(normalize(lang))
    try:
        yield _lang.get()
    finally:
        _lang.reset(token)


class Domain:
    """One gettext catalog (domain) with its .po files under `localedir/LANG/LC_MESSAGES/`."""

    def __init__(self, name: str, localedir: Path):
        self.name, self.localedir = name, Path(localedir)
        self._loaded: dict[str, _gettext.NullTranslations] = {}
        self._lock = threading.Lock()

    def po_path(self, lang: str) -> Path:
        return self.localedir / lang / "LC_MESSAGES" / f"{self.name}.po"

    def _load(self, lang: str) -> _gettext.NullTranslations:
        po, mo = self.po_path(lang), self.po_path(lang).with_suffix(".mo")
        if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
            with open(mo, "rb") as fh:
                return _gettext.GNUTranslations(fh)
        if not po.exists():
            return _gettext.NullTranslations()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po
        with open(po, "rb") as fh:
            catalog = read_po(fh, locale=lang, domain=self.name)
        buf = io.BytesIO()
        write_mo(buf, catalog)  # fuzzy entries are left out: an unchecked translation is not shown
        buf.seek(0)
        return _gettext.GNUTranslations(buf)

    def translations(self, lang: str) -> _gettext.NullTranslations:
        lang = normalize(lang)
        with self._lock:
            got = self._loaded.get(lang)
            if got is None:
                got = self._loaded[lang] = _gettext.NullTranslations() if lang == DEFAULT else self._load(lang)
            return got

    def gettext(self, msgid: str) -> str:
        return self.translations(_lang.get()).gettext(msgid)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations(_lang.get()).ngettext(singular, plural, n)


CHECKS = Domain("checks", Path(__file__).resolve().parent / "locale")


def _(msgid: str) -> str:
    """The engine's catalog: `msgid` in the current language."""
    return CHECKS.gettext(msgid)


def ngettext(singular: str, plural: str, n: int) -> str:
    return CHECKS.ngettext(singular, plural, n)


def N_(msgid: str) -> str:
    """Mark a constant for extraction; translate it where it is used with `_()`."""
    return msgid


DOC_HOSTS = ("cloud.google.com", "docs.cloud.google.com")  # Google's documentation: Japanese pages with `hl=ja`


def doc_url(url: str) -> str:
    """A documentation link for the reader: Google Cloud pages get `hl=ja` for Japanese readers (before the
    #fragment; an `hl` the link already has is kept). Other links, and every link for English readers, as given.
    (bot.i18n.doc_url does the same for a language given explicitly.)"""
    if not url or _lang.get() != "ja":
        return url
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if parts.hostname not in DOC_HOSTS:
        return url
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "hl" for k, _v in query):
        return url
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query + [("hl", "ja")])))


def sentences(*parts: str) -> str:
    """Whole translated sentences in a row: a space between them in English, none after Japanese `。`."""
    sep = "" if _lang.get() == "ja" else " "
    return sep.join(p for p in parts if p)
