"""Where a job answers: a channel thread and the parent (status) message to update."""
from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.render import blocks as render

log = logging.getLogger(__name__)


class Thread:
    """Where a job answers: a channel thread and the status message to update."""

    def __init__(self, client, payload: dict):
        self.client = client
        self.channel = payload["channel"]
        self.thread_ts = payload["thread_ts"]
        self.status_ts = payload.get("status_ts") or payload["thread_ts"]
        self.user = payload.get("user", "")
        self.text = payload.get("shown") or payload.get("text", "")  # the command as the parent shows it

    def reply(self, text: str, blocks: list | None = None) -> str:
        """Post in the thread; the reply's ts."""
        return self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, text=text,
                                            blocks=blocks)["ts"]

    def status(self, state: str) -> None:
        try:
            self.client.chat_update(channel=self.channel, ts=self.status_ts,
                                    text=render.parent_text(self.user, self.text, state))
        except SlackApiError as exc:
            log.warning("could not update the parent message: %s", exc.response.get("error"))
