"""`gke-bot`: serve | socket | worker | check."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from bot.config import ConfigError, Settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info).splitlines()[-1]
        for key in ("audit",):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        return json.dumps(out)


def _logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for noisy in ("urllib3", "google.auth", "rq.worker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gke-bot", description="Slack chat-ops: why is my GKE cluster refusing me?")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="HTTP mode: POST /slack/events, GET /healthz, GET /metrics")
    s.add_argument("--port", type=int)
    s.add_argument("--host", default="0.0.0.0")
    sub.add_parser("socket", help="the same app over Socket Mode (SLACK_APP_TOKEN)")
    w = sub.add_parser("worker", help="RQ worker on REDIS_URL")
    w.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    c = sub.add_parser("check", help="run a diagnosis in the terminal")
    c.add_argument("command")
    c.add_argument("cluster")
    c.add_argument("extra", nargs="*", help="command arguments (e.g. NAMESPACE/KSA for wi)")
    c.add_argument("--project")
    c.add_argument("--location")
    c.add_argument("--as", dest="principal")
    c.add_argument("-n", "--namespace")
    c.add_argument("--format", choices=("text", "json"), default="text")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.cmd == "check":
            return check(settings, args)
        _logging()
        if args.cmd == "serve":
            from bot.server import serve
            serve(settings, args.port, args.host)
        elif args.cmd == "socket":
            from slack_bolt.adapter.socket_mode import SocketModeHandler
            from bot.app import create_app
            from bot.work.queue import make_queue
            settings.require("SLACK_APP_TOKEN")
            SocketModeHandler(create_app(settings, make_queue(settings)), settings.slack_app_token).start()
        elif args.cmd == "worker":
            return worker(settings, args.burst)
    except ConfigError as err:
        print(f"gke-bot: {err}", file=sys.stderr)
        return 2
    return 0


def worker(settings: Settings, burst: bool) -> int:
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer
    from bot.work.queue import QUEUE_NAME

    settings.require("REDIS_URL", "SLACK_BOT_TOKEN")
    # RQ forks a work horse per job: import the heavy client libraries and every check once here,
    # so each fork starts with them loaded instead of importing them per job.
    import google.cloud.compute_v1  # noqa: F401 - ~1.7 s to import; `ingress` needs it
    import kubernetes.client  # noqa: F401
    import bot.work.jobs  # noqa: F401
    import checks.fixes  # noqa: F401
    from checks import registry  # noqa: F401
    from bot.work.janitor import Janitor
    from bot.work.queue import RQQueue
    from bot.slackclient import web_client
    conn = Redis.from_url(settings.redis_url)
    queue = Queue(QUEUE_NAME, connection=conn, serializer=JSONSerializer)
    janitor = None
    if not burst:
        janitor = Janitor(settings, Redis.from_url(settings.redis_url, socket_timeout=5), RQQueue(settings),
                          lambda: web_client(settings), every=settings.janitor_seconds).start()
    try:
        while True:
            try:
                Worker([queue], connection=conn, serializer=JSONSerializer).work(burst=burst,
                                                                                 logging_level="WARNING")
                return 0
            except (RedisConnectionError, RedisTimeoutError) as exc:
                # RQ gives up on some Redis outages: wait for Redis and start working again.
                logging.getLogger("bot.worker").warning("Redis unreachable (%s); waiting for it", exc)
                _wait_for_redis(conn)
    finally:
        if janitor:
            janitor.stop()


def _wait_for_redis(conn, limit: float = 5.0) -> None:
    import time

    from redis.exceptions import RedisError
    delay = 0.25
    while True:
        try:
            if conn.ping():
                return
        except RedisError:
            pass
        time.sleep(delay)
        delay = min(limit, delay * 2)


def check(settings: Settings, args) -> int:
    from bot.grammar import DIAGNOSES, GrammarError, parse
    from checks.engine import run_command
    from checks.gateway import Gateway
    from bot.i18n import _, language
    from bot.render.text import render_text
    from checks.i18n import from_env

    with language(from_env()):
        return _check(settings, args, _, render_text, parse, GrammarError, run_command, Gateway, DIAGNOSES)


def _check(settings, args, _, render_text, parse, GrammarError, run_command, Gateway, DIAGNOSES) -> int:
    if args.command not in DIAGNOSES:
        print("gke-bot: " + _("unknown command {command}; one of {commands}").format(
            command=repr(args.command), commands=", ".join(DIAGNOSES)), file=sys.stderr)
        return 2
    words = [args.command, args.cluster, *args.extra]
    for flag, val in (("--project", args.project), ("--location", args.location), ("--as", args.principal),
                      ("-n", args.namespace)):
        if val:
            words += [flag, val]
    try:
        cmd = parse(" ".join(words))
    except GrammarError as err:
        print(f"gke-bot: {err}", file=sys.stderr)
        return 2
    try:
        gw = Gateway(settings.google_api_url, endpoint=settings.endpoint)
    except Exception as exc:  # google.auth.exceptions.DefaultCredentialsError and friends
        print(("gke-bot: " + _("no Google credentials: {error}").format(error=exc)).splitlines()[0], file=sys.stderr)
        return 2
    report = run_command(gw, cmd.name, cmd.cluster, settings.projects, cmd.principal, cmd.args)
    if not report.findings:
        print(f"gke-bot: {report.note}".replace("`", ""), file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(render_text(report))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
