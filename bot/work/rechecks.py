"""Checking again.

After a fix has run (bot.work.remediation), the finding's own check runs again on the cluster, a few times with
a pause between (an IAM grant takes a while to be seen everywhere; GKE_BOT_RECHECK_TRIES × GKE_BOT_RECHECK_WAIT
bounds it); the thread hears whether it now passes (or what the check says now), the fix line and the parent's
summary say so too.

`@gke-bot recheck` in a diagnosis thread runs the same diagnosis again (bot.work.jobs) and answers with what
changed since the thread's previous answer (fixed, new, unchanged, by check and resource), not the whole report;
the previous answer's fix buttons are marked superseded and the new answer carries buttons for what is still
wrong.
"""
from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError

from bot.i18n import N_, _, language
from bot.render import blocks as render
from bot.render.blocks import hhmm, replace_actions
from bot.work.history import BAD, diff, findings_of, history_for, key_of
from checks.model import ClusterRef, Finding, Report, Status

log = logging.getLogger(__name__)

# ---- user-facing English of re-checks
PASSES = N_("Checked again after the fix: *{title}* now passes.")
STILL = N_("Checked again after the fix ({tries} times over {seconds} s): *{title}* does not pass yet. What the "
           "check says now:")
VERDICT_PASSES = N_("checked again: passes")
VERDICT_STILL = N_("checked again: {status}")
RECHECKED = N_("*Checked again* ({command} on {cluster}): {summary}")
FIXED = N_("Fixed since the previous answer:")
NEW = N_("New since the previous answer:")
UNCHANGED = N_("Unchanged:")
NOTHING_CHANGED = N_("Nothing changed since the previous answer.")
SUPERSEDED = N_("Superseded by the re-check at {time}")


def cluster_ref(path: str) -> ClusterRef | None:
    parts = (path or "").split("/")
    if len(parts) != 6 or parts[0] != "projects" or parts[2] != "locations" or parts[4] != "clusters":
        return None
    return ClusterRef(parts[1], parts[3], parts[5])


def _summary_of(record: dict) -> str:
    """The parent's summary from a record's findings (in the current language)."""
    findings = [Finding(f["id"], Status(f["status"]), f.get("title", ""), resource=f.get("resource", ""))
                for f in record.get("findings") or [] if f.get("status") in Status.__members__]
    return render.summary(Report(record.get("command", ""), record.get("cluster", ""), findings=findings))


def _update_parent(client, record: dict) -> None:
    with language(record.get("lang", "")):
        text = render.parent_text(record.get("user", ""), record.get("shown", ""), _summary_of(record))
    try:
        client.chat_update(channel=record["channel"], ts=record["status_ts"], text=text)
    except SlackApiError as exc:
        log.warning("could not update the parent message: %s", exc.response.get("error"))


# ---- after a fix --------------------------------------------------------------------------------------------
def check_again(settings, plan, projects) -> tuple[bool, list[Finding], int]:
    """Run the plan's check until it passes, at most GKE_BOT_RECHECK_TRIES times: (passes, findings, tries)."""
    from checks.engine import recheck
    from checks.gateway import Gateway
    ref = cluster_ref(plan.cluster)
    if ref is None:
        return False, [], 0
    from bot.work.ratelimit import limiter_for
    from bot.work.store import shared_cache
    limiter = limiter_for(settings, shared_cache(settings))
    found: list[Finding] = []
    for attempt in range(1, settings.recheck_tries + 1):
        gw = Gateway(settings.google_api_url, deadline=time.monotonic() + 60, projects=projects,
                     endpoint=settings.endpoint, limiter=limiter)  # fresh: nothing remembered from the previous try
        found = [f for f in recheck(gw, ref, plan.command or "doctor", plan.check)
                 if not plan.resource or f.resource == plan.resource]
        if found and all(f.status in (Status.OK, Status.SKIP) for f in found):
            return True, found, attempt
        if attempt < settings.recheck_tries:
            time.sleep(settings.recheck_wait)
    return False, found, settings.recheck_tries


def after_fix(settings, client, plan, projects, payload: dict, fix_line: str) -> None:
    """The fix ran: check again, say so in the thread, on the fix line (`fix_line` + the verdict) and in the
    parent's summary (from the diagnosis record)."""
    passes, found, tries = check_again(settings, plan, projects)
    title = (found[0].title if found else plan.check) or plan.check
    if passes:
        text, blocks = ":white_check_mark: " + _(PASSES).format(title=render.escape(title)), None
        verdict = ":white_check_mark: " + _(VERDICT_PASSES)
    else:
        text = ":x: " + _(STILL).format(tries=tries, seconds=round(max(0, tries - 1) * settings.recheck_wait),
                                        title=render.escape(title))
        blocks = [render.section(text)] + [b for f in found if f.status.value in BAD for b in render.finding_blocks(f)]
        worst = min((f.status for f in found), key=lambda s: s.rank, default=Status.ERROR)
        verdict = _(VERDICT_STILL).format(status=render.word(worst))
    try:
        client.chat_postMessage(channel=plan.channel, thread_ts=plan.thread_ts, text=text, blocks=blocks)
    except SlackApiError as exc:
        log.warning("could not post the re-check: %s", exc.response.get("error"))
    history = history_for(settings)
    record = history.load(plan.channel, plan.thread_ts) if history else None
    from bot.work.history import blocks_of
    new_blocks = replace_actions(blocks_of(record, str(payload.get("message_ts") or ""), payload.get("blocks", [])),
                                 plan.id, f"{fix_line} · {verdict}")
    if new_blocks and payload.get("message_ts"):
        try:
            client.chat_update(channel=plan.channel, ts=payload["message_ts"], blocks=new_blocks,
                               text=payload.get("text") or "gke-bot")
        except SlackApiError as exc:
            log.warning("could not update the fix line: %s", exc.response.get("error"))
    if record is None:
        return
    now = {key_of(f.id, f.resource): f.status.value for f in found}
    for f in record.get("findings") or []:
        if f.get("key") in now:
            f["status"] = now[f["key"]]
    if record.get("reply_ts") == payload.get("message_ts") and new_blocks:
        record["blocks"] = new_blocks
    history.update(record)
    _update_parent(client, record)


