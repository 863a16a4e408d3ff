"""Slash commands: `/gke …`. Parse and ack at once; everything else runs after the ack."""
from __future__ import annotations

import logging
import time

from bot.grammar import GrammarError, parse
from bot.metrics import COMMANDS, HANDLER_SECONDS
from bot.policy import ApproversUnknown
from bot.render import blocks as render

log = logging.getLogger(__name__)


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
            return
        if cmd.name == "help":
            ack(**render.help_blocks(cmd.args.get("topic", "")))
            COMMANDS.labels("help", "answered").inc()
            return
        if cmd.name == "audit":
            ack()
            self.edge.after_ack.submit(self._audit_reply, client, respond, command["user_id"], cmd.args["n"])
            return
        ack()
        HANDLER_SECONDS.labels("command").observe(time.perf_counter() - t0)
        key = f"cmd:{body.get('team_id', '')}:{command.get('trigger_id') or command.get('user_id') + text}"
        self.edge.after_ack.submit(
            self.edge.start, client, cmd, key, channel=command["channel_id"], user=command["user_id"], thread_ts=None,
            private=lambda msg: respond(text=msg, response_type="ephemeral", replace_original=False))

    def _audit_reply(self, client, respond, user: str, n: int) -> None:
        try:
            text = self.audit_text(client, user, n)
        except Exception as exc:  # noqa: BLE001 - e.g. Redis down: say so
            log.warning("audit read failed: %s", type(exc).__name__)
            text = render.error_text("The audit trail cannot be read right now; try again in a minute.")
        respond(text=text, response_type="ephemeral", replace_original=False)

    def audit_text(self, client, user: str, n: int) -> str:
        if self.edge.store is None:
            return render.error_text("The audit trail needs Redis (REDIS_URL).")
        try:
            if not self.edge.approvals.allows(client, user):
                return render.error_text("Only approvers can read the audit trail.")
        except ApproversUnknown as exc:
            return render.error_text(f"I could not check who may read it ({render.escape(str(exc))}).")
        rows = self.edge.store.audit_entries(n)
        if not rows:
            return "No remediation has been clicked yet."
        lines = [f"`{r['at']}` *{render.escape(r['event'])}* by {render.mention(r['user'])}"
                 f" — {render.escape(r.get('summary') or r.get('kind') or r.get('plan_id', ''))}"
                 f"{': ' + render.escape(r['result']) if r.get('result') else ''}" for r in rows]
        return f"*Latest {len(rows)} remediation events*\n" + "\n".join(lines)
