"""The work a queued job does: diagnose, then answer in the Slack thread.

Runs on the RQ worker (or the in-process pool). Every path ends in a thread reply and an
updated parent message: a result, or what failed. Never silence.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time

from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.i18n import N_, _, language
from bot.render import blocks as render
from bot.slackclient import web_client
from bot.work.rechecks import new_plans, post_difference
from bot.work.store import shared_cache, store_for
from bot.work.thread import Thread
from checks.engine import run_command
from checks.gateway import Gateway
from checks.model import Report

log = logging.getLogger(__name__)

# ---- user-facing English of a job (translated where used: `_(NO_EMAIL)`) ----------------------------------------
NO_EMAIL = N_("Your Slack profile shows no email address and the access policy maps no Google account to you, so "
              "I cannot tell which Google account is yours: ask an admin to add you to `identities`, or "
              "(approvers) add `--as user:EMAIL`.")
FAILED = N_("The diagnosis failed: {reason}")
REFUSED_STATUS = N_("refused (see thread)")
CLUSTER_BUSY = N_("{n} diagnoses of `{cluster}` were already running and none finished in time, so this one did "
                  "not start. Try again in a minute.")


def check_budget(settings: Settings) -> float:
    """Seconds a diagnosis may spend on Google and Kubernetes: the job timeout less time to answer in Slack.
    The RQ job timeout and the in-process path both use GKE_BOT_JOB_TIMEOUT, so they agree."""
    return float(max(3, settings.job_timeout - min(20, settings.job_timeout // 4)))


def run_job(payload: dict) -> dict:
    """Entry point of every job queued in Redis. Its payload must carry the bot's signature (GKE_BOT_PLAN_KEY):
    a job written into Redis by anyone else is refused before anything is read or posted."""
    from bot.access import security_event
    from bot.work.payload import UNSIGNED, job_signer
    settings = Settings.from_env()
    if not isinstance(payload, dict) or not job_signer(settings).valid(payload, skip=UNSIGNED):
        security_event("unsigned job refused by the worker", job_id=str((payload or {}).get("job_id", ""))[:64]
                       if isinstance(payload, dict) else "")
        return {"ok": False, "error": "refused: not signed by the bot"}
    return run_trusted(payload, settings)


def run_trusted(payload: dict, settings: Settings | None = None) -> dict:
    """A job the bot queued itself (in-process, or verified by run_job): a diagnosis or a remediation."""
    settings = settings or Settings.from_env()
    client = web_client(settings)
    # the reader's language, decided by the edge (the asker's, or the approver's for a fix)
    with language(str(payload.get("lang") or "")):
        if payload.get("kind") == "remediate":
            from bot.work.remediation import run_remediation
            return run_remediation(settings, client, payload)
        if payload.get("kind") in ("sweep", "sweep-cluster", "notify-doctor"):
            from bot.work.fleet import run_job as run_sweep
            return run_sweep(settings, client, payload, post_report, check_budget(settings))
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
    from bot.access import Gate
    from bot.grammar import parse
    thread = Thread(client, payload)
    started = time.monotonic()
    deadline = started + check_budget(settings)
    try:
        cmd = parse(str(payload.get("text", "")))  # validated again: the payload crossed Redis
        context, gw = [], None
        if cmd.name == "explain":  # a pasted error: read again, decided again, its cluster found (or asked for)
            from bot.work.explaining import settle_explain
            settled = settle_explain(settings, client, payload, redis, thread, cmd, deadline)
            if settled.cmd is None:
                return settled.result
            cmd, decision, context, gw = settled.cmd, settled.decision, settled.context, settled.gw
        else:
            # The access policy again, from the job itself: a job must not reach beyond what its channel may ask.
            decision = Gate(settings, redis).command(client, cmd, thread.channel, thread.user, where="worker")
        if not decision:
            thread.reply(render.error_text(decision.message))
            thread.status(":no_entry: " + _(REFUSED_STATUS))
            return {"ok": False, "error": f"refused: {decision.reason}"}
        projects = decision.binding.projects
        args = dict(cmd.args)
        principal = decision.identity.principal
        if not principal:
            args["principal_note"] = _(NO_EMAIL)
        from bot.work.ratelimit import limiter_for
        gw = gw or Gateway(settings.google_api_url, deadline=deadline, shared_cache=redis, projects=projects,
                           endpoint=settings.endpoint, limiter=limiter_for(settings, redis))
        with Progress(thread, settings.progress_seconds) as progress:
            report = run_command(gw, cmd.name, cmd.cluster, projects, principal, args, strict=True,
                                 deadline=deadline, admit=ClusterSlots(settings, redis).admit, progress=progress)
        report.context += context
        if principal:
            report.context.append(decision.identity.describe())
        if decision.note:
            report.context.append(decision.note)
        store = store_for(settings)
        # `@gke-bot recheck`: what changed since the thread's previous answer (when there is one to compare with)
        if not (payload.get("recheck") and post_difference(settings, thread, report, redis, store)):
            post_report(thread, report, store,
                        keep=lambda posted: remember(settings, redis, payload, thread, report, posted))
        return {"ok": True, "counts": report.counts(), "calls": len(gw.calls)}
    except Exception as exc:  # noqa: BLE001 - the user must hear about it
        log.exception("job failed")
        reason = f"{type(exc).__name__}: {exc}"[:500]
        try:
            thread.reply(render.error_text(_(FAILED).format(reason=render.escape(reason))))
            thread.status(":warning: " + _("failed (see thread)"))
        except SlackApiError:
            log.exception("could not report the failure to Slack")
        return {"ok": False, "error": reason}


class Progress:
    """While the checks run: after `every` seconds, the parent shows how many are done (`checking… 3 of 9 checks
    done`), updated at most every `every` seconds and only when it changed; silent once the block is left (the
    parent then gets its summary)."""

    def __init__(self, thread: Thread, every: float):
        self.thread, self.every = thread, every
        self.counts: tuple[int, int] | None = None
        self.shown: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # in this job's context: the reader's language goes with it
        self._ticker = threading.Thread(target=contextvars.copy_context().run, args=(self._run,), daemon=True,
                                        name="progress")

    def __call__(self, done: int, total: int) -> None:
        self.counts = (done, total)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                counts = self.counts
                if self._stop.is_set() or counts is None or counts == self.shown or counts[0] >= counts[1]:
                    continue
                try:
                    self.thread.status(_("checking…") + " " + _("{done} of {total} checks done").format(
                        done=counts[0], total=counts[1]))
                except Exception:  # noqa: BLE001 - progress is a courtesy
                    log.warning("could not show progress")
                self.shown = counts

    def __enter__(self) -> "Progress":
        self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:  # an update under way finishes first; none starts after this
            self._stop.set()


class ClusterSlots:
    """At most GKE_BOT_CLUSTER_CONCURRENCY diagnoses of one cluster at the same time: in Redis across
    workers, else in this process. More wait for a slot until the deadline (identical ones are coalesced
    before they are queued)."""

    _local: dict[str, threading.BoundedSemaphore] = {}
    _local_lock = threading.Lock()
    POLL = 0.25
    _RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

    def __init__(self, settings: Settings, redis=None):
        self.n, self.redis, self.ttl = settings.cluster_concurrency, redis, settings.job_timeout + 30

    @contextlib.contextmanager
    def admit(self, ref, deadline: float | None):
        busy = _(CLUSTER_BUSY).format(n=self.n, cluster=ref.path)
        if self.redis is None:
            with self._local_lock:
                sem = self._local.setdefault(f"{ref.path}:{self.n}", threading.BoundedSemaphore(self.n))
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not sem.acquire(timeout=timeout):
                yield busy
                return
            try:
                yield ""
            finally:
                sem.release()
            return
        import uuid
        token, held = uuid.uuid4().hex, None
        while held is None:
            for i in range(self.n):
                key = f"gke-bot:slot:{ref.path}:{i}"
                if self.redis.set(key, token, nx=True, ex=self.ttl):
                    held = key
                    break
            if held is None:
                if deadline is not None and time.monotonic() + self.POLL > deadline:
                    yield busy
                    return
                time.sleep(self.POLL)
        try:
            yield ""
        finally:
            try:
                self.redis.eval(self._RELEASE, 1, held, token)
            except Exception:  # noqa: BLE001 - it expires by itself
                log.warning("could not release a cluster slot")


def _attach(thread: Thread, report: Report, comment: str) -> None:
    from bot.render.text import render_text
    thread.client.files_upload_v2(channel=thread.channel, thread_ts=thread.thread_ts, content=render_text(report),
                                  filename="gke-bot-report.txt", title=f"gke-bot {report.command} {report.cluster}",
                                  initial_comment=comment)


def remember(settings: Settings, redis, payload: dict, thread: Thread, report: Report, posted: dict) -> None:
    """Keep what this diagnosis answered (bot.work.history): for `recheck`, the re-check after a fix, Home."""
    from bot.work.history import findings_of, history_for
    history = history_for(settings, redis)
    if history is None:
        return
    history.save({"channel": thread.channel, "thread_ts": thread.thread_ts, "status_ts": thread.status_ts,
                  "user": thread.user, "text": str(payload.get("text", "")), "shown": thread.text,
                  "lang": str(payload.get("lang", "")), "command": report.command, "cluster": report.cluster,
                  "cluster_spec": payload.get("cluster"), "findings": findings_of(report),
                  "summary": render.summary(report), **posted})


def post_report(thread: Thread, report: Report, store=None, keep=None) -> dict:
    """The report as one thread reply (with fix buttons when plans can be kept) and the parent's summary:
    {"reply_ts", "blocks", "plans"} of the reply (no blocks for a file or a note), also given to `keep` before
    the parent says the diagnosis is over."""
    keep = keep or (lambda posted: None)
    if not report.findings:
        note = report.note or _("No findings.")
        ts = thread.reply(render.error_text(render.escape(note)) + "".join(
            "\n" + render.escape(line) for line in report.context))
        keep({"reply_ts": ts, "blocks": [], "plans": []})
        thread.status(":warning: " + render.escape(note.splitlines()[0][:300]))
        return {"reply_ts": ts, "blocks": [], "plans": []}
    plans = {}
    if store is not None:
        try:
            plans = new_plans(store, thread, report)
        except Exception as exc:  # noqa: BLE001 - buttons are optional; the report is not
            log.warning("could not save fix plans (%s); posting without buttons", type(exc).__name__)
            plans = {}
            report.note = _("Fix buttons are unavailable right now (Redis); the fixes are in each finding.")
    message, partial = render.report_message(report, plans)
    posted = {"reply_ts": "", "blocks": message["blocks"], "plans": list(plans.values())}
    try:
        posted["reply_ts"] = thread.reply(message["text"], message["blocks"])
    except SlackApiError as exc:
        if exc.response.get("error") not in ("msg_too_long", "invalid_blocks"):
            raise
        # Slack refused the blocks: the whole report as a file in the thread instead, never nothing.
        log.warning("report refused by Slack (%s); uploading it as a file", exc.response.get("error"))
        partial = False
        posted["blocks"] = []
        _attach(thread, report, _("{summary} (full report attached)").format(summary=render.summary(report)))
    if partial:  # one message shows the worst; the rest is in the attachment
        try:
            _attach(thread, report, _("The full report"))
        except SlackApiError as exc:
            log.warning("could not attach the full report: %s", exc.response.get("error"))
    keep(posted)
    thread.status(render.summary(report))
    return posted
