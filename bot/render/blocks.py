"""Block Kit rendering of the Slack-neutral finding model (checks.model).

Limits respected here: 50 blocks per message, 3000 characters per section text, 75 characters per
button text, 2000 per button value. Every piece of text is escaped for mrkdwn (& < >), so user
text such as `<!channel>` can never ping anyone.

Everything is rendered in the reader's language (bot.i18n; the caller sets it with `language(...)`):
headings, status words, the layout's notes, button labels (bot.render.plans) and documentation links
(`?hl=ja` for Japanese readers).
"""
from __future__ import annotations

import copy
import re
import time

from bot.i18n import N_, _, doc_url
from bot.render import plans
from checks.model import Finding, Report, Status

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_BUTTON_TEXT = 75
EMOJI = {Status.FAIL: ":x:", Status.ERROR: ":warning:", Status.WARN: ":large_orange_diamond:",
         Status.SKIP: ":white_circle:", Status.OK: ":white_check_mark:"}
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
# the status words as the reader reads them ("[FAIL]", "[失敗]")
WORD = {Status.FAIL: N_("FAIL"), Status.ERROR: N_("ERROR"), Status.WARN: N_("WARN"), Status.SKIP: N_("SKIP"),
        Status.OK: N_("OK")}


def word(status: Status) -> str:
    return _(WORD[status])


