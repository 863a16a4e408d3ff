"""Events: `app_mention` (a command in a channel or thread; the answer goes to that thread)."""
from __future__ import annotations

import logging
import re

from bot.grammar import GrammarError, parse
from bot.render import blocks as render
from bot.work.queue import QueueUnavailable

log = logging.getLogger(__name__)
_MENTION = re.compile(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>\s*")
_LINK = re.compile(r"<(?:mailto:)?([^<>|@!#][^<>|]*)(?:\|([^<>]*))?>")


def register(app, edge) -> None:
    Events(edge).register(app)


class Events:
    def __init__(self, edge):
        self.edge = edge

    def register(self, app) -> None:
        app.event("app_mention")(self.on_mention)

    def on_mention(self, ack, event, body, client):
        ack()
        # Slack turns emails and links into <mailto:a@b|a@b> and <url|label>: give the grammar the text.
        text = _LINK.sub(lambda m: m.group(2) or m.group(1), _MENTION.sub("", event.get("text", ""), count=1))
        channel, user = event["channel"], event.get("user", "")
        thread_ts = event.get("thread_ts") or event["ts"]
        key = f"evt:{body.get('event_id') or event['ts']}"
        try:
            if not self.edge.queue.claim(f"{key}:seen"):
                return  # a Slack retry of an event already handled
        except QueueUnavailable:
            pass
        try:
            cmd = parse(text)
        except GrammarError as err:
            self.edge.after_ack.submit(self.edge._say, client, channel, thread_ts, render.error_text(render.escape(str(err))))
            return
        if cmd.name in ("help", "audit"):
            blocks = render.help_blocks(cmd.args.get("topic", ""))
            self.edge.after_ack.submit(self.edge._say, client, channel, thread_ts, blocks["text"], blocks["blocks"])
            return
        key = f"evt:{body.get('event_id') or event['ts']}"
        self.edge.after_ack.submit(self.edge.start, client, cmd, key, channel=channel, user=user, thread_ts=thread_ts,
                              private=lambda msg: self.edge._ephemeral(client, channel, user, msg))

