"""The HTTP edge of a real `gke-bot serve`: bodies over 1 MiB get 413 before they are read (memory stays flat),
malformed signature headers get 401 (never 500), and /metrics can live on a port of its own."""
from __future__ import annotations

import socket
import time

import pytest
import requests

from bot.server import make_wsgi
from bot.work.queue import InProcessQueue
from tests.conftest import SIGNING_SECRET, free_port, start_serve, wait_until
from tests.fakes.base import ServerThread
from tests.fakes.slack import sign, slash_command_body

MIB = 1024 * 1024


@pytest.fixture
def serve(spawn, env):
    """A real `gke-bot serve` (in-process queue), optionally with more arguments."""
    def start(*extra: str) -> dict:
        base, proc = start_serve(spawn, env, *extra)
        return {"url": base, "port": int(base.rsplit(":", 1)[1]), "proc": proc}
    return start


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def raw_post(port: int, headers: dict, body_chunks, chunked: bool = False) -> str:
    """POST /slack/events over a plain socket, sending what it can; returns the status line the server gave."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in
                                                                             headers.items()) + "\r\n"
        try:
            s.sendall(head.encode())
            for chunk in body_chunks:
                s.sendall((f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if chunked else chunk)
            if chunked:
                s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed without reading the rest: the point
        data = b""
        try:
            while b"\r\n" not in data:
                got = s.recv(4096)
                if not got:
                    break
                data += got
        except ConnectionResetError:
            pass
    return data.split(b"\r\n", 1)[0].decode()


def test_big_bodies_get_413_before_they_are_read_and_memory_stays_flat(serve):
    srv = serve()
    pid = srv["proc"].proc.pid
    ok = requests.post(f"{srv['url']}/slack/events", data=b"x" * 1000, timeout=5)
    assert ok.status_code == 401  # a small unsigned body reaches the signature check
    before = rss_kib(pid)
    declared = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(600 * MIB)}
    for _ in range(3):  # 600 MiB announced, 16 MiB actually sent: refused on the header
        assert raw_post(srv["port"], declared, (b"x" * MIB for _ in range(16))).startswith("HTTP/1.1 413")
    chunked = {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"}
    for _ in range(3):  # no length at all: cut at the cap while receiving
        assert raw_post(srv["port"], chunked, (b"y" * (256 * 1024) for _ in range(40)), chunked=True) \
            .startswith("HTTP/1.1 413")
    just_over = requests.post(f"{srv['url']}/slack/events", data=b"z" * (MIB + 1),
                              headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert just_over.status_code == 413
    assert rss_kib(pid) - before < 20 * 1024, "serve grew while refusing big bodies"
    assert srv["proc"].alive()
    assert requests.get(f"{srv['url']}/healthz", timeout=5).status_code == 200


def test_the_app_itself_caps_bodies_without_a_length(settings, slack, google):
    """The same limit when another WSGI server (here werkzeug's) hands over a body without Content-Length."""
    srv = ServerThread(make_wsgi(settings, InProcessQueue(settings))).start()
    try:
        url = f"http://127.0.0.1:{srv.port}/slack/events"
        big = requests.post(url, data=(b"x" * (64 * 1024) for _ in range(20)), timeout=10)  # chunked, 1.25 MiB
        assert big.status_code == 413
        small = requests.post(url, data=(b"x" * 1024 for _ in range(4)), timeout=10)
        assert small.status_code == 401
    finally:
        srv.stop()


@pytest.mark.parametrize("headers", [
    {"X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=" + "0" * 64},
    {"X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": "v0=" + "0" * 64},
    {"X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": "v0=" + "0" * 64},
    {"X-Slack-Signature": "v0=" + "0" * 64},
    {"X-Slack-Request-Timestamp": str(int(time.time()))},
    {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=zz"},
    {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "sha1=" + "0" * 40},
    {},
])
def test_malformed_signature_headers_get_401_never_500(serve, slack, headers):
    srv = serve()
    body = slash_command_body(text="why-403 gke1", response_url=slack.new_response_url())
    resp = requests.post(f"{srv['url']}/slack/events", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded", **headers}, timeout=5)
    assert resp.status_code == 401, resp.text
    good = requests.post(f"{srv['url']}/slack/events", data=body, headers=sign(SIGNING_SECRET, body), timeout=5)
    assert good.status_code == 200
    assert "Traceback" not in srv["proc"].output()


def test_metrics_on_a_port_of_their_own(serve):
    metrics_port = free_port()
    srv = serve("--metrics-port", str(metrics_port))
    assert requests.get(f"{srv['url']}/metrics", timeout=5).status_code == 404  # not on Slack's side
    got = wait_until(lambda: _get(f"http://127.0.0.1:{metrics_port}/metrics"), 10, what="the metrics listener")
    assert got.status_code == 200 and "gke_bot_commands_total" in got.text


def test_metrics_port_from_the_environment(spawn, env):
    metrics_port = free_port()
    base, _ = start_serve(spawn, dict(env, GKE_BOT_METRICS_PORT=str(metrics_port)))
    got = wait_until(lambda: _get(f"http://127.0.0.1:{metrics_port}/metrics"), 20, what="the metrics listener")
    assert "gke_bot_jobs_enqueued_total" in got.text
    assert requests.get(f"{base}/metrics", timeout=5).status_code == 404


def _get(url):
    try:
        return requests.get(url, timeout=1)
    except requests.RequestException:
        return None