# ---- `@gke-bot recheck` -------------------------------------------------------------------------------------
def supersede(client, store, record: dict) -> None:
    """The previous answer's fix buttons no longer apply: marked superseded (and their plans dropped unless a
    fix is already under way)."""
    blocks = record.get("blocks") or []
    plans = record.get("plans") or []
    if not blocks or not plans or not record.get("reply_ts"):
        return
    line = ":arrows_counterclockwise: " + _(SUPERSEDED).format(time=hhmm())
    changed = blocks
    for plan_id in plans:
        if any(b.get("block_id") == f"remediate:{plan_id}" for b in changed):
            changed = replace_actions(changed, plan_id, line)
            if store is not None and not store.plan_holder(plan_id):
                store.drop_plan(plan_id)
    if changed == blocks:
        return
    try:
        client.chat_update(channel=record["channel"], ts=record["reply_ts"], blocks=changed,
                           text=_("The previous answer"))
    except SlackApiError as exc:
        log.warning("could not mark the previous buttons: %s", exc.response.get("error"))


def difference_message(report: Report, fixed: list[dict], new: list[Finding], same: list[Finding],
                       plans: dict[int, str]) -> list[dict]:
    head = _(RECHECKED).format(command=render.escape(report.command), cluster=render.code(report.cluster),
                               summary=render.summary(report))
    blocks = [render.section(head)]
    if not (fixed or new or same):
        blocks.append(render.section(_(NOTHING_CHANGED)))
    if fixed:
        blocks += render.sections(_(FIXED) + "\n" + "\n".join(
            f":white_check_mark: {render.escape(f.get('title', ''))} — {render.code(f.get('resource', ''))}"
            for f in fixed))
    index = {id(f): i for i, f in enumerate(report.findings)}
    for label, group in ((NEW, new), (UNCHANGED, same)):
        if not group:
            continue
        blocks += [{"type": "divider"}, render.section(f"*{_(label)}*")]
        for f in sorted(group, key=lambda f: f.status.rank):
            blocks += render.finding_blocks(f, plans.get(index[id(f)], ""))
    return blocks[:render.MAX_BLOCKS]


def new_plans(store, thread, report: Report) -> dict[int, str]:
    """A signed plan per finding with a safe fix (finding index → plan id)."""
    plans = {}
    for i, f in enumerate(report.findings):
        if f.remediation:
            rem = f.remediation
            # label and summary: for logs and the audit trail; what people read is written from kind and
            # params in each reader's language (bot.render.plans)
            plans[i] = store.new_plan(kind=rem.kind, label=rem.label, summary=rem.summary, params=rem.params,
                                      channel=thread.channel, thread_ts=thread.thread_ts, requester=thread.user,
                                      cluster=report.cluster, check=f.id, resource=f.resource,
                                      command=report.command).id
    return plans


def post_difference(settings, thread, report: Report, redis, store) -> bool:
    """Answer a `recheck` with what changed since the thread's previous answer; False when there is nothing
    to compare with (no previous answer kept, or no findings now): the caller posts the whole answer."""
    history = history_for(settings, redis)
    record = history.load(thread.channel, thread.thread_ts) if history else None
    if record is None or not report.findings:
        return False
    fixed, new, same = diff(record.get("findings") or [], report.findings)
    plans: dict[int, str] = {}
    if store is not None:
        try:
            plans = new_plans(store, thread, report)
        except Exception as exc:  # noqa: BLE001 - buttons are optional
            log.warning("could not save fix plans (%s)", type(exc).__name__)
    blocks = difference_message(report, fixed, new, same, plans)
    text = _(RECHECKED).format(command=render.escape(report.command), cluster=render.escape(report.cluster),
                               summary=render.summary(report))
    supersede(thread.client, store, record)
    ts = thread.reply(text, blocks)
    record.update(findings=findings_of(report), reply_ts=ts, blocks=blocks, plans=list(plans.values()),
                  summary=render.summary(report), status_ts=thread.status_ts)
    history.save(record)
    thread.status(render.summary(report))
    return True
