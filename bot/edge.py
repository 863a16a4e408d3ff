"""The edge's shared services: work after the ack, the parent message, admission (rate limits, retries,
coalescing) and the queue. Listeners (bot.listeners) parse and ack, then call `Edge.start`."""
from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor

from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.grammar import Command
from bot.metrics import COMMANDS, ENQUEUED, QUEUE_ERRORS
from bot.policy import Approvals
from bot.render import blocks as render
from bot.slackclient import NOT_IN_CHANNEL, invite_hint
from bot.work.queue import QueueUnavailable
from bot.work.store import store_for

log = logging.getLogger(__name__)
QUEUE_DOWN = ":hourglass: The job queue is unavailable right now, so I could not start the diagnosis. Try again in a minute."


class Edge:
    def __init__(self, settings: Settings, queue):
        self.settings = settings
        self.queue = queue
        self.store = store_for(settings)
        self.approvals = Approvals(settings)
        # Work after ack (post the parent message, enqueue) runs on a small pool of its own, so a
        # burst of commands is acknowledged first and never waits behind Slack or Redis calls.
        self.after_ack = ThreadPoolExecutor(max_workers=4, thread_name_prefix="after-ack")

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
