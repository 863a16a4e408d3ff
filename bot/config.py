"""Configuration from the environment. Missing required settings fail with one clear line."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field


# GKE_BOT_ENDPOINT values (checks.gateway.endpoints.MODES; not imported, so the Slack edge starts without the
# Google client libraries)
ENDPOINT_MODES = ("auto", "public", "private", "dns")


# Google's default per-project rate quotas, per minute: Kubernetes Engine API 3,000 requests, IAM v1 reads 6,000.
# The bot keeps to 80 % of them (room for people and other tools of the same project); GKE_BOT_API_RATES
# overrides (bot.work.ratelimit, README "Watching the fleet").
DEFAULT_API_RATES: dict[str, tuple[int, int]] = {
    "container.googleapis.com": (2400, 60),
    "iam.googleapis.com": (4800, 60),
}


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _int(env: dict, name: str, default: int, *, low: int = 0) -> int:
    value = env.get(name, str(default)).strip()
    if not value.isdigit() or int(value) < low:
        raise ConfigError(f"{name} must be a whole number{f' of at least {low}' if low else ''}, got {value!r}")
    return int(value)


def _seconds(env: dict, name: str, default: float, low: float, high: float) -> float:
    try:
        value = float(env.get(name, str(default)))
    except ValueError:
        value = -1.0
    if not low <= value <= high:
        raise ConfigError(f"{name} is a number of seconds from {low:g} to {high:g}, got {env.get(name)!r}")
    return value


def _keys(value: str | None) -> tuple[bytes, ...]:
    """GKE_BOT_PLAN_KEY: one secret, or several separated by commas (the first signs, every one verifies:
    add the new key first, drop the old one after GKE_BOT_PLAN_TTL)."""
    keys = tuple(k.strip().encode() for k in (value or "").split(",") if k.strip())
    for k in keys:
        if len(k) < 32:
            raise ConfigError("GKE_BOT_PLAN_KEY must be at least 32 characters (e.g. `openssl rand -hex 32`)")
    return keys


def _rate(name: str, value: str) -> tuple[int, int]:
    count, _, window = value.partition("/")
    if not (count.isdigit() and window.isdigit() and int(window) > 0):
        raise ConfigError(f"{name} is COUNT/SECONDS, e.g. 6/60; got {value!r}")
    return int(count), int(window)


def _api_rates(value: str | None) -> dict[str, tuple[int, int]]:
    """GKE_BOT_API_RATES: `API=COUNT/SECONDS[,…]` over the defaults (DEFAULT_API_RATES)."""
    out = dict(DEFAULT_API_RATES)
    for item in filter(None, (v.strip() for v in (value or "").split(","))):
        api, _, rate = item.partition("=")
        count, _, window = rate.partition("/")
        if not (re.fullmatch(r"[a-z0-9.-]+\.googleapis\.com", api.strip()) and count.isdigit() and window.isdigit()
                and int(count) > 0 and int(window) > 0):
            raise ConfigError("GKE_BOT_API_RATES is API=COUNT/SECONDS[,…], e.g. container.googleapis.com=2400/60; "
                              f"got {item!r}")
        out[api.strip()] = (int(count), int(window))
    return out


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str = field(default="", repr=False)  # a secret: never in a repr or a log
    slack_signing_secret: str = field(default="", repr=False)  # a secret: never in a repr or a log
    slack_app_token: str = field(default="", repr=False)  # a secret: never in a repr or a log
    slack_api_url: str = "https://slack.com/api/"
    redis_url: str = field(default="", repr=False)  # may carry a password: never in a repr or a log
    projects: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    allow_self_approval: bool = False
    google_api_url: str = ""
    port: int = 3000
    job_timeout: int = 300
    remediation_timeout: int = 3600
    plan_ttl: int = 24 * 3600
    op_poll_seconds: float = 10.0
    janitor_seconds: float = 5.0
    rate_user: tuple[int, int] = (6, 60)  # commands per window (seconds) per user
    rate_channel: tuple[int, int] = (30, 60)  # per channel
    rate_click: tuple[int, int] = (10, 60)  # fix-button clicks per window per user
    policy_path: str = ""  # GKE_BOT_POLICY: the access policy file ("" = the implicit binding)
    plan_keys: tuple[bytes, ...] = field(default=(), repr=False)  # GKE_BOT_PLAN_KEY: signs jobs, plans, caches
    metrics_port: int = 0  # GKE_BOT_METRICS_PORT: /metrics on its own port (0 = on the Slack listener)
    max_body: int = 1024 * 1024  # bytes of a request body `serve` accepts
    cluster_concurrency: int = 2  # diagnoses of one cluster at the same time
    inprocess_workers: int = 4  # jobs at once in the in-process queue (no REDIS_URL)
    inprocess_backlog: int = 16  # jobs waiting in the in-process queue before askers are told it is full
    endpoint: str = "auto"  # which control-plane endpoint to use: auto|public|private|dns (GKE_BOT_ENDPOINT)
    api_rates: dict = field(default_factory=lambda: dict(DEFAULT_API_RATES))  # per Google API, shared in Redis
    sweep_deadline: int = 900  # GKE_BOT_SWEEP_DEADLINE: seconds a sweep waits for its clusters before the digest
    recheck_tries: int = 7  # GKE_BOT_RECHECK_TRIES: how often a fixed finding's check runs until it passes
    recheck_wait: float = 10.0  # GKE_BOT_RECHECK_WAIT: seconds between those runs (IAM takes a while)
    progress_seconds: float = 3.0  # GKE_BOT_PROGRESS_SECONDS: a running diagnosis shows progress after this, and
    # updates it at most this often
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        port = env.get("PORT", "3000")
        if not port.isdigit():
            raise ConfigError(f"PORT must be a number, got {port!r}")
        timeout = env.get("GKE_BOT_JOB_TIMEOUT", "300")
        if not timeout.isdigit():
            raise ConfigError(f"GKE_BOT_JOB_TIMEOUT must be a number of seconds, got {timeout!r}")
        fix_timeout = env.get("GKE_BOT_REMEDIATION_TIMEOUT", "3600")
        if not fix_timeout.isdigit():
            raise ConfigError(f"GKE_BOT_REMEDIATION_TIMEOUT must be a number of seconds, got {fix_timeout!r}")
        plan_ttl = env.get("GKE_BOT_PLAN_TTL", str(24 * 3600))
        if not plan_ttl.isdigit():
            raise ConfigError(f"GKE_BOT_PLAN_TTL must be a number of seconds, got {plan_ttl!r}")
        try:
            poll = float(env.get("GKE_BOT_OPERATION_POLL_SECONDS", "10"))
            janitor = float(env.get("GKE_BOT_JANITOR_SECONDS", "5"))
        except ValueError:
            raise ConfigError("GKE_BOT_OPERATION_POLL_SECONDS and GKE_BOT_JANITOR_SECONDS are numbers of seconds") \
                from None
        rate_user = _rate("GKE_BOT_RATE_USER", env.get("GKE_BOT_RATE_USER", "6/60"))
        rate_channel = _rate("GKE_BOT_RATE_CHANNEL", env.get("GKE_BOT_RATE_CHANNEL", "30/60"))
        rate_click = _rate("GKE_BOT_RATE_CLICK", env.get("GKE_BOT_RATE_CLICK", "10/60"))
        metrics_port = _int(env, "GKE_BOT_METRICS_PORT", 0)
        cluster_concurrency = _int(env, "GKE_BOT_CLUSTER_CONCURRENCY", 2, low=1)
        workers = _int(env, "GKE_BOT_INPROCESS_WORKERS", 4, low=1)
        backlog = _int(env, "GKE_BOT_INPROCESS_BACKLOG", 16, low=1)
        recheck_tries = _int(env, "GKE_BOT_RECHECK_TRIES", 7, low=1)
        recheck_wait = _seconds(env, "GKE_BOT_RECHECK_WAIT", 10.0, 0, 300)
        progress_seconds = _seconds(env, "GKE_BOT_PROGRESS_SECONDS", 3.0, 0.05, 600)
        endpoint = (env.get("GKE_BOT_ENDPOINT") or "auto").strip().lower()
        if endpoint not in ENDPOINT_MODES:
            raise ConfigError(f"GKE_BOT_ENDPOINT is one of {', '.join(ENDPOINT_MODES)}; got {endpoint!r}")
        api = env.get("SLACK_API_URL") or "https://slack.com/api/"
        if not api.endswith("/"):
            api += "/"
        return cls(
            slack_bot_token=env.get("SLACK_BOT_TOKEN", ""),
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET", ""),
            slack_app_token=env.get("SLACK_APP_TOKEN", ""),
            slack_api_url=api,
            redis_url=env.get("REDIS_URL", ""),
            projects=_csv(env.get("GKE_BOT_PROJECTS")),
            approvers=_csv(env.get("GKE_BOT_APPROVERS")),
            allow_self_approval=_bool(env.get("GKE_BOT_ALLOW_SELF_APPROVAL")),
            google_api_url=(env.get("GKE_BOT_GOOGLE_API_URL") or "").rstrip("/"),
            port=int(port),
            job_timeout=int(timeout),
            remediation_timeout=int(fix_timeout),
            plan_ttl=int(plan_ttl),
            op_poll_seconds=poll,
            janitor_seconds=janitor,
            rate_user=rate_user,
            rate_channel=rate_channel,
            rate_click=rate_click,
            policy_path=(env.get("GKE_BOT_POLICY") or "").strip(),
            plan_keys=_keys(env.get("GKE_BOT_PLAN_KEY")),
            metrics_port=metrics_port,
            cluster_concurrency=cluster_concurrency,
            inprocess_workers=workers,
            inprocess_backlog=backlog,
            endpoint=endpoint,
            api_rates=_api_rates(env.get("GKE_BOT_API_RATES")),
            sweep_deadline=_int(env, "GKE_BOT_SWEEP_DEADLINE", 900, low=10),
            recheck_tries=recheck_tries,
            recheck_wait=recheck_wait,
            progress_seconds=progress_seconds,
        )

    def require(self, *names: str) -> "Settings":
        """Raise ConfigError naming the first missing variable among `names` (env names)."""
        attrs = {
            "SLACK_BOT_TOKEN": self.slack_bot_token,
            "SLACK_SIGNING_SECRET": self.slack_signing_secret,
            "SLACK_APP_TOKEN": self.slack_app_token,
            "REDIS_URL": self.redis_url,
            "GKE_BOT_PLAN_KEY": self.plan_keys,
        }
        for name in names:
            if not attrs.get(name):
                raise ConfigError(f"{name} is not set (see README, 'Configuration')")
        return self

    def require_plan_key(self) -> "Settings":
        """With Redis, jobs, fix plans and cached Slack facts are signed: GKE_BOT_PLAN_KEY is required."""
        if self.redis_url and not self.plan_keys:
            raise ConfigError("GKE_BOT_PLAN_KEY is not set: with REDIS_URL, jobs and fix plans are signed with it "
                              "(at least 32 random characters, e.g. `openssl rand -hex 32`; see README, "
                              "'Security model')")
        return self

    def secrets(self) -> list[str]:
        """Every secret value of this configuration, for log redaction (the Redis password included)."""
        out = [self.slack_bot_token, self.slack_signing_secret, self.slack_app_token]
        out += [k.decode() for k in self.plan_keys]
        if self.redis_url:
            from urllib.parse import urlsplit
            try:
                password = urlsplit(self.redis_url).password
            except ValueError:
                password = None
            if password:
                from urllib.parse import unquote
                out += [password, unquote(password)]
        return [s for s in out if s and len(s) >= 4]
