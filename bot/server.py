"""HTTP mode: Bolt over WSGI served by waitress (multi-threaded), plus /healthz, /livez and /metrics.

`/healthz` says whether the queue is reachable (503 when not: for monitoring); `/livez` only that
this process answers HTTP (the Kubernetes probes and the load balancer's health check: with Redis
down, `serve` still acknowledges Slack and tells users privately that the queue is unavailable, so
it must stay in the load balancer).

The listener facing Slack refuses what it must not read: bodies over 1 MiB (Settings.max_body) get 413
before they are read (by Content-Length, and by a cap on what is read when it is absent; waitress
itself drops larger bodies while receiving them), and malformed signature headers get 401, never 500.
With GKE_BOT_METRICS_PORT (`--metrics-port`), /metrics is served on that port only, not to Slack's side.
"""
from __future__ import annotations

import io
import json
import logging
import re

from prometheus_client import make_wsgi_app
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.app import create_app
from bot.config import Settings
from bot.work.queue import make_queue

log = logging.getLogger(__name__)
SIGNATURE_RE = re.compile(r"^v0=[0-9a-f]{64}$")
TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")


def _answer(start_response, status: str, body: dict, extra: list | None = None):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
                   + (extra or []))
    return [data]


def _body_problem(environ, limit: int) -> str:
    """'' when the body may be read (environ adjusted to a capped copy when its length was not declared),
    else the HTTP status to answer with."""
    length = (environ.get("CONTENT_LENGTH") or "").strip()
    if length:
        if not length.isdigit():
            return "400 Bad Request"
        return "413 Request Entity Too Large" if int(length) > limit else ""
    stream = environ.get("wsgi.input")
    if stream is None:
        return ""
    data = stream.read(limit + 1)  # no declared length: read at most one byte past the cap
    if len(data) > limit:
        return "413 Request Entity Too Large"
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    return ""


def _signature_headers_ok(environ) -> bool:
    """Slack's signature headers are present and well-formed (Bolt then verifies the signature itself)."""
    ts = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
    sig = environ.get("HTTP_X_SLACK_SIGNATURE", "")
    return bool(TIMESTAMP_RE.match(ts) and SIGNATURE_RE.match(sig))


def make_wsgi(settings: Settings, queue=None, metrics: bool | None = None):
    """The app on the listener facing Slack; /metrics only when `metrics` (default: no separate port)."""
    queue = queue or make_queue(settings)
    slack = SlackRequestHandler(create_app(settings, queue))
    serve_metrics = (not settings.metrics_port) if metrics is None else metrics
    metrics_app = make_wsgi_app()

    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/slack/events":
            if environ.get("REQUEST_METHOD") != "POST":
                start_response("405 Method Not Allowed", [("Allow", "POST")])
                return [b""]
            problem = _body_problem(environ, settings.max_body)
            if problem:
                return _answer(start_response, problem, {"error": problem.split(" ", 1)[1].lower()},
                               [("Connection", "close")])
            if not _signature_headers_ok(environ):
                return _answer(start_response, "401 Unauthorized", {"error": "invalid request"})
            return slack(environ, start_response)
        if path == "/healthz":
            ok = queue.healthy()
            return _answer(start_response, "200 OK" if ok else "503 Service Unavailable",
                           {"ok": ok, "queue": queue.backend})
        if path == "/livez":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        if path == "/metrics" and serve_metrics:
            return metrics_app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return application


def start_metrics(settings: Settings, host: str) -> None:
    """/metrics on its own port (GKE_BOT_METRICS_PORT), in a daemon thread."""
    if settings.metrics_port:
        from prometheus_client import start_http_server
        start_http_server(settings.metrics_port, addr=host)
        log.info("metrics on %s:%d", host, settings.metrics_port)


def serve(settings: Settings, port: int | None = None, host: str = "0.0.0.0") -> None:
    import waitress
    app = make_wsgi(settings)
    start_metrics(settings, host)
    port = port or settings.port
    log.info("gke-bot serving on %s:%d", host, port)
    # waitress refuses a body at its max_request_body_size while receiving it (Content-Length or chunked), so a
    # huge POST is never buffered; `>=` in waitress: one byte more lets exactly GKE_BOT_MAX_BODY through.
    waitress.serve(app, host=host, port=port, threads=48, connection_limit=400, channel_timeout=30,
                   ident="gke-bot", max_request_body_size=settings.max_body + 1)
