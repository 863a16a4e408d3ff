"""The worker side of a fix button: re-check everything, execute once, report in the thread, audit the result.

Nothing stored is trusted: the plan's signature is checked again, the approver must still be an approver of
the binding of the channel where the plan was posted and must hold the plan's once-only lock, the project
must be in that binding, and what to change is re-derived from the kind and live state (checks.fixes.validate)
before anything is written.
"""
from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.i18n import N_, _
from bot.render import blocks as render
from bot.render import plans
from bot.render.blocks import hhmm, replace_actions
from bot.work.store import Plan, PlanTampered

log = logging.getLogger(__name__)

# ---- user-facing English of a fix run (in the approver's language: the job runs under it) -----------------------
EXPIRED = N_("The fix expired before it ran.")
TAMPERED = N_("This fix was changed after the bot planned it, so nothing was done. Run the diagnosis again.")
NOT_APPROVER = N_("You may no longer approve fixes in this conversation, so nothing was done.")
UNKNOWN_APPROVERS = N_("I could not check who may approve ({why}); nothing was done. Click again in a minute.")
NOT_HOLDER = N_("This fix was not approved by you (or its approval was released), so nothing was done.")
SELF = N_("You asked for this diagnosis, so someone else must approve its fix (four-eyes). Nothing was done.")
ALREADY_RAN = N_("This fix has already run once; nothing was done.")
REFUSED = N_("I refused to run this fix: {why}. Nothing was done.")


