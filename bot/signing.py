"""HMAC signatures for what the bot stores in Redis and reads back: jobs, fix plans, cached Slack facts.

Redis is a trust boundary: anyone who can write to it must not be able to make the worker act, or a click
approve something else than what the bot planned. Everything the bot later trusts is signed with
HMAC-SHA256 over a canonical JSON form, with a key from the environment (`GKE_BOT_PLAN_KEY`, never
stored in Redis). Each use has its own derived key (`purpose`), so a signed cache entry can never pass
for a signed plan. Several keys may be configured: the first signs, every one verifies (rotation).
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

SIG = "sig"


def canonical(data: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Signer:
    """Signs and verifies JSON-able dicts for one purpose ("job", "plan", "cache")."""

    def __init__(self, keys: tuple[bytes, ...], purpose: str):
        self._keys = [hmac.new(k, b"gke-bot:" + purpose.encode(), hashlib.sha256).digest() for k in keys]
        self.purpose = purpose

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def _mac(self, key: bytes, data: dict, skip: tuple[str, ...]) -> str:
        body = {k: v for k, v in data.items() if k != SIG and k not in skip}
        return hmac.new(key, canonical(body), hashlib.sha256).hexdigest()

    def sign(self, data: dict, skip: tuple[str, ...] = ()) -> dict:
        """`data` with its signature in "sig" (fields in `skip` are left out of it)."""
        if not self._keys:
            raise ValueError("no signing key configured (GKE_BOT_PLAN_KEY)")
        return dict(data, **{SIG: self._mac(self._keys[0], data, skip)})

    def valid(self, data: Any, skip: tuple[str, ...] = ()) -> bool:
        """True when `data` carries a signature made with one of the keys over exactly these fields."""
        if not isinstance(data, dict) or not isinstance(data.get(SIG), str) or not self._keys:
            return False
        return any(hmac.compare_digest(self._mac(k, data, skip), data[SIG]) for k in self._keys)

    # for cached values: a JSON string with its signature, or None when tampered with
    def dumps(self, value: Any) -> str:
        return json.dumps(self.sign({"v": value}))

    def loads(self, raw: str | bytes | None) -> Any:
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return data["v"] if self.valid(data) else None
