"""Server-side state in Redis: remediation plans, once-only locks, the audit stream.

Plans are what a remediation button stands for: the button's value is only the plan id; the plan
itself (what to change, where, who asked) lives here and expires (24 h by default).
"""
from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field

log = logging.getLogger(__name__)
audit_log = logging.getLogger("gke_bot.audit")

PLAN_TTL = 24 * 3600
AUDIT_STREAM = "gke-bot:audit"
AUDIT_MAX = 10000


@dataclass
class Plan:
    id: str
    kind: str
    label: str
    summary: str
    params: dict
    channel: str
    thread_ts: str
    requester: str
    cluster: str
    created: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Plan":
        return cls(**json.loads(raw))


class Store:
    def __init__(self, redis, plan_ttl: int = PLAN_TTL):
        self.redis = redis
        self.plan_ttl = plan_ttl

    # ---- plans ----------------------------------------------------------------------------
    def save_plan(self, plan: Plan) -> Plan:
        self.redis.set(f"gke-bot:plan:{plan.id}", plan.to_json(), ex=self.plan_ttl)
        return plan

    def new_plan(self, **kw) -> Plan:
        return self.save_plan(Plan(id=secrets.token_urlsafe(12), **kw))

    def plan(self, plan_id: str) -> Plan | None:
        if not plan_id or len(plan_id) > 64:
            return None
        raw = self.redis.get(f"gke-bot:plan:{plan_id}")
        return Plan.from_json(raw) if raw else None

    def claim_plan(self, plan_id: str, who: str) -> str | None:
        """Take the once-only lock of a plan. None when taken; else the lock holder (`who`)."""
        ok = self.redis.set(f"gke-bot:plan:{plan_id}:lock", who, nx=True, ex=self.plan_ttl + 3600)
        return who if ok else None

    def release_plan(self, plan_id: str) -> None:
        self.redis.delete(f"gke-bot:plan:{plan_id}:lock")

    def plan_holder(self, plan_id: str) -> str:
        raw = self.redis.get(f"gke-bot:plan:{plan_id}:lock")
        return raw.decode() if isinstance(raw, bytes) else (raw or "")

    # ---- audit ----------------------------------------------------------------------------
    def audit(self, event: str, *, user: str, plan: Plan | None = None, plan_id: str = "", result: str = "",
              **extra) -> dict:
        """Record one click outcome: a capped Redis stream entry plus one JSON log line."""
        entry = {"event": event, "user": user, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "plan_id": plan.id if plan else plan_id, "result": result}
        if plan:
            entry.update(kind=plan.kind, cluster=plan.cluster, requester=plan.requester, channel=plan.channel,
                         params=plan.params, summary=plan.summary)
        entry.update(extra)
        audit_log.info("audit %s by %s", event, user, extra={"audit": entry})
        try:
            self.redis.xadd(AUDIT_STREAM, {"entry": json.dumps(entry)}, maxlen=AUDIT_MAX, approximate=True)
        except Exception:  # noqa: BLE001 - the log line above still carries it
            log.exception("audit stream write failed")
        return entry

    def audit_entries(self, n: int) -> list[dict]:
        rows = self.redis.xrevrange(AUDIT_STREAM, count=n)
        return [json.loads(fields[b"entry"] if b"entry" in fields else fields["entry"]) for _, fields in rows]


def store_for(settings) -> Store | None:
    if not settings.redis_url:
        return None
    from redis import Redis
    return Store(Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2),
                 plan_ttl=settings.plan_ttl)
