"""Remediation buttons: who may click, exactly once, audited; the run itself is a worker job."""
from __future__ import annotations

import copy
import logging
import threading
import time

from slack_sdk.errors import SlackApiError

from bot import render
from bot.config import Settings
from bot.queue import QueueUnavailable
from bot.store import Plan, Store

log = logging.getLogger(__name__)
GROUP_TTL = 60.0


def hhmm() -> str:
    return time.strftime("%H:%M UTC", time.gmtime())


def replace_actions(blocks: list[dict], plan_id: str, text: str) -> list[dict]:
    """The message's blocks with the plan's button block replaced by a context line."""
    out = copy.deepcopy(blocks or [])
    for i, b in enumerate(out):
        if b.get("block_id") in (f"remediate:{plan_id}", f"remediated:{plan_id}"):
            out[i] = {"type": "context", "block_id": f"remediated:{plan_id}",
                      "elements": [{"type": "mrkdwn", "text": text}]}
    return out


class ApproversUnknown(Exception):
    """Approver groups could not be resolved right now."""


class Approvals:
    """GKE_BOT_APPROVERS: user ids, and user-group ids resolved with usergroups.users.list (cached)."""

    def __init__(self, settings: Settings):
        self.users = {a for a in settings.approvers if a[:1] in ("U", "W")}
        self.groups = [a for a in settings.approvers if a[:1] == "S"]
        self._cache: dict[str, tuple[float, set[str]]] = {}
        self._lock = threading.Lock()

    def _members(self, client, group: str) -> set[str]:
        with self._lock:
            hit = self._cache.get(group)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        try:
            members = set(client.usergroups_users_list(usergroup=group).get("users", []))
        except SlackApiError as exc:  # not cached: a passing failure must not lock approvers out for long
            raise ApproversUnknown(f"could not read user group {group} ({exc.response.get('error')})") from exc
        with self._lock:
            self._cache[group] = (time.monotonic() + GROUP_TTL, members)
        return members

    def allows(self, client, user: str) -> bool:
        return user in self.users or any(user in self._members(client, g) for g in self.groups)


class Remediations:
    def __init__(self, settings: Settings, store: Store | None, queue):
        self.settings = settings
        self.store = store
        self.queue = queue
        self.approvals = Approvals(settings)

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

    def audit_text(self, client, user: str, n: int) -> str:
        if self.store is None:
            return render.error_text("The audit trail needs Redis (REDIS_URL).")
        try:
            if not self.approvals.allows(client, user):
                return render.error_text("Only approvers can read the audit trail.")
        except ApproversUnknown as exc:
            return render.error_text(f"I could not check who may read it ({render.escape(str(exc))}).")
        rows = self.store.audit_entries(n)
        if not rows:
            return "No remediation has been clicked yet."
        lines = [f"`{r['at']}` *{render.escape(r['event'])}* by {render.mention(r['user'])}"
                 f" — {render.escape(r.get('summary') or r.get('kind') or r.get('plan_id', ''))}"
                 f"{': ' + render.escape(r['result']) if r.get('result') else ''}" for r in rows]
        return f"*Latest {len(rows)} remediation events*\n" + "\n".join(lines)


def run_remediation(settings: Settings, client, payload: dict) -> dict:
    """Worker side: re-check, execute once, report in the thread, audit the result."""
    from bot.store import store_for
    from checks.fixes import ALREADY, DONE, RUNNING, execute
    from checks.gateway import Gateway

    store = store_for(settings)
    plan: Plan | None = store.plan(payload["plan_id"]) if store else None
    approver, channel = payload.get("approver", ""), payload["channel"]
    if plan is None:
        if store:
            store.audit("expired", user=approver, plan_id=payload["plan_id"], result="expired before it ran")
        client.chat_postEphemeral(channel=channel, user=approver, text=render.error_text("The fix expired before it ran."))
        return {"ok": False}
    progress_ts: list[str] = []

    def progress(text: str) -> None:
        msg = f":gear: {render.escape(text)}"
        try:
            if progress_ts:
                client.chat_update(channel=channel, ts=progress_ts[0], text=msg)
            else:
                progress_ts.append(client.chat_postMessage(channel=channel, thread_ts=plan.thread_ts, text=msg)["ts"])
        except SlackApiError as exc:
            log.warning("progress update failed: %s", exc.response.get("error"))

    try:
        gw = Gateway(settings.google_api_url, deadline=time.monotonic() + settings.remediation_timeout - 60)
        outcome = execute(gw, plan.kind, plan.params, progress, settings.op_poll_seconds)
    except Exception as exc:  # noqa: BLE001 - report, never go silent
        log.exception("remediation crashed")
        from checks.fixes import FAILED, Outcome
        outcome = Outcome(FAILED, f"{type(exc).__name__}: {exc}"[:300])
    ok = outcome.status in (DONE, ALREADY)
    if outcome.status == RUNNING:
        word, event, icon = "still running in GKE", "running", ":hourglass_flowing_sand:"
    elif ok:
        word, event, icon = ("done" if outcome.status == DONE else "already fixed, nothing done"), "succeeded", \
            ":white_check_mark:"
    else:
        word, event, icon = f"failed: {outcome.status}", "failed", ":x:"
    store.audit(event, user=approver, plan=plan, result=f"{outcome.status}: {outcome.message}")
    client.chat_postMessage(channel=channel, thread_ts=plan.thread_ts,
                            text=f"{icon} *{render.escape(plan.label)}* (approved by {render.mention(approver)}) — "
                                 f"{word}. {render.escape(outcome.message)}")
    blocks = replace_actions(payload.get("blocks", []), plan.id,
                             f"{icon} Approved by {render.mention(approver)} at {hhmm()} — {render.escape(word)}")
    if blocks and payload.get("message_ts"):
        try:
            client.chat_update(channel=channel, ts=payload["message_ts"], blocks=blocks, text=payload.get("text") or "gke-bot")
        except SlackApiError as exc:
            log.warning("could not update the fix line: %s", exc.response.get("error"))
    return {"ok": ok, "status": outcome.status}
