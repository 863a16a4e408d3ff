"""Run a command's checks against one cluster, concurrently, and collect a Report."""
from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager

from checks import registry
from checks.gateway import ApiError, Gateway
from checks.i18n import N_, _, doc_url
from checks.model import ClusterRef, Finding, Remediation, Report, Status

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What a check sees: the gateway, the cluster, the asker, and command arguments."""

    gw: Gateway
    ref: ClusterRef
    command: str
    principal: str = ""  # IAM member form, e.g. "user:alice@example.com"
    args: dict[str, Any] = field(default_factory=dict)
    check: registry.Check | None = None

    def for_check(self, check: registry.Check) -> "Context":
        return Context(self.gw, self.ref, self.command, self.principal, self.args, check)

    def finding(self, status: Status, detail: str, remedy: str = "", *, evidence: str = "",
                resource: str = "", remediation: Remediation | None = None, title: str = "",
                gcpdiag: str | None = None) -> Finding:
        """A finding of the current check; `gcpdiag` defaults to the check's GCPDIAG rule (a check that
        matches several gcpdiag rules names the one per finding). The title (an N_() constant) is translated
        here, and a Google Cloud documentation link gets `hl=ja` for Japanese readers (checks.i18n.doc_url)."""
        c = self.check
        assert c is not None
        return Finding(id=c.id, status=status, title=_(title or c.title), detail=detail, remedy=remedy,
                       doc_url=doc_url(c.doc_url), resource=resource or self.ref.path, evidence=evidence,
                       remediation=remediation, gcpdiag=c.gcpdiag if gcpdiag is None else gcpdiag)

    def ok(self, detail: str, **kw) -> Finding:
        return self.finding(Status.OK, detail, **kw)

    def warn(self, detail: str, remedy: str = "", **kw) -> Finding:
        return self.finding(Status.WARN, detail, remedy, **kw)

    def fail(self, detail: str, remedy: str = "", **kw) -> Finding:
        return self.finding(Status.FAIL, detail, remedy, **kw)

    def skip(self, detail: str, **kw) -> Finding:
        return self.finding(Status.SKIP, detail, **kw)

    def error(self, err: ApiError, **kw) -> Finding:
        return self.finding(Status.ERROR, err.explain(), kw.pop("remedy", err.hint), **kw)


def _run_one(ctx: Context) -> list[Finding]:
    check = ctx.check
    try:
        out = check.run(ctx)
    except ApiError as err:
        return [ctx.error(err)]
    except Exception as exc:  # noqa: BLE001 - one broken check must not sink the report
        log.exception("check %s crashed", check.id)
        return [ctx.finding(Status.ERROR, _("The check itself failed ({error}); this is a bot bug.").format(
            error=type(exc).__name__))]
    if out is None:
        return []
    return [out] if isinstance(out, Finding) else list(out)


# ---- user-facing English of the engine (N_: translated where used) ---------------------------------------------
UNFINISHED = N_("This check did not finish within the diagnosis deadline ({seconds} s) and was abandoned: a Google "
                "or Kubernetes API answered too slowly. Its result is unknown; run the command again later.")
TRUNCATED_ID, TRUNCATED_TITLE = "bot/partial-lists", N_("Every Kubernetes list was read whole")
TRUNCATED = N_("Some lists were too long to read whole, so the checks above did not look at everything: {lists}. "
               "What lies beyond these items was not checked.")
TRUNCATED_ITEM = N_("`{label}` (first {cap} items)")
TRUNCATED_REMEDY = N_("Narrow the question (a namespace, one Ingress) to have everything looked at.")
RESOLVE_TIMEOUT = N_("Looking up cluster `{spec}` did not finish within {seconds} s (Google answered too slowly). "
                     "Try again.")


def _seconds_left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


Progress = Callable[[int, int], None]  # (checks done, checks in all), called as each check finishes


def diagnose(command: str, ctx: Context, max_workers: int = 16, deadline: float | None = None,
             progress: Progress | None = None) -> Report:
    """Run the command's checks concurrently. With a deadline (time.monotonic()), checks still running when it
    passes are abandoned (never waited for: their threads end at their next gateway call, which refuses to
    start past the deadline) and reported by name. `progress(done, total)` hears of each check finished."""
    checks = registry.for_command(command)
    report = Report(command=command, cluster=ctx.ref.path)
    if not checks:
        report.note = _("`{command}` is not built yet.").format(command=command)
        return report
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=min(max_workers, len(checks)), thread_name_prefix="check")
    # each check runs in a copy of this context: the reader's language (checks.i18n) goes with it
    futures = [(pool.submit(contextvars.copy_context().run, _run_one, ctx.for_check(c)), c) for c in checks]
    if progress is not None:
        finished = itertools.count(1)

        def tell(_fut) -> None:
            try:
                progress(next(finished), len(checks))
            except Exception:  # noqa: BLE001 - progress is a courtesy; the report is what matters
                log.warning("progress callback failed")
        for fut, _check in futures:
            fut.add_done_callback(tell)
    try:
        wait([f for f, _check in futures], timeout=_seconds_left(deadline))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # never join an abandoned check
    for fut, check in futures:
        if fut.done() and not fut.cancelled():
            report.findings.extend(fut.result())
        else:
            seconds = round((deadline or started) - started)
            report.findings.append(ctx.for_check(check).finding(Status.ERROR, _(UNFINISHED).format(seconds=seconds)))
            log.warning("check %s abandoned at the deadline", check.id)
    truncated = getattr(ctx.gw, "truncated", [])
    if truncated:
        report.findings.append(Finding(TRUNCATED_ID, Status.WARN, _(TRUNCATED_TITLE), detail=_(TRUNCATED).format(
            lists="; ".join(_(TRUNCATED_ITEM).format(label=label, cap=cap) for label, cap in truncated)),
            remedy=_(TRUNCATED_REMEDY), resource=ctx.ref.path))
    return report


def recheck(gw: Gateway, ref: ClusterRef, command: str, check_id: str) -> list[Finding]:
    """One check run again on a cluster (after a fix): its findings now ([] for a check that does not exist)."""
    check = registry.CHECKS.get(check_id)
    return [] if check is None else _run_one(Context(gw, ref, command).for_check(check))


Admit = Callable[[ClusterRef, float | None], ContextManager[str]]  # a slot for one diagnosis of a cluster


def run_command(gw: Gateway, command: str, spec, projects: tuple[str, ...], principal: str = "",
                args: dict | None = None, *, strict: bool = False, deadline: float | None = None,
                admit: Admit | None = None, progress: Progress | None = None) -> Report:
    """Resolve the cluster the user named, then run the command's checks on it.

    strict: `projects` is an allowlist (every Slack path): a command naming another project is refused
    without a request, and suggestions stay inside it. deadline: checks past it are abandoned and reported.
    admit(ref, deadline): a context manager holding a slot for one diagnosis of that cluster; it yields ''
    when admitted, else why not (bot.work.jobs limits diagnoses per cluster). progress: see `diagnose`."""
    from checks.resolve import resolve

    budget = _seconds_left(deadline)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="resolve")
    try:
        fut = pool.submit(contextvars.copy_context().run, resolve, gw, spec, projects, strict)
        wait([fut], timeout=budget)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if not fut.done():
        seconds = round(budget or 0)
        return Report(command=command, cluster=str(spec), note=_(RESOLVE_TIMEOUT).format(spec=spec, seconds=seconds))
    res = fut.result()
    args = dict(args or {})
    args["resolution"] = res
    if res.ref is None:
        if command != "why-404" or res.refused:
            return Report(command=command, cluster=str(spec), note=res.message)
        # why-404 diagnoses exactly this: run its checks on what the user typed.
        ref = ClusterRef(spec.project or (projects[0] if len(projects) == 1 else ""), spec.location, spec.name)
        report = _admitted(command, Context(gw, ref, command, principal, args), deadline, admit, progress)
        report.cluster = str(spec)
        return report
    return _admitted(command, Context(gw, res.ref, command, principal, args), deadline, admit, progress)


def _admitted(command: str, ctx: Context, deadline: float | None, admit: Admit | None,
              progress: Progress | None = None) -> Report:
    with (admit(ctx.ref, deadline) if admit else contextlib.nullcontext("")) as refused:
        if refused:
            return Report(command=command, cluster=ctx.ref.path, note=refused)
        return diagnose(command, ctx, deadline=deadline, progress=progress)
