"""The edge's shared services: work after the ack, the parent message, admission (rate limits, retries,
coalescing) and the queue. Listeners (bot.listeners) parse and ack, then call `Edge.start`.

Everything after the ack runs in the asker's language (`Gate.language`: `--lang`, the binding's `locale:`,
the asker's Slack locale), and so does the job it queues (the payload's `lang`)."""
from __future__ import annotations

import hashlib
import logging

from slack_sdk.errors import SlackApiError

from bot.access import Gate, log_command
from bot.config import Settings
from bot.explain import read
from bot.grammar import Command
from bot.i18n import N_, _, language
from bot.metrics import COMMANDS, ENQUEUED, QUEUE_ERRORS
from bot.render import blocks as render
from bot.render import explain as explain_texts
from bot.slackclient import NOT_IN_CHANNEL, invite_hint
from bot.work.pool import BoundedPool, PoolFull
from bot.work.queue import QueueFull, QueueUnavailable
from bot.work.store import store_for
from checks.resolve import ClusterSpec

log = logging.getLogger(__name__)
# user-facing English of the edge (translated where used: `_(BUSY)`)
QUEUE_DOWN = N_(":hourglass: The job queue is unavailable right now, so I could not start the diagnosis. Try again "
                "in a minute.")
BUSY = N_(":hourglass: I am busy with other diagnoses right now and cannot take this one; nothing was started. "
          "Try again in a minute.")
ALREADY_RUNNING = N_(":hourglass_flowing_sand: The same diagnosis is already running in this conversation; its "
                     "answer will appear in that thread in a moment.")
START_FAILED = N_("Something went wrong starting the diagnosis; please try again.")


def _log_failure(fut) -> None:
    """Work after the ack that raised: never lost silently."""
    if not fut.cancelled() and fut.exception() is not None:
        log.error("work after the ack failed", exc_info=fut.exception())


