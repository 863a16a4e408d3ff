"""The Redis of deploy/ run for real: the rendered redis.conf and start command on a real redis-server
(on loopback, paths moved into a temporary folder) refuse a client without the password, accept the
bot's REDIS_URL as the Deployments compose it, keep an append-only file, and pass their probe."""
from __future__ import annotations

import re
import secrets
import shutil
import subprocess

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import free_port, wait_until
from tests.deploy import containers, named, of_kind, pod_spec, render


def k8s_expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of command/args/env values: $(VAR) from env, $$ → $, the rest unchanged."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


@pytest.fixture
def deployed_redis(tmp_path):
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        pytest.skip("redis-server and redis-cli are needed")
    docs = render("http")
    spec = pod_spec(named(docs, "Deployment", "gke-bot-redis"))
    c = spec["containers"][0]
    conf = next(d for d in of_kind(docs, "ConfigMap") if "redis.conf" in d["data"])["data"]["redis.conf"]
    port, password = free_port(), secrets.token_hex(32)
    paths = {"/run/secrets/redis": tmp_path / "secrets", "/run/redis": tmp_path / "run",
             "/etc/redis": tmp_path / "etc", "/data": tmp_path / "data"}
    for p in paths.values():
        p.mkdir()
    (paths["/run/secrets/redis"] / "REDIS_PASSWORD").write_text(password)

    def moved(text: str) -> str:
        for old, new in paths.items():
            text = text.replace(old, str(new))
        return text
    conf = moved(conf).replace("bind 0.0.0.0", "bind 127.0.0.1").replace("port 6379", f"port {port}")
    (paths["/etc/redis"] / "redis.conf").write_text(conf)
    script = moved(k8s_expand(" ".join(c["args"]), {}))
    proc = subprocess.Popen([*c["command"], script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _answers(port), 15, what="redis-server from the deployment's command")
        yield {"port": port, "password": password, "container": c, "paths": paths, "docs": docs, "moved": moved}
    finally:
        proc.terminate()
        proc.wait(10)


def client(port: int, **kw) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=2, retry=Retry(NoBackoff(), 0), **kw)


def _answers(port: int) -> bool:
    try:
        client(port).ping()
    except redis.exceptions.AuthenticationError:
        return True
    except redis.exceptions.ResponseError as exc:
        return "NOAUTH" in str(exc)
    except redis.exceptions.RedisError:
        return False
    return True


def test_redis_refuses_clients_without_the_password(deployed_redis):
    with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError), match="(?i)auth"):
        client(deployed_redis["port"]).set("k", "v")
    with pytest.raises(redis.exceptions.AuthenticationError):
        client(deployed_redis["port"], password="wrong").ping()


def test_the_bots_redis_url_connects_and_persists(deployed_redis):
    """REDIS_URL as the bot's Deployments compose it from the Secret, host and port moved to loopback."""
    for w in [d for d in deployed_redis["docs"] if d["kind"] == "Deployment" and d["metadata"]["name"] != "gke-bot-redis"]:
        env = {e["name"]: e.get("value") for c in containers(pod_spec(w)) for e in c.get("env") or []}
        url = k8s_expand(env["REDIS_URL"], {"REDIS_PASSWORD": deployed_redis["password"]})
        url = url.replace("@gke-bot-redis:6379/", f"@127.0.0.1:{deployed_redis['port']}/")
        conn = redis.Redis.from_url(url)
        assert conn.ping() and conn.set("gke-bot:probe", "1")
        info = conn.info("persistence")
        assert info["aof_enabled"] == 1
        with pytest.raises(redis.exceptions.ResponseError):
            conn.execute_command("CONFIG", "GET", "requirepass")  # renamed away
        assert deployed_redis["password"] not in " ".join(deployed_redis["container"]["args"])
    assert any((deployed_redis["paths"]["/data"]).rglob("*.aof")), "the append-only file is on the data volume"


def test_the_readiness_probe_passes_with_the_password(deployed_redis):
    probe = deployed_redis["container"]["readinessProbe"]["exec"]["command"]
    cmd = [deployed_redis["moved"](a).replace("-h 127.0.0.1", f"-h 127.0.0.1 -p {deployed_redis['port']}")
           for a in probe]
    assert subprocess.run(cmd, timeout=10).returncode == 0
    (deployed_redis["paths"]["/run/secrets/redis"] / "REDIS_PASSWORD").write_text("wrong")
    assert subprocess.run(cmd, timeout=10, capture_output=True).returncode != 0
