"""One rate limit per Google API for every worker at once: a token bucket in Redis, taken atomically (Lua).

Google's rate quotas are per project and per minute (the container API's and IAM's, for example), and every
worker of the bot spends the same project's quota. Each worker asks the bucket of the API before each request
(`acquire`); the bucket refills at the configured rate and holds at most one second's worth of burst. A 429 seen
by one worker holds the bucket for everybody for its backoff (`backoff`): the whole fleet slows down, not only the
worker that was told. (The workers' clocks feed the bucket: keep them in sync, as on GKE nodes.)

The rates are GKE_BOT_API_RATES (`API=COUNT/SECONDS,…`); the defaults stay under the default quotas with a
margin (see README, "Watching the fleet"). This module is handed to the gateway as its `limiter`:
checks/ never imports it.
"""
from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

# KEYS[1] bucket hash, KEYS[2] hold key; ARGV: rate per ms, capacity, now (ms). Returns ms to wait (0: taken).
_TAKE = """
local hold = redis.call('pttl', KEYS[2])
if hold > 0 then return hold end
local rate, cap, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('hmget', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(b[1]), tonumber(b[2])
if tokens == nil then tokens, at = cap, now end
if now > at then tokens = math.min(cap, tokens + (now - at) * rate) end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('hset', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(now, at)))
redis.call('pexpire', KEYS[1], math.ceil(cap / rate) + 60000)
return wait
"""


class RedisLimiter:
    """Token buckets per API in Redis, shared by every process that uses the same Redis."""

    PREFIX = "gke-bot:bucket:"

    def __init__(self, redis, rates: dict[str, tuple[int, int]] | None = None, clock=time.time, sleep=time.sleep):
        from bot.config import DEFAULT_API_RATES
        self.redis, self.rates = redis, dict(DEFAULT_API_RATES if rates is None else rates)
        self._take = redis.register_script(_TAKE)
        self.clock, self.sleep = clock, sleep

    def acquire(self, api: str, deadline: float | None = None) -> bool:
        """Wait for a token of `api` (no limit configured: at once): True. False when Redis is unreachable: the
        caller sends the request anyway – a Redis outage must not stop diagnoses. TimeoutError when the wait would
        pass `deadline` (time.monotonic()): the caller does not send it (the gateway reports its deadline)."""
        rate = self.rates.get(api)
        if rate is None:
            return True
        count, window = rate
        per_ms = count / (window * 1000.0)
        cap = max(1.0, count / window)  # one second's worth of burst
        while True:
            try:
                wait = int(self._take(keys=[self.PREFIX + api, self.PREFIX + api + ":hold"],
                                      args=[repr(per_ms), repr(cap), int(self.clock() * 1000)]))
            except Exception as exc:  # noqa: BLE001 - redis errors: never block the diagnosis on the limiter
                log.warning("rate limiter unavailable (%s); sending without it", type(exc).__name__)
                return False
            if wait <= 0:
                return True
            if deadline is not None and time.monotonic() + wait / 1000.0 > deadline:
                raise TimeoutError(f"the next {api} token comes after the deadline")
            self.sleep(min(wait, 5000) / 1000.0)

    def backoff(self, api: str, seconds: float) -> None:
        """Google said 429: hold the API's bucket for every worker for `seconds` (a longer hold already set
        stays)."""
        ms = max(1, int(seconds * 1000))
        try:
            key = self.PREFIX + api + ":hold"
            if self.redis.pttl(key) < ms:
                self.redis.set(key, "1", px=ms)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not share a backoff (%s)", type(exc).__name__)


def limiter_for(settings, redis):
    """The shared limiter of these settings, or None without Redis."""
    if redis is None:
        return None
    return RedisLimiter(redis, settings.api_rates)
