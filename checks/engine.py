"""Run a command's checks against one cluster, concurrently, and collect a Report."""
from __future__ import annotations

import contextvars
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from checks import registry
from checks.gateway import ApiError, Gateway
from checks.i18n import _
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
        matches several gcpdiag rules names the one per finding)."""
        c = self.check
        assert c is not None
        return Finding(id=c.id, status=status, title=title or c.title, detail=detail, remedy=remedy,
                       doc_url=c.doc_url, resource=resource or self.ref.path, evidence=evidence,
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


def diagnose(command: str, ctx: Context, max_workers: int = 16) -> Report:
    checks = registry.for_command(command)
    report = Report(command=command, cluster=ctx.ref.path)
    if not checks:
        report.note = _("`{command}` is not built yet.").format(command=command)
        return report
    with ThreadPoolExecutor(max_workers=min(max_workers, len(checks)), thread_name_prefix="check") as pool:
        # each check runs in a copy of this context: the reader's language (checks.i18n) goes with it
        futures = [pool.submit(contextvars.copy_context().run, _run_one, ctx.for_check(c)) for c in checks]
        results = [f.result() for f in futures]
    for findings in results:
        report.findings.extend(findings)
    return report


def run_command(gw: Gateway, command: str, spec, projects: tuple[str, ...], principal: str = "",
                args: dict | None = None) -> Report:
    """Resolve the cluster the user named, then run the command's checks on it."""
    from checks.resolve import resolve

    res = resolve(gw, spec, projects)
    args = dict(args or {})
    if res.ref is None:
        if command != "why-404":
            return Report(command=command, cluster=str(spec), note=res.message)
        # why-404 diagnoses exactly this: run its checks on what the user typed.
        args["resolution"] = res
        ref = ClusterRef(spec.project or (projects[0] if len(projects) == 1 else ""), spec.location, spec.name)
        report = diagnose(command, Context(gw, ref, command, principal, args))
        report.cluster = str(spec)
        return report
    args["resolution"] = res
    return diagnose(command, Context(gw, res.ref, command, principal, args))
