"""`gke-bot`: serve | socket | worker | check."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from bot.config import ConfigError, Settings


class JsonFormatter(logging.Formatter):
    """One JSON object per line. Every known secret (tokens, signing secret, plan keys, the Redis password)
    is replaced by "***" wherever it would appear, whatever logged it."""

    def __init__(self, secrets: list[str] | None = None):
        super().__init__()
        self.secrets = sorted(set(secrets or []), key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        out = {"level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info).splitlines()[-1]
        for key in ("audit", "command_log", "security"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        line = json.dumps(out)
        for secret in self.secrets:
            for form in {secret, json.dumps(secret)[1:-1]}:
                line = line.replace(form, "***")
        return line


def _logging(settings: Settings | None = None) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(settings.secrets() if settings else []))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for noisy in ("urllib3", "google.auth", "rq.worker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _start_checks(settings: Settings, cmd: str) -> None:
    """What a Slack-facing process checks at start: its settings, the access policy file, and the signing key
    with Redis. Each problem stops the process with one line."""
    from bot.policy import load
    settings.require(*{"serve": ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"),
                       "socket": ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"),
                       "worker": ("REDIS_URL", "SLACK_BOT_TOKEN")}[cmd])
    settings.require_plan_key()
    policy = load(settings)  # PolicyError (a ConfigError) names the file and the problem
    log = logging.getLogger("bot.cli")
    if policy.implicit:
        log.warning("no GKE_BOT_POLICY: every channel the bot is in may ask about %s (see README, 'Security model')",
                    ", ".join(settings.projects) or "no project")
    elif settings.approvers:
        log.warning("GKE_BOT_APPROVERS is ignored: with GKE_BOT_POLICY the approvers are each binding's")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gke-bot", description="Slack chat-ops: why is my GKE cluster refusing me?")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="HTTP mode: POST /slack/events, GET /healthz, GET /metrics")
    s.add_argument("--port", type=int)
    s.add_argument("--host", default="0.0.0.0")
    s.add_argument("--metrics-port", type=int, help="serve /metrics on this port only (GKE_BOT_METRICS_PORT)")
    so = sub.add_parser("socket", help="the same app over Socket Mode (SLACK_APP_TOKEN)")
    so.add_argument("--metrics-port", type=int, help="serve /metrics on this port (GKE_BOT_METRICS_PORT)")
    so.add_argument("--host", default="0.0.0.0", help="address of the metrics listener")
    w = sub.add_parser("worker", help="RQ worker on REDIS_URL")
    w.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    w.add_argument("--metrics-port", type=int, help="serve /metrics on this port (GKE_BOT_METRICS_PORT)")
    w.add_argument("--host", default="0.0.0.0", help="address of the metrics listener")
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
        if getattr(args, "metrics_port", None):
            import dataclasses
            settings = dataclasses.replace(settings, metrics_port=args.metrics_port)
        _logging(settings)
        if args.cmd in ("serve", "socket", "worker"):
            _start_checks(settings, args.cmd)
        if args.cmd == "serve":
            from bot.server import serve
            serve(settings, args.port, args.host)
        elif args.cmd == "socket":
            from slack_bolt.adapter.socket_mode import SocketModeHandler
            from bot.app import create_app
            from bot.server import start_metrics
            from bot.work.queue import make_queue
            settings.require("SLACK_APP_TOKEN")
            start_metrics(settings, args.host)
            SocketModeHandler(create_app(settings, make_queue(settings)), settings.slack_app_token).start()
        elif args.cmd == "worker":
            return worker(settings, args.burst, args.host)
    except ConfigError as err:
        print(f"gke-bot: {err}", file=sys.stderr)
        return 2
    return 0


def worker(settings: Settings, burst: bool, host: str = "0.0.0.0") -> int:
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
    from rq import Queue
    from rq.serializers import JSONSerializer
    from bot.work.queue import QUEUE_NAME
    from bot.work.rqsafe import SafeJob, SafeWorker

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
    queue = Queue(QUEUE_NAME, connection=conn, serializer=JSONSerializer, job_class=SafeJob)
    running: list = []  # the RQ worker of this process (a new one when RQ's loop restarts after an outage)
    if settings.metrics_port:
        from prometheus_client import REGISTRY
        from bot.server import start_metrics
        from bot.work.metrics import WorkerCollector
        REGISTRY.register(WorkerCollector(Redis.from_url(settings.redis_url, socket_timeout=2), QUEUE_NAME,
                                          lambda: running[-1].key if running else ""))
        start_metrics(settings, host)
    janitor = None
    if not burst:
        janitor = Janitor(settings, Redis.from_url(settings.redis_url, socket_timeout=5), RQQueue(settings),
                          lambda: web_client(settings), every=settings.janitor_seconds).start()
    try:
        while True:
            try:
                # SafeWorker: only the bot's own, signed jobs run (bot.work.rqsafe, bot.work.jobs.run_job).
                running.append(SafeWorker([queue], connection=conn, serializer=JSONSerializer, job_class=SafeJob))
                del running[:-1]
                running[-1].work(burst=burst, logging_level="WARNING")
                return 0
            except (RedisConnectionError, RedisTimeoutError) as exc:
                if running and getattr(running[-1], "_shutdown_requested_date", None):
                    # asked to stop (SIGTERM) while Redis was down: RQ's own goodbye to Redis failed; stop anyway
                    logging.getLogger("bot.worker").warning("stopping; Redis unreachable (%s)", type(exc).__name__)
                    return 0
                # RQ gives up on some Redis outages: wait for Redis and start working again.
                logging.getLogger("bot.worker").warning("Redis unreachable (%s); waiting for it", type(exc).__name__)
                _wait_for_redis(conn)
    finally:
        if janitor:
            janitor.stop()


def _wait_for_redis(conn, limit: float = 5.0) -> None:
    import signal
    import time

    from redis.exceptions import RedisError

    def stop(signum, _frame):  # RQ's own handlers write to Redis (down): a SIGTERM must still end the process
        logging.getLogger("bot.worker").warning("stopping (signal %d) while Redis is unreachable", signum)
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
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
