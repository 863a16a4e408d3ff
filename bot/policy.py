"""The access policy: who may approve fixes (users, and members of Slack user groups)."""
from __future__ import annotations

import threading
import time

from slack_sdk.errors import SlackApiError

from bot.config import Settings

GROUP_TTL = 60.0


class ApproversUnknown(Exception):
    """Approver groups could not be resolved right now."""


class Approvals:
    """GKE_BOT_APPROVERS: user ids, and user-group ids resolved with usergroups.users.list (cached)."""

    def __init__(self, settings: Settings):
        self.users = {a for a in settings.approvers if a[:1] in ("U", "W")}
        self.groups = [a for a in settings.approvers if a[:1] == "S"]
        self._cache: dict[str, tuple[float, set[str]]] = {}
        self._lock = threading.Lock()

    def _members(self, client, group: str) -> set[str]:
        with self._lock:
            hit = self._cache.get(group)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        try:
            members = set(client.usergroups_users_list(usergroup=group).get("users", []))
        except SlackApiError as exc:  # not cached: a passing failure must not lock approvers out for long
            raise ApproversUnknown(f"could not read user group {group} ({exc.response.get('error')})") from exc
        with self._lock:
            self._cache[group] = (time.monotonic() + GROUP_TTL, members)
        return members

    def allows(self, client, user: str) -> bool:
        return user in self.users or any(user in self._members(client, g) for g in self.groups)
