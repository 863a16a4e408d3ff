"""What a queued job is: the one function workers run, and how its JSON payload is signed."""
from __future__ import annotations

from bot.signing import Signer

QUEUE_NAME = "gke-bot"
JOB_FUNC = "bot.work.jobs.run_job"  # the only function a worker runs (bot.work.rqsafe)
UNSIGNED = ("sig", "job_id", "attempt")  # set by the queue and the janitor, outside the signature


def job_signer(settings) -> Signer:
    """Signs job payloads with GKE_BOT_PLAN_KEY (purpose "job")."""
    return Signer(settings.plan_keys, "job")
