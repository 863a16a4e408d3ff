"""The worker container's liveness probe (`python -m bot.work.probe worker`, deploy/base/worker.yaml)
against a real redis-server and a real `gke-bot worker` process."""
from __future__ import annotations

import subprocess
import sys

import redis

from tests.conftest import free_port, product_env, wait_until


def probe(redis_url: str | None) -> subprocess.CompletedProcess:
    env = {"REDIS_URL": redis_url} if redis_url else {}
    return subprocess.run([sys.executable, "-m", "bot.work.probe", "worker"], env=product_env(env),
                          capture_output=True, text=True, timeout=60)


def test_fails_while_no_worker_of_this_host_is_registered(redis_url):
    out = probe(redis_url)
    assert out.returncode == 1, out
    assert "no RQ worker" in out.stderr


def test_passes_once_the_worker_runs_and_fails_when_it_stops_beating(redis_url, spawn, env):
    worker = spawn(["worker"], dict(env, REDIS_URL=redis_url), "worker")
    wait_until(lambda: probe(redis_url).returncode == 0, 30, interval=0.5, what="probe to pass")
    assert worker.alive()
    # A wedged worker: its registration stays but the heartbeat is old.
    conn = redis.Redis.from_url(redis_url)
    keys = [k for k in conn.smembers("rq:workers")]
    assert keys
    worker.proc.send_signal(__import__("signal").SIGSTOP)
    try:
        for key in keys:
            conn.hset(key, "last_heartbeat", "2020-01-01T00:00:00.000000Z")
        out = probe(redis_url)
        assert out.returncode == 1, out
        assert "no heartbeat" in out.stderr
    finally:
        worker.proc.send_signal(__import__("signal").SIGCONT)


def test_passes_when_redis_is_unreachable():
    # the worker waits for Redis by itself: a restart would not help
    out = probe(f"redis://127.0.0.1:{free_port()}/0")
    assert out.returncode == 0, out
    assert "unreachable" in out.stdout


def test_needs_redis_url_and_never_prints_the_password(redis_server):
    out = probe(None)
    assert out.returncode == 1 and "REDIS_URL" in out.stderr
    secret = "s3cr3t-pw"
    out = probe(f"redis://:{secret}@127.0.0.1:{free_port()}/0")
    assert secret not in out.stdout + out.stderr


def test_settings_never_show_the_redis_password():
    """deploy/ puts the Redis password into REDIS_URL (from the Secret): a repr of the settings hides it."""
    from bot.config import Settings
    settings = Settings.from_env({"REDIS_URL": "redis://:s3cr3t-pw@gke-bot-redis:6379/0"})
    assert settings.redis_url.endswith("@gke-bot-redis:6379/0")
    assert "s3cr3t-pw" not in repr(settings)
