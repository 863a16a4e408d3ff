"""What Slack says about people: users.info (guest, external, deleted, bot, email, locale), user-group members,
and the bot's own workspace. Cached briefly, in this process and, when Redis is there, in Redis (signed:
a cache entry someone wrote into Redis by hand is ignored, never trusted)."""
from __future__ import annotations

import logging
import threading
import time

from slack_sdk.errors import SlackApiError

from bot.i18n import _
from bot.policy import Asker
from bot.signing import Signer

log = logging.getLogger(__name__)

USER_TTL = 300.0  # users.info: a guest promoted or an account deactivated counts within minutes
GROUP_TTL = 60.0
TEAM_TTL = 3600.0

_users: dict[str, tuple[float, Asker | None]] = {}  # user id → (expiry, what Slack said; None: no such user)
_groups: dict[str, tuple[float, set[str]]] = {}
_team: dict[str, tuple[float, str]] = {}
_lock = threading.Lock()


class DirectoryUnavailable(Exception):
    """Slack could not say right now (rate limited, down); the message is safe to show."""


def clear() -> None:
    with _lock:
        _users.clear()
        _groups.clear()
        _team.clear()
    with _memberships_lock:
        _memberships.clear()


class Directory:
    def __init__(self, cache=None, keys: tuple[bytes, ...] = ()):
        self.cache = cache  # a redis.Redis, or None
        self.signer = Signer(keys, "cache")

    # ---- the shared (Redis) layer: signed entries only ----------------------------------------------
    def _get(self, key: str):
        if self.cache is None or not self.signer.enabled:
            return None
        try:
            return self.signer.loads(self.cache.get(key))
        except Exception:  # noqa: BLE001 - a cache miss
            return None

    def _put(self, key: str, value, ttl: float) -> None:
        if self.cache is None or not self.signer.enabled:
            return
        try:
            self.cache.set(key, self.signer.dumps(value), ex=int(ttl))
        except Exception:  # noqa: BLE001 - the cache is optional
            pass

    # ---- users --------------------------------------------------------------------------------------
    def asker(self, client, user_id: str) -> Asker | None:
        """What Slack says about `user_id` (None: Slack knows no such user). Raises DirectoryUnavailable."""
        now = time.monotonic()
        with _lock:
            hit = _users.get(user_id)
        if hit and hit[0] > now:
            return hit[1]
        key = f"gke-bot:user:{user_id}"
        cached = self._get(key)
        if isinstance(cached, dict):
            try:
                asker = Asker(**cached) if cached else None
            except TypeError:  # signed by another version of the bot with other fields: ask Slack again
                cached = None
        if not isinstance(cached, dict):
            try:
                # include_locale: the user's Slack language, which answers follow (bot.i18n.choose)
                user = client.users_info(user=user_id, include_locale=True).get("user") or {}
            except SlackApiError as exc:
                error = exc.response.get("error", "")
                if error in ("user_not_found", "user_not_visible"):
                    user = {}
                else:
                    raise DirectoryUnavailable(_("users.info answered {error}").format(error=error or "?")) from exc
            asker = Asker.from_slack(user) if user.get("id") else None
            self._put(key, asker.__dict__ if asker else {}, USER_TTL)
        with _lock:
            _users[user_id] = (now + USER_TTL, asker)
        return asker

    @staticmethod
    def cached(user_id: str) -> Asker | None:
        """What this process already knows about `user_id` (no Slack call): for answers in the ack itself."""
        with _lock:
            hit = _users.get(user_id)
        return hit[1] if hit and hit[0] > time.monotonic() else None

    # ---- user groups --------------------------------------------------------------------------------
    def members(self, client, group: str) -> set[str]:
        """The member ids of a user group. Raises DirectoryUnavailable (never cached: a passing failure must
        not lock approvers out for long)."""
        now = time.monotonic()
        with _lock:
            hit = _groups.get(group)
        if hit and hit[0] > now:
            return hit[1]
        try:
            members = set(client.usergroups_users_list(usergroup=group).get("users", []))
        except SlackApiError as exc:
            raise DirectoryUnavailable(_("could not read user group {group} ({error})").format(
                group=group, error=exc.response.get("error"))) from exc
        with _lock:
            _groups[group] = (now + GROUP_TTL, members)
        return members

    # ---- the bot's own workspace --------------------------------------------------------------------
    def team_id(self, client) -> str:
        """The workspace the bot is installed in (auth.test), '' when Slack cannot say."""
        now = time.monotonic()
        with _lock:
            hit = _team.get("team")
        if hit and hit[0] > now:
            return hit[1]
        cached = self._get("gke-bot:team")
        if isinstance(cached, str) and cached:
            team = cached
        else:
            try:
                team = client.auth_test().get("team_id") or ""
            except SlackApiError as exc:
                log.warning("auth.test failed: %s", exc.response.get("error"))
                return ""
            self._put("gke-bot:team", team, TEAM_TTL)
        with _lock:
            _team["team"] = (now + TEAM_TTL, team)
        return team


MEMBER_PAGES = 20  # conversations.members pages of 1000 read at most (a 20,000-member channel)


MEMBERSHIP_CACHE_MAX = 10000
_memberships: dict[tuple[str, str], tuple[float, bool]] = {}  # (channel, user) → (when told, member)
_memberships_lock = threading.Lock()


def member_of(client, channel: str, user: str, cache_seconds: float = 0) -> tuple[bool | None, str]:
    """Is `user` in `channel`? (True/False, "") or (None, Slack's error) when it cannot be told.

    `cache_seconds`: an answer this recent is reused (the Home tab, opened often, reads many channels;
    conversations.members is rate-limited). Posting somewhere always asks afresh (0). Errors are never cached."""
    now = time.monotonic()
    if cache_seconds > 0:
        with _memberships_lock:
            hit = _memberships.get((channel, user))
        if hit and now - hit[0] < cache_seconds:
            return hit[1], ""
    cursor, answer = "", None
    try:
        for _page in range(MEMBER_PAGES):
            resp = client.conversations_members(channel=channel, limit=1000, cursor=cursor or None)
            if user in (resp.get("members") or []):
                answer = True
                break
            cursor = ((resp.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                answer = False
                break
    except SlackApiError as exc:
        return None, str(exc.response.get("error", ""))
    if answer is None:
        return None, "too many members"
    with _memberships_lock:
        if len(_memberships) >= MEMBERSHIP_CACHE_MAX:
            _memberships.clear()
        _memberships[(channel, user)] = (now, answer)
    return answer, ""
