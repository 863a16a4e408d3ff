"""Access checks where Slack meets the policy: one place every Slack path goes through.

`Gate.command` decides whether a command may run (the edge before queueing, the worker again from the
job payload: Redis is untrusted); `Gate.approver` whether someone may click a fix or read the audit trail.
Every decision about a command is logged as one JSON line (user, channel, command, decision), Nautobot
style, without secrets.
"""
from __future__ import annotations

import logging

from bot.config import Settings
from bot.directory import Directory, DirectoryUnavailable
from bot.grammar import Command
from bot.policy import Binding, Decision, Policy, load

command_log = logging.getLogger("gke_bot.commands")
security_log = logging.getLogger("gke_bot.security")

UNAVAILABLE = ("I could not check with Slack who you are ({why}), so I did not start anything. Try again in a "
               "minute.")


class Gate:
    def __init__(self, settings: Settings, cache=None, policy: Policy | None = None):
        self.settings = settings
        self.policy = policy or load(settings)
        self.directory = Directory(cache, settings.plan_keys)

    def members(self, client):
        return lambda group: self.directory.members(client, group)

    def command(self, client, cmd: Command, channel: str, user: str, where: str = "edge") -> Decision:
        """May `user` run `cmd` in `channel`? Asks Slack about the user (cached); logs the decision."""
        project = cmd.cluster.project if cmd.cluster else ""
        try:
            asker = self.directory.asker(client, user)
            team = self.directory.team_id(client)
            decision = self.policy.may_ask(channel, asker, cmd.name, project, cmd.principal,
                                           self.members(client), team)
        except DirectoryUnavailable as exc:
            decision = Decision(False, "slack_unavailable", UNAVAILABLE.format(why=exc))
        log_command(where, user, channel, cmd.name, cmd.text, decision)
        return decision

    def approver(self, client, channel: str, user: str) -> tuple[bool, Binding | None]:
        """May `user` approve fixes posted in `channel`? Raises DirectoryUnavailable."""
        binding = self.policy.binding_for(channel)
        return self.policy.is_approver(binding, user, self.members(client)), binding


def log_command(where: str, user: str, channel: str, command: str, text: str, decision: Decision | str,
                reason: str = "") -> None:
    """One JSON line per command (`decision` a Decision, or a word such as "invalid" or "answered")."""
    if isinstance(decision, Decision):
        word, reason = ("allowed" if decision.allowed else "refused"), decision.reason
        binding = decision.binding.name if decision.binding else ""
    else:
        word, binding = decision, ""
    entry = {"where": where, "user": user, "channel": channel, "command": command, "text": text[:500],
             "decision": word, "reason": reason, "binding": binding}
    command_log.info("command %s %s by %s in %s", command, word, user, channel, extra={"command_log": entry})


def security_event(what: str, **details) -> None:
    """A refused attempt that only someone with access to Redis (or a bug) can cause: logged loudly."""
    security_log.warning("security: %s", what, extra={"security": {"event": what, **details}})
