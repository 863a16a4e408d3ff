"""RQ, hardened: a worker that runs only the bot's own job entry point.

A job in Redis names the function to call by its import path; anyone who can write to Redis could name
`os.system`. `SafeJob` never imports what a job names: its function is the bot's own `run_job` or the
job is refused; callbacks and webhooks stored with a job are dropped. `SafeWorker` checks every job
before it forks a work horse, refuses a foreign one (logged as a security event, moved to the failed
registry, never imported or called), and `run_job` itself verifies the payload's signature
(bot.work.jobs).
"""
from __future__ import annotations

import logging

from rq.job import Job, JobStatus
from rq.worker import Worker

from bot.work.payload import JOB_FUNC

log = logging.getLogger(__name__)


class ForeignJob(Exception):
    """A job the bot did not queue."""


def refusal(job: Job) -> str:
    """'' when the job is one the bot queued (its own function, one JSON payload, nothing else), else why not."""
    try:
        name, instance, args, kwargs = job.func_name, job.instance, job.args, job.kwargs
    except Exception as exc:  # noqa: BLE001 - undecodable data (e.g. not JSON): refused, never unpickled
        return f"its data cannot be read as JSON ({type(exc).__name__})"
    if name != JOB_FUNC:
        return f"it names the function {str(name)[:200]!r}"
    if instance is not None:
        return "it names an instance to call a method on"
    if kwargs or not isinstance(args, (list, tuple)) or len(args) != 1 or not isinstance(args[0], dict):
        return "its arguments are not one JSON payload"
    if getattr(job, "_foreign", None):
        return "it carries " + ", ".join(job._foreign)
    return ""


class SafeJob(Job):
    """A Job whose function can only be the bot's own entry point, with no callbacks or webhooks."""

    def restore(self, raw_data):
        out = super().restore(raw_data)
        self._foreign = [what for what, value in (
            ("a success callback", self._success_callback_name), ("a failure callback", self._failure_callback_name),
            ("a stopped callback", self._stopped_callback_name), ("webhooks", self.webhooks)) if value]
        self._success_callback_name = self._failure_callback_name = self._stopped_callback_name = None
        self.webhooks = []
        return out

    @property
    def func(self):
        why = refusal(self)
        if why:
            raise ForeignJob(why)
        from bot.work.jobs import run_job
        return run_job

    # the bot queues no callbacks: whatever Redis says, none is ever imported
    @property
    def success_callback(self):
        return None

    @property
    def failure_callback(self):
        return None

    @property
    def stopped_callback(self):
        return None


class SafeWorker(Worker):
    job_class = SafeJob

    def execute_job(self, job: Job, queue):
        why = refusal(job)
        if not why:
            return super().execute_job(job, queue)
        from bot.access import security_event
        security_event("foreign job refused", job_id=str(job.id)[:64], why=why, queue=queue.name)
        with self.connection.pipeline() as p:
            job.set_status(JobStatus.FAILED, pipeline=p)
            job.failure_ttl = 86400
            job._handle_failure(f"refused by gke-bot: {why}", pipeline=p, worker_name=self.name)  # registry + result
            p.lrem(queue.intermediate_queue_key, 1, job.id)
            p.execute()