def escape(text: str) -> str:
    """Escape text for Slack mrkdwn: &, < and > (so no mention, link or broadcast is ever formed)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """Inline code of user text: escaped, with backticks removed so it cannot break out."""
    return "`" + escape(text.replace("`", "'")) + "`"


def mention(user_id: str) -> str:
    return f"<@{user_id}>" if _USER_ID.match(user_id or "") else _("someone")


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


def shown_command(command_text: str) -> str:
    """A command as the parent message shows it: its first line, at most 100 characters (a pasted error is
    longer)."""
    line = (command_text or "").strip().splitlines()[0] if (command_text or "").strip() else ""
    return line if len(line) <= 100 else line[:99] + "…"


def parent_text(user_id: str, command_text: str, state: str = "") -> str:
    return _("{user} asked {command} — {state}").format(
        user=mention(user_id), command=code("/gke " + shown_command(command_text)), state=state or _("checking…"))


def counts_line(report: Report) -> str:
    """`:x: 1 FAIL · :white_check_mark: 5 OK` in the reader's language (FAIL and OK always, the others when
    there are any)."""
    c = report.counts()
    shown = [s for s in (Status.FAIL, Status.ERROR, Status.WARN, Status.OK) if c[s.value] or s in (Status.FAIL, Status.OK)]
    return " · ".join(f"{EMOJI[s]} " + _("{n} {status}").format(n=c[s.value], status=word(s)) for s in shown)


def summary(report: Report) -> str:
    if not report.findings:
        return escape(report.note) if report.note else _("no findings")
    return counts_line(report)


def finding_blocks(f: Finding, plan_id: str = "") -> list[dict]:
    head = f"{EMOJI[f.status]} *[{word(f.status)}] {escape(f.title)}*"
    if f.resource:
        head += f"\n{code(f.resource)}"
    body = head + ("\n" + escape(f.detail) if f.detail else "")
    blocks = sections(body)
    if f.evidence:
        blocks += sections(_("*Evidence:* {evidence}").format(evidence=escape(f.evidence)))
    if f.remedy:
        blocks += sections(_("*Fix:* {fix}").format(fix=escape(f.remedy)))
    meta = f"`{f.id}`"
    if f.gcpdiag:
        meta += f" · gcpdiag `{escape(f.gcpdiag)}`"
    if f.doc_url:
        meta += " · " + _("<{url}|documentation>").format(url=escape(doc_url(f.doc_url)))
    blocks.append(context(meta))
    if f.remediation and plan_id:
        blocks.append(remediation_actions(f, plan_id))
    return blocks


def remediation_actions(f: Finding, plan_id: str) -> dict:
    """The fix button. No Block Kit `confirm` (fixed in the asker's language): a click opens a confirmation
    dialog in the approver's own language (bot.listeners.actions)."""
    rem = f.remediation
    return fix_button(rem.kind, rem.params, rem.label, plan_id)


def fix_button(kind: str, params: dict, label: str, plan_id: str) -> dict:
    """The actions block of a fix button (in a thread, or on an approver's Home tab): the plan id is its value."""
    return {
        "type": "actions",
        "block_id": f"remediate:{plan_id}",
        "elements": [{
            "type": "button",
            "action_id": f"remediate:{kind}",
            "text": {"type": "plain_text", "text": button_text(plans.label(kind, params, label))},
            "value": plan_id,
            "style": "danger" if kind.startswith("grant") else "primary",
        }],
    }


def _report_groups(report: Report, plans: dict[int, str]) -> tuple[list[dict], list[tuple[Finding, list[dict]]],
                                                                     list[dict]]:
    """The report's blocks in three parts: the head, one group per finding shown in full (worst first), and
    the compact list of OK/SKIP findings."""
    head = _("*{command}* on {cluster}: {summary}").format(command=escape(report.command), cluster=code(report.cluster),
                                                          summary=summary(report))
    top: list[dict] = [section(head)]
    if report.context:
        top.append(context(escape("\n".join(report.context))[:MAX_SECTION]))
    if report.note and report.findings:
        top += sections(escape(report.note))
    order = sorted(range(len(report.findings)), key=lambda i: report.findings[i].status.rank)
    groups, ok_lines = [], []
    for i in order:
        f = report.findings[i]
        if f.status in (Status.OK, Status.SKIP) and not f.remediation and not f.remedy:
            ok_lines.append(f"{EMOJI[f.status]} {escape(f.title)} — {escape(f.detail)}")
            continue
        groups.append((f, [{"type": "divider"}] + finding_blocks(f, plans.get(i, ""))))
    tail = ([{"type": "divider"}] + sections("\n".join(ok_lines))) if ok_lines else []
    return top, groups, tail


def _fallback(report: Report) -> str:
    return _("{command} on {cluster}: {summary}").format(command=escape(report.command), cluster=escape(report.cluster),
                                                         summary=summary(report))[:3000]


def report_messages(report: Report, plans: dict[int, str] | None = None) -> list[dict]:
    """The report as thread replies split only at Block Kit limits: [{"text", "blocks"}]."""
    top, groups, tail = _report_groups(report, plans or {})
    blocks = top + [b for _, g in groups for b in g] + tail
    messages, current = [], []
    for b in blocks:
        if len(current) == MAX_BLOCKS:
            messages.append(current)
            current = []
        current.append(b)
    messages.append(current)
    return [{"text": _fallback(report), "blocks": m} for m in messages]


def report_message(report: Report, plans: dict[int, str] | None = None) -> tuple[dict, bool]:
    """The report as ONE thread reply (a diagnosis is one message, however many Ingresses or findings).

    When everything fits in 50 blocks it is exactly `report_messages`' one message. Otherwise the worst
    findings are shown in full while they fit, then one line per further problem, then a note; the second
    value is then True: the caller attaches the full report as a file."""
    top, groups, tail = _report_groups(report, plans or {})
    whole = top + [b for _, g in groups for b in g] + tail
    if len(whole) <= MAX_BLOCKS:
        return {"text": _fallback(report), "blocks": whole}, False
    room = MAX_BLOCKS - len(top) - 3  # a divider, at least one summary section, the note
    blocks, rest = list(top), []
    for f, g in groups:
        if not rest and len(g) <= room:
            blocks += g
            room -= len(g)
        else:
            rest.append(f)
    ok = sum(1 for f in report.findings if f.status in (Status.OK, Status.SKIP) and not f.remediation
             and not f.remedy)
    if rest:
        lines = [f"{EMOJI[f.status]} [{word(f.status)}] {escape(f.title)} — {code(f.resource)}" for f in rest]
        blocks += [{"type": "divider"}] + sections("\n".join(lines))[:room + 1]
    blocks.append(context(_("Shown in full: the worst findings; {problems} more problems in one line each above and "
                            "{passing} passing checks are in the attached report. Ask about one resource (e.g. "
                            "`ingress CLUSTER NAMESPACE/NAME`) for its full detail here.").format(
        problems=len(rest), passing=ok)))
    return {"text": _fallback(report), "blocks": blocks[:MAX_BLOCKS]}, True


def _usage_line(name: str) -> str:
    from bot.grammar import USAGE
    syntax, what = USAGE[name]
    return f"`/gke {syntax}` — {_(what)}"


def help_blocks(topic: str = "") -> dict:
    from bot.grammar import USAGE, cluster_forms
    lines = [_usage_line(topic)] if topic else [f"• {_usage_line(u)}" for u in USAGE]
    text = (_("*gke-bot* answers \"why is my GKE cluster refusing me?\"") + "\n" + "\n".join(lines)
            + "\n" + cluster_forms() + "\n"
            + _("Mention me in a thread (`@gke-bot why-403 my-cluster`) to answer there. To diagnose an error "
                "someone posted, use the message shortcut *Diagnose this error* on it.")
            + "\n" + _("`/gke` alone (or the shortcut *New diagnosis*) opens a form instead. In a diagnosis thread, "
                        "`@gke-bot recheck` checks again and says what changed."))
    return {"response_type": "ephemeral", "text": _("gke-bot help"), "blocks": [section(text)]}


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
