"""The Home tab's content, per user, and publishing it (views.publish; the view: bot.render.home).

Fixes waiting for approval are those of the pending plans (bot.work.store) that this user may approve: checked
as a click is, against the binding of the channel the plan was posted in (approver there, project in that
binding, not their own request unless self-approval is allowed). Published when the user opens the tab, and
again for the approvers who have opened it when a fix they could see is approved or has run.
"""
from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.directory import member_of
from bot.i18n import language
from bot.render.home import MAX_BINDINGS, MAX_CHANNELS, MAX_FIXES, home_view
from bot.work.history import history_for
from bot.work.store import store_for

log = logging.getLogger(__name__)

OPENED = "gke-bot:home:users"  # set: users who have opened the Home tab (re-published for them)
PENDING_SCAN = 1000  # pending plans looked at, at most, for one Home tab


def _permalink(client, channel: str, ts: str) -> str:
    try:
        return str(client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink") or "")
    except SlackApiError:
        return ""


def waiting_for(settings, client, gate, store, user: str, limit: int = PENDING_SCAN) -> list:
    """The pending plans `user` may approve now (newest first; among the newest PENDING_SCAN, at most `limit`):
    filtered before counting, so the plans of others never push theirs out."""
    if store is None:
        return []

    def approvable(plan) -> bool:
        try:
            allowed, binding = gate.approver(client, plan.channel, user)
        except Exception:  # noqa: BLE001 - group membership unknown: not shown (the click would check again)
            return False
        if not allowed or str((plan.params or {}).get("project", "")) not in binding.projects:
            return False
        return plan.requester != user or settings.allow_self_approval

    return store.pending(limit=limit, keep=approvable, scan=PENDING_SCAN)


def shown(client, binding, user: str) -> bool:
    """Is `binding` shown on `user`'s Home tab? Only if they may ask there without being in one of its channels,
    or are in one (conversations.members): its projects are not told to others."""
    return binding.without_channel or any(member_of(client, c, user, cache_seconds=60)[0]
                                          for c in binding.channels[:MAX_CHANNELS])


def publish(settings, client, gate, user: str) -> None:
    """Build and publish `user`'s Home tab, in their language."""
    store = store_for(settings)
    history = history_for(settings)
    policy = gate.policy
    try:
        approver = any(policy.is_approver(b, user, gate.members(client)) for b in policy.bindings)
    except Exception:  # noqa: BLE001
        approver = False
    # links for those shown; the others are counted ("n more are waiting")
    fixes = [{"plan": p, "link": _permalink(client, p.channel, p.thread_ts) if i < MAX_FIXES else ""}
             for i, p in enumerate(waiting_for(settings, client, gate, store, user))] if approver else []
    records = history.latest(user) if history else []
    for r in records:
        r["link"] = _permalink(client, r["channel"], r["thread_ts"])
    try:
        bindings = [b for b in gate.bindings_of(client, user)[:MAX_BINDINGS] if shown(client, b, user)]
    except Exception:  # noqa: BLE001
        bindings = []
    with language(gate.language(client, user, "")):
        view = home_view(approver, fixes, records, bindings)
    try:
        client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:
        log.warning("could not publish the Home tab: %s", exc.response.get("error"))
        return
    if store is not None:
        try:
            store.redis.sadd(OPENED, user)
        except Exception:  # noqa: BLE001
            log.warning("could not remember the Home tab's user")


def republish(settings, client, gate, channel: str) -> None:
    """A fix posted in `channel` was approved or has run: refresh the Home tab of its approvers who have one."""
    store = store_for(settings)
    if store is None:
        return
    try:
        users = sorted(u.decode() if isinstance(u, bytes) else u for u in store.redis.smembers(OPENED))
    except Exception:  # noqa: BLE001
        return
    for user in users[:200]:
        try:
            if gate.approver(client, channel, user)[0]:
                publish(settings, client, gate, user)
        except Exception:  # noqa: BLE001 - one Home tab left as it was
            log.warning("could not refresh a Home tab")
