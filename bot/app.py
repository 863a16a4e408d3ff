"""The Bolt app: listeners grouped by kind (commands, events, actions). `ack()` first, work after.

The HTTP server (bot.server) and Socket Mode (bot.cli socket) serve the same app.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot import render
from bot.actions import Remediations
from bot.config import Settings
from bot.grammar import Command, GrammarError, parse
from bot.metrics import COMMANDS, ENQUEUED, HANDLER_SECONDS, QUEUE_ERRORS
from bot.queue import QueueUnavailable
from bot.slackclient import NOT_IN_CHANNEL, invite_hint, web_client
from bot.store import store_for

log = logging.getLogger(__name__)
_MENTION = re.compile(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>\s*")
_LINK = re.compile(r"<(?:mailto:)?([^<>|@!#][^<>|]*)(?:\|([^<>]*))?>")
QUEUE_DOWN = ":hourglass: The job queue is unavailable right now, so I could not start the diagnosis. Try again in a minute."


def create_app(settings: Settings, queue) -> App:
    settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
    # Listeners only parse, ack, and hand the rest (post the parent, enqueue) to Edge.after_ack,
    # so they run in the request thread: no hand-off to Bolt's listener pool and its ack polling.
    app = App(signing_secret=settings.slack_signing_secret, client=web_client(settings),
              process_before_response=True)
    Edge(settings, queue).register(app)
    return app


class Edge:
    def __init__(self, settings: Settings, queue):
        self.settings = settings
        self.queue = queue
        # Work after ack (post the parent message, enqueue) runs on a small pool of its own, so a
        # burst of commands is acknowledged first and never waits behind Slack or Redis calls.
        self.after_ack = ThreadPoolExecutor(max_workers=4, thread_name_prefix="after-ack")
        self.remediations = Remediations(settings, store_for(settings), queue)

    def register(self, app: App) -> None:
        # commands
        app.command("/gke")(self.on_command)
        # events
        app.event("app_mention")(self.on_mention)
        # actions
        app.action(re.compile(r"^remediate:"))(self.on_remediate)

    # ---- commands ---------------------------------------------------------------------------
    def on_command(self, ack, command, client, respond, body):
        t0 = time.perf_counter()
        text = command.get("text", "")
        try:
            cmd = parse(text)
        except GrammarError as err:
            ack(response_type="ephemeral", text=render.error_text(render.escape(str(err))))
            COMMANDS.labels("invalid", "rejected").inc()
            return
        if cmd.name == "help":
            ack(**render.help_blocks(cmd.args.get("topic", "")))
            COMMANDS.labels("help", "answered").inc()
            return
        if cmd.name == "audit":
            ack()
            self.after_ack.submit(self._audit_reply, client, respond, command["user_id"], cmd.args["n"])
            return
        ack()
        HANDLER_SECONDS.labels("command").observe(time.perf_counter() - t0)
        key = f"cmd:{body.get('team_id', '')}:{command.get('trigger_id') or command.get('user_id') + text}"
        self.after_ack.submit(
            self.start, client, cmd, key, channel=command["channel_id"], user=command["user_id"], thread_ts=None,
            private=lambda msg: respond(text=msg, response_type="ephemeral", replace_original=False))

    def _audit_reply(self, client, respond, user: str, n: int) -> None:
        try:
            text = self.remediations.audit_text(client, user, n)
        except Exception as exc:  # noqa: BLE001 - e.g. Redis down: say so
            log.warning("audit read failed: %s", type(exc).__name__)
            text = render.error_text("The audit trail cannot be read right now; try again in a minute.")
        respond(text=text, response_type="ephemeral", replace_original=False)

    # ---- events -------------------------------------------------------------------------------
    def on_mention(self, ack, event, body, client):
        ack()
        # Slack turns emails and links into <mailto:a@b|a@b> and <url|label>: give the grammar the text.
        text = _LINK.sub(lambda m: m.group(2) or m.group(1), _MENTION.sub("", event.get("text", ""), count=1))
        channel, user = event["channel"], event.get("user", "")
        thread_ts = event.get("thread_ts") or event["ts"]
        key = f"evt:{body.get('event_id') or event['ts']}"
        try:
            if not self.queue.claim(f"{key}:seen"):
                return  # a Slack retry of an event already handled
        except QueueUnavailable:
            pass
        try:
            cmd = parse(text)
        except GrammarError as err:
            self.after_ack.submit(self._say, client, channel, thread_ts, render.error_text(render.escape(str(err))))
            return
        if cmd.name in ("help", "audit"):
            blocks = render.help_blocks(cmd.args.get("topic", ""))
            self.after_ack.submit(self._say, client, channel, thread_ts, blocks["text"], blocks["blocks"])
            return
        key = f"evt:{body.get('event_id') or event['ts']}"
        self.after_ack.submit(self.start, client, cmd, key, channel=channel, user=user, thread_ts=thread_ts,
                              private=lambda msg: self._ephemeral(client, channel, user, msg))

    # ---- actions ----------------------------------------------------------------------------
    def on_remediate(self, ack, body, action, client, respond):
        ack()
        self.after_ack.submit(self.remediations.click, client, body, action,
                              lambda msg: respond(text=msg, response_type="ephemeral", replace_original=False))

    # ---- shared -------------------------------------------------------------------------------
    def start(self, client, cmd: Command, key: str, *, channel: str, user: str, thread_ts: str | None, private):
        """Post the status message, then queue the job. Exactly once per Slack request (retries dropped)."""
        try:
            self._start(client, cmd, key, channel=channel, user=user, thread_ts=thread_ts, private=private)
        except Exception:  # noqa: BLE001 - runs on a pool: log, never lose the error silently
            log.exception("could not start %s", cmd.name)
            private(render.error_text("Something went wrong starting the diagnosis; please try again."))

    def _start(self, client, cmd: Command, key: str, *, channel: str, user: str, thread_ts: str | None, private):
        coalesce = self._coalesce_key(cmd, channel, user)
        try:
            fresh, (n_user, n_channel) = self.queue.admit(key, [(f"user:{user}", self.settings.rate_user[1]),
                                                                 (f"channel:{channel}", self.settings.rate_channel[1])])
            if not fresh:
                COMMANDS.labels(cmd.name, "duplicate").inc()
                return
            refusal = self._refusal(n_user, n_channel)
            if refusal:
                COMMANDS.labels(cmd.name, "rate_limited").inc()
                private(refusal)
                return
            if not self.queue.claim(coalesce, ttl=self.settings.job_timeout + 60):
                COMMANDS.labels(cmd.name, "coalesced").inc()
                private(":hourglass_flowing_sand: The same diagnosis is already running in this conversation; "
                        "its answer will appear in that thread in a moment.")
                return
        except QueueUnavailable:
            QUEUE_ERRORS.inc()
            private(QUEUE_DOWN)
            return
        try:
            resp = client.chat_postMessage(channel=channel, thread_ts=thread_ts,
                                           text=render.parent_text(user, cmd.text))
        except SlackApiError as exc:
            self._release(coalesce)
            error = exc.response.get("error", "")
            log.warning("cannot post in %s: %s", channel, error)
            private(invite_hint(error) if error in NOT_IN_CHANNEL else
                    render.error_text(f"I could not post in this channel ({render.escape(error)})."))
            COMMANDS.labels(cmd.name, "not_in_channel").inc()
            return
        status_ts = resp["ts"]
        payload = {"channel": channel, "thread_ts": thread_ts or status_ts, "status_ts": status_ts,
                   "user": user, "text": cmd.text, "command": cmd.to_json(), "coalesce_key": coalesce}
        try:
            self.queue.enqueue(payload)
        except Exception as exc:  # noqa: BLE001 - the parent must not stay "checking…"
            QUEUE_ERRORS.inc()
            log.warning("could not queue %s: %s", cmd.name, type(exc).__name__)
            self._release(coalesce)
            try:
                client.chat_update(channel=channel, ts=status_ts,
                                   text=render.parent_text(user, cmd.text, QUEUE_DOWN))
            except SlackApiError:
                private(QUEUE_DOWN)
            return
        ENQUEUED.labels(self.queue.backend).inc()
        COMMANDS.labels(cmd.name, "queued").inc()

    ASKER_DEPENDENT = ("why-403", "why-401", "rbac")

    def _coalesce_key(self, cmd: Command, channel: str, user: str) -> str:
        """Identical diagnoses in one conversation share a job (per asker where the answer depends on who asks)."""
        who = (cmd.principal or user) if cmd.name in self.ASKER_DEPENDENT else ""
        return "run:" + hashlib.sha256(f"{channel}\0{cmd.text}\0{who}".encode()).hexdigest()[:32]

    def _refusal(self, n_user: int, n_channel: int) -> str:
        """A polite refusal when this command goes over a per-user or per-channel limit, else ''."""
        (per_user, window_u), (per_channel, window_c) = self.settings.rate_user, self.settings.rate_channel
        if n_user > per_user:
            return (f":turtle: You have asked {per_user} times in {window_u} s; please wait a moment before the "
                    "next diagnosis.")
        if n_channel > per_channel:
            return (f":turtle: This conversation has had {per_channel} diagnoses in {window_c} s; please wait a "
                    "moment.")
        return ""

    def _release(self, key: str) -> None:
        try:
            self.queue.release(key)
        except QueueUnavailable:
            log.warning("could not release %s", key)

    @staticmethod
    def _say(client, channel, thread_ts, text, blocks=None):
        try:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            log.warning("cannot reply in %s: %s", channel, exc.response.get("error"))

    @staticmethod
    def _ephemeral(client, channel, user, text):
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            log.warning("cannot answer %s privately: %s", user, exc.response.get("error"))
