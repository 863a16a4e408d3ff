"""The access policy: who may ask what, where, and who may approve fixes. Deny by default.

A policy is a list of *bindings*. A binding names Slack conversations (`channels`) and what may be done
there: which of `GKE_BOT_PROJECTS` may be asked about (`projects`), who may click fix buttons
(`approvers`), and optionally who may ask (`users`), which commands (`commands`) and whether guests
or users of other workspaces may ask (`guests`, `external`). `identities` maps Slack users to the Google
principal they are diagnosed as. Anything a binding does not grant is refused.

Without `GKE_BOT_POLICY` there is one implicit binding: every conversation, `GKE_BOT_PROJECTS`,
`GKE_BOT_APPROVERS` (the trial setup; see README, "Security model").

This module is pure: it reads and validates the file and answers questions about it. What Slack says
about a user (`Asker`) and the members of a user group (`members`) are handed in by the caller
(bot.directory); nothing here calls Slack or Google.

`locale` (`ja-JP`, `en`) fixes the language of the answers in a binding's conversations; without it each
asker reads them in their own Slack language (and `--lang ja|en` overrides both for one command).

`sweep` (`{cron: "0 9 * * 1-5", quiet: false, deadline: 900, channel: C…}`) has the binding's clusters swept by
`gke-bot sweep` / `gke-bot scheduler` (bot.work.fleet, bot.work.scheduler): the cron is five fields in UTC; the
digest goes to `channel` (default: the binding's first channel); `quiet: true` posts nothing when nothing changed.
`notifications` (`{subscription: projects/P/subscriptions/S, channel: C…}`) has `gke-bot notifications` post the
GKE cluster notifications of that Pub/Sub subscription in the binding's (first, or named) channel.

Adding a key (App Home, `subscription:` …): give `Binding` (or `Policy`) a field and
add one `Key` to `BINDING_KEYS` (or `TOP_KEYS`) with its parser. Unknown keys are refused with an error
that lists the known ones, so a typo never silently grants or drops anything.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from bot.config import ConfigError
from bot.i18n import N_, _
from checks.i18n import supported
from checks.names import PROJECT_RE, normalize_principal

DIRECT = "direct"  # a channel entry meaning: every direct message with the bot
CHANNEL_RE = re.compile(r"^[CGD][A-Z0-9]{2,}$")
USER_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
GROUP_RE = re.compile(r"^S[A-Z0-9]{2,}$")
DIAGNOSES = ("why-403", "why-401", "why-400", "why-404", "wi", "rbac", "ingress", "doctor")

# ---- user-facing English (translated where used: `_(MSG[key])`) -----------------------------------------------
MSG = {
    "unbound": N_("This conversation is not bound to any project, so I do not answer here. Ask in {allowed}, or "
                  "ask an admin to bind this channel (`{channel}`) in the access policy (GKE_BOT_POLICY)."),
    "unbound_none": N_("This conversation is not bound to any project, so I do not answer here. Ask an admin to "
                       "bind this channel (`{channel}`) in the access policy (GKE_BOT_POLICY)."),
    "no_projects": N_("No project may be asked about here: GKE_BOT_PROJECTS is empty. Ask an admin to set it."),
    "foreign_project": N_("Project `{project}` is not one this conversation may ask about, so I did not look at "
                          "it. Here you may ask about: {allowed}."),
    "guest": N_("Guest accounts may not ask the bot here. Ask a full member of the workspace."),
    "external": N_("Users of another workspace (Slack Connect) may not ask the bot here."),
    "deleted": N_("This account is deactivated."),
    "bot": N_("Bots and apps may not ask the bot."),
    "unknown_user": N_("I could not tell who you are from Slack, so I did not start the diagnosis."),
    "not_a_user": N_("You are not among the users who may ask the bot in this conversation."),
    "command": N_("`{command}` may not be asked in this conversation. Here you may ask: {allowed}."),
    "as_other": N_("Only approvers of this conversation may ask `--as` someone else (`{principal}`); nothing was "
                   "looked up. Ask without `--as` to check your own access."),
}


class PolicyError(ConfigError):
    """The policy file is invalid; the message names the file, the place and what is wrong, in one line."""


# ---- the parsed policy --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Binding:
    name: str
    channels: tuple[str, ...]  # channel ids, DIRECT, or ("*",) in the implicit binding
    projects: tuple[str, ...]
    approvers: tuple[str, ...] = ()  # user ids (U…/W…) and user-group ids (S…)
    users: tuple[str, ...] = ()  # who may ask here (users and groups); () = every member of the channels
    commands: tuple[str, ...] = DIAGNOSES
    guests: bool = False  # single- and multi-channel guests may ask
    external: bool = False  # users of other workspaces (Slack Connect) may ask
    locale: str = ""  # the answers' language here (`ja-JP`, `en`); "" = each asker's Slack locale
    sweep: "SweepSpec | None" = None  # the fleet sweep of this binding's clusters (bot.work.fleet)
    notifications: "NotificationsSpec | None" = None  # GKE cluster notifications to post here (bot.notifications)

    def names(self, channel: str) -> bool:
        return "*" in self.channels or channel in self.channels or (channel[:1] == "D" and DIRECT in self.channels)

    @property
    def without_channel(self) -> bool:
        """May its askers ask without being in one of its channels (every conversation, direct messages, or
        askers named in `users:`)? Else only members of its channels are shown its projects."""
        return bool(self.users) or "*" in self.channels or DIRECT in self.channels

    @property
    def approver_users(self) -> set[str]:
        return {a for a in self.approvers if USER_RE.match(a)}

    @property
    def approver_groups(self) -> list[str]:
        return [a for a in self.approvers if GROUP_RE.match(a)]


@dataclass(frozen=True)
class SweepSpec:
    """`sweep:` of a binding: when the scheduler sweeps it, and how its digest speaks."""

    cron: str = ""  # five-field cron, UTC ("0 9 * * 1-5"); "" = only `gke-bot sweep --channel` runs it
    channel: str = ""  # where the digest goes; "" = the binding's first channel
    quiet: bool = False  # nothing new: post nothing (False: one short line)
    deadline: int = 0  # seconds to wait for every cluster's answer; 0 = GKE_BOT_SWEEP_DEADLINE


@dataclass(frozen=True)
class NotificationsSpec:
    """`notifications:` of a binding: the Pub/Sub subscription of GKE cluster notifications posted here."""

    subscription: str  # projects/P/subscriptions/S
    channel: str = ""  # "" = the binding's first channel


@dataclass(frozen=True)
class Asker:
    """What Slack says about the person asking (users.info), as the policy needs it."""

    id: str
    team_id: str = ""
    email: str = ""
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    is_stranger: bool = False
    deleted: bool = False
    is_bot: bool = False
    locale: str = ""  # the user's Slack language (users.info include_locale=true), e.g. "ja-JP"

    @classmethod
    def from_slack(cls, user: dict) -> "Asker":
        profile = user.get("profile") or {}
        return cls(id=user.get("id", ""), team_id=user.get("team_id") or profile.get("team") or "",
                   email=profile.get("email") or "", is_restricted=bool(user.get("is_restricted")),
                   is_ultra_restricted=bool(user.get("is_ultra_restricted")),
                   is_stranger=bool(user.get("is_stranger")), deleted=bool(user.get("deleted")),
                   is_bot=bool(user.get("is_bot")), locale=str(user.get("locale") or "")[:35])


@dataclass(frozen=True)
class Identity:
    principal: str  # "user:EMAIL", or "" when unknown
    source: str  # "policy" | "slack" | "as" | ""

    def describe(self) -> str:
        """One line for the answer, in the reader's language: which principal was diagnosed, and why."""
        if not self.principal:
            return ""
        if self.source == "policy":
            return _("Diagnosed as `{principal}` (mapped to your Slack account in the access policy).").format(
                principal=self.principal)
        if self.source == "slack":
            return _("Diagnosed as `{principal}` (the email of your Slack profile).").format(principal=self.principal)
        if self.source == "as":
            return _("Diagnosed as `{principal}` (named with `--as`, an approver's request).").format(
                principal=self.principal)
        if self.source == "error":
            return _("Diagnosed as `{principal}` (named by the error; you are an approver here).").format(
                principal=self.principal)
        return _("Diagnosed as `{principal}`.").format(principal=self.principal)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # a short machine word for logs: "ok", "unbound", "foreign_project", …
    message: str = ""  # the private answer to the asker when refused (mrkdwn, safe)
    binding: Binding | None = None
    identity: Identity = Identity("", "")
    note: str = ""  # something the answer must say about the decision (e.g. whose identity was used instead)

    def __bool__(self) -> bool:
        return self.allowed


