"""The worker side of a fix button: re-check, execute once, report in the thread, audit the result."""
from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.render import blocks as render
from bot.render.blocks import hhmm, replace_actions
from bot.work.store import Plan

log = logging.getLogger(__name__)


def run_remediation(settings: Settings, client, payload: dict) -> dict:
    """Worker side: re-check, execute once, report in the thread, audit the result."""
    from bot.work.store import store_for
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
