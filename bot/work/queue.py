"""The job queue: RQ on Redis when REDIS_URL is set, else a bounded in-process thread pool.

Both run the same job function (`bot.work.jobs.run_job`) with the same JSON payload. On Redis the
payload is signed (GKE_BOT_PLAN_KEY; see bot.signing) and workers run nothing else (bot.work.rqsafe).
The queue also offers `claim(key)`, a once-only marker (Redis SET NX) used to drop Slack retries and
double submissions.
"""
from __future__ import annotations

import threading
import time

from bot.config import Settings
from bot.work.payload import JOB_FUNC, QUEUE_NAME, UNSIGNED, job_signer
from bot.work.pool import BoundedPool, PoolFull

__all__ = ["JOB_FUNC", "QUEUE_NAME", "InProcessQueue", "QueueFull", "QueueUnavailable", "RQQueue", "make_queue"]


class QueueUnavailable(Exception):
    """The queue backend cannot take the job now."""


class QueueFull(QueueUnavailable):
    """The in-process queue's backlog is full."""


class InProcessQueue:
    backend = "inprocess"

    def __init__(self, settings: Settings, max_workers: int | None = None):
        self.settings = settings
        self._pool = BoundedPool(max_workers or settings.inprocess_workers, settings.inprocess_backlog, "job")
        self._claims: dict[str, float] = {}
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def full(self) -> bool:
        return self._pool.full()

    def enqueue(self, payload: dict) -> str:
        from bot.work.jobs import run_trusted

        def run():
            try:
                run_trusted(payload, self.settings)  # this process's settings, not the environment read again
            finally:
                if payload.get("coalesce_key"):
                    self.release(payload["coalesce_key"])
        try:
            self._pool.submit(run)
        except PoolFull:
            raise QueueFull("the in-process queue is full") from None
        return "inprocess"

    def release(self, key: str) -> None:
        with self._lock:
            self._claims.pop(key, None)

    def hits(self, key: str, window: int) -> int:
        """Count one more event for `key` in a window of `window` seconds that opens at its first event."""
        now = time.monotonic()
        with self._lock:
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            count, exp = self._counts.get(key, (0, now + window))
            self._counts[key] = (count + 1, exp)
            return count + 1

    def admit(self, key: str, limits: list[tuple[str, int]], ttl: int = 600) -> tuple[bool, list[int]]:
        """claim(key), and count one event against each (limit key, window): one step."""
        return self.claim(key, ttl), [self.hits(k, w) for k, w in limits]

    def claim(self, key: str, ttl: int = 600) -> bool:
        now = time.monotonic()
        with self._lock:
            for k in [k for k, exp in self._claims.items() if exp < now]:
                del self._claims[k]
            if key in self._claims:
                return False
            self._claims[key] = now + ttl
            return True

    def healthy(self) -> bool:
        return True

    @property
    def redis(self):
        return None


class RQQueue:
    backend = "rq"

    def __init__(self, settings: Settings):
        from redis import Redis
        self.settings = settings
        self.signer = job_signer(settings)
        self._redis = Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2,
                                     health_check_interval=10)

    def full(self) -> bool:
        return False

    @property
    def redis(self):
        return self._redis

    @property
    def serializer(self):
        from rq.serializers import JSONSerializer
        return JSONSerializer

    def _queue(self):
        from rq import Queue
        return Queue(QUEUE_NAME, connection=self._redis, serializer=self.serializer)

    def enqueue(self, payload: dict) -> str:
        """Queue a job; diagnoses are tracked until they have answered (see bot.work.tracking)."""
        import uuid

        from redis.exceptions import RedisError

        from bot.work.tracking import track
        job_id = uuid.uuid4().hex
        payload = dict(self.signer.sign(payload, skip=UNSIGNED), job_id=job_id)
        try:
            if payload.get("kind", "diagnose") == "diagnose":
                track(self._redis, job_id, payload)
            timeout = (self.settings.remediation_timeout if payload.get("kind") == "remediate"
                       else self.settings.job_timeout)
            self._queue().enqueue(JOB_FUNC, payload, job_id=job_id, job_timeout=timeout,
                                  result_ttl=3600, failure_ttl=86400)
        except RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
        return job_id

    def claim(self, key: str, ttl: int = 600) -> bool:
        from redis.exceptions import RedisError
        try:
            return bool(self._redis.set(f"gke-bot:claim:{key}", "1", nx=True, ex=ttl))
        except RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc

    def admit(self, key: str, limits: list[tuple[str, int]], ttl: int = 600) -> tuple[bool, list[int]]:
        """claim(key), and count one event against each (limit key, window), in one round trip."""
        from redis.exceptions import RedisError
        try:
            with self._redis.pipeline(transaction=False) as p:
                p.set(f"gke-bot:claim:{key}", "1", nx=True, ex=ttl)
                for k, window in limits:
                    p.set(f"gke-bot:rate:{k}", 0, ex=window, nx=True)
                    p.incr(f"gke-bot:rate:{k}")
                out = p.execute()
        except RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc
        return bool(out[0]), [int(n) for n in out[2::2]]

    def release(self, key: str) -> None:
        from redis.exceptions import RedisError
        try:
            self._redis.delete(f"gke-bot:claim:{key}")
        except RedisError as exc:
            raise QueueUnavailable(str(exc)) from exc

    def healthy(self) -> bool:
        from redis.exceptions import RedisError
        try:
            return bool(self._redis.ping())
        except RedisError:
            return False


def make_queue(settings: Settings):
    return RQQueue(settings) if settings.redis_url else InProcessQueue(settings)
