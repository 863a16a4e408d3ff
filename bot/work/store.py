"""Server-side state in Redis: remediation plans, once-only locks, the audit trail.

Plans are what a remediation button stands for: the button's value is only the plan id; the plan
itself (what to change, where, who asked) lives here, signed (GKE_BOT_PLAN_KEY: a plan edited in Redis
is refused on click and on run), and expires (24 h by default).

The audit trail is two capped Redis streams: `gke-bot:audit` for what happened (approved, succeeded,
failed, running, expired) and `gke-bot:audit:denied` for refusals (denied, duplicate, rate limited), so a
flood of refused clicks can never push real events out; clicks are also rate-limited per user.
"""
from __future__ import annotations

import heapq
import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field

from bot.signing import Signer
from checks.i18n import current as current_language

log = logging.getLogger(__name__)
audit_log = logging.getLogger("gke_bot.audit")

PLAN_TTL = 24 * 3600
CONFIRM_TTL = 900  # seconds a fix's confirmation dialog stays usable
PENDING = "gke-bot:plans:pending"  # sorted set: plan id → time planned
WHERE = "gke-bot:plans:where"  # hash: plan id → [channel, thread ts]
AUDIT_STREAM = "gke-bot:audit"
DENIED_STREAM = "gke-bot:audit:denied"
AUDIT_MAX = 10000
REFUSALS = ("denied", "duplicate", "rate_limited", "tampered")


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
    check: str = ""  # the finding's check id and resource (its stable key) and the diagnosis command, so the
    resource: str = ""  # fix can be checked again once it has run (bot.work.rechecks)
    command: str = ""
    sig: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Plan":
        return cls(**json.loads(raw))


class PlanTampered(Exception):
    """A stored plan does not carry the bot's signature: it was written or edited by someone else."""


