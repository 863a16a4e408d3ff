"""Cluster pickers waiting for the asker's choice (`/gke explain` when the error names no cluster and the
binding has several).

The worker saves what to run once a cluster is chosen (the conversation, the parent message, the pasted text,
the language, the clusters offered); the picker's Slack payload carries only the pick's id and the chosen
cluster, both untrusted: the edge loads the pick, checks the chooser is the asker and the cluster one of
those offered, and starts the diagnosis once. In Redis the pick is signed (GKE_BOT_PLAN_KEY, purpose "pick"):
one written there by anyone else is refused. Without Redis (the in-process queue) picks live in this process.
"""
from __future__ import annotations

import secrets
import threading
import time

from bot.signing import Signer

TTL = 3600  # seconds a picker stays usable

_local: dict[str, tuple[float, dict]] = {}
_taken: dict[str, float] = {}
_lock = threading.Lock()


class Picks:
    def __init__(self, redis=None, keys: tuple[bytes, ...] = (), ttl: int = TTL):
        self.redis, self.ttl = redis, ttl
        self.signer = Signer(keys, "pick")

    def save(self, data: dict) -> str:
        pick_id = secrets.token_urlsafe(12)
        data = dict(data, id=pick_id)
        if self.redis is None:
            with _lock:
                now = time.monotonic()
                for k in [k for k, (exp, _d) in _local.items() if exp < now]:
                    del _local[k]
                _local[pick_id] = (now + self.ttl, data)
        else:
            import json
            self.redis.set(f"gke-bot:pick:{pick_id}", json.dumps(self.signer.sign(data)), ex=self.ttl)
        return pick_id

    def load(self, pick_id: str) -> dict | None:
        """The pick, or None when it expired, does not exist or is not the bot's own (bad signature)."""
        if not pick_id or len(pick_id) > 64:
            return None
        if self.redis is None:
            with _lock:
                hit = _local.get(pick_id)
            return dict(hit[1]) if hit and hit[0] > time.monotonic() else None
        import json
        raw = self.redis.get(f"gke-bot:pick:{pick_id}")
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            return None
        if not self.signer.valid(data) or data.get("id") != pick_id:
            return None
        return {k: v for k, v in data.items() if k != "sig"}

    def take(self, pick_id: str) -> bool:
        """The once-only marker: True for the first choice of this pick, False after."""
        if self.redis is None:
            with _lock:
                now = time.monotonic()
                if _taken.get(pick_id, 0) > now:
                    return False
                _taken[pick_id] = now + self.ttl
                return True
        return bool(self.redis.set(f"gke-bot:pick:{pick_id}:taken", "1", nx=True, ex=self.ttl))

    def release(self, pick_id: str) -> None:
        """The choice did not start anything (e.g. the queue was down): the picker may be used again."""
        if self.redis is None:
            with _lock:
                _taken.pop(pick_id, None)
        else:
            self.redis.delete(f"gke-bot:pick:{pick_id}:taken")


def picks_for(settings, redis=None) -> Picks:
    return Picks(redis, settings.plan_keys)
