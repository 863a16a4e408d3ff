"""Slack texts of `/gke explain` and the *Diagnose this error* shortcut, in the reader's language: what was
recognised, what is missing, the cluster picker, and "not recognised" with what the bot can recognise.

Values in a Recognition's summary and lines are validated identifiers in backticks (checks.explain); anything
else taken from the pasted text is escaped here.
"""
from __future__ import annotations

from bot.i18n import _
from bot.render.blocks import code, escape, section, sections
from checks.explain import Recognition, kinds
from checks.model import ClusterRef

PICK_ACTION = "explain_pick"
MAX_OPTIONS = 100  # Slack's limit for a static_select
_RUN_AS = {"why-403", "why-401", "rbac"}


def unrecognised_text() -> str:
    """Nothing recognised: say so, list what the bot recognises, offer the commands."""
    lines = [f"• {escape(desc)} → `/gke {command}`" for _kind, command, desc in kinds()]
    return (":grey_question: " + _("I did not recognise an error I can diagnose in that text, so I did not start "
                                   "anything.") + "\n*" + _("I recognise these errors:") + "*\n" + "\n".join(lines)
            + "\n" + _("Or ask directly: `/gke why-403 CLUSTER`, `/gke why-401 CLUSTER`, `/gke why-400 CLUSTER`, "
                       "`/gke why-404 CLUSTER`, `/gke wi CLUSTER NAMESPACE/KSA`, `/gke rbac CLUSTER VERB RESOURCE`, "
                       "`/gke ingress CLUSTER`, `/gke doctor CLUSTER` (`/gke help` explains them)."))


def recognised_lines(rec: Recognition) -> list[str]:
    return [":mag: " + _("Recognised: {summary}").format(summary=rec.summary())] + rec.lines()


def missing_text(rec: Recognition) -> str:
    """The error is recognised but its diagnosis needs an argument the text does not give: what to add."""
    where = str(rec.cluster) if rec.cluster else "CLUSTER"
    if rec.command == "wi":
        ask = _("To diagnose it I need the workload's Kubernetes service account. Ask {command} with its namespace "
                "and name, for example {example}.").format(
            command=code(f"/gke wi {where} NAMESPACE/KSA"), example=code(f"/gke wi {where} default/my-app"))
    elif rec.command == "rbac":
        ask = _("To diagnose it I need the verb and the resource that were refused. Ask {command}.").format(
            command=code(f"/gke rbac {where} VERB RESOURCE [-n NAMESPACE]"))
    else:
        ask = _("To diagnose it I need {fields}. Ask {command}.").format(
            fields=", ".join(f"`{m}`" for m in rec.missing), command=code(f"/gke {rec.command} {where}"))
    return "\n".join(recognised_lines(rec) + [ask])


def ran_line(command_text: str) -> str:
    return _("Diagnosis: {command}.").format(command=code("/gke " + command_text))


def _option(ref: ClusterRef) -> dict:
    text = _("{name} ({location}, {project})").format(name=ref.name, location=ref.location, project=ref.project)
    return {"text": {"type": "plain_text", "text": text if len(text) <= 75 else text[:74] + "…"},
            "value": f"{ref.project}/{ref.location}/{ref.name}"}


def picker(rec: Recognition, choices: list[ClusterRef], pick_id: str, note: str = "") -> dict:
    """An ephemeral message asking which cluster the error is about: {"text", "blocks"}."""
    shown = choices[:MAX_OPTIONS]
    intro = "\n".join(recognised_lines(rec) + ([note] if note else []))
    ask = _("Which cluster is it about? Choose one and I will diagnose it in the thread.")
    if len(choices) > len(shown):
        ask += " " + _("(The first {n} of {total}; or ask `/gke explain CLUSTER …` with the cluster.)").format(
            n=len(shown), total=len(choices))
    blocks = sections(intro) + [{
        **section(ask),
        "block_id": f"{PICK_ACTION}:{pick_id}",
        "accessory": {"type": "static_select", "action_id": PICK_ACTION,
                      "placeholder": {"type": "plain_text", "text": _("Choose a cluster")},
                      "options": [_option(r) for r in shown]},
    }]
    return {"text": _("Which cluster is it about?"), "blocks": blocks}


def no_cluster_text(rec: Recognition, projects: list[str], errors: list[str]) -> str:
    lines = recognised_lines(rec) + [_("I found no cluster in {projects} to diagnose it on. Ask again with the "
                                       "cluster: `/gke explain CLUSTER …`.").format(
        projects=", ".join(f"`{p}`" for p in projects) or "—")]
    return "\n".join(lines + [f"• {escape(e)}" for e in errors])


def run_as(rec: Recognition) -> bool:
    """Whether the command takes a principal (`--as`): only then is the one the error names used."""
    return rec.command in _RUN_AS
