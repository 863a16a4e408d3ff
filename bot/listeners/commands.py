"""Slash commands: `/gke …` (`/gke` alone opens the diagnosis modal, bot.listeners.views). Parse and ack at once;
everything else runs after the ack, in the asker's language."""
from __future__ import annotations

import logging
import time

from bot.access import log_command
from bot.directory import DirectoryUnavailable
from bot.edge import BUSY
from bot.grammar import GrammarError, lang_flag, parse
from bot.i18n import N_, _, language
from bot.listeners.views import open_modal
from bot.metrics import COMMANDS, HANDLER_SECONDS
from bot.render import blocks as render

log = logging.getLogger(__name__)

# ---- user-facing English of the commands listener --------------------------------------------------------------
AUDIT_DOWN = N_("The audit trail cannot be read right now; try again in a minute.")
AUDIT_NO_REDIS = N_("The audit trail needs Redis (REDIS_URL).")
AUDIT_APPROVERS = N_("Only approvers of this conversation can read the audit trail.")
AUDIT_UNKNOWN = N_("I could not check who may read it ({why}).")
AUDIT_EMPTY = N_("No remediation has been clicked yet.")


def register(app, edge) -> None:
    Commands(edge).register(app)


def grammar_error(text: str, err: GrammarError) -> dict:
    """The ephemeral answer to a command that does not parse, in the current language (parsed again in it)."""
    try:
        parse(text)
        message = str(err)
    except GrammarError as again:
        message = str(again)
    return {"response_type": "ephemeral", "text": render.error_text(render.escape(message))}


class Commands:
    def __init__(self, edge):
        self.edge = edge
        self.settings = edge.settings

    def register(self, app) -> None:
        app.command("/gke")(self.on_command)

    def on_command(self, ack, command, client, respond, body):
        t0 = time.perf_counter()
        text = command.get("text", "")
        user, channel = command.get("user_id", ""), command.get("channel_id", "")

        def private(text: str = "", **extra) -> None:
            extra.pop("response_type", None)
            respond(text=text, response_type="ephemeral", replace_original=False, **extra)
        if not text.strip():  # `/gke` alone: the diagnosis modal, opened with the trigger id while it is valid
            ack()
            COMMANDS.labels("modal", "opened").inc()
            log_command("edge", user, channel, "modal", text, "answered")
            open_modal(self.edge, client, command.get("trigger_id", ""), user, channel, private,
                       response_url=command.get("response_url", ""))
            return
        try:
            cmd = parse(text)
        except GrammarError as err:
            self.edge.answer(ack, client, user, channel, lang_flag(text), lambda e=err: grammar_error(text, e), private)
            COMMANDS.labels("invalid", "rejected").inc()
            log_command("edge", user, channel, "invalid", text, "invalid", str(err)[:200])
            return
        if cmd.name == "help":
            topic = cmd.args.get("topic", "")
            self.edge.answer(ack, client, user, channel, cmd.lang, lambda: render.help_blocks(topic), private)
            COMMANDS.labels("help", "answered").inc()
            log_command("edge", user, channel, "help", text, "answered")
            return
        if self.edge.busy():  # the after-ack pool is full: say so now, in the ack
            with language(self.edge.gate.quick_language(user, channel, cmd.lang)):
                ack(response_type="ephemeral", text=_(BUSY))
            COMMANDS.labels(cmd.name, "busy").inc()
            return
        if cmd.name == "audit":
            ack()
            self.edge.submit(self._audit_reply, client, respond, channel, user, cmd.args["n"], cmd.lang, busy=private)
            return
        ack()
        HANDLER_SECONDS.labels("command").observe(time.perf_counter() - t0)
        key = f"cmd:{body.get('team_id', '')}:{command.get('trigger_id') or command.get('user_id') + text}"
        self.edge.submit(self.edge.start, client, cmd, key, channel=channel, user=user, thread_ts=None,
                         private=private, busy=private)

    def _audit_reply(self, client, respond, channel: str, user: str, n: int, flag: str = "") -> None:
        with language(self.edge.gate.language(client, user, channel, flag)):
            try:
                text = self.audit_text(client, channel, user, n)
            except Exception as exc:  # noqa: BLE001 - e.g. Redis down: say so
                log.warning("audit read failed: %s", type(exc).__name__)
                text = render.error_text(_(AUDIT_DOWN))
        respond(text=text, response_type="ephemeral", replace_original=False)

    def audit_text(self, client, channel: str, user: str, n: int) -> str:
        if self.edge.store is None:
            return render.error_text(_(AUDIT_NO_REDIS))
        try:
            allowed, binding = self.edge.gate.approver(client, channel, user)
        except DirectoryUnavailable as exc:
            return render.error_text(_(AUDIT_UNKNOWN).format(why=render.escape(str(exc))))
        log_command("edge", user, channel, "audit", f"audit {n}", "allowed" if allowed else "refused",
                    "" if allowed else "not_an_approver")
        if not allowed:
            return render.error_text(_(AUDIT_APPROVERS))
        # only this binding's fixes: an approver here learns nothing about other bindings' projects
        policy = self.edge.gate.policy
        rows = [r for r in self.edge.store.audit_entries(n * 10)
                if policy.binding_for(r.get("channel", "")) is binding][:n]
        if not rows:
            return _(AUDIT_EMPTY)
        lines = [_("`{at}` *{event}* by {user} — {what}").format(
            at=r["at"], event=render.escape(r["event"]), user=render.mention(r["user"]),
            what=render.escape(r.get("summary") or r.get("kind") or r.get("plan_id", "")))
            + (": " + render.escape(r["result"]) if r.get("result") else "") for r in rows]
        return _("*Latest {n} remediation events*").format(n=len(rows)) + "\n" + "\n".join(lines)
