"""Never a thread left "checking…": act on tracked jobs that did not answer (see bot.work.tracking).

A sweeper thread in every `gke-bot worker` (`Janitor`) looks at jobs still open: a job that RQ marks failed, or that started
but stopped beating (its worker was killed), is queued once more; after that, or past its
deadline, the thread is told what happened. It also marks fix buttons that expired (bot.work.expiry). Every decision about one job is taken under a short
Redis lock, so several workers sweep without stepping on each other.
"""
from __future__ import annotations

import json
import logging
import threading
import time

from bot.work.tracking import BEAT_TTL, DATA, OPEN, answered

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2
ORPHAN_GRACE = 3.0  # seconds a job must stay QUEUED-in-no-queue before it counts as lost


class Janitor:
    def __init__(self, settings, redis, queue, client_factory, every: float = 5.0):
        self.settings, self.redis, self.queue = settings, redis, queue
        self.client_factory = client_factory
        self.every = every
        self._stop = threading.Event()
        self._suspects: dict[str, float] = {}  # job id → when first seen QUEUED in no queue

    def start(self) -> "Janitor":
        threading.Thread(target=self._loop, daemon=True, name="janitor").start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - Redis may be down; try again next round
                log.warning("janitor sweep failed", exc_info=True)
            try:
                from bot.work.fleet import finish_overdue
                from bot.work.jobs import post_report
                # fleet sweeps past their deadline: their digest, naming the clusters that did not answer
                finish_overdue(self.settings, self.redis, self.client_factory, post_report)
            except Exception:  # noqa: BLE001 - as above
                log.warning("overdue fleet digests failed", exc_info=True)
            try:
                from bot.work.expiry import expire_fixes
                expire_fixes(self.settings, self.redis, self.client_factory)
            except Exception:  # noqa: BLE001 - as above
                log.warning("expired-fix sweep failed", exc_info=True)

    def sweep(self) -> list[tuple[str, str]]:
        """Decide about every open job; returns (job id, decision) for what was done."""
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        from bot.work.queue import QUEUE_NAME

        done = []
        now = time.time()
        for raw_id, queued_at in self.redis.zrange(OPEN, 0, -1, withscores=True):
            job_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            try:
                job = Job.fetch(job_id, connection=self.redis, serializer=self.queue.serializer)
                status, started = job.get_status(), _epoch(job.started_at)
            except NoSuchJobError:
                job, status, started = None, None, None
            alive = self.redis.exists(f"gke-bot:alive:{job_id}")
            age = now - queued_at
            running_for = now - started if started else age
            # Suspicious states must last a while before they count (each is normal for milliseconds):
            # - RQ does not know the job (it is tracked a moment before RQ stores it; or its data is gone);
            # - QUEUED but in no queue (a worker took it off the queue and died before starting it);
            # - STARTED without a heartbeat (the work horse was killed; it beats within seconds of starting).
            suspicious = (
                status is None
                or (status == JobStatus.QUEUED and self.redis.lpos(f"rq:queue:{QUEUE_NAME}", job_id) is None)
                or (status == JobStatus.STARTED and not alive and running_for > BEAT_TTL))
            if not suspicious:
                self._suspects.pop(job_id, None)
            elif now - self._suspects.setdefault(job_id, now) > ORPHAN_GRACE:
                suspicious = "lost"
            if status == JobStatus.FINISHED:
                decision = "finished"
            elif status == JobStatus.FAILED or suspicious == "lost":
                decision = "lost"
            elif running_for > self.settings.job_timeout + 30 or age > 2 * self.settings.job_timeout + 30:
                decision = "timeout"
            else:
                continue
            if not self.redis.set(f"gke-bot:sweep:{job_id}", "1", nx=True, ex=60):
                continue  # another worker's janitor is on it
            if decision == "timeout" and job is not None:
                try:
                    job.cancel()  # a job still queued must not run after its thread was told
                except Exception:  # noqa: BLE001 - already running or gone
                    pass
            self._act(job_id, decision)
            self._suspects.pop(job_id, None)
            done.append((job_id, decision))
        return done

    def _act(self, job_id: str, decision: str) -> None:
        from bot.work.payload import UNSIGNED, job_signer
        raw = self.redis.hget(DATA, job_id)
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {}
        if decision == "finished" or not raw:
            answered(self.redis, job_id)
            return
        if not job_signer(self.settings).valid(payload, skip=UNSIGNED):
            # Written into Redis by someone else: never re-queued, never answered in its "thread".
            from bot.access import security_event
            security_event("unsigned tracked job dropped by the janitor", job_id=job_id[:64])
            answered(self.redis, job_id)
            return
        attempt = int(payload.get("attempt", 1))
        if decision == "lost" and attempt < MAX_ATTEMPTS:
            new_id = self.queue.enqueue(dict(payload, attempt=attempt + 1))  # first: if it fails, still tracked
            answered(self.redis, job_id)
            log.warning("job %s was lost (its worker stopped); queued again as %s", job_id, new_id)
            return
        from bot.i18n import _, language
        from bot.render import blocks as render
        from bot.work.thread import Thread
        with language(str(payload.get("lang") or "")):  # the asker's language, as the job would have answered
            why = (_("the worker running it stopped, twice") if decision == "lost" else
                   _("it did not finish within {seconds} s").format(seconds=self.settings.job_timeout))
            thread = Thread(self.client_factory(), payload)
            thread.reply(render.error_text(_("The diagnosis was lost: {why}. Please run it again.").format(why=why)))
            thread.status(":warning: " + _("lost (see thread)"))
        answered(self.redis, job_id, payload.get("coalesce_key", ""))


def _epoch(when) -> float | None:
    """A datetime from RQ (aware, or naive UTC) as seconds since the epoch."""
    if when is None:
        return None
    from datetime import timezone
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
