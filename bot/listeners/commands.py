"""Slash commands: `/gke …`. Parse and ack at once; everything else runs after the ack."""
from __future__ import annotations

import logging
import time

from bot.access import log_command
from bot.directory import DirectoryUnavailable
from bot.edge import BUSY
from bot.grammar import GrammarError, parse
from bot.metrics import COMMANDS, HANDLER_SECONDS
from bot.render import blocks as render

log = logging.getLogger(__name__)

# ---- user-facing English of the commands listener --------------------------------------------------------------
AUDIT_DOWN = "The audit trail cannot be read right now; try again in a minute."
AUDIT_NO_REDIS = "The audit trail needs Redis (REDIS_URL)."
AUDIT_APPROVERS = "Only approvers of this conversation can read the audit trail."
AUDIT_UNKNOWN = "I could not check who may read it ({why})."
AUDIT_EMPTY = "No remediation has been clicked yet."


def register(app, edge) -> None:
    Commands(edge).register(app)


class Commands:
    def __init__(self, edge):
        self.edge = edge
        self.settings = edge.settings

    def register(self, app) -> None:
        app.command("/gke")(self.on_command)

    def on_command(self, ack, command, client, respond, body):
        t0 = time.perf_counter()
        text = command.get("text", "")
        try:
            cmd = parse(text)
        except GrammarError as err:
            ack(response_type="ephemeral", text=render.error_text(render.escape(str(err))))
            COMMANDS.labels("invalid", "rejected").inc()
            log_command("edge", command.get("user_id", ""), command.get("channel_id", ""), "invalid", text,
                        "invalid", str(err)[:200])
            return
        if cmd.name == "help":
            ack(**render.help_blocks(cmd.args.get("topic", "")))
            COMMANDS.labels("help", "answered").inc()
            log_command("edge", command.get("user_id", ""), command.get("channel_id", ""), "help", text, "answered")
            return
        if self.edge.busy():  # the after-ack pool is full: say so now, in the ack
            ack(response_type="ephemeral", text=BUSY)
            COMMANDS.labels(cmd.name, "busy").inc()
            return
        def private(msg: str) -> None:
            respond(text=msg, response_type="ephemeral", replace_original=False)
        if cmd.name == "audit":
            ack()
            self.edge.submit(self._audit_reply, client, respond, command["channel_id"], command["user_id"],
                             cmd.args["n"], busy=private)
            return
        ack()
        HANDLER_SECONDS.labels("command").observe(time.perf_counter() - t0)
        key = f"cmd:{body.get('team_id', '')}:{command.get('trigger_id') or command.get('user_id') + text}"
        self.edge.submit(self.edge.start, client, cmd, key, channel=command["channel_id"], user=command["user_id"],
                         thread_ts=None, private=private, busy=private)

    def _audit_reply(self, client, respond, channel: str, user: str, n: int) -> None:
        try:
            text = self.audit_text(client, channel, user, n)
        except Exception as exc:  # noqa: BLE001 - e.g. Redis down: say so
            log.warning("audit read failed: %s", type(exc).__name__)
            text = render.error_text(AUDIT_DOWN)
        respond(text=text, response_type="ephemeral", replace_original=False)

    def audit_text(self, client, channel: str, user: str, n: int) -> str:
        if self.edge.store is None:
            return render.error_text(AUDIT_NO_REDIS)
        try:
            allowed, binding = self.edge.gate.approver(client, channel, user)
        except DirectoryUnavailable as exc:
            return render.error_text(AUDIT_UNKNOWN.format(why=render.escape(str(exc))))
        log_command("edge", user, channel, "audit", f"audit {n}", "allowed" if allowed else "refused",
                    "" if allowed else "not_an_approver")
        if not allowed:
            return render.error_text(AUDIT_APPROVERS)
        # only this binding's fixes: an approver here learns nothing about other bindings' projects
        policy = self.edge.gate.policy
        rows = [r for r in self.edge.store.audit_entries(n * 10)
                if policy.binding_for(r.get("channel", "")) is binding][:n]
        if not rows:
            return AUDIT_EMPTY
        lines = [f"`{r['at']}` *{render.escape(r['event'])}* by {render.mention(r['user'])}"
                 f" — {render.escape(r.get('summary') or r.get('kind') or r.get('plan_id', ''))}"
                 f"{': ' + render.escape(r['result']) if r.get('result') else ''}" for r in rows]
        return f"*Latest {len(rows)} remediation events*\n" + "\n".join(lines)
