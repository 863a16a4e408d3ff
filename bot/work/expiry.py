"""Fix buttons that expired (GKE_BOT_PLAN_TTL) are marked so in their thread, and drop out of the approvers'
Home tabs. Run by each worker's janitor (bot.work.janitor); each expired plan is taken by one worker (ZREM).

Where the button is comes from the diagnosis record (bot.work.history, signed): only a message whose record
lists the plan, and only while it still shows the button (an approved fix's line is left as it is).
"""
from __future__ import annotations

import json
import logging
import time

from slack_sdk.errors import SlackApiError

from bot.i18n import N_, _, language
from bot.render.blocks import replace_actions
from bot.work.history import history_for
from bot.work.store import PENDING, WHERE

log = logging.getLogger(__name__)

EXPIRED = N_("This fix expired (fixes are kept for {hours} h); run the diagnosis again for a new one.")


def expire_fixes(settings, redis, client_factory, batch: int = 50) -> list[str]:
    """Mark the buttons of plans past their time; the plan ids handled."""
    done = []
    channels = set()
    for raw in redis.zrangebyscore(PENDING, 0, time.time() - settings.plan_ttl, start=0, num=batch):
        plan_id = raw.decode() if isinstance(raw, bytes) else raw
        if not redis.zrem(PENDING, plan_id):
            continue  # another worker's janitor took it
        where = redis.hget(WHERE, plan_id)
        redis.hdel(WHERE, plan_id)
        done.append(plan_id)
        try:
            channel, thread_ts = json.loads(where) if where else ("", "")
        except ValueError:
            continue
        if redis.get(f"gke-bot:plan:{plan_id}:lock"):
            continue  # approved: its line says so already
        history = history_for(settings, redis)
        record = history.load(str(channel), str(thread_ts)) if history else None
        if not record or plan_id not in (record.get("plans") or []) or not any(
                b.get("block_id") == f"remediate:{plan_id}" for b in record.get("blocks") or []):
            continue
        with language(record.get("lang", "")):
            blocks = replace_actions(record["blocks"], plan_id, ":hourglass: " + _(EXPIRED).format(
                hours=max(1, settings.plan_ttl // 3600)))
        try:
            client_factory().chat_update(channel=record["channel"], ts=record["reply_ts"], blocks=blocks,
                                         text="gke-bot")
        except SlackApiError as exc:
            log.warning("could not mark an expired fix: %s", exc.response.get("error"))
            continue
        record["blocks"] = blocks
        history.update(record)
        channels.add(record["channel"])
    if channels:
        from bot.access import Gate
        from bot.work.home import republish
        gate = Gate(settings, redis)
        for channel in sorted(channels):
            republish(settings, client_factory(), gate, channel)
    return done
