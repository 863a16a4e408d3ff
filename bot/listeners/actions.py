"""Fix buttons (block_actions `remediate:*`): who may click, exactly once, audited; the run itself is a
worker job (bot.work.remediation)."""
from __future__ import annotations

import logging
import re

from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.policy import Approvals, ApproversUnknown
from bot.render import blocks as render
from bot.render.blocks import hhmm, replace_actions
from bot.work.queue import QueueUnavailable
from bot.work.store import Store

log = logging.getLogger(__name__)


def register(app, edge) -> None:
    Remediations(edge).register(app)


class Remediations:
    def __init__(self, edge):
        self.edge = edge
        self.settings: Settings = edge.settings
        self.store: Store | None = edge.store
        self.queue = edge.queue
        self.approvals: Approvals = edge.approvals

    def register(self, app) -> None:
        app.action(re.compile(r"^remediate:"))(self.on_remediate)

    def on_remediate(self, ack, body, action, client, respond):
        ack()
        self.edge.after_ack.submit(self.click, client, body, action,
                                   lambda msg: respond(text=msg, response_type="ephemeral", replace_original=False))

    def click(self, client, body: dict, action: dict, private) -> None:
        """A fix button was clicked (runs after the ack). Every outcome is answered and audited."""
        try:
            self._click(client, body, action, private)
        except Exception as exc:  # noqa: BLE001 - runs on a pool: never lose a click silently
            log.exception("fix click failed")
            private(render.error_text(f"Your click could not be handled ({type(exc).__name__}); nothing was done. "
                                      "Try again in a minute."))

    def _click(self, client, body: dict, action: dict, private) -> None:
        user = body.get("user", {}).get("id", "")
        plan_id = str(action.get("value", ""))[:64]
        container = body.get("container", {})
        channel = container.get("channel_id") or body.get("channel", {}).get("id", "")
        message_ts = container.get("message_ts") or body.get("message", {}).get("ts", "")
        if self.store is None:
            private(render.error_text("Fix buttons need the Redis queue (REDIS_URL); nothing was done."))
            return
        plan = self.store.plan(plan_id)
        if plan is None:
            self.store.audit("expired", user=user, plan_id=plan_id, result="plan not found or expired")
            private(render.error_text("This fix has expired or does not exist (fixes are kept for "
                                      f"{self.settings.plan_ttl // 3600} h). Run the diagnosis again."))
            return
        if plan.channel != channel:
            self.store.audit("denied", user=user, plan=plan, result=f"clicked in another channel {channel}")
            private(render.error_text("This fix belongs to another conversation; nothing was done."))
            return
        try:
            allowed = self.approvals.allows(client, user)
        except ApproversUnknown as exc:
            self.store.audit("failed", user=user, plan=plan, result=str(exc))
            private(render.error_text(f"I could not check who may approve ({render.escape(str(exc))}); nothing was "
                                      "done. Try again in a minute."))
            return
        if not allowed:
            self.store.audit("denied", user=user, plan=plan, result="not an approver")
            private(render.error_text("Only approvers (GKE_BOT_APPROVERS) can run fixes; nothing was done. "
                                      "Ask one of them to click."))
            return
        if user == plan.requester and not self.settings.allow_self_approval:
            self.store.audit("denied", user=user, plan=plan, result="self-approval (four-eyes)")
            private(render.error_text("You asked for this diagnosis, so someone else must approve its fix "
                                      "(four-eyes). Nothing was done."))
            return
        if not self.store.claim_plan(plan.id, user):
            holder = self.store.plan_holder(plan.id)
            self.store.audit("duplicate", user=user, plan=plan, result=f"already approved by {holder}")
            private(render.error_text(f"Already approved by {render.mention(holder)}; it runs once."))
            return
        text = body.get("message", {}).get("text", "gke-bot")
        blocks = replace_actions(body.get("message", {}).get("blocks", []), plan.id,
                                 f":hourglass_flowing_sand: Approved by {render.mention(user)} at {hhmm()} — running…")
        try:
            self.queue.enqueue({"kind": "remediate", "plan_id": plan.id, "approver": user, "channel": channel,
                                "message_ts": message_ts, "blocks": blocks, "text": text})
        except QueueUnavailable:
            self.store.release_plan(plan.id)  # nothing ran: the button stays usable
            self.store.audit("failed", user=user, plan=plan, result="queue unavailable; nothing done")
            private(render.error_text("The job queue is unavailable, so the fix did not start; nothing was done. "
                                      "Click again in a minute."))
            return
        self.store.audit("approved", user=user, plan=plan, result="queued")
        try:
            client.chat_update(channel=channel, ts=message_ts, blocks=blocks, text=text)
        except SlackApiError as exc:
            log.warning("could not replace the button: %s", exc.response.get("error"))
