"""The Home tab (views.publish), in the reader's language: small view functions over what bot.work.home gathers.

For approvers, the fixes waiting for them (the same button as in the thread: it opens the same confirmation);
for everyone, their last diagnoses and where they may ask about what; a button opening the diagnosis modal.
"""
from __future__ import annotations

from bot.i18n import _
from bot.policy import DIRECT
from bot.render import plans as plan_texts
from bot.render.blocks import code, context, escape, fix_button, mention, section

HOME_NEW = "home_new_diagnosis"  # the "New diagnosis" button (bot.listeners.views opens the modal)
MAX_FIXES = 15
MAX_DIAGNOSES = 5
MAX_BINDINGS = 20  # bindings listed under "Where you may ask"
MAX_CHANNELS = 10  # channels listed per binding


def _link(url: str, label: str) -> str:
    return f"<{escape(url)}|{escape(label)}>" if url else escape(label)


def _when(ts: float) -> str:
    """A time every reader sees in their own time zone (Slack's date formatting)."""
    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time}}|{int(ts)}>"


def pending_blocks(fixes: list[dict]) -> list[dict]:
    """fixes: [{"plan", "link"}]: each what, on which cluster, who asked, when, the thread, and its button."""
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": _("Fixes waiting for your approval")}}]
    if not fixes:
        return blocks + [context(_("Nothing waits for your approval."))]
    for item in fixes[:MAX_FIXES]:
        plan = item["plan"]
        label = plan_texts.label(plan.kind, plan.params, plan.label)
        blocks.append(section(_("*{fix}* on {cluster}\nasked by {requester}, {when} · {thread}").format(
            fix=escape(label), cluster=code(plan.cluster), requester=mention(plan.requester),
            when=_when(plan.created), thread=_link(item.get("link", ""), _("the thread")))))
        blocks.append(fix_button(plan.kind, plan.params, plan.label, plan.id))
    if len(fixes) > MAX_FIXES:
        blocks.append(context(_("{n} more are waiting; they are in their threads.").format(n=len(fixes) - MAX_FIXES)))
    return blocks


def diagnoses_blocks(records: list[dict]) -> list[dict]:
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": _("Your last diagnoses")}}]
    if not records:
        return blocks + [context(_("None yet: `/gke`, or the button above."))]
    lines = [_("{command} on {cluster} — {summary} · {thread}").format(
        command=code("/gke " + r.get("shown", "")[:100]), cluster=code(r.get("cluster", "")),
        summary=r.get("summary", ""), thread=_link(r.get("link", ""), _("the thread")))
        for r in records[:MAX_DIAGNOSES]]
    return blocks + [section("\n".join(lines)[:3000])]


def where_blocks(bindings: list) -> list[dict]:
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": _("Where you may ask")}}]
    if not bindings:
        return blocks + [context(_("No conversation may ask about any project for you yet; ask an admin (the "
                                   "access policy)."))]
    lines = []
    for b in bindings[:MAX_BINDINGS]:
        places = [_("every channel") if c == "*" else _("direct messages") if c == DIRECT else f"<#{c}>"
                  for c in b.channels[:MAX_CHANNELS]]
        lines.append(_("{channels}: {projects}").format(channels=", ".join(places),
                                                        projects=", ".join(code(p) for p in b.projects[:10])))
    return blocks + [section("\n".join(lines)[:3000])]


def home_view(approver: bool, fixes: list[dict], records: list[dict], bindings: list) -> dict:
    blocks = [section(_("*gke-bot* answers \"why is my GKE cluster refusing me?\"")),
              {"type": "actions", "block_id": "home_actions", "elements": [
                  {"type": "button", "action_id": HOME_NEW, "style": "primary",
                   "text": {"type": "plain_text", "text": _("New diagnosis")}}]}]
    if approver:
        blocks += [{"type": "divider"}] + pending_blocks(fixes)
    blocks += [{"type": "divider"}] + diagnoses_blocks(records)
    blocks += [{"type": "divider"}] + where_blocks(bindings)
    return {"type": "home", "blocks": blocks[:100]}
