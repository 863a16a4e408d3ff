"""Access checks where Slack meets the policy: one place every Slack path goes through.

`Gate.command` decides whether a command may run (the edge before queueing, the worker again from the
job payload: Redis is untrusted); `Gate.approver` whether someone may click a fix or read the audit trail.
Every decision about a command is logged as one JSON line (user, channel, command, decision), Nautobot
style, without secrets.
"""
from __future__ import annotations

import dataclasses
import logging

from bot.config import Settings
from bot.directory import Directory, DirectoryUnavailable
from bot.grammar import Command
from bot.i18n import N_, _, choose
from bot.policy import Binding, Decision, Identity, Policy, load

command_log = logging.getLogger("gke_bot.commands")
security_log = logging.getLogger("gke_bot.security")

UNAVAILABLE = N_("I could not check with Slack who you are ({why}), so I did not start anything. Try again in a "
                 "minute.")
AS_YOURSELF = N_("The error names `{principal}`, but only approvers of this conversation may have someone else "
                 "diagnosed, so I diagnosed your own identity instead.")


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
        decision = self._decide(client, channel, user, cmd.name, project, cmd.principal)
        log_command(where, user, channel, cmd.name, cmd.text, decision)
        return decision

    def explain(self, client, command: str, project: str, principal: str, channel: str, user: str, text: str,
                where: str = "edge") -> Decision:
        """May `user` have the error they pasted diagnosed (`command` on `project`, as the `principal` it names)?
        As a typed command, except that a principal other than the asker is not a refusal for non-approvers:
        they are diagnosed as themselves, and the decision's `note` says so."""
        decision = self._decide(client, channel, user, command, project, principal)
        if not decision and decision.reason == "as_other":
            decision = self._decide(client, channel, user, command, project, "")
            if decision:
                decision = dataclasses.replace(decision, note=_(AS_YOURSELF).format(principal=principal))
        elif decision and decision.identity.source == "as":
            decision = dataclasses.replace(decision, identity=Identity(decision.identity.principal, "error"))
        log_command(where, user, channel, command, text, decision)
        return decision

    def _decide(self, client, channel: str, user: str, command: str, project: str, principal: str) -> Decision:
        try:
            asker = self.directory.asker(client, user)
            team = self.directory.team_id(client)
            return self.policy.may_ask(channel, asker, command, project, principal, self.members(client), team)
        except DirectoryUnavailable as exc:
            return Decision(False, "slack_unavailable", _(UNAVAILABLE).format(why=exc))

    def bindings_of(self, client, user: str) -> list[Binding]:
        """The bindings where `user` may ask, decided about the person as for a command (users.info, cached).
        Raises DirectoryUnavailable."""
        asker = self.directory.asker(client, user)
        if asker is None:
            return []
        return self.policy.bindings_of(asker, self.members(client), self.directory.team_id(client))

    def language(self, client, user: str, channel: str, flag: str = "") -> str:
        """The language `user` reads answers in, in `channel`: `--lang`, else the binding's `locale:`, else
        the user's Slack locale (users.info, cached), else English."""
        binding = self.policy.binding_for(channel)
        fixed = binding.locale if binding else ""
        if flag or fixed:
            return choose(flag, fixed)
        try:
            asker = self.directory.asker(client, user)
        except DirectoryUnavailable:
            asker = None
        return choose("", "", asker.locale if asker else "")

    def quick_language(self, user: str, channel: str, flag: str = "") -> str:
        """The same, when it is known without asking Slack ("" otherwise): for an answer in the ack itself."""
        binding = self.policy.binding_for(channel)
        fixed = binding.locale if binding else ""
        if flag or fixed:
            return choose(flag, fixed)
        asker = self.directory.cached(user)
        return choose("", "", asker.locale) if asker else ""

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
