"""Configuration from the environment. Missing required settings fail with one clear line."""
from __future__ import annotations

import os
from dataclasses import dataclass, field


# GKE_BOT_ENDPOINT values (checks.gateway.endpoints.MODES; not imported, so the Slack edge starts without the
# Google client libraries)
ENDPOINT_MODES = ("auto", "public", "private", "dns")


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _rate(name: str, value: str) -> tuple[int, int]:
    count, _, window = value.partition("/")
    if not (count.isdigit() and window.isdigit() and int(window) > 0):
        raise ConfigError(f"{name} is COUNT/SECONDS, e.g. 6/60; got {value!r}")
    return int(count), int(window)


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str = field(default="", repr=False)  # a secret: never in a repr or a log
    slack_signing_secret: str = field(default="", repr=False)  # a secret: never in a repr or a log
    slack_app_token: str = field(default="", repr=False)  # a secret: never in a repr or a log
    slack_api_url: str = "https://slack.com/api/"
    redis_url: str = field(default="", repr=False)  # may hold the Redis password (deploy/ composes it so)
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
    endpoint: str = "auto"  # which control-plane endpoint to use: auto|public|private|dns (GKE_BOT_ENDPOINT)
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
            endpoint=endpoint,
        )

    def require(self, *names: str) -> "Settings":
        """Raise ConfigError naming the first missing variable among `names` (env names)."""
        attrs = {
            "SLACK_BOT_TOKEN": self.slack_bot_token,
            "SLACK_SIGNING_SECRET": self.slack_signing_secret,
            "SLACK_APP_TOKEN": self.slack_app_token,
            "REDIS_URL": self.redis_url,
        }
        for name in names:
            if not attrs.get(name):
                raise ConfigError(f"{name} is not set (see README, 'Configuration')")
        return self
