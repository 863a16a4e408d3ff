"""The diagnosis modal's listeners (the view itself: bot.render.modal).

Opened by `/gke` with no arguments (bot.listeners.commands), the global shortcut *New diagnosis*
(bot.listeners.shortcuts) and the Home tab's button, with `views.open` and the trigger id while Slack still
accepts it. Choosing a command updates the view with that command's fields (`views.update`, guarded by the
view's hash); the cluster select asks for its options as the user types (block_suggestion), answered from the
cached cluster list of the projects the user may ask about there (bot.work.clusters). The submission is
validated field by field (`response_action: errors`), turned into the typed command's text and started exactly
as that command would be (Edge.start: rate limits, the access policy, the parent message, the queue), in the
conversation the modal was opened from (`private_metadata`) or the one chosen in it.
"""
from __future__ import annotations

import logging
import re

from slack_sdk.errors import SlackApiError

from bot.grammar import GrammarError, parse
from bot.directory import member_of
from bot.i18n import N_, _, language
from bot.render import blocks as render
from bot.render.home import HOME_NEW
from bot.render.modal import (CHOICES, CLUSTER, COMMAND, FIELDS, VIEW, WHERE, cluster_option, diagnose_view,
                              has_fields, read_metadata, values)
from bot.work import clusters

log = logging.getLogger(__name__)


_CONVERSATION = re.compile(r"^[CGD][A-Z0-9]{2,20}$")
# ---- user-facing English of the modal's checks
CHOOSE_COMMAND = N_("Choose a diagnosis.")
CHOOSE_CLUSTER = N_("Choose a cluster.")
REQUIRED = N_("This is needed for this diagnosis.")
ONE_WORD = N_("One word, without spaces, not starting with '-'.")
CHOOSE_WHERE = N_("Choose the conversation to post the answer in.")
NO_MODAL = N_("I could not open the diagnosis form ({error}). Type the command instead: `/gke help`.")
NOT_A_MEMBER = N_("You are not a member of {channel}, so I did not post there. Choose a conversation you are in.")
MEMBERS_UNKNOWN = N_("I could not check that you are a member of {channel} ({error}), so I did not post there.")


def register(app, edge) -> None:
    Modal(edge).register(app)


def open_modal(edge, client, trigger_id: str, user: str, channel: str, private=None,
               response_url: str = "") -> None:
    """Open the modal for `user` (in their language), posting to `channel` (or asking where, when "")."""
    lang = edge.gate.language(client, user, channel)
    with language(lang):
        view = diagnose_view(channel, lang, ask_where=not channel, response_url=response_url)
        try:
            client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            log.warning("could not open the diagnosis modal: %s", error)
            if private is not None:
                private(render.error_text(_(NO_MODAL).format(error=render.escape(error))))


