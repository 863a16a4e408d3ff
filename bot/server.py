"""HTTP mode: Bolt over WSGI served by waitress (multi-threaded), plus /healthz, /livez and /metrics.

`/healthz` says whether the queue is reachable (503 when not: for monitoring); `/livez` only that
this process answers HTTP (the Kubernetes probes and the load balancer's health check: with Redis
down, `serve` still acknowledges Slack and tells users privately that the queue is unavailable, so
it must stay in the load balancer)."""
from __future__ import annotations

import json
import logging

from prometheus_client import make_wsgi_app
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.app import create_app
from bot.config import Settings
from bot.work.queue import make_queue

log = logging.getLogger(__name__)


def make_wsgi(settings: Settings, queue=None):
    queue = queue or make_queue(settings)
    slack = SlackRequestHandler(create_app(settings, queue))
    metrics = make_wsgi_app()

    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/slack/events":
            if environ.get("REQUEST_METHOD") != "POST":
                start_response("405 Method Not Allowed", [("Allow", "POST")])
                return [b""]
            return slack(environ, start_response)
        if path == "/healthz":
            ok = queue.healthy()
            body = json.dumps({"ok": ok, "queue": queue.backend}).encode()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [body]
        if path == "/livez":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        if path == "/metrics":
            return metrics(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return application


def serve(settings: Settings, port: int | None = None, host: str = "0.0.0.0") -> None:
    import waitress
    app = make_wsgi(settings)
    port = port or settings.port
    log.info("gke-bot serving on %s:%d", host, port)
    waitress.serve(app, host=host, port=port, threads=48, connection_limit=400, channel_timeout=30,
                   ident="gke-bot")
