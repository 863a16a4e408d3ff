"""`gke-bot scheduler`: queues the sweeps of the policy's schedules (`sweep: {cron: "0 9 * * 1-5"}`), once per tick.

Every few seconds the scheduler reads the policy file and, for each binding with a `sweep.cron`, works out the
schedule's latest tick (croniter, UTC). A tick not older than GRACE seconds is claimed with one Redis
`SET NX` of a key naming the schedule and the tick; only the process that wins the claim queues the sweep
(bot.work.fleet.start), so a tick runs exactly once however many schedulers run (a second replica for
availability is safe). A scheduler that was down through a tick's grace skips it: the next tick sweeps.

Why not RQ's own `CronScheduler` (rq 2.4+): it takes no lock per tick, so two of them would both queue the
job, and its jobs name a function and fixed arguments, while the bot's workers only run signed payloads
(bot.work.rqsafe).
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import datetime, timezone

from bot.config import ConfigError, Settings

log = logging.getLogger(__name__)

GRACE = 300  # seconds after a tick during which it may still be claimed


def latest_tick(cron: str, now: float) -> float:
    """The schedule's latest tick at or before `now` (epoch seconds, UTC)."""
    from croniter import croniter
    base = datetime.fromtimestamp(now + 1, tz=timezone.utc)  # get_prev is strictly before its base
    return croniter(cron, base).get_prev(datetime).timestamp()


def claim_key(binding_name: str, cron: str, tick: float) -> str:
    digest = hashlib.sha256(f"{binding_name}\0{cron}".encode()).hexdigest()[:16]
    return f"gke-bot:cron:{digest}:{int(tick)}"


class Scheduler:
    def __init__(self, settings: Settings, redis=None, every: float = 15.0, clock=time.time):
        from redis import Redis
        self.settings = settings
        self.redis = redis or Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
        self.every, self.clock = max(0.1, every), clock
        self._stop = threading.Event()

    def due(self) -> list[tuple[str, str]]:
        """Claim every schedule's current tick; (binding name, channel) of the sweeps this process must queue."""
        return [(name, channel) for name, channel, _key in self._claim()]

    def _claim(self) -> list[tuple[str, str, str]]:
        """due(), with the claim key of each."""
        from bot.policy import load
        now = self.clock()
        out = []
        for b in load(self.settings).bindings:
            spec = b.sweep
            if spec is None or not spec.cron:
                continue
            tick = latest_tick(spec.cron, now)
            if now - tick > GRACE:
                continue
            key = claim_key(b.name, spec.cron, tick)
            if self.redis.set(key, "1", nx=True, ex=GRACE + 24 * 3600):
                channel = spec.channel or next(c for c in b.channels if c not in ("*", "direct"))
                out.append((b.name, channel, key))
        return out

    def tick(self) -> list[str]:
        from bot.work.fleet import start
        from bot.work.jobs import check_budget, post_report
        started = []
        for name, channel, key in self._claim():
            try:
                started.append(start(self.settings, channel, post_report, check_budget(self.settings)))
                log.info("scheduled sweep of %s queued (%s)", name, channel)
            except ConfigError as err:
                log.warning("scheduled sweep of %s not queued: %s", name, err)
            except Exception:  # noqa: BLE001 - one binding's failure must not drop the other claimed ticks
                log.warning("scheduled sweep of %s not queued; the tick is released for the next look", name,
                            exc_info=True)
                try:  # unclaimed, the tick is taken again (here or by another scheduler) within its grace
                    self.redis.delete(key)
                except Exception:  # noqa: BLE001 - Redis down: the tick is lost, the next one sweeps
                    log.warning("could not release the tick of %s", name, exc_info=True)
        return started

    def run(self, once: bool = False) -> None:
        while True:
            try:
                self.tick()
            except ConfigError:
                raise
            except Exception:  # noqa: BLE001 - Redis may be down: try again at the next look
                log.warning("scheduler look failed", exc_info=True)
            if once or self._stop.wait(self.every):
                return

    def stop(self) -> None:
        self._stop.set()
