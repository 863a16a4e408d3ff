"""`gke-bot worker --metrics-port`: what the worker did, read from Redis at scrape time (jobs run in forked
work horses whose own counters die with them), over the real wire: a real `gke-bot serve`, a real worker
process, a real redis-server."""
from __future__ import annotations

import re

import requests

from tests.conftest import RedisServer, free_port, start_serve, wait_until
from tests.helpers import AGENT, GKE1, drop_binding
from tests.test_e2e import post
from tests.test_edge import add_cluster_x, final_parent


def scrape(port: int) -> dict[str, float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(gke_bot_[^\s]+) ([0-9.e+-]+)$", text, re.M)}


def start_worker(spawn, env, redis_url) -> tuple[int, object]:
    port = free_port()
    worker = spawn(["worker", "--metrics-port", str(port), "--host", "127.0.0.1"],
                   dict(env, REDIS_URL=redis_url, GKE_BOT_JANITOR_SECONDS="0.5"), "worker")

    def up():
        try:
            return scrape(port)
        except requests.RequestException:
            return None
    try:
        wait_until(up, 30, what="worker /metrics")
    except AssertionError:
        raise AssertionError("worker metrics did not start:\n" + worker.output())
    return port, worker


def test_worker_metrics_count_the_jobs_it_ran(spawn, env, redis_url, slack, google):
    port, worker = start_worker(spawn, env, redis_url)
    before = scrape(port)
    assert before["gke_bot_redis_up"] == 1
    assert before['gke_bot_worker_jobs_total{outcome="succeeded"}'] == 0
    base, _server = start_serve(spawn, dict(env, REDIS_URL=redis_url))
    add_cluster_x(google)
    drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    assert post({"url": base}, "why-403 cluster-x").status_code == 200
    final_parent(slack)
    after = wait_until(lambda: (m := scrape(port))['gke_bot_worker_jobs_total{outcome="succeeded"}'] == 1 and m,
                       20, what="a succeeded job in the worker's metrics")
    assert after['gke_bot_worker_jobs_total{outcome="failed"}'] == 0
    assert after["gke_bot_worker_working_seconds_total"] > 0
    assert after['gke_bot_queue_jobs{queue="gke-bot"}'] == 0
    assert 0 <= after["gke_bot_worker_heartbeat_age_seconds"] < 600
    assert worker.alive()


def test_a_redis_outage_is_a_metric_not_a_crash(spawn, env):
    own = RedisServer()
    own.start()
    url = f"redis://127.0.0.1:{own.port}/0"
    try:
        port, worker = start_worker(spawn, env, url)
        assert scrape(port)["gke_bot_redis_up"] == 1
    finally:
        own.stop()
    gone = scrape(port)
    assert gone["gke_bot_redis_up"] == 0 and "gke_bot_worker_jobs_total" not in str(gone)
    assert worker.alive()
    # a worker waiting for Redis still stops when Kubernetes asks it to (SIGTERM), instead of being killed
    wait_until(lambda: "could not connect to Redis" in worker.output(), 30, what="the worker to notice the outage")
    worker.proc.terminate()
    assert worker.proc.wait(8) == 0, worker.output()
