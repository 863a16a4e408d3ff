"""The Bolt app: the edge services (bot.edge) and the listeners, grouped by kind (bot.listeners).

The HTTP server (bot.server) and Socket Mode (bot.cli socket) serve the same app. Data flows one way:
Slack event → listener (parse, ack) → edge (policy, parent message, queue) → job (bot.work) → facts →
findings → rendering → Slack.
"""
from __future__ import annotations

from slack_bolt import App

from bot.config import Settings
from bot.edge import Edge
from bot.listeners import actions, commands, events, shortcuts, views
from bot.slackclient import web_client


def create_app(settings: Settings, queue) -> App:
    settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
    # Listeners only parse, ack, and hand the rest (post the parent, enqueue) to Edge.after_ack,
    # so they run in the request thread: no hand-off to Bolt's listener pool and its ack polling.
    app = App(signing_secret=settings.slack_signing_secret, client=web_client(settings),
              process_before_response=True)
    edge = Edge(settings, queue)
    for room in (commands, events, actions, shortcuts, views):
        room.register(app, edge)
    return app
