"""A local rig for benchmarks: fake Slack and fake Google on loopback, a `gke-bot serve`."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.google import FakeGoogle  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402

SECRET = "bench-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def redis_server():
    """A throwaway redis-server on a free loopback port."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.RedisError:
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def rig(redis_url: str = ""):
    import logging
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    google, slack = FakeGoogle(), FakeSlack(bot_token="xoxb-bench", app_token="xapp-bench")
    google.start()
    slack.start()
    google.load_fixture("gke1")
    slack.add_channel("C123", member=True)
    slack.add_user("U123", email="alice@example.com")
    tmp = tempfile.mkdtemp()
    key = google.write_service_account_key(Path(tmp) / "key.json")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GKE_BOT_", "REDIS_"))}
    env.update(SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack.api_url,
               GKE_BOT_GOOGLE_API_URL=google.url, GOOGLE_APPLICATION_CREDENTIALS=str(key),
               GKE_BOT_PROJECTS="gcpdiag-gke1-aaaa")
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["GKE_BOT_PLAN_KEY"] = "bench-plan-key-0123456789abcdef0123456789abcdef"
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if requests.get(f"{url}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        yield {"url": url, "slack": slack, "google": google, "env": env}
    finally:
        proc.terminate()
        proc.wait(10)
        slack.stop()
        google.stop()
