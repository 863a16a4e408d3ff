"""The Slack-neutral finding model.

A check returns `Finding`s; the terminal (`gke-bot check`) and Slack (`bot.render`) each render
them their own way. Nothing here knows about Block Kit.
"""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from checks.i18n import _


def inline(text: str, limit: int = 200) -> str:
    """Text a cluster tenant controls (a probe's answer, a header, an annotation), made safe to put inside an
    inline code span: backticks become quotes, line breaks spaces, and it is cut at `limit` characters."""
    flat = " ".join(str(text).replace("`", "'").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def quote(text: str, limit: int = 200) -> str:
    """Tenant text as inline code (never read as mrkdwn): `inline(text)` between backticks."""
    shown = inline(text, limit) or _("(empty)")
    return f"`{shown}`"


class Status(str, enum.Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"
    ERROR = "ERROR"

    @property
    def rank(self) -> int:
        """Severity order, worst first (used for sorting and summaries)."""
        return _RANK[self]


_RANK = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2, Status.SKIP: 3, Status.OK: 4}


@dataclass(frozen=True)
class ClusterRef:
    """A fully resolved cluster: projects/P/locations/L/clusters/C."""

    project: str
    location: str
    name: str

    @property
    def path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/clusters/{self.name}"

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True)
class Remediation:
    """A structured, machine-executable fix proposal ("safe fix") that an approver may run.

    `kind` is one of the remediation kinds the bot knows (e.g. ``grant_service_agent``);
    `params` holds everything needed to execute and re-verify it; `label` is the button text.
    """

    kind: str
    label: str
    summary: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Finding:
    id: str
    status: Status
    title: str
    detail: str = ""
    remedy: str = ""
    doc_url: str = ""
    resource: str = ""
    evidence: str = ""
    remediation: Remediation | None = None
    gcpdiag: str = ""  # the matching gcpdiag rule (e.g. "gke/ERR/2021_007"), for teams that run both

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status.value,
            "title": self.title,
            "detail": self.detail,
            "remedy": self.remedy,
            "doc_url": self.doc_url,
        }
        if self.resource:
            out["resource"] = self.resource
        if self.evidence:
            out["evidence"] = self.evidence
        if self.remediation:
            out["remediation"] = asdict(self.remediation)
        if self.gcpdiag:
            out["gcpdiag"] = self.gcpdiag
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Finding":
        rem = data.get("remediation")
        return cls(
            id=data["id"],
            status=Status(data["status"]),
            title=data["title"],
            detail=data.get("detail", ""),
            remedy=data.get("remedy", ""),
            doc_url=data.get("doc_url", ""),
            resource=data.get("resource", ""),
            evidence=data.get("evidence", ""),
            remediation=Remediation(**rem) if rem else None,
            gcpdiag=data.get("gcpdiag", ""),
        )


@dataclass
class Report:
    """The outcome of one diagnosis command."""

    command: str
    cluster: str  # projects/P/locations/L/clusters/C, or what the user typed when unresolved
    findings: list[Finding] = field(default_factory=list)
    note: str = ""  # a one-line message for the user when no cluster could be diagnosed
    context: list[str] = field(default_factory=list)  # lines about how it was asked (e.g. the identity used)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for f in self.findings:
            out[f.status.value] += 1
        return out

    @property
    def failed(self) -> bool:
        return any(f.status is Status.FAIL for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "command": self.command,
            "cluster": self.cluster,
            "findings": [f.to_json() for f in self.findings],
        }
        if self.note:
            out["note"] = self.note
        if self.context:
            out["context"] = list(self.context)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Report":
        return cls(
            command=data["command"],
            cluster=data["cluster"],
            findings=[Finding.from_json(f) for f in data.get("findings", [])],
            note=data.get("note", ""),
            context=list(data.get("context", [])),
        )
