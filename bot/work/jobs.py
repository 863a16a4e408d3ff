"""The work a queued job does: diagnose, then answer in the Slack thread.

Runs on the RQ worker (or the in-process pool). Every path ends in a thread reply and an
updated parent message: a result, or what failed. Never silence.
"""
from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.grammar import Command
from bot.render import blocks as render
from bot.slackclient import web_client
from bot.work.store import store_for
from bot.work.thread import Thread
from checks.engine import run_command
from checks.gateway import Gateway
from checks.model import Report

log = logging.getLogger(__name__)
_email_cache: dict[str, tuple[float, str]] = {}
EMAIL_TTL = 3600.0


def asker_principal(client, user_id: str, cache=None) -> str:
    """`user:EMAIL` from the Slack profile, or '' when the profile shows no email.

    Cached for an hour: in this process, and in Redis when given (RQ forks a process per job).
    """
    hit = _email_cache.get(user_id)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    key = f"gke-bot:principal:{user_id}"
    cached = None
    if cache is not None:
        try:
            cached = cache.get(key)
        except Exception:  # noqa: BLE001 - a cache miss
            cached = None
    if cached is not None:
        principal = cached.decode() if isinstance(cached, bytes) else cached
    else:
        resp = client.users_info(user=user_id)
        email = (resp.get("user") or {}).get("profile", {}).get("email", "")
        principal = f"user:{email}" if email else ""
        if cache is not None:
            try:
                cache.set(key, principal, ex=int(EMAIL_TTL))
            except Exception:  # noqa: BLE001
                pass
    _email_cache[user_id] = (time.monotonic() + EMAIL_TTL, principal)
    return principal


def shared_cache(settings: Settings):
    if not settings.redis_url:
        return None
    from redis import Redis
    return Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2)


def run_job(payload: dict) -> dict:
    """Entry point of every queued job (the payload is plain JSON): a diagnosis or a remediation."""
    settings = Settings.from_env()
    client = web_client(settings)
    if payload.get("kind") == "remediate":
        from bot.work.remediation import run_remediation
        return run_remediation(settings, client, payload)
    return run_diagnosis(settings, client, payload)


def run_diagnosis(settings: Settings, client, payload: dict) -> dict:
    redis = shared_cache(settings)
    job_id = payload.get("job_id", "")
    if redis is None or not job_id:
        return _diagnose(settings, client, payload, redis)
    from bot.work.tracking import Heartbeat, answered
    with Heartbeat(redis, job_id):
        out = _diagnose(settings, client, payload, redis)
    answered(redis, job_id, payload.get("coalesce_key", ""))
    return out


def _diagnose(settings: Settings, client, payload: dict, redis) -> dict:
    thread = Thread(client, payload)
    started = time.monotonic()
    try:
        cmd = Command.from_json(payload["command"])
        args = dict(cmd.args)
        principal = cmd.principal
        if not principal and thread.user:
            try:
                principal = asker_principal(client, thread.user, redis)
                if not principal:
                    args["principal_note"] = ("Your Slack profile shows no email address, so I cannot tell which "
                                              "Google account is yours: add `--as user:EMAIL`.")
            except SlackApiError as exc:  # the checks that do not depend on the asker still run
                args["principal_note"] = (f"I could not read your Slack profile ({exc.response.get('error')}), so "
                                          "I cannot tell which Google account is yours: add `--as user:EMAIL`.")
        gw = Gateway(settings.google_api_url, deadline=started + max(10, settings.job_timeout - 20),
                     shared_cache=redis, endpoint=settings.endpoint)
        report = run_command(gw, cmd.name, cmd.cluster, settings.projects, principal, args)
        post_report(thread, report, store_for(settings))
        return {"ok": True, "counts": report.counts(), "calls": len(gw.calls)}
    except Exception as exc:  # noqa: BLE001 - the user must hear about it
        log.exception("job failed")
        reason = f"{type(exc).__name__}: {exc}"[:500]
        try:
            thread.reply(render.error_text(f"The diagnosis failed: {render.escape(reason)}"))
            thread.status(":warning: failed (see thread)")
        except SlackApiError:
            log.exception("could not report the failure to Slack")
        return {"ok": False, "error": reason}


def post_report(thread: Thread, report: Report, store=None) -> None:
    if not report.findings:
        thread.reply(render.error_text(render.escape(report.note or "No findings.")))
        thread.status(":warning: " + render.escape((report.note or "no findings").splitlines()[0][:300]))
        return
    plans = {}
    if store is not None:
        try:
            for i, f in enumerate(report.findings):
                if f.remediation:
                    rem = f.remediation
                    plans[i] = store.new_plan(kind=rem.kind, label=rem.label, summary=rem.summary,
                                              params=rem.params, channel=thread.channel, thread_ts=thread.thread_ts,
                                              requester=thread.user, cluster=report.cluster).id
        except Exception as exc:  # noqa: BLE001 - buttons are optional; the report is not
            log.warning("could not save fix plans (%s); posting without buttons", type(exc).__name__)
            plans = {}
            report.note = "Fix buttons are unavailable right now (Redis); the fixes are in each finding."
    try:
        for message in render.report_messages(report, plans):
            thread.reply(message["text"], message["blocks"])
    except SlackApiError as exc:
        if exc.response.get("error") not in ("msg_too_long", "invalid_blocks"):
            raise
        # Slack refused the blocks: the whole report as a file in the thread instead, never nothing.
        from bot.render.text import render_text
        log.warning("report refused by Slack (%s); uploading it as a file", exc.response.get("error"))
        thread.client.files_upload_v2(channel=thread.channel, thread_ts=thread.thread_ts,
                                      content=render_text(report), filename="gke-bot-report.txt",
                                      title=f"gke-bot {report.command} {report.cluster}",
                                      initial_comment=f"{render.summary(report)} (full report attached)")
    thread.status(render.summary(report))
