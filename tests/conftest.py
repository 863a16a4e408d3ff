"""The test rig: real redis-server, fake Slack / Google / Kubernetes on loopback, the product's
own processes (`gke-bot serve`, `gke-bot worker`) where a test needs them end to end."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bot.config import Settings
from tests.fakes.google import FakeGoogle

GUARD_DIR = Path(__file__).resolve().parent / "loopback_guard"
sys.path.insert(0, str(GUARD_DIR))
from tests_loopback import blocked as _blocked, install as _install_guard  # noqa: E402

_install_guard()  # this process: loopback only (subprocesses get it through PYTHONPATH, see Proc)

SIGNING_SECRET = "test-signing-secret"
PLAN_KEY = "test-plan-key-0123456789abcdef0123456789abcdef"
BOT_TOKEN = "xoxb-test"
APP_TOKEN = "xapp-test"
GKE1 = "gcpdiag-gke1-aaaa"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


class RedisServer:
    def __init__(self):
        exe = shutil.which("redis-server")
        if not exe:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.exe = exe
        self.port = free_port()
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis
        client = redis.Redis(port=self.port)
        wait_until(lambda: _ping(client), 10, what="redis-server")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _ping(client) -> bool:
    import redis
    try:
        return client.ping()
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    import redis
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture
def google():
    fake = FakeGoogle()
    fake.start()
    fake.load_fixture("gke1")
    yield fake
    fake.stop()


@pytest.fixture
def sa_key(google, tmp_path) -> str:
    return str(google.write_service_account_key(tmp_path / "sa-key.json"))


@pytest.fixture
def kube(google):
    from tests.fakes.kube import FakeKube
    fake = FakeKube(token_ok=google.token_valid)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def slack():
    from tests.fakes.slack import FakeSlack
    fake = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN)
    fake.start()
    fake.add_channel("C123", member=True, members=["U123", "UAPPROVER", "UAPPROVER2", "UGROUPIE", "UNOBODY"])
    fake.add_user("U123", email="alice@example.com", name="alice")
    fake.add_user("UAPPROVER", email="olga@example.com", name="olga")
    fake.add_user("UAPPROVER2", email="pat@example.com", name="pat")
    fake.add_user("UGROUPIE", email="gus@example.com", name="gus")
    fake.add_user("UNOBODY", email="nobody@example.com", name="nobody")
    fake.add_usergroup("SAPPROVERS", ["UGROUPIE"])
    yield fake
    fake.stop()


@pytest.fixture
def env(google, slack, sa_key, monkeypatch) -> dict:
    """The product's environment, also applied to this process (for in-process parts)."""
    values = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "GKE_BOT_GOOGLE_API_URL": google.url,
        "GOOGLE_APPLICATION_CREDENTIALS": sa_key,
        "GKE_BOT_PROJECTS": GKE1,
        "GKE_BOT_APPROVERS": "UAPPROVER,UAPPROVER2,SAPPROVERS",
        "GKE_BOT_PLAN_KEY": PLAN_KEY,
        "GKE_BOT_OPERATION_POLL_SECONDS": "0.05",
        "GKE_BOT_RECHECK_WAIT": "0.05",  # the pause between re-checks after a fix (IAM propagation)
        "NO_PROXY": "127.0.0.1,localhost",
    }
    monkeypatch.delenv("REDIS_URL", raising=False)
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


@pytest.fixture
def settings(env) -> Settings:
    return Settings.from_env()


def serve_cluster(google: FakeGoogle, kube, project: str, name: str) -> dict:
    """Point a recorded cluster at the fake Kubernetes API (endpoint and CA)."""
    cluster = google.cluster(project, name)
    cluster["endpoint"] = kube.endpoint
    cluster.setdefault("masterAuth", {})["clusterCaCertificate"] = kube.ca_b64
    return cluster


