"""Shortcuts. *Diagnose this error* (message shortcut `gke_diagnose_error`, app-manifest.yaml): on any message,
the bot reads its text, recognises the error and runs the matching diagnosis, answering in a thread under that
message (or in the thread the message is in). Acks first; the rest runs after the ack, as `/gke explain`.

*New diagnosis* (global shortcut `gke_new_diagnosis`): the diagnosis modal (bot.listeners.views), which asks
where to post since a global shortcut comes from no conversation."""
from __future__ import annotations

import logging

from bot.access import log_command
from bot.grammar import MAX_EXPLAIN, GrammarError, parse
from bot.i18n import _, language
from bot.listeners.views import open_modal
from bot.metrics import COMMANDS
from bot.render import blocks as render

log = logging.getLogger(__name__)
DIAGNOSE = "gke_diagnose_error"
MAX_PARTS = 20  # attachments / blocks read from one message


def register(app, edge) -> None:
    Shortcuts(edge).register(app)


def _texts(value, out: list[str], depth: int = 0) -> None:
    """Every `text` string inside Block Kit structures (sections, rich text, context), depth-first."""
    if depth > 8 or len(out) > 400:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                out.append(item)
            else:
                _texts(item, out, depth + 1)
    elif isinstance(value, list):
        for item in value[:100]:
            _texts(item, out, depth + 1)


def message_text(message: dict) -> str:
    """What a message says: its text, else its blocks' text (rich text arrives split in pieces), plus the text of
    its attachments (alerts from other apps carry the error there). Cut to what `explain` reads."""
    parts = [message.get("text") or ""]
    if not parts[0].strip():
        pieces: list[str] = []
        _texts(message.get("blocks") or [], pieces)
        parts = ["".join(pieces)]
    for att in (message.get("attachments") or [])[:MAX_PARTS]:
        if isinstance(att, dict):
            parts += [str(att.get(k) or "") for k in ("pretext", "title", "text", "fallback") if att.get(k)]
    for f in (message.get("files") or [])[:MAX_PARTS]:  # a snippet's first lines, when Slack includes them
        if isinstance(f, dict) and isinstance(f.get("preview"), str):
            parts.append(f["preview"])
    text = "\n".join(p for p in parts if p.strip())
    return text[: MAX_EXPLAIN - len("explain ")]


class Shortcuts:
    def __init__(self, edge):
        self.edge = edge

    def register(self, app) -> None:
        app.shortcut("gke_diagnose_error")(self.on_diagnose)
        app.shortcut("gke_new_diagnosis")(self.on_new)

    def on_new(self, ack, shortcut, client):
        ack()
        user = (shortcut.get("user") or {}).get("id", "")
        log_command("edge", user, "", "modal", "new diagnosis (shortcut)", "answered")
        open_modal(self.edge, client, shortcut.get("trigger_id", ""), user, "")

    def on_diagnose(self, ack, shortcut, client, respond, body):
        ack()
        user = (shortcut.get("user") or {}).get("id", "")
        channel = (shortcut.get("channel") or {}).get("id", "")
        message = shortcut.get("message") or {}
        ts = message.get("ts") or shortcut.get("message_ts", "")
        # the answer goes under the message: in its thread when it is a reply, else a new thread on it
        thread_ts = message.get("thread_ts") or ts

        def private(text: str = "", blocks=None, **_extra) -> None:
            respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
        text = message_text(message)
        try:
            cmd = parse("explain " + text)
        except GrammarError:
            COMMANDS.labels("explain", "rejected").inc()
            log_command("edge", user, channel, "explain", "explain (shortcut)", "invalid", "no text")
            self.edge.submit(self._no_text, client, user, channel, private)
            return
        key = f"sc:{(body.get('team') or {}).get('id', '')}:{shortcut.get('trigger_id') or ts}"
        self.edge.submit(self.edge.start, client, cmd, key, channel=channel, user=user, thread_ts=thread_ts,
                         private=private, busy=private)

    def _no_text(self, client, user: str, channel: str, private) -> None:
        with language(self.edge.gate.language(client, user, channel)):
            private(render.error_text(_("That message has no text I can read, so there is no error to diagnose.")))
