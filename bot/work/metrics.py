"""Prometheus metrics of a `gke-bot worker`, read from Redis at scrape time.

RQ runs every job in a forked work horse, so a counter incremented inside a job dies with the horse. What a
worker did is kept in Redis by RQ itself (the worker's hash: successful and failed job counts, working time,
last heartbeat); this collector reads it, with the queue depth and the jobs the janitor tracks, when
Prometheus scrapes `GKE_BOT_METRICS_PORT`. A Redis outage is a metric (`gke_bot_redis_up 0`), not an error.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.work.tracking import OPEN

log = logging.getLogger(__name__)


class WorkerCollector(Collector):
    """One worker process: `current()` gives the RQ worker's Redis key (it changes when RQ's loop restarts)."""

    def __init__(self, conn, queue_name: str, current):
        self.conn = conn
        self.queue_name = queue_name
        self.current = current

    def describe(self):
        return []  # collected at scrape time only; names are not known to clash

    def collect(self):
        up = GaugeMetricFamily("gke_bot_redis_up", "1 when this worker's Redis answered the scrape")
        jobs = CounterMetricFamily("gke_bot_worker_jobs", "Jobs this worker finished, by outcome",
                                   labels=["outcome"])
        working = CounterMetricFamily("gke_bot_worker_working_seconds", "Time this worker spent running jobs")
        beat = GaugeMetricFamily("gke_bot_worker_heartbeat_age_seconds", "Seconds since this worker's last heartbeat")
        queued = GaugeMetricFamily("gke_bot_queue_jobs", "Jobs waiting in the queue", labels=["queue"])
        open_jobs = GaugeMetricFamily("gke_bot_open_jobs", "Diagnoses queued or running, tracked by the janitor")
        try:
            key = self.current()
            with self.conn.pipeline(transaction=False) as p:
                p.hgetall(key) if key else p.echo("")
                p.llen(f"rq:queue:{self.queue_name}")
                p.zcard(OPEN)
                data, depth, tracked = p.execute()
        except Exception as exc:  # noqa: BLE001 - redis.RedisError and socket errors: report, never raise
            log.warning("metrics: Redis unreachable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        data = {k.decode(): v.decode() for k, v in data.items()} if isinstance(data, dict) else {}
        jobs.add_metric(["succeeded"], int(data.get("successful_job_count") or 0))
        jobs.add_metric(["failed"], int(data.get("failed_job_count") or 0))
        yield jobs
        working.add_metric([], float(data.get("total_working_time") or 0))
        yield working
        if data.get("last_heartbeat"):
            try:
                when = datetime.fromisoformat(data["last_heartbeat"].replace("Z", "+00:00"))
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                beat.add_metric([], max(0.0, time.time() - when.timestamp()))
                yield beat
            except ValueError:
                pass
        queued.add_metric([self.queue_name], int(depth))
        yield queued
        open_jobs.add_metric([], int(tracked))
        yield open_jobs