def product_env(env: dict) -> dict:
    """The environment of a product subprocess: `env` plus the loopback guard, nothing inherited
    from this process's Slack/Google/Redis settings."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GKE_BOT_", "REDIS_"))}
    full.update(env)
    full["PYTHONUNBUFFERED"] = "1"
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GUARD_DIR), str(ROOT), full.get("PYTHONPATH")]))
    return full


class Proc:
    """A `gke-bot` subprocess with its output captured to a file (shown when a test fails)."""

    def __init__(self, args: list[str], env: dict, log: Path):
        self.log_path = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", *args], env=product_env(env),
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def assert_loopback_only(self) -> None:
        assert "loopback guard: refused" not in self.output(), self.output()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill_group(self) -> None:
        """SIGKILL the process and every child it forked (e.g. an RQ work horse): a crash."""
        import signal
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, sig=None) -> None:
        if self.alive():
            self.proc.terminate() if sig is None else self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@pytest.fixture
def spawn(tmp_path):
    procs: list[Proc] = []

    def start(args: list[str], env: dict, name: str) -> Proc:
        p = Proc(args, env, tmp_path / f"{name}.log")
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()
        if os.environ.get("GKE_BOT_TEST_LOGS"):
            print(p.output())
    for p in procs:
        p.assert_loopback_only()


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Caches that outlive one job in a real process must not leak between tests."""
    from bot import directory
    from checks import gateway
    gateway._role_cache.clear()
    directory.clear()
    yield


@pytest.fixture(autouse=True)
def _no_traffic_beyond_loopback():
    before = len(_blocked)
    yield
    assert _blocked[before:] == [], f"non-loopback traffic attempted: {_blocked[before:]}"


@pytest.fixture
def served(spawn, env, redis_url):
    """A real `gke-bot serve` on a free port backed by the real Redis, plus a real `gke-bot worker`."""
    return serve_with(spawn, env, redis_url)


def serve_with(spawn, env, redis_url, **extra):
    full = dict(env, REDIS_URL=redis_url, GKE_BOT_JANITOR_SECONDS="0.5")
    full.update(extra)
    base, server = start_serve(spawn, full)
    worker = spawn(["worker"], full, "worker")
    return {"url": base, "server": server, "worker": worker, "env": full}


def start_serve(spawn, env, *args: str) -> tuple[str, "Proc"]:
    """A real `gke-bot serve` on a free loopback port, ready (its /healthz answers 200): (base URL, process)."""
    port = free_port()
    server = spawn(["serve", "--port", str(port), "--host", "127.0.0.1", *args], env, "serve")
    base = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return requests.get(f"{base}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False
    try:
        wait_until(ready, 20, what="gke-bot serve /healthz")
    except AssertionError:
        raise AssertionError("serve did not start:\n" + server.output())
    return base, server


class PubSubEmulator:
    """The real Pub/Sub emulator (`gcloud beta emulators pubsub start`, package google-cloud-cli-pubsub-emulator)
    on a free loopback port; clients reach it through PUBSUB_EMULATOR_HOST."""

    def __init__(self):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc = None

    @staticmethod
    def missing() -> str:
        gcloud = shutil.which("gcloud")
        if not gcloud:
            return "gcloud is not installed"
        root = Path(os.path.realpath(gcloud)).parents[1]
        if not any((d / "platform" / "pubsub-emulator").exists() for d in (root, Path("/usr/lib/google-cloud-sdk"))):
            return "the Pub/Sub emulator is not installed (apt-get install google-cloud-cli-pubsub-emulator)"
        if not shutil.which("java"):
            return "java is not installed (the Pub/Sub emulator needs it)"
        return ""

    def start(self) -> "PubSubEmulator":
        self.proc = subprocess.Popen(["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port={self.host}",
                                      "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

        def up():
            with socket.socket() as s:
                s.settimeout(0.5)
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_until(up, 60, 0.2, what="the Pub/Sub emulator")
        return self

    def stop(self) -> None:
        import signal
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # gcloud and the emulator's java process
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@pytest.fixture(scope="session")
def pubsub_emulator():
    why = PubSubEmulator.missing()
    if why:
        if os.environ.get("GKE_BOT_REQUIRE_TOOLS") == "1":
            pytest.fail(why)
        pytest.skip(why)
    emu = PubSubEmulator().start()
    yield emu
    emu.stop()
