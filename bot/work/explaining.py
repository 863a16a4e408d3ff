"""The worker side of `/gke explain` (and `@gke-bot explain`, the *Diagnose this error* shortcut).

Nothing in the job is trusted as decided: the pasted text is read again (bot.explain), the access policy
decides again, and the cluster is found here, where Google may be called: the one typed or named in the
error, else the clusters of the binding's projects are listed — one is used as is, several make a picker
(an ephemeral message to the asker; the choice comes back to the edge, bot.listeners.actions, which starts
the diagnosis in the same thread). What `settle` returns is the typed command the error stands for; the job
(bot.work.jobs) runs it as any other.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from slack_sdk.errors import SlackApiError

from bot.access import Gate
from bot.explain import command as typed_command
from bot.explain import read, settle
from bot.grammar import Command, GrammarError, parse
from bot.i18n import _
from bot.policy import Decision
from bot.render import blocks as render
from bot.render import explain as texts
from bot.work.picks import picks_for
from checks.gateway import ApiError, Gateway
from checks.model import ClusterRef
from checks.resolve import ClusterSpec

log = logging.getLogger(__name__)


@dataclass
class Settled:
    cmd: Command | None = None  # the typed command to run; None: answered already (see `result`)
    decision: Decision | None = None
    context: list[str] = field(default_factory=list)  # lines for the report: what was recognised, how it ran
    gw: Gateway | None = None
    result: dict = field(default_factory=dict)


def _picked(payload: dict) -> ClusterSpec | None:
    """The cluster the asker chose in a picker (validated again: the payload crossed Redis)."""
    raw = payload.get("cluster")
    if not isinstance(raw, dict):
        return None
    try:
        spec = parse(f"why-404 {raw.get('project', '')}/{raw.get('location', '')}/{raw.get('name', '')}").cluster
    except GrammarError:
        return None
    return spec if spec and spec.project and spec.location else None


def _listing(gw: Gateway, projects: tuple[str, ...], project: str) -> tuple[list[ClusterRef], list[str]]:
    """The clusters of the binding's projects (only the one the error names, when it names one of them)."""
    wanted = [project] if project in projects else list(projects)

    def one(p: str):
        try:
            return [ClusterRef(p, c.location, c.name) for c in gw.clusters(p)], ""
        except ApiError as err:
            return [], err.explain()
    out, errors = [], []
    for refs, error in gw.parallel(*[lambda p=p: one(p) for p in wanted]):
        out += refs
        if error:
            errors.append(error)
    return out, errors


def settle_explain(settings, client, payload: dict, redis, thread, cmd: Command, deadline: float) -> Settled:
    """The typed command for the pasted error, or an answer already given (refusal, missing argument, picker)."""
    reading = read(cmd.args.get("text", ""))
    if not reading.recognised:
        thread.reply(texts.unrecognised_text())
        thread.status(":grey_question: " + _("not recognised (see thread)"))
        return Settled(result={"ok": False, "error": "not recognised"})
    rec = reading.rec
    picked = _picked(payload)
    if picked is not None:
        if reading.candidate is not None and reading.candidate.name != picked.name:
            rec = reading.whole or rec
        rec = rec.with_cluster(picked)
    project = picked.project if picked else reading.project
    decision = Gate(settings, redis).explain(client, rec.command, project, rec.principal, thread.channel,
                                             thread.user, cmd.text, where="worker")
    gated = (rec.command, rec.principal, project)
    if not decision:
        thread.reply(render.error_text(decision.message))
        thread.status(":no_entry: " + _("refused (see thread)"))
        return Settled(result={"ok": False, "error": f"refused: {decision.reason}"})
    if rec.missing:
        thread.reply(texts.missing_text(rec))
        thread.status(":pencil2: " + _("more needed (see thread)"))
        return Settled(result={"ok": False, "error": "arguments missing"})
    projects = decision.binding.projects
    from bot.work.ratelimit import limiter_for
    gw = Gateway(settings.google_api_url, deadline=deadline, shared_cache=redis, projects=projects,
                 endpoint=settings.endpoint, limiter=limiter_for(settings, redis))
    cluster = picked or reading.cluster
    if cluster is None:
        listed, errors = _listing(gw, projects, rec.project)
        rec, cluster, choices = settle(reading, listed)
        if cluster is None:
            if not choices:
                thread.reply(render.error_text(texts.no_cluster_text(
                    rec, [rec.project] if rec.project in projects else list(projects), errors)))
                thread.status(":warning: " + _("no cluster found (see thread)"))
                return Settled(result={"ok": False, "error": "no cluster"})
            _offer(settings, client, payload, redis, thread, rec, choices, decision.note)
            return Settled(result={"ok": True, "status": "picker"})
    elif picked is None:
        rec = rec.with_cluster(cluster)
    if (rec.command, rec.principal, cluster.project or project) != gated:
        # the cluster list changed the reading (e.g. the first word was no cluster): decide again on it
        decision = Gate(settings, redis).explain(client, rec.command, cluster.project, rec.principal, thread.channel,
                                                 thread.user, cmd.text, where="worker")
        if not decision:
            thread.reply(render.error_text(decision.message))
            thread.status(":no_entry: " + _("refused (see thread)"))
            return Settled(result={"ok": False, "error": f"refused: {decision.reason}"})
    shown_principal = decision.identity.principal if decision.identity.source == "error" else ""
    typed = typed_command(rec, cluster, shown_principal if texts.run_as(rec) else "")
    context = texts.recognised_lines(rec) + [texts.ran_line(typed.text)] + ([decision.note] if decision.note else [])
    return Settled(cmd=typed, decision=decision, context=context, gw=gw)


def _offer(settings, client, payload: dict, redis, thread, rec, choices: list[ClusterRef], note: str) -> None:
    """The cluster picker: an ephemeral message to the asker (in the thread), and what to run once chosen."""
    pick_id = picks_for(settings, redis).save({
        "channel": thread.channel, "thread_ts": thread.thread_ts, "status_ts": thread.status_ts,
        "user": thread.user, "text": str(payload.get("text", "")), "shown": str(payload.get("shown", "")),
        "lang": str(payload.get("lang", "")), "clusters": [f"{r.project}/{r.location}/{r.name}" for r in choices]})
    message = texts.picker(rec, choices, pick_id, note)
    # the parent says so before the picker shows: a quick pick's "checking…" must not be overwritten by it
    thread.status(":point_up: " + _("waiting for {user} to choose a cluster").format(user=render.mention(thread.user)))
    try:
        client.chat_postEphemeral(channel=thread.channel, user=thread.user, thread_ts=thread.thread_ts,
                                  text=message["text"], blocks=message["blocks"])
    except SlackApiError as exc:
        log.warning("could not show the cluster picker: %s", exc.response.get("error"))
        thread.reply(render.error_text(_("I could not show you the cluster picker ({error}). Ask again with the "
                                         "cluster: `/gke explain CLUSTER …`.").format(
            error=render.escape(str(exc.response.get("error", ""))))))
        thread.status(":warning: " + _("failed (see thread)"))
        return
