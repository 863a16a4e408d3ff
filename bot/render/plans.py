"""What a fix button does, in the reader's language, from the plan's kind and params (never from stored text).

The button label (the asker's language, in the report), the approver's confirmation dialog and the result
line (the approver's language) are all written from here. The params were checked when the plan was made and
are checked again before the fix runs (checks.fixes.validate); here they are only shown, as code.
"""
from __future__ import annotations

from bot.i18n import _

MAX_LABEL = 75


def _code(value) -> str:
    return "`" + str(value).replace("`", "'").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "`"


def _plain(value) -> str:
    return str(value).replace("`", "'")


def upgrade_command(params: dict) -> str:
    return (f"gcloud container clusters upgrade {params.get('cluster', '')} --node-pool={params.get('pool', '')} "
            f"--location={params.get('location', '')} --project={params.get('project', '')}")


def label(kind: str, params: dict, fallback: str = "") -> str:
    """The button text (plain text, at most 75 characters)."""
    p = params or {}
    if kind == "grant_service_agent" and p.get("role"):
        text = _("Re-grant {role}").format(role=_plain(p.get("role", "")))
    elif kind == "upgrade_node_pool" and p.get("pool") and p.get("to_version"):
        same = p.get("mode") == "recreate" and p.get("from_version") == p.get("to_version")
        text = (_("Recreate {pool} at {version}") if same else _("Upgrade {pool} to {version}")).format(
            pool=_plain(p.get("pool", "")), version=_plain(p.get("to_version", "")))
    elif kind == "enable_http_load_balancing":
        text = _("Enable HTTP load balancing")
    else:
        text = fallback or kind
    return text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 1] + "…"


def summary(kind: str, params: dict, fallback: str = "") -> str:
    """What exactly changes, as Slack mrkdwn (values as code)."""
    params = params or {}
    p = {k: _code(v) for k, v in params.items()}
    if kind == "grant_service_agent" and params.get("role"):
        return _("Add one binding to project {project}: {role} → {member}. Nothing else in the IAM policy "
                 "changes.").format(project=p.get("project", ""), role=p.get("role", ""), member=p.get("member", ""))
    if kind == "upgrade_node_pool" and params.get("pool"):
        command = _code(upgrade_command(params))
        if params.get("mode") == "recreate" and params.get("from_version") == params.get("to_version"):
            text = _("Recreate node pool {pool} of cluster {cluster} with an upgrade to the version it already "
                     "runs ({version}): GKE recreates its nodes.").format(
                pool=p.get("pool", ""), cluster=p.get("cluster", ""), version=p.get("to_version", ""))
        else:
            text = _("Upgrade node pool {pool} of cluster {cluster} from {old} to the control-plane version "
                     "{version}: GKE recreates its nodes.").format(
                pool=p.get("pool", ""), cluster=p.get("cluster", ""), old=p.get("from_version", ""),
                version=p.get("to_version", ""))
        return text + "\n" + _("The same as {command}.").format(command=command)
    if kind == "enable_http_load_balancing" and params.get("cluster"):
        return _("Enable the HTTP load balancing add-on on cluster {cluster} ({project}, {location}).").format(
            cluster=p.get("cluster", ""), project=p.get("project", ""), location=p.get("location", ""))
    return _plain(fallback).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") if fallback else _code(kind)