def run_remediation(settings: Settings, client, payload: dict) -> dict:
    """Worker side: re-check, execute once, report in the thread, audit the result."""
    from bot.access import Gate, security_event
    from bot.directory import DirectoryUnavailable
    from bot.work.store import shared_cache, store_for
    from checks.fixes import ALREADY, DONE, FAILED, REFUSED as REFUSED_OUTCOME, RUNNING, Outcome, execute, validate
    from checks.gateway import ApiError, Gateway

    store = store_for(settings)
    approver, channel, plan_id = payload.get("approver", ""), payload.get("channel", ""), payload.get("plan_id", "")

    def tell(text: str) -> None:
        try:
            client.chat_postEphemeral(channel=channel, user=approver, text=render.error_text(_(text)))
        except SlackApiError as exc:
            log.warning("could not tell %s: %s", approver, exc.response.get("error"))
    if store is None:
        tell(EXPIRED)
        return {"ok": False}
    try:
        plan: Plan | None = store.plan(plan_id)
    except PlanTampered as exc:
        security_event("tampered fix plan refused by the worker", plan_id=str(plan_id)[:64], why=str(exc))
        store.audit("tampered", user=approver, plan_id=plan_id, result=f"refused at run: {exc}")
        tell(TAMPERED)
        return {"ok": False, "status": "tampered"}
    if plan is None:
        store.audit("expired", user=approver, plan_id=plan_id, result="expired before it ran")
        tell(EXPIRED)
        return {"ok": False}
    if plan.channel != channel:
        security_event("fix job for another channel refused", plan_id=plan.id, channel=channel)
        store.audit("denied", user=approver, plan=plan, result=f"job names another channel {channel}")
        return {"ok": False, "status": "refused"}
    gate = Gate(settings, shared_cache(settings))
    try:
        allowed, binding = gate.approver(client, plan.channel, approver)
    except DirectoryUnavailable as exc:
        store.audit("failed", user=approver, plan=plan, result=f"approvers unknown at run: {exc}")
        tell(_(UNKNOWN_APPROVERS).format(why=render.escape(str(exc))))
        return {"ok": False}
    refusal = ("" if allowed else NOT_APPROVER) or \
        ("" if store.plan_holder(plan.id) == approver else NOT_HOLDER) or \
        ("" if approver != plan.requester or settings.allow_self_approval else SELF)
    if refusal:
        store.audit("denied", user=approver, plan=plan, result=f"refused at run: {refusal}")
        tell(_(refusal))
        return {"ok": False, "status": "refused"}
    progress_ts: list[str] = []

    def progress(text: str) -> None:
        msg = f":gear: {render.escape(text)}"  # the engine's words (checks.fixes), in the approver's language
        try:
            if progress_ts:
                client.chat_update(channel=channel, ts=progress_ts[0], text=msg)
            else:
                progress_ts.append(client.chat_postMessage(channel=channel, thread_ts=plan.thread_ts, text=msg)["ts"])
        except SlackApiError as exc:
            log.warning("progress update failed: %s", exc.response.get("error"))

    try:
        from bot.work.ratelimit import limiter_for
        gw = Gateway(settings.google_api_url, deadline=time.monotonic() + settings.remediation_timeout - 60,
                     projects=binding.projects, limiter=limiter_for(settings, store.redis))
        why = validate(gw, plan.kind, plan.params, plan.cluster, binding.projects)
        if why:
            security_event("fix plan refused by validation", plan_id=plan.id, kind=plan.kind, why=why)
            outcome = Outcome(REFUSED_OUTCOME, _(REFUSED).format(why=why))
        elif not store.mark_run(plan.id, payload.get("job_id", "")):
            outcome = Outcome(REFUSED_OUTCOME, _(ALREADY_RAN))
        else:
            outcome = execute(gw, plan.kind, plan.params, progress, settings.op_poll_seconds)
    except ApiError as err:
        outcome = Outcome(FAILED, _("Google answered {code} {status}: {message}").format(
            code=err.code, status=err.status, message=err.message)[:300])
    except Exception as exc:  # noqa: BLE001 - report, never go silent
        log.exception("remediation crashed")
        outcome = Outcome(FAILED, f"{type(exc).__name__}: {exc}"[:300])
    ok = outcome.status in (DONE, ALREADY)
    if outcome.status == RUNNING:
        word, event, icon = _("still running in GKE"), "running", ":hourglass_flowing_sand:"
    elif ok:
        word, event, icon = (_("done") if outcome.status == DONE else _("already fixed, nothing done")), "succeeded", \
            ":white_check_mark:"
    else:
        word, event, icon = _("failed: {status}").format(status=outcome.status), "failed", ":x:"
    store.audit(event, user=approver, plan=plan, result=f"{outcome.status}: {outcome.message}")
    label = plans.label(plan.kind, plan.params, plan.label)  # the approver's language, from kind and params
    client.chat_postMessage(channel=channel, thread_ts=plan.thread_ts,
                            text=f"{icon} " + _("*{fix}* (approved by {approver}) — {outcome}.").format(
                                fix=render.escape(label), approver=render.mention(approver), outcome=word)
                                 + f" {render.escape(outcome.message)}")
    fix_line = f"{icon} " + _("Approved by {approver} at {time} — {outcome}").format(
        approver=render.mention(approver), time=hhmm(), outcome=render.escape(word))
    from bot.work.history import current_blocks, history_for, keep_blocks
    history = history_for(settings, store.redis)
    message_ts = str(payload.get("message_ts") or "")
    blocks = replace_actions(current_blocks(history, plan.channel, plan.thread_ts, message_ts,
                                            payload.get("blocks", [])), plan.id, fix_line)
    if blocks and message_ts:
        try:
            client.chat_update(channel=channel, ts=message_ts, blocks=blocks, text=payload.get("text") or "gke-bot")
            keep_blocks(history, plan.channel, plan.thread_ts, message_ts, blocks)
        except SlackApiError as exc:
            log.warning("could not update the fix line: %s", exc.response.get("error"))
    from bot.work.home import republish
    republish(settings, client, gate, plan.channel)  # approvers' Home tabs: no longer waiting
    if ok and plan.check:  # did it work? the finding's check again (bot.work.rechecks)
        from bot.work.rechecks import after_fix
        try:
            after_fix(settings, client, plan, binding.projects, payload, fix_line)
        except Exception:  # noqa: BLE001 - the fix itself is done and reported
            log.exception("the re-check after the fix failed")
    return {"ok": ok, "status": outcome.status}
