"""Liveness probe of a `gke-bot worker` container: `python -m bot.work.probe worker`.

Exit 0 when the RQ worker of this host (a pod's hostname is its name) is registered in Redis with a
recent heartbeat, or when Redis cannot be reached: the worker waits for Redis by itself, so
restarting it then would only add churn. Exit 1, with one line on stderr, when Redis answers but no
live worker of this host is registered (the process is wedged or lost its registration).

The probe reads only REDIS_URL and prints no secret (the URL's password is never shown).
"""
from __future__ import annotations

import socket
import sys
from datetime import datetime, timezone

MAX_AGE = 900  # seconds; RQ heartbeats at least every worker_ttl (420 s) and expires the key 60 s later


def worker_alive(redis_url: str, hostname: str, max_age: float = MAX_AGE) -> tuple[bool, str]:
    from redis import Redis
    from redis.exceptions import RedisError
    from rq import Worker

    conn = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=3)
    try:
        conn.ping()
    except RedisError as exc:
        return True, f"Redis unreachable ({type(exc).__name__}); the worker waits for it by itself"
    try:
        workers = [w for w in Worker.all(connection=conn) if w.hostname == hostname]
    except RedisError as exc:
        return True, f"Redis unreachable ({type(exc).__name__}); the worker waits for it by itself"
    now = datetime.now(timezone.utc)
    for w in workers:
        beat = w.last_heartbeat
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=timezone.utc)
        if beat is not None and (now - beat).total_seconds() <= max_age:
            return True, f"worker {w.name} on {hostname}: last heartbeat {int((now - beat).total_seconds())} s ago"
    if workers:
        return False, f"the RQ worker(s) of {hostname} sent no heartbeat for over {max_age} s"
    return False, f"no RQ worker of {hostname} is registered in Redis"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["worker"]:
        print("usage: python -m bot.work.probe worker", file=sys.stderr)
        return 2
    from bot.config import ConfigError, Settings
    try:
        settings = Settings.from_env().require("REDIS_URL")
    except ConfigError as err:
        print(f"probe: {err}", file=sys.stderr)
        return 1
    ok, why = worker_alive(settings.redis_url, socket.gethostname())
    print(f"probe: {why}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