def command_text(command: str, entered: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The typed command the fields stand for, or the errors per field (block id → message, current language)."""
    errors: dict[str, str] = {}
    cluster = entered.get(CLUSTER, "").strip()
    if command != "explain" and not cluster:
        errors[CLUSTER] = _(CHOOSE_CLUSTER)
    words = {CLUSTER: cluster}
    for block_id, _label, _hint, optional, multiline in FIELDS.get(command, []):
        value = entered.get(block_id, "").strip()
        if not value and not optional:
            errors[block_id] = _(REQUIRED)
        elif value and not multiline and (value.startswith("-") or any(c.isspace() for c in value)):
            errors[block_id] = _(ONE_WORD)
        words[block_id] = value
    if cluster and (cluster.startswith("-") or any(c.isspace() for c in cluster)):
        errors[CLUSTER] = _(ONE_WORD)
    if errors:
        return "", errors
    if cluster:
        try:
            parse(f"why-404 {cluster}")
        except GrammarError as err:
            return "", {CLUSTER: str(err)}
    steps: list[tuple[str, str]] = []  # (text so far, the field its error belongs to)
    if command == "explain":
        steps.append(("explain " + (cluster + " " if cluster else "") + words["error"], "error"))
    elif command == "wi":
        steps.append((f"wi {cluster} {words['ksa']}", "ksa"))
    elif command == "rbac":
        base = f"rbac {cluster} {words['verb']} {words['resource']}"
        steps.append((base, "resource"))
        if words["namespace"]:
            steps.append((f"{base} -n {words['namespace']}", "namespace"))
    elif command == "ingress":
        steps.append((f"ingress {cluster}" + (f" {words['ingress']}" if words["ingress"] else ""), "ingress"))
    else:
        steps.append((f"{command} {cluster}", CLUSTER))
    for text, block_id in steps:
        try:
            parse(text)
        except GrammarError as err:
            return "", {block_id: str(err)}
    return steps[-1][0], {}


class Modal:
    def __init__(self, edge):
        self.edge = edge

    def register(self, app) -> None:
        app.action({"block_id": COMMAND, "action_id": COMMAND})(self.on_command_chosen)
        app.options(CLUSTER)(self.on_cluster_options)
        app.view(VIEW)(self.on_submit)
        app.action(HOME_NEW)(self.on_home_new)

    # ---- while the modal is open ---------------------------------------------------------------------------
    def on_command_chosen(self, ack, body, action, client):
        """A command was chosen: show its fields (views.update with the hash Slack gave, so a later choice wins)."""
        ack()
        view = body.get("view") or {}
        meta = read_metadata(view.get("private_metadata", ""))
        command = str((action.get("selected_option") or {}).get("value", ""))
        ask_where = any(b.get("block_id") == WHERE for b in view.get("blocks") or [])
        with language(str(meta.get("lang", ""))):
            new = diagnose_view(str(meta.get("channel", "")), str(meta.get("lang", "")), command, ask_where,
                                str(meta.get("response_url", "")))
        try:
            client.views_update(view_id=view.get("id", ""), hash=view.get("hash"), view=new)
        except SlackApiError as exc:  # hash_conflict: a later choice updated it already
            log.info("diagnosis modal not updated: %s", exc.response.get("error"))

    def projects(self, client, user: str, channel: str) -> tuple[str, ...]:
        """The projects `user` may ask about in `channel`, decided about the person as the Gate decides a
        command. With no conversation known yet (the shortcut, the Home tab), only those of bindings the user
        may use wherever they are (every conversation, direct messages) or that name them in `users:`: a
        binding of channels they may not be in would tell them its projects."""
        policy = self.edge.gate.policy
        try:
            mine = self.edge.gate.bindings_of(client, user)
        except Exception:  # noqa: BLE001 - the person or group membership unknown: offer nothing
            return ()
        if channel:
            binding = policy.binding_for(channel)
            return binding.projects if binding in mine else ()
        return tuple(sorted({p for b in mine if b.without_channel for p in b.projects}))

    def on_cluster_options(self, ack, body, client):
        user = (body.get("user") or {}).get("id", "")
        view = body.get("view") or {}
        channel = str(read_metadata(view.get("private_metadata", "")).get("channel", "")) or \
            values(view).get(WHERE, "")
        if channel and not _CONVERSATION.match(channel):
            channel = ""
        found = clusters.matching(self.edge.settings, self.edge.queue.redis, self.projects(client, user, channel),
                                  str(body.get("value", ""))[:100])
        ack(options=[cluster_option(c) for c in found])

    def on_home_new(self, ack, body, client):
        ack()
        user = (body.get("user") or {}).get("id", "")
        open_modal(self.edge, client, body.get("trigger_id", ""), user, "")

    # ---- the submission ------------------------------------------------------------------------------------
    def on_submit(self, ack, body, view, client):
        user = (body.get("user") or {}).get("id", "")
        meta = read_metadata(view.get("private_metadata", ""))
        lang = str(meta.get("lang", ""))
        entered = values(view)
        ask_where = any(b.get("block_id") == WHERE for b in view.get("blocks") or [])
        channel = str(meta.get("channel", "")) or (entered.get(WHERE, "") if ask_where else "")
        command = entered.get(COMMAND, "")
        with language(lang):
            if command not in CHOICES:
                ack(response_action="errors", errors={COMMAND: _(CHOOSE_COMMAND)})
                return
            if not has_fields(view, command):  # its fields never reached the view: show them now
                ack(response_action="update", view=diagnose_view(str(meta.get("channel", "")), lang, command,
                                                                 ask_where, str(meta.get("response_url", ""))))
                return
            text, errors = command_text(command, entered)
            if not _CONVERSATION.match(channel):
                errors[WHERE if ask_where else COMMAND] = _(CHOOSE_WHERE)
            if errors:
                ack(response_action="errors", errors=errors)
                return
        ack()
        cmd = parse(text)

        def private(msg: str = "", blocks=None, **_extra) -> None:
            self.edge.privately(client, channel, user, msg, str(meta.get("response_url", "")), blocks)
        key = f"view:{(body.get('team') or {}).get('id', '')}:{view.get('id', '')}"
        if not meta.get("channel"):  # a conversation chosen in the form: only one its user is in
            self.edge.submit(self._start_where, client, cmd, key, channel, user, lang, text)
            return
        self.edge.submit(self.edge.start, client, cmd, key, channel=channel, user=user, thread_ts=None,
                         private=private, busy=private)

    def _start_where(self, client, cmd, key: str, channel: str, user: str, lang: str, text: str) -> None:
        """The form asked where to post (a shortcut or the Home tab): the bot posts with chat:write.public, so
        without this check anyone could make it post in any public channel. The answer goes to the app's
        messages tab (there is no response_url, and the user may not be in that channel)."""
        from bot.access import log_command

        def direct(msg: str = "", blocks=None, **_extra) -> None:
            self.edge._say(client, user, None, msg)
        member, error = member_of(client, channel, user)
        if not member:
            log_command("edge", user, channel, cmd.name, text, "refused",
                        "not a member of the chosen conversation" if member is False else f"membership unknown: {error}")
            with language(lang):
                where = f"<#{channel}>"
                direct(render.error_text(_(NOT_A_MEMBER).format(channel=where) if member is False else
                                         _(MEMBERS_UNKNOWN).format(channel=where, error=render.escape(error))))
            return
        self.edge.start(client, cmd, key, channel=channel, user=user, thread_ts=None, private=direct)