Members = Callable[[str], set[str]]  # user-group id → its member user ids (may raise)


@dataclass(frozen=True)
class Policy:
    bindings: tuple[Binding, ...]
    identities: dict[str, str] = field(default_factory=dict)
    implicit: bool = False
    source: str = ""  # the file, or "" for the implicit binding

    # ---- what later features build on ---------------------------------------------------------------
    def binding_for(self, channel: str) -> Binding | None:
        """The one binding that names this conversation (channel ids are unique across bindings)."""
        exact = next((b for b in self.bindings if channel in b.channels), None)
        return exact or next((b for b in self.bindings if b.names(channel)), None)

    @property
    def projects(self) -> tuple[str, ...]:
        """Every project some binding may ask about."""
        return tuple(sorted({p for b in self.bindings for p in b.projects}))

    @property
    def approvers(self) -> tuple[str, ...]:
        """Every approver (users and groups) of some binding."""
        return tuple(sorted({a for b in self.bindings for a in b.approvers}))

    def channels(self) -> list[str]:
        return [c for b in self.bindings for c in b.channels if c not in ("*", DIRECT)]

    def is_approver(self, binding: Binding | None, user: str, members: Members) -> bool:
        """May `user` approve fixes in `binding`? (Group membership through `members`; it may raise.)"""
        if binding is None:
            return False
        return user in binding.approver_users or any(user in members(g) for g in binding.approver_groups)

    def bindings_of(self, asker: Asker, members: Members, team_id: str = "") -> list[Binding]:
        """The bindings where `asker` may ask, by the checks `may_ask` applies to the person (guests, other
        workspaces, bots, deactivated accounts; the binding's `users:`): the Home tab, the form's clusters."""
        return [b for b in self.bindings if not self._person(b, asker, team_id)
                and (not b.users or self._listed(b.users, asker.id, members))]

    def identity(self, asker: Asker) -> Identity:
        """The asker's Google identity: identities[USER] when given, else the Slack profile email."""
        if asker.id in self.identities:
            return Identity(self.identities[asker.id], "policy")
        return Identity(f"user:{asker.email}", "slack") if asker.email else Identity("", "")

    # ---- the decision ---------------------------------------------------------------------------------
    def may_ask(self, channel: str, asker: Asker | None, command: str, project: str = "", principal: str = "",
                members: Members = lambda g: set(), team_id: str = "") -> Decision:
        """May `asker` run `command` in `channel` (about `project`, as `principal`)? Deny by default."""
        binding = self.binding_for(channel)
        if binding is None:
            listed = self.channels()
            msg = (_(MSG["unbound"]).format(allowed=", ".join(f"<#{c}>" for c in listed), channel=channel)
                   if listed else _(MSG["unbound_none"]).format(channel=channel))
            return Decision(False, "unbound", msg)
        if asker is None:
            return Decision(False, "unknown_user", _(MSG["unknown_user"]), binding)
        refusal = self._person(binding, asker, team_id)
        if refusal:
            return Decision(False, refusal, _(MSG[refusal]), binding)
        if binding.users and not self._listed(binding.users, asker.id, members):
            return Decision(False, "not_a_user", _(MSG["not_a_user"]), binding)
        if command in DIAGNOSES and command not in binding.commands:
            return Decision(False, "command", _(MSG["command"]).format(
                command=command, allowed=", ".join(f"`{c}`" for c in binding.commands)), binding)
        if not binding.projects:
            return Decision(False, "no_projects", _(MSG["no_projects"]), binding)
        if project and project not in binding.projects:
            return Decision(False, "foreign_project", _(MSG["foreign_project"]).format(
                project=project, allowed=", ".join(f"`{p}`" for p in binding.projects)), binding)
        own = self.identity(asker)
        if principal and principal != own.principal:
            if not self.is_approver(binding, asker.id, members):
                return Decision(False, "as_other", _(MSG["as_other"]).format(principal=principal), binding, own)
            return Decision(True, "ok", binding=binding, identity=Identity(principal, "as"))
        return Decision(True, "ok", binding=binding, identity=own)

    @staticmethod
    def _person(binding: Binding, asker: Asker, team_id: str) -> str:
        if asker.deleted:
            return "deleted"
        if asker.is_bot:
            return "bot"
        foreign_team = bool(team_id and asker.team_id and asker.team_id != team_id)
        if (asker.is_stranger or foreign_team) and not binding.external:
            return "external"
        if (asker.is_restricted or asker.is_ultra_restricted) and not binding.guests:
            return "guest"
        return ""

    @staticmethod
    def _listed(entries: Iterable[str], user: str, members: Members) -> bool:
        entries = list(entries)
        return user in entries or any(user in members(g) for g in entries if GROUP_RE.match(g))


