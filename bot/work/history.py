"""What each diagnosis answered, kept for a while: for `@gke-bot recheck` (what changed since), for the re-check
after a fix (the parent's summary updated), and for the Home tab (someone's last diagnoses; the message of a fix
approved from there).

One record per thread (`gke-bot:diag:CHANNEL:THREAD_TS`), signed (Redis is untrusted: a record edited there is
ignored), plus the latest thread keys per asker. Findings are kept by their stable key, the check id and the
resource, with their status and title; the report message's ts and blocks, so its buttons can be replaced later.
"""
from __future__ import annotations

import logging
import time

from bot.signing import Signer

log = logging.getLogger(__name__)

TTL = 7 * 24 * 3600
PER_USER = 10
BAD = ("FAIL", "ERROR", "WARN")


def key_of(check: str, resource: str) -> str:
    """A finding's stable key: the same check on the same resource, from one answer to the next."""
    return f"{check}|{resource}"


def findings_of(report) -> list[dict]:
    return [{"key": key_of(f.id, f.resource), "id": f.id, "resource": f.resource, "status": f.status.value,
             "title": f.title} for f in report.findings]


class History:
    def __init__(self, redis, keys: tuple[bytes, ...]):
        self.redis = redis
        self.signer = Signer(keys, "history")

    @staticmethod
    def _key(channel: str, thread_ts: str) -> str:
        return f"gke-bot:diag:{channel}:{thread_ts}"

    def save(self, record: dict) -> None:
        """Keep (or replace) the record of a thread; it becomes its asker's latest."""
        if not self.signer.enabled:
            return
        record = dict(record, at=record.get("at") or time.time())
        key = self._key(record["channel"], record["thread_ts"])
        mine = f"gke-bot:diags:{record.get('user', '')}"
        try:
            with self.redis.pipeline() as p:
                p.set(key, self.signer.dumps(record), ex=TTL)
                p.lrem(mine, 0, key)
                p.lpush(mine, key)
                p.ltrim(mine, 0, PER_USER - 1)
                p.expire(mine, TTL)
                p.execute()
        except Exception as exc:  # noqa: BLE001 - the answer is out; only later comparisons miss it
            log.warning("could not keep the diagnosis record: %s", type(exc).__name__)

    def update(self, record: dict) -> None:
        """Replace a record without making it anyone's latest."""
        if not self.signer.enabled:
            return
        try:
            self.redis.set(self._key(record["channel"], record["thread_ts"]), self.signer.dumps(record), ex=TTL)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not update the diagnosis record: %s", type(exc).__name__)

    def load(self, channel: str, thread_ts: str) -> dict | None:
        if not self.signer.enabled or not channel or not thread_ts:
            return None
        try:
            record = self.signer.loads(self.redis.get(self._key(channel, thread_ts)))
        except Exception:  # noqa: BLE001 - unreadable or tampered: as if there were none
            return None
        return record if isinstance(record, dict) else None

    def latest(self, user: str, n: int = 5) -> list[dict]:
        """The user's last diagnoses, newest first (those still kept)."""
        if not self.signer.enabled:
            return []
        out = []
        for raw in self.redis.lrange(f"gke-bot:diags:{user}", 0, PER_USER - 1):
            channel, _, thread_ts = (raw.decode() if isinstance(raw, bytes) else raw).split(":", 2)[2].partition(":")
            record = self.load(channel, thread_ts)
            if record and record.get("user") == user:
                out.append(record)
            if len(out) >= n:
                break
        return out


def history_for(settings, redis=None) -> History | None:
    from bot.work.store import shared_cache
    redis = redis if redis is not None else shared_cache(settings)
    return None if redis is None else History(redis, settings.plan_keys)


def current_blocks(history: History | None, channel: str, thread_ts: str, message_ts: str, fallback: list) -> list:
    """The report message's blocks as the bot last wrote them (the diagnosis record), else `fallback` (what Slack
    sent with the click). A message with several fixes is rebuilt from this, so finishing one fix never brings
    back another fix's button or drops its outcome line."""
    return blocks_of(history.load(channel, thread_ts) if history and thread_ts else None, message_ts, fallback)


def blocks_of(record: dict | None, message_ts: str, fallback: list) -> list:
    """The blocks a diagnosis record keeps for its report message `message_ts`, else `fallback`."""
    if record and message_ts and record.get("reply_ts") == message_ts and record.get("blocks"):
        return record["blocks"]
    return fallback


def keep_blocks(history: History | None, channel: str, thread_ts: str, message_ts: str, blocks: list) -> None:
    """The bot rewrote the report message: remember its blocks in the diagnosis record."""
    record = history.load(channel, thread_ts) if history and thread_ts else None
    if record and message_ts and record.get("reply_ts") == message_ts and blocks:
        record["blocks"] = blocks
        history.update(record)


def diff(previous: list[dict], findings) -> tuple[list[dict], list, list]:
    """(fixed, new, unchanged) between a previous answer's findings and a new report's: fixed are problems
    before that pass (or are gone) now; new are problems now that were not before; unchanged are problems in
    both. By stable key."""
    before = {f["key"]: f for f in previous}
    now = {key_of(f.id, f.resource): f for f in findings}
    fixed = [f for k, f in before.items() if f["status"] in BAD and (k not in now or now[k].status.value not in BAD)]
    new = [f for k, f in now.items() if f.status.value in BAD and (k not in before or before[k]["status"] not in BAD)]
    same = [f for k, f in now.items() if f.status.value in BAD and k in before and before[k]["status"] in BAD]
    return fixed, new, same

