"""Events: `app_mention` (a command in a channel or thread; the answer goes to that thread, in the asker's
language). `@gke-bot explain ERROR TEXT…` diagnoses a pasted error like `/gke explain`. `@gke-bot recheck` in
a diagnosis thread runs that diagnosis again and answers with what changed (bot.work.rechecks).
`app_home_opened`: the Home tab (bot.work.home)."""
from __future__ import annotations

import logging
import re

from bot.access import log_command
from bot.grammar import GrammarError, lang_flag, parse
from bot.i18n import N_, _, language
from bot.render import blocks as render
from bot.work.history import history_for
from bot.work.queue import QueueUnavailable
from checks.resolve import ClusterSpec

log = logging.getLogger(__name__)
_MENTION = re.compile(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>\s*")
_LINK = re.compile(r"<(?:mailto:)?([^<>|@!#][^<>|]*)(?:\|([^<>]*))?>")
_RECHECK = re.compile(r"^\s*re-?check\s*$", re.IGNORECASE)
NOTHING_TO_RECHECK = N_("There is no diagnosis in this thread that I still remember (they are kept for 7 days), so "
                        "there is nothing to check again. Ask again with a command, e.g. `@gke-bot why-403 CLUSTER`.")


def register(app, edge) -> None:
    Events(edge).register(app)


class Events:
    def __init__(self, edge):
        self.edge = edge

    def register(self, app) -> None:
        app.event("app_mention")(self.on_mention)
        app.event("app_home_opened")(self.on_home)

    def on_home(self, ack, event, client):
        """The Home tab was opened: publish it for that user (bot.work.home)."""
        ack()
        if event.get("tab") != "home" or not event.get("user"):
            return
        from bot.work.home import publish
        self.edge.submit(publish, self.edge.settings, client, self.edge.gate, event["user"])

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
        if _RECHECK.match(text):
            self.edge.submit(self._recheck, client, key, channel, user, thread_ts)
            return
        try:
            cmd = parse(text)
        except GrammarError as err:
            log_command("edge", user, channel, "invalid", text, "invalid", str(err)[:200])
            self.edge.submit(self._invalid, client, channel, user, thread_ts, text)
            return
        if cmd.name in ("help", "audit"):
            self.edge.submit(self._help, client, channel, user, thread_ts, cmd)
            return

        def private(text: str = "", blocks=None, **_extra) -> None:
            self.edge._ephemeral(client, channel, user, text, blocks, thread_ts=event.get("thread_ts"))
        self.edge.submit(self.edge.start, client, cmd, key, channel=channel, user=user, thread_ts=thread_ts,
                         private=private, busy=private)

    def _recheck(self, client, key: str, channel: str, user: str, thread_ts: str) -> None:
        """`recheck` in a diagnosis thread: that diagnosis again, as `user`, answered with the difference."""
        history = history_for(self.edge.settings, self.edge.queue.redis)
        record = history.load(channel, thread_ts) if history else None
        cmd = None
        if record:
            try:
                cmd = parse(str(record.get("text", "")))
            except GrammarError:
                cmd = None
        if cmd is None:
            log_command("edge", user, channel, "recheck", "recheck", "invalid", "no diagnosis in the thread")
            with language(self.edge.gate.language(client, user, channel)):
                self.edge._say(client, channel, thread_ts or None, render.error_text(_(NOTHING_TO_RECHECK)))
            return
        spec = record.get("cluster_spec")
        cluster = ClusterSpec(**spec) if isinstance(spec, dict) and set(spec) == {"name", "location", "project"} \
            else None

        def private(text: str = "", blocks=None, **_extra) -> None:
            self.edge._ephemeral(client, channel, user, text, blocks, thread_ts=thread_ts)
        self.edge.start(client, cmd, key, channel=channel, user=user, thread_ts=thread_ts, private=private,
                        parent={"thread_ts": thread_ts, "status_ts": record.get("status_ts") or thread_ts},
                        cluster=cluster, extra={"recheck": True})

    def _invalid(self, client, channel: str, user: str, thread_ts: str, text: str) -> None:
        with language(self.edge.gate.language(client, user, channel, lang_flag(text))):
            try:
                parse(text)
                return
            except GrammarError as err:  # parsed again in the asker's language
                message = render.error_text(render.escape(str(err)))
        self.edge._say(client, channel, thread_ts, message)

    def _help(self, client, channel: str, user: str, thread_ts: str, cmd) -> None:
        with language(self.edge.gate.language(client, user, channel, cmd.lang)):
            blocks = render.help_blocks(cmd.args.get("topic", ""))
        self.edge._say(client, channel, thread_ts, blocks["text"], blocks["blocks"])