# ---- loading ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    parse: Callable[[Any, str], Any]  # (raw value, where) → value; raises PolicyError
    required: bool = False


def _ids(regex: re.Pattern, what: str, allow: tuple[str, ...] = ()) -> Callable[[Any, str], tuple[str, ...]]:
    def parse(raw: Any, where: str) -> tuple[str, ...]:
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise PolicyError(f"{where} must be a list of {what}")
        for x in raw:
            if not (regex.match(x) or x in allow):
                raise PolicyError(f"{where}: {x!r} is not {what}")
        if len(set(raw)) != len(raw):
            raise PolicyError(f"{where} lists the same entry twice")
        return tuple(raw)
    return parse


def _projects(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) and PROJECT_RE.match(x) for x in raw):
        raise PolicyError(f"{where} must be a list of project ids")
    return tuple(raw)


def _commands(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or any(x not in DIAGNOSES for x in raw):
        raise PolicyError(f"{where} must be a non-empty list of commands among {', '.join(DIAGNOSES)}")
    return tuple(raw)


def _flag(raw: Any, where: str) -> bool:
    if not isinstance(raw, bool):
        raise PolicyError(f"{where} must be true or false")
    return raw


def _locale(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not re.match(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$", raw) or not supported(raw):
        raise PolicyError(f"{where} must be a language the bot speaks: ja-JP, ja, en-US or en")
    return raw


def _name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}$", raw):
        raise PolicyError(f"{where} must be a short name (letters, digits, space, '_', '.', '-')")
    return raw


def _sweep(raw: Any, where: str) -> SweepSpec:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be a mapping, e.g. {{cron: \"0 9 * * 1-5\"}}")
    known = ("cron", "channel", "quiet", "deadline")
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise PolicyError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(known)})")
    cron = raw.get("cron", "")
    if cron != "":
        from croniter import croniter
        if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise PolicyError(f"{where}.cron must be a five-field cron expression in UTC, e.g. \"0 9 * * 1-5\"; "
                              f"got {cron!r}")
    channel = raw.get("channel", "")
    if channel and (not isinstance(channel, str) or not CHANNEL_RE.match(channel) or channel[0] == "D"):
        raise PolicyError(f"{where}.channel must be a Slack channel id (C…, G…)")
    deadline = raw.get("deadline", 0)
    if "deadline" in raw and (not isinstance(deadline, int) or isinstance(deadline, bool)
                              or not 10 <= deadline <= 86400):
        raise PolicyError(f"{where}.deadline must be a number of seconds from 10 to 86400")
    return SweepSpec(cron=cron, channel=channel, quiet=_flag(raw.get("quiet", False), f"{where}.quiet"),
                     deadline=deadline)


def _notifications(raw: Any, where: str) -> NotificationsSpec:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be a mapping, e.g. {{subscription: projects/P/subscriptions/S}}")
    unknown = sorted(set(raw) - {"subscription", "channel"})
    if unknown:
        raise PolicyError(f"{where}: unknown key {unknown[0]!r} (known: subscription, channel)")
    sub = raw.get("subscription")
    if not isinstance(sub, str) or not re.match(
            r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/subscriptions/[A-Za-z][\w.~+%-]{2,254}$", sub):
        raise PolicyError(f"{where}.subscription must be a Pub/Sub subscription, projects/PROJECT/subscriptions/NAME")
    channel = raw.get("channel", "")
    if channel and (not isinstance(channel, str) or not CHANNEL_RE.match(channel) or channel[0] == "D"):
        raise PolicyError(f"{where}.channel must be a Slack channel id (C…, G…)")
    return NotificationsSpec(sub, channel)


# The documented place to add binding keys: one entry per key (and a field of the same name on Binding).
BINDING_KEYS: dict[str, Key] = {
    "name": Key(_name),
    "channels": Key(_ids(CHANNEL_RE, "Slack channel ids (C…, G…, D…) or `direct`", (DIRECT,)), required=True),
    "projects": Key(_projects, required=True),
    "approvers": Key(_ids(re.compile(r"^(?:[UW]|S)[A-Z0-9]{2,}$"), "Slack user ids (U…, W…) or user-group ids (S…)")),
    "users": Key(_ids(re.compile(r"^(?:[UW]|S)[A-Z0-9]{2,}$"), "Slack user ids (U…, W…) or user-group ids (S…)")),
    "commands": Key(_commands),
    "guests": Key(_flag),
    "external": Key(_flag),
    "locale": Key(_locale),
    "sweep": Key(_sweep),
    "notifications": Key(_notifications),
}
TOP_KEYS = ("bindings", "identities")  # and their parsers in `parse` below


def parse(data: Any, allowed_projects: tuple[str, ...], source: str = "policy") -> Policy:
    """A Policy from the file's data; PolicyError with a one-line reason when anything is off."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the top level must be a mapping with `bindings:`")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise PolicyError(f"{source}: unknown key {unknown[0]!r} (known: {', '.join(TOP_KEYS)})")
    raw_bindings = data.get("bindings")
    if not isinstance(raw_bindings, list) or not raw_bindings:
        raise PolicyError(f"{source}: `bindings` must be a non-empty list")
    bindings, seen, subscriptions = [], {}, {}
    for i, raw in enumerate(raw_bindings):
        where = f"{source}: bindings[{i}]"
        if not isinstance(raw, dict):
            raise PolicyError(f"{where} must be a mapping")
        unknown = sorted(set(raw) - set(BINDING_KEYS))
        if unknown:
            raise PolicyError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(BINDING_KEYS)})")
        values = {"name": f"binding {i + 1}"}
        for key, spec in BINDING_KEYS.items():
            if key in raw:
                values[key] = spec.parse(raw[key], f"{where}.{key}")
            elif spec.required:
                raise PolicyError(f"{where}: `{key}` is required")
        for p in values["projects"]:
            if p not in allowed_projects:
                raise PolicyError(f"{where}.projects: {p!r} is not in GKE_BOT_PROJECTS "
                                  f"({', '.join(allowed_projects) or 'empty'}); a binding may only narrow it")
        for c in values["channels"]:
            if c in seen:
                raise PolicyError(f"{where}.channels: {c!r} is already bound by {seen[c]}; a conversation "
                                  "belongs to one binding")
            seen[c] = values["name"]
        for key in ("sweep", "notifications"):
            spec = values.get(key)
            if spec is None:
                continue
            targets = [c for c in values["channels"] if c != DIRECT]
            if spec.channel and spec.channel not in targets:
                raise PolicyError(f"{where}.{key}.channel: {spec.channel!r} is not one of this binding's channels")
            if not targets:
                raise PolicyError(f"{where}.{key}: the binding names no channel to post in")
            if key == "notifications":
                if spec.subscription in subscriptions:
                    raise PolicyError(f"{where}.notifications.subscription is already used by "
                                      f"{subscriptions[spec.subscription]}; one binding per subscription")
                subscriptions[spec.subscription] = values["name"]
        bindings.append(Binding(**values))
    identities = data.get("identities") or {}
    if not isinstance(identities, dict):
        raise PolicyError(f"{source}: `identities` must map Slack user ids to principals")
    parsed: dict[str, str] = {}
    for user, principal in identities.items():
        if not isinstance(user, str) or not USER_RE.match(user):
            raise PolicyError(f"{source}: identities: {user!r} is not a Slack user id (U…, W…)")
        try:
            parsed[user] = normalize_principal(str(principal))
        except ValueError as exc:
            raise PolicyError(f"{source}: identities.{user}: {exc}") from None
        if not parsed[user].startswith("user:"):
            raise PolicyError(f"{source}: identities.{user}: a person is a `user:EMAIL` principal")
    return Policy(tuple(bindings), parsed, source=source)


def load(settings) -> Policy:
    """The policy of these settings: GKE_BOT_POLICY's file, or the implicit binding."""
    if not settings.policy_path:
        return Policy((Binding("implicit", ("*",), tuple(settings.projects), tuple(settings.approvers)),),
                      implicit=True)
    import yaml
    path = Path(settings.policy_path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"GKE_BOT_POLICY: cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise PolicyError(f"{path}: not valid YAML{at}") from None
    return parse(data, tuple(settings.projects), str(path))
