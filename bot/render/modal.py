"""The diagnosis modal (`/gke` with no arguments, the global shortcut *New diagnosis*, the Home tab's button):
small view functions, in the reader's language.

A command select (its input block dispatches: choosing a command updates the view with the fields that command
needs), a cluster select answered from the cached cluster list (an external_select: bot.listeners.views answers
its block_suggestion), the command's own fields, and, when it was opened outside a conversation, where to post.
What the fields say becomes the text of the typed command (`command_text`), parsed by the same grammar.
"""
from __future__ import annotations

import json

from bot.grammar import USAGE
from bot.i18n import N_, _
from bot.render.blocks import button_text, context

VIEW = "gke_diagnose"  # callback_id of the modal
COMMAND, CLUSTER, WHERE = "command", "cluster", "where"  # block ids (and their elements' action ids)
CHOICES = ("why-403", "why-401", "why-400", "why-404", "wi", "rbac", "ingress", "doctor", "explain")
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
# per command: (block id, N_(label), N_(placeholder), optional, multiline)
FIELDS = {
    "wi": [("ksa", N_("Kubernetes service account"), N_("namespace/name"), False, False)],
    "rbac": [("verb", N_("Verb"), "", False, False),
             ("resource", N_("Resource"), N_("pods, deployments.apps, pods/log"), False, False),
             ("namespace", N_("Namespace"), N_("all namespaces when empty"), True, False)],
    "ingress": [("ingress", N_("Ingress"), N_("namespace/name (every Ingress when empty)"), True, False)],
    "explain": [("error", N_("The error"), N_("Paste the error message"), False, True)],
}
ERROR_MAX = 3000  # Slack's limit for a plain_text_input


def _text(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def _option(value: str, label: str) -> dict:
    return {"text": _text(button_text(label)), "value": value}


def command_option(name: str) -> dict:
    return _option(name, f"{name} — {_(USAGE[name][1])}")


def cluster_option(path: str) -> dict:
    """A cluster `PROJECT/LOCATION/NAME` as an option: `NAME (LOCATION, PROJECT)`."""
    project, location, name = (path.split("/") + ["", ""])[:3]
    return _option(path, f"{name} ({location}, {project})")


def metadata(channel: str, lang: str, response_url: str = "") -> str:
    """What the modal remembers (set by the bot; Slack gives it back signed): where to post, the language, and
    the slash command's response_url for private answers (it works even where the bot may not post)."""
    return json.dumps({"channel": channel, "lang": lang, **({"response_url": response_url} if response_url else {})})


def read_metadata(raw: str) -> dict:
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _field(block_id: str, label: str, placeholder: str, optional: bool, multiline: bool) -> dict:
    if block_id == "verb":
        element = {"type": "static_select", "action_id": block_id, "placeholder": _text(_("Choose a verb")),
                   "options": [_option(v, v) for v in VERBS]}
    else:
        element = {"type": "plain_text_input", "action_id": block_id, "multiline": multiline,
                   "max_length": ERROR_MAX if multiline else 300}
        if placeholder:
            element["placeholder"] = _text(_(placeholder))
    return {"type": "input", "block_id": block_id, "optional": optional, "label": _text(_(label)),
            "element": element}


def diagnose_view(channel: str, lang: str, command: str = "", ask_where: bool = False,
                  response_url: str = "") -> dict:
    """The modal; `command` chosen (its fields shown) or not yet; `ask_where` when opened outside a conversation
    (a conversation select, the current conversation by default where Slack knows one)."""
    chooser = {"type": "static_select", "action_id": COMMAND, "placeholder": _text(_("Choose what to diagnose")),
               "options": [command_option(c) for c in CHOICES]}
    if command in CHOICES:
        chooser["initial_option"] = command_option(command)
    blocks = [
        {"type": "input", "block_id": COMMAND, "dispatch_action": True, "label": _text(_("Diagnosis")),
         "element": chooser},
        {"type": "input", "block_id": CLUSTER, "optional": command == "explain", "label": _text(_("Cluster")),
         "element": {"type": "external_select", "action_id": CLUSTER, "min_query_length": 0,
                     "placeholder": _text(_("Type to search the clusters"))}},
    ]
    blocks += [_field(*spec) for spec in FIELDS.get(command, [])]
    if ask_where:
        blocks.append({"type": "input", "block_id": WHERE, "label": _text(_("Post the answer in")),
                       "element": {"type": "conversations_select", "action_id": WHERE,
                                   "default_to_current_conversation": True,
                                   "filter": {"include": ["public", "private"], "exclude_bot_users": True}}})
    blocks.append(context(_("The answer is posted in a thread, exactly as for the typed command "
                            "(`/gke help` lists them).")))
    return {"type": "modal", "callback_id": VIEW, "private_metadata": metadata(channel, lang, response_url),
            "title": _text(_("Diagnose GKE")), "submit": _text(_("Diagnose")), "close": _text(_("Cancel")),
            "blocks": blocks}


def values(view: dict) -> dict[str, str]:
    """What the user entered: block id → the text typed, the option chosen or the conversation picked."""
    out = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        for entry in (actions or {}).values():
            if not isinstance(entry, dict):
                continue
            chosen = entry.get("selected_option") or {}
            value = entry.get("value") or chosen.get("value") or entry.get("selected_conversation") or \
                entry.get("selected_channel") or ""
            out[str(block_id)] = str(value)
    return out


def has_fields(view: dict, command: str) -> bool:
    """Does the view show the fields `command` needs (it may not, when its update did not reach Slack)?"""
    shown = {b.get("block_id") for b in view.get("blocks") or []}
    return all(spec[0] in shown for spec in FIELDS.get(command, []))
