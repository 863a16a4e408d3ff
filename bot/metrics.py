"""Prometheus metrics of the Slack edge."""
from __future__ import annotations

from prometheus_client import Counter, Histogram

COMMANDS = Counter("gke_bot_commands_total", "Slash commands and mentions received", ["command", "outcome"])
ENQUEUED = Counter("gke_bot_jobs_enqueued_total", "Diagnosis jobs queued", ["backend"])
QUEUE_ERRORS = Counter("gke_bot_queue_errors_total", "Failures to queue a job")
HANDLER_SECONDS = Histogram("gke_bot_handler_seconds", "Time from request to acknowledgement", ["kind"])
