"""Terminal rendering of a Report, gcpdiag style: `[ OK ] id  resource: reason`, in the reader's language
(`gke-bot check` follows LC_ALL / LC_MESSAGES / LANG). The `[ OK ]`/`[FAIL]` tags stay as they are, so output
can be searched the same way in every language."""
from __future__ import annotations

import textwrap

from bot.i18n import _, doc_url
from checks.model import Report, Status

_TAG = {Status.OK: "[ OK ]", Status.WARN: "[WARN]", Status.FAIL: "[FAIL]", Status.SKIP: "[SKIP]", Status.ERROR: "[ERR ]"}


def render_text(report: Report) -> str:
    from bot.render.blocks import word
    lines = [f"gke-bot {report.command} {report.cluster}", ""]
    lines += [c.replace("`", "") for c in report.context]
    if report.context:
        lines.append("")
    for f in report.findings:
        lines.append(f"{_TAG[f.status]} {f.id}: {f.title}" + (f"  (gcpdiag {f.gcpdiag})" if f.gcpdiag else ""))
        if f.resource:
            lines.append(f"       {f.resource}")
        for part in (f.detail, f.evidence and _("evidence: {evidence}").format(evidence=f.evidence)):
            if part:
                lines += textwrap.indent(part.replace("`", ""), "       ").splitlines()
        if f.remedy and f.status is not Status.OK:
            lines.append("       " + _("fix:"))
            lines += textwrap.indent(f.remedy.replace("```", "").strip(), "         ").splitlines()
        if f.doc_url and f.status not in (Status.OK, Status.SKIP):
            lines.append(f"       {doc_url(f.doc_url)}")
    c = report.counts()
    lines += ["", "  ".join(_("{n} {status}").format(n=c[s.value], status=word(s)) for s in Status)]
    return "\n".join(lines)
