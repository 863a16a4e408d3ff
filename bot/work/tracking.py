"""Every queued diagnosis is tracked until it has answered (see bot.work.janitor for who acts on it).

The edge records each job it queues (`track`). The job keeps a short-lived heartbeat key while it runs
(`Heartbeat`) and marks itself answered when it has posted (`answered`).
"""
from __future__ import annotations

import json
import logging
import threading
import time

log = logging.getLogger(__name__)

OPEN = "gke-bot:open"  # sorted set: job id → time queued
DATA = "gke-bot:open:data"  # hash: job id → payload JSON
BEAT_TTL = 6  # seconds a heartbeat lasts
BEAT_EVERY = 2


def track(redis, job_id: str, payload: dict) -> None:
    with redis.pipeline() as p:
        p.hset(DATA, job_id, json.dumps(payload))
        p.zadd(OPEN, {job_id: time.time()})
        p.execute()


def answered(redis, job_id: str, coalesce_key: str = "") -> None:
    """The job is over: stop tracking it, and let an identical diagnosis run again."""
    with redis.pipeline() as p:
        p.zrem(OPEN, job_id)
        p.hdel(DATA, job_id)
        p.delete(f"gke-bot:alive:{job_id}")
        if coalesce_key:
            p.delete(f"gke-bot:claim:{coalesce_key}")
        p.execute()


class Heartbeat:
    """While a job runs: `gke-bot:alive:<job id>` exists (refreshed every 2 s, expires in 6 s)."""

    def __init__(self, redis, job_id: str):
        self.redis, self.key = redis, f"gke-bot:alive:{job_id}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="heartbeat")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.redis.set(self.key, "1", ex=BEAT_TTL)
            except Exception:  # noqa: BLE001 - a missed beat is retried
                log.warning("heartbeat failed")
            self._stop.wait(BEAT_EVERY)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