class Edge:
    def __init__(self, settings: Settings, queue):
        self.settings = settings
        self.queue = queue
        self.store = store_for(settings)
        self.gate = Gate(settings, queue.redis)
        # Work after ack (post the parent message, enqueue) runs on a small pool of its own, so a
        # burst of commands is acknowledged first and never waits behind Slack or Redis calls. Its
        # queue is bounded: when it is full the asker is told at once (see `busy`).
        self.after_ack = BoundedPool(4, 64, "after-ack")

    def busy(self) -> bool:
        """True when the after-ack pool cannot take more work: answer BUSY in the ack instead."""
        return self.after_ack.full()

    def submit(self, fn, *args, busy=None, **kwargs) -> bool:
        """Run fn after the ack; when the pool is full, tell the asker at once (`busy(BUSY)`)."""
        try:
            fut = self.after_ack.submit(fn, *args, **kwargs)
            fut.add_done_callback(_log_failure)
            return True
        except PoolFull:
            COMMANDS.labels("any", "busy").inc()
            if busy is not None:
                busy(_(BUSY))
            return False

    def answer(self, ack, client, user: str, channel: str, flag: str, render_fn, private) -> None:
        """Answer at once (help, a command that does not parse): in the ack when the asker's language is known
        without asking Slack, else right after the ack (`private(**message)`). `render_fn()` gives the message
        (kwargs of a response) in the current language."""
        lang = self.gate.quick_language(user, channel, flag)
        if lang:
            with language(lang):
                ack(**render_fn())
            return
        ack()

        def later() -> None:
            with language(self.gate.language(client, user, channel, flag)):
                private(**render_fn())
        self.submit(later, busy=private)

    def start(self, client, cmd: Command, key: str, *, channel: str, user: str, thread_ts: str | None, private,
              parent: dict | None = None, cluster: ClusterSpec | None = None, extra: dict | None = None) -> bool:
        """Post the status message, then queue the job. Exactly once per Slack request (retries dropped).
        `parent` ({thread_ts, status_ts}): the parent message already posted (a cluster chosen in a picker:
        `cluster`). `extra`: more for the job's payload (`recheck`). True when a job was queued; otherwise the
        asker has been told why."""
        with language(self.gate.language(client, user, channel, cmd.lang)) as lang:
            try:
                return bool(self._start(client, cmd, key, channel=channel, user=user, thread_ts=thread_ts,
                                        private=private, lang=lang, parent=parent, cluster=cluster,
                                        extra=extra))
            except Exception:  # noqa: BLE001 - runs on a pool: log, never lose the error silently
                log.exception("could not start %s", cmd.name)
                private(render.error_text(_(START_FAILED)))
                return False

    def _start(self, client, cmd: Command, key: str, *, channel: str, user: str, thread_ts: str | None, private,
               lang: str, parent: dict | None, cluster: ClusterSpec | None, extra: dict | None = None):
        coalesce = self._coalesce_key(cmd, channel, user, cluster)
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
        except QueueUnavailable:
            QUEUE_ERRORS.inc()
            private(_(QUEUE_DOWN))
            return
        # The access policy, before anything is posted or queued (and so before any Google request).
        if cmd.name == "explain":
            decision = self._explain_decision(client, cmd, channel, user, cluster, private)
            if decision is None:
                return
        else:
            decision = self.gate.command(client, cmd, channel, user)
        if not decision:
            COMMANDS.labels(cmd.name, "refused").inc()
            private(render.error_text(decision.message))
            return
        if self.queue.full():
            COMMANDS.labels(cmd.name, "busy").inc()
            private(_(BUSY))
            return
        try:
            if not self.queue.claim(coalesce, ttl=self.settings.job_timeout + 60):
                COMMANDS.labels(cmd.name, "coalesced").inc()
                private(_(ALREADY_RUNNING))
                return
        except QueueUnavailable:
            QUEUE_ERRORS.inc()
            private(_(QUEUE_DOWN))
            return
        try:
            if parent:  # the parent is already there (a cluster was chosen): it is checking again
                status_ts, thread_ts = parent["status_ts"], parent["thread_ts"]
                client.chat_update(channel=channel, ts=status_ts, text=render.parent_text(user, cmd.text))
            else:
                status_ts = client.chat_postMessage(channel=channel, thread_ts=thread_ts,
                                                    text=render.parent_text(user, cmd.text))["ts"]
        except SlackApiError as exc:
            self._release(coalesce)
            error = exc.response.get("error", "")
            log.warning("cannot post in %s: %s", channel, error)
            private(invite_hint(error) if error in NOT_IN_CHANNEL else
                    render.error_text(_("I could not post in this channel ({error}).").format(
                        error=render.escape(error))))
            COMMANDS.labels(cmd.name, "not_in_channel").inc()
            return
        payload = {"channel": channel, "thread_ts": thread_ts or status_ts, "status_ts": status_ts,
                   "user": user, "text": cmd.source, "shown": cmd.text, "command": cmd.to_json(),
                   "coalesce_key": coalesce, "lang": lang}
        if cluster is not None:
            payload["cluster"] = {"name": cluster.name, "location": cluster.location, "project": cluster.project}
        payload.update(extra or {})
        try:
            self.queue.enqueue(payload)
        except Exception as exc:  # noqa: BLE001 - the parent must not stay "checking…"
            QUEUE_ERRORS.inc()
            log.warning("could not queue %s: %s", cmd.name, type(exc).__name__)
            self._release(coalesce)
            said = _(BUSY) if isinstance(exc, QueueFull) else _(QUEUE_DOWN)
            try:
                client.chat_update(channel=channel, ts=status_ts, text=render.parent_text(user, cmd.text, said))
            except SlackApiError:
                pass
            private(said)
            return False
        ENQUEUED.labels(self.queue.backend).inc()
        COMMANDS.labels(cmd.name, "queued").inc()
        return True

    def _explain_decision(self, client, cmd: Command, channel: str, user: str, cluster: ClusterSpec | None,
                          private):
        """A pasted error: recognised, complete, and allowed as the command it calls for? None when the asker
        was already answered (not recognised, an argument missing)."""
        reading = read(cmd.args.get("text", ""))
        if not reading.recognised:
            COMMANDS.labels("explain", "unrecognised").inc()
            log_command("edge", user, channel, "explain", cmd.text, "unrecognised")
            private(explain_texts.unrecognised_text())
            return None
        rec = reading.rec
        if rec.missing:
            COMMANDS.labels("explain", "incomplete").inc()
            log_command("edge", user, channel, "explain", cmd.text, "incomplete", ",".join(rec.missing))
            private(explain_texts.missing_text(rec))
            return None
        project = cluster.project if cluster else reading.project
        return self.gate.explain(client, rec.command, project, rec.principal, channel, user, cmd.text)

    ASKER_DEPENDENT = ("why-403", "why-401", "rbac", "explain")

    def _coalesce_key(self, cmd: Command, channel: str, user: str, cluster: ClusterSpec | None = None) -> str:
        """Identical diagnoses in one conversation share a job (per asker where the answer depends on who asks)."""
        who = (cmd.principal or user) if cmd.name in self.ASKER_DEPENDENT else ""
        return "run:" + hashlib.sha256(f"{channel}\0{cmd.source}\0{who}\0{cluster or ''}".encode()).hexdigest()[:32]

    def _refusal(self, n_user: int, n_channel: int) -> str:
        """A polite refusal when this command goes over a per-user or per-channel limit, else ''."""
        (per_user, window_u), (per_channel, window_c) = self.settings.rate_user, self.settings.rate_channel
        if n_user > per_user:
            return ":turtle: " + _("You have asked {count} times in {window} s; please wait a moment before the next "
                                   "diagnosis.").format(count=per_user, window=window_u)
        if n_channel > per_channel:
            return ":turtle: " + _("This conversation has had {count} diagnoses in {window} s; please wait a "
                                   "moment.").format(count=per_channel, window=window_c)
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

    @classmethod
    def privately(cls, client, channel: str, user: str, text: str, response_url: str = "", blocks=None) -> None:
        """A private answer: through the response_url Slack gave with the request when there is one (it works
        where the bot cannot post), else an ephemeral message in the channel."""
        if response_url:
            try:
                from slack_sdk.webhook import WebhookClient
                WebhookClient(response_url, timeout=10).send(text=text, blocks=blocks, response_type="ephemeral",
                                                             replace_original=False)
                return
            except Exception as exc:  # noqa: BLE001 - expired or refused: try the channel
                log.warning("could not answer through the response_url: %s", type(exc).__name__)
        cls._ephemeral(client, channel, user, text, blocks)

    @staticmethod
    def _ephemeral(client, channel, user, text, blocks=None, thread_ts=None):
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks, thread_ts=thread_ts)
        except SlackApiError as exc:
            log.warning("cannot answer %s privately: %s", user, exc.response.get("error"))
