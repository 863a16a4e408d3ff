"""Block Kit rendering of the Slack-neutral finding model (checks.model).

Limits respected here: 50 blocks per message, 3000 characters per section text, 75 characters per
button text, 2000 per button value. Every piece of text is escaped for mrkdwn (& < >), so user
text such as `<!channel>` can never ping anyone.
"""
from __future__ import annotations

import copy
import re
import time

from checks.model import Finding, Report, Status

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_BUTTON_TEXT = 75
EMOJI = {Status.FAIL: ":x:", Status.ERROR: ":warning:", Status.WARN: ":large_orange_diamond:",
         Status.SKIP: ":white_circle:", Status.OK: ":white_check_mark:"}
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def escape(text: str) -> str:
    """Escape text for Slack mrkdwn: &, < and > (so no mention, link or broadcast is ever formed)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """Inline code of user text: escaped, with backticks removed so it cannot break out."""
    return "`" + escape(text.replace("`", "'")) + "`"


def mention(user_id: str) -> str:
    return f"<@{user_id}>" if _USER_ID.match(user_id or "") else "someone"


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _chunks(text: str, size: int = MAX_SECTION) -> list[str]:
    """Split text into pieces of at most `size` characters, at line ends where possible, keeping
    code fences balanced in every piece (a fence cut open is closed and reopened)."""
    out = []
    while len(text) > size:
        limit = size - 4  # room to close a fence
        cut = text.rfind("\n", 0, limit)
        if cut <= limit // 2:
            cut = limit
            amp = text.rfind("&", cut - 6, cut)  # never split an escape such as &amp;
            if amp != -1 and ";" not in text[amp:cut]:
                cut = amp
        piece, rest = text[:cut], text[cut:].lstrip("\n")
        if piece.count("```") % 2:
            piece += "\n```"
            rest = "```\n" + rest
        out.append(piece)
        text = rest
    out.append(text)
    return [p for p in out if p.strip()]


def sections(text: str) -> list[dict]:
    return [section(p) for p in _chunks(text)]


def button_text(label: str) -> str:
    return label if len(label) <= MAX_BUTTON_TEXT else label[: MAX_BUTTON_TEXT - 1] + "…"


def parent_text(user_id: str, command_text: str, state: str = "checking…") -> str:
    return f"{mention(user_id)} asked {code('/gke ' + command_text)} — {state}"


def summary(report: Report) -> str:
    if not report.findings:
        return escape(report.note) if report.note else "no findings"
    c = report.counts()
    parts = [f"{EMOJI[s]} {c[s.value]} {s.value}" for s in (Status.FAIL, Status.ERROR, Status.WARN, Status.OK)
             if c[s.value] or s in (Status.FAIL, Status.OK)]
    return " · ".join(parts)


def _finding_blocks(f: Finding, plan_id: str = "") -> list[dict]:
    head = f"{EMOJI[f.status]} *[{f.status.value}] {escape(f.title)}*"
    if f.resource:
        head += f"\n{code(f.resource)}"
    body = head + ("\n" + escape(f.detail) if f.detail else "")
    blocks = sections(body)
    if f.evidence:
        blocks += sections("*Evidence:* " + escape(f.evidence))
    if f.remedy:
        blocks += sections("*Fix:* " + escape(f.remedy))
    meta = f"`{f.id}`"
    if f.gcpdiag:
        meta += f" · gcpdiag `{escape(f.gcpdiag)}`"
    if f.doc_url:
        meta += f" · <{escape(f.doc_url)}|documentation>"
    blocks.append(context(meta))
    if f.remediation and plan_id:
        blocks.append(remediation_actions(f, plan_id))
    return blocks


def remediation_actions(f: Finding, plan_id: str) -> dict:
    rem = f.remediation
    return {
        "type": "actions",
        "block_id": f"remediate:{plan_id}",
        "elements": [{
            "type": "button",
            "action_id": f"remediate:{rem.kind}",
            "text": {"type": "plain_text", "text": button_text(rem.label)},
            "value": plan_id,
            "style": "danger" if rem.kind.startswith("grant") else "primary",
            "confirm": {
                "title": {"type": "plain_text", "text": "Run this fix?"},
                "text": {"type": "mrkdwn", "text": escape(rem.summary[:300])},
                "confirm": {"type": "plain_text", "text": "Run it"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            },
        }],
    }


def report_messages(report: Report, plans: dict[int, str] | None = None) -> list[dict]:
    """The thread reply (or replies, split only at Block Kit limits): [{"text", "blocks"}]."""
    plans = plans or {}
    head = f"*{escape(report.command)}* on {code(report.cluster)}: {summary(report)}"
    blocks: list[dict] = [section(head)]
    if report.note and report.findings:
        blocks += sections(escape(report.note))
    order = sorted(range(len(report.findings)), key=lambda i: report.findings[i].status.rank)
    ok_lines = []
    for i in order:
        f = report.findings[i]
        if f.status in (Status.OK, Status.SKIP) and not f.remediation and not f.remedy:
            ok_lines.append(f"{EMOJI[f.status]} {escape(f.title)} — {escape(f.detail)}")
            continue
        blocks.append({"type": "divider"})
        blocks += _finding_blocks(f, plans.get(i, ""))
    if ok_lines:
        blocks.append({"type": "divider"})
        blocks += sections("\n".join(ok_lines))
    messages, current = [], []
    for b in blocks:
        if len(current) == MAX_BLOCKS:
            messages.append(current)
            current = []
        current.append(b)
    messages.append(current)
    fallback = f"{report.command} on {report.cluster}: {summary(report)}"
    return [{"text": escape(fallback)[:3000], "blocks": m} for m in messages]


def help_blocks(topic: str = "") -> dict:
    from bot.grammar import CLUSTER_FORMS, USAGE
    lines = [f"`/gke {USAGE[topic]}`"] if topic else [f"• `/gke {u}`" for u in USAGE.values()]
    text = ("*gke-bot* answers \"why is my GKE cluster refusing me?\"\n" + "\n".join(lines)
            + f"\n{CLUSTER_FORMS}\nMention me in a thread (`@gke-bot why-403 my-cluster`) to answer there.")
    return {"response_type": "ephemeral", "text": "gke-bot help", "blocks": [section(text)]}


def error_text(message: str) -> str:
    """A user-facing error (already free of raw user text, or escaped by the caller)."""
    return f":warning: {message}"


def hhmm() -> str:
    return time.strftime("%H:%M UTC", time.gmtime())


def replace_actions(blocks: list[dict], plan_id: str, text: str) -> list[dict]:
    """The message's blocks with the plan's button block replaced by a context line."""
    out = copy.deepcopy(blocks or [])
    for i, b in enumerate(out):
        if b.get("block_id") in (f"remediate:{plan_id}", f"remediated:{plan_id}"):
            out[i] = {"type": "context", "block_id": f"remediated:{plan_id}",
                      "elements": [{"type": "mrkdwn", "text": text}]}
    return out
