"""The Slack Web API client the bot uses (retries on rate limits and connection errors)."""
from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.config import Settings
from bot.i18n import _


def web_client(settings: Settings) -> WebClient:
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=15)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    client.retry_handlers.append(ConnectionErrorRetryHandler(max_retry_count=2))
    return client


NOT_IN_CHANNEL = {"not_in_channel", "channel_not_found", "is_archived"}


def invite_hint(error: str) -> str:
    if error == "is_archived":
        return ":warning: " + _("This channel is archived, so I cannot post here. Ask me from another channel.")
    return ":wave: " + _("I am not in this channel, so I cannot post the answer here. Invite me with "
                         "`/invite @gke-bot` (or ask in a channel I am in), then run the command again.")
