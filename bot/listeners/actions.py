"""Fix buttons (block_actions `remediate:*`): who may click, exactly once, audited; the run itself is a
worker job (bot.work.remediation).

The approvers are those of the binding of the channel where the plan was posted (GKE_BOT_APPROVERS only
in the implicit binding). Clicks are rate-limited per user; refusals go to their own audit stream so a
click flood never pushes real events out of the trail.
"""
from __future__ import annotations

import logging
import re

from slack_sdk.errors import SlackApiError

from bot.access import Gate, security_event
from bot.config import Settings
from bot.directory import DirectoryUnavailable
from bot.render import blocks as render
from bot.render.blocks import hhmm, replace_actions
from bot.work.queue import QueueUnavailable
from bot.work.store import PlanTampered, Store

log = logging.getLogger(__name__)

# ---- user-facing English of the fix buttons --------------------------------------------------------------------
NO_REDIS = "Fix buttons need the Redis queue (REDIS_URL); nothing was done."
TOO_MANY = "You have clicked fix buttons {count} times in {window} s; wait a moment. Nothing was done."
EXPIRED = ("This fix has expired or does not exist (fixes are kept for {hours} h). Run the diagnosis again.")
TAMPERED = "This fix was changed after the bot planned it, so it cannot run. Run the diagnosis again."
OTHER_CONVERSATION = "This fix belongs to another conversation; nothing was done."
UNKNOWN_APPROVERS = "I could not check who may approve ({why}); nothing was done. Try again in a minute."
NOT_APPROVER = ("Only approvers of this conversation (its binding in the access policy, or GKE_BOT_APPROVERS) can "
                "run fixes; nothing was done. Ask one of them to click.")
OUTSIDE = "This fix is about project `{project}`, which this conversation may not change; nothing was done."
SELF = "You asked for this diagnosis, so someone else must approve its fix (four-eyes). Nothing was done."
ALREADY = "Already approved by {who}; it runs once."
QUEUE_DOWN = "The job queue is unavailable, so the fix did not start; nothing was done. Click again in a minute."
CLICK_FAILED = "Your click could not be handled ({what}); nothing was done. Try again in a minute."


def register(app, edge) -> None:
    Remediations(edge).register(app)


class Remediations:
    def __init__(self, edge):
        self.edge = edge
        self.settings: Settings = edge.settings
        self.store: Store | None = edge.store
        self.queue = edge.queue
        self.gate: Gate = edge.gate

    def register(self, app) -> None:
        app.action(re.compile(r"^remediate:"))(self.on_remediate)

    def on_remediate(self, ack, body, action, client, respond):
        ack()
        def private(msg: str) -> None:
            respond(text=msg, response_type="ephemeral", replace_original=False)
        self.edge.submit(self.click, client, body, action, private, busy=private)

    def click(self, client, body: dict, action: dict, private) -> None:
        """A fix button was clicked (runs after the ack). Every outcome is answered and audited."""
        try:
            self._click(client, body, action, private)
        except Exception as exc:  # noqa: BLE001 - runs on a pool: never lose a click silently
            log.exception("fix click failed")
            private(render.error_text(CLICK_FAILED.format(what=type(exc).__name__)))

    def _click(self, client, body: dict, action: dict, private) -> None:
        user = body.get("user", {}).get("id", "")
        plan_id = str(action.get("value", ""))[:64]
        container = body.get("container", {})
        channel = container.get("channel_id") or body.get("channel", {}).get("id", "")
        message_ts = container.get("message_ts") or body.get("message", {}).get("ts", "")
        if self.store is None:
            private(render.error_text(NO_REDIS))
            return
        count, window = self.settings.rate_click
        if not self.store.click_allowed(user, self.settings.rate_click):
            private(render.error_text(TOO_MANY.format(count=count, window=window)))
            log.info("click by %s rate limited", user)
            return
        try:
            plan = self.store.plan(plan_id)
        except PlanTampered as exc:
            security_event("tampered fix plan refused on click", plan_id=plan_id, user=user, why=str(exc))
            self.store.audit("tampered", user=user, plan_id=plan_id, result=f"refused on click: {exc}")
            private(render.error_text(TAMPERED))
            return
        if plan is None:
            self.store.audit("expired", user=user, plan_id=plan_id, result="plan not found or expired")
            private(render.error_text(EXPIRED.format(hours=self.settings.plan_ttl // 3600)))
            return
        if plan.channel != channel:
            self.store.audit("denied", user=user, plan=plan, result=f"clicked in another channel {channel}")
            private(render.error_text(OTHER_CONVERSATION))
            return
        try:
            allowed, binding = self.gate.approver(client, plan.channel, user)
        except DirectoryUnavailable as exc:
            self.store.audit("failed", user=user, plan=plan, result=str(exc))
            private(render.error_text(UNKNOWN_APPROVERS.format(why=render.escape(str(exc)))))
            return
        if not allowed:
            self.store.audit("denied", user=user, plan=plan, result="not an approver")
            private(render.error_text(NOT_APPROVER))
            return
        project = str((plan.params or {}).get("project", ""))
        if project not in binding.projects:
            self.store.audit("denied", user=user, plan=plan, result=f"project {project} outside the binding")
            private(render.error_text(OUTSIDE.format(project=render.escape(project))))
            return
        if user == plan.requester and not self.settings.allow_self_approval:
            self.store.audit("denied", user=user, plan=plan, result="self-approval (four-eyes)")
            private(render.error_text(SELF))
            return
        if not self.store.claim_plan(plan.id, user):
            holder = self.store.plan_holder(plan.id)
            self.store.audit("duplicate", user=user, plan=plan, result=f"already approved by {holder}")
            private(render.error_text(ALREADY.format(who=render.mention(holder))))
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
            private(render.error_text(QUEUE_DOWN))
            return
        self.store.audit("approved", user=user, plan=plan, result="queued")
        try:
            client.chat_update(channel=channel, ts=message_ts, blocks=blocks, text=text)
        except SlackApiError as exc:
            log.warning("could not replace the button: %s", exc.response.get("error"))