class Store:
    def __init__(self, redis, plan_ttl: int = PLAN_TTL, keys: tuple[bytes, ...] = ()):
        self.redis = redis
        self.plan_ttl = plan_ttl
        self.signer = Signer(keys, "plan")
        self.confirm_signer = Signer(keys, "confirm")

    # ---- plans ----------------------------------------------------------------------------
    def save_plan(self, plan: Plan) -> Plan:
        data = asdict(plan)
        if self.signer.enabled:
            data = self.signer.sign(data)
            plan.sig = data["sig"]
        self.redis.set(f"gke-bot:plan:{plan.id}", json.dumps(data), ex=self.plan_ttl)
        return plan

    def new_plan(self, **kw) -> Plan:
        plan = self.save_plan(Plan(id=secrets.token_urlsafe(12), **kw))
        try:  # the index the Home tab lists pending fixes from (each entry is checked again when read), and where
            # each was posted (the janitor marks its button when it expires: bot.work.expiry)
            with self.redis.pipeline(transaction=False) as p:
                p.zadd(PENDING, {plan.id: plan.created})
                p.hset(WHERE, plan.id, json.dumps([plan.channel, plan.thread_ts]))
                p.execute()
        except Exception:  # noqa: BLE001 - the button in the thread works without it
            log.warning("could not index the fix plan")
        return plan

    def pending(self, limit: int = 100, keep=None, scan: int = 1000) -> list[Plan]:
        """Plans not approved yet and not expired, newest first (tampered ones left out): the first `limit` of
        those `keep(plan)` accepts (all when None), among the newest `scan` (bounded work)."""
        out: list[Plan] = []
        for raw in self.redis.zrevrangebyscore(PENDING, "+inf", time.time() - self.plan_ttl, start=0,
                                               num=max(limit, scan) if keep else limit):
            plan_id = raw.decode() if isinstance(raw, bytes) else raw
            try:
                plan = self.plan(plan_id)
            except PlanTampered:
                continue
            if plan is not None and not self.plan_holder(plan.id) and (keep is None or keep(plan)):
                out.append(plan)
                if len(out) >= limit:
                    break
        return out

    def plan(self, plan_id: str) -> Plan | None:
        """The stored plan; None when it does not exist. Raises PlanTampered when its signature is wrong."""
        if not plan_id or len(plan_id) > 64:
            return None
        raw = self.redis.get(f"gke-bot:plan:{plan_id}")
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            raise PlanTampered("not JSON") from None
        if not self.signer.valid(data):
            raise PlanTampered("bad signature")
        try:
            plan = Plan(**data)
        except TypeError:
            raise PlanTampered("unexpected fields") from None
        if plan.id != plan_id:
            raise PlanTampered("stored under another id")
        return plan

    def claim_plan(self, plan_id: str, who: str) -> str | None:
        """Take the once-only lock of a plan. None when taken; else the lock holder (`who`)."""
        ok = self.redis.set(f"gke-bot:plan:{plan_id}:lock", who, nx=True, ex=self.plan_ttl + 3600)
        return who if ok else None

    def drop_plan(self, plan_id: str) -> None:
        """Forget a plan whose button no longer applies (superseded); its once-only marks stay."""
        self.redis.delete(f"gke-bot:plan:{plan_id}")
        self.redis.zrem(PENDING, plan_id)
        self.redis.hdel(WHERE, plan_id)

    def release_plan(self, plan_id: str) -> None:
        self.redis.delete(f"gke-bot:plan:{plan_id}:lock")

    def plan_holder(self, plan_id: str) -> str:
        raw = self.redis.get(f"gke-bot:plan:{plan_id}:lock")
        return raw.decode() if isinstance(raw, bytes) else (raw or "")

    def mark_run(self, plan_id: str, job_id: str) -> bool:
        """The run-once marker, taken by the worker right before it writes: False when a run already began."""
        return bool(self.redis.set(f"gke-bot:plan:{plan_id}:ran", job_id or "1", nx=True,
                                   ex=self.plan_ttl + 3600))

    def click_allowed(self, user: str, limit: tuple[int, int]) -> bool:
        """Count one fix-button click of `user`; False past `limit` (COUNT, SECONDS)."""
        count, window = limit
        key = f"gke-bot:rate:click:{user}"
        with self.redis.pipeline(transaction=False) as p:
            p.set(key, 0, ex=window, nx=True)
            p.incr(key)
            n = p.execute()[1]
        return int(n) <= count

    # ---- confirmation dialogs -------------------------------------------------------------------------
    def save_confirmation(self, data: dict) -> str:
        """What a fix's confirmation dialog stands for (the plan, the approver, the message to update), kept
        here, signed; the dialog carries only the returned token."""
        token = secrets.token_urlsafe(16)
        body = dict(data, token=token)
        if self.confirm_signer.enabled:
            body = self.confirm_signer.sign(body)
        self.redis.set(f"gke-bot:confirm:{token}", json.dumps(body), ex=CONFIRM_TTL)
        return token

    def confirmation(self, token: str) -> dict | None:
        """The dialog's data; None when it expired, does not exist or is not signed by the bot."""
        if not token or len(token) > 64:
            return None
        raw = self.redis.get(f"gke-bot:confirm:{token}")
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("token") != token or (
                self.confirm_signer.enabled and not self.confirm_signer.valid(data)):
            return None
        return {k: v for k, v in data.items() if k != "sig"}

    # ---- audit ----------------------------------------------------------------------------
    def audit(self, event: str, *, user: str, plan: Plan | None = None, plan_id: str = "", result: str = "",
              **extra) -> dict:
        """Record one click outcome: a capped Redis stream entry plus one JSON log line."""
        entry = {"event": event, "user": user, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "plan_id": plan.id if plan else plan_id, "result": result,
                 "lang": current_language()}  # the language `result` is written in (the clicker's)
        if plan:
            entry.update(kind=plan.kind, cluster=plan.cluster, requester=plan.requester, channel=plan.channel,
                         params=plan.params, summary=plan.summary)
        entry.update(extra)
        audit_log.info("audit %s by %s", event, user, extra={"audit": entry})
        stream = DENIED_STREAM if event in REFUSALS else AUDIT_STREAM
        try:
            self.redis.xadd(stream, {"entry": json.dumps(entry)}, maxlen=AUDIT_MAX, approximate=True)
        except Exception:  # noqa: BLE001 - the log line above still carries it
            log.exception("audit stream write failed")
        return entry

    def audit_entries(self, n: int, denied: bool = True) -> list[dict]:
        """The latest n entries, newest first: events and (unless denied=False) refusals, merged by time."""
        streams = [AUDIT_STREAM] + ([DENIED_STREAM] if denied else [])
        rows = [row for s in streams for row in self.redis.xrevrange(s, count=n)]
        latest = heapq.nlargest(n, rows, key=lambda r: _stream_id(r[0]))
        return [json.loads(fields[b"entry"] if b"entry" in fields else fields["entry"]) for _, fields in latest]


def _stream_id(raw) -> tuple[int, int]:
    ms, _, seq = (raw.decode() if isinstance(raw, bytes) else raw).partition("-")
    return int(ms), int(seq or 0)


def shared_cache(settings):
    """A Redis client for caches and small state, or None without REDIS_URL."""
    if not settings.redis_url:
        return None
    from redis import Redis
    return Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2)


def store_for(settings) -> Store | None:
    redis = shared_cache(settings)
    return None if redis is None else Store(redis, plan_ttl=settings.plan_ttl, keys=settings.plan_keys)
