"""Block actions and the views they open.

Fix buttons (block_actions `remediate:*`): who may click, exactly once, audited; the run itself is a worker job
(bot.work.remediation). A click that passes the checks opens a confirmation dialog (modal `remediate_confirm`)
in the approver's own language, describing the fix from the plan's kind and params; only its submission runs
the fix, after every check again (four-eyes, once-only, audit, the signed plan).

The approvers are those of the binding of the channel where the plan was posted (GKE_BOT_APPROVERS only
in the implicit binding). Clicks are rate-limited per user; refusals go to their own audit stream so a
click flood never pushes real events out of the trail.

The same buttons on an approver's Home tab (bot.work.home) act on the plan's own conversation and message: the
plan's channel, its message from the diagnosis record; every check is the same. Answers go to the app's
messages tab there (a view has no response_url).

Cluster pickers (`explain_pick`, a static_select posted by the worker when a pasted error names no cluster):
only the asker may choose, only among the clusters offered, once; the diagnosis then starts in the same thread.
"""
from __future__ import annotations

import logging
import re

from slack_sdk.errors import SlackApiError

from bot.access import Gate, security_event
from bot.config import Settings
from bot.directory import DirectoryUnavailable
from bot.grammar import GrammarError, parse
from bot.i18n import N_, _, language
from bot.render import blocks as render
from bot.render import plans
from bot.render.blocks import hhmm, replace_actions
from bot.render.explain import PICK_ACTION
from bot.work.history import current_blocks, history_for, keep_blocks
from bot.work.home import republish
from bot.work.picks import picks_for
from bot.work.queue import QueueUnavailable
from bot.work.store import PlanTampered, Store

log = logging.getLogger(__name__)

CONFIRM_VIEW = "remediate_confirm"

# ---- user-facing English of the fix buttons (translated where used, in the clicker's language) ------------------
NO_REDIS = N_("Fix buttons need the Redis queue (REDIS_URL); nothing was done.")
TOO_MANY = N_("You have clicked fix buttons {count} times in {window} s; wait a moment. Nothing was done.")
EXPIRED = N_("This fix has expired or does not exist (fixes are kept for {hours} h). Run the diagnosis again.")
TAMPERED = N_("This fix was changed after the bot planned it, so it cannot run. Run the diagnosis again.")
OTHER_CONVERSATION = N_("This fix belongs to another conversation; nothing was done.")
UNKNOWN_APPROVERS = N_("I could not check who may approve ({why}); nothing was done. Try again in a minute.")
NOT_APPROVER = N_("Only approvers of this conversation (its binding in the access policy, or GKE_BOT_APPROVERS) "
                  "can run fixes; nothing was done. Ask one of them to click.")
OUTSIDE = N_("This fix is about project `{project}`, which this conversation may not change; nothing was done.")
SELF = N_("You asked for this diagnosis, so someone else must approve its fix (four-eyes). Nothing was done.")
ALREADY = N_("Already approved by {who}; it runs once.")
QUEUE_DOWN = N_("The job queue is unavailable, so the fix did not start; nothing was done. Click again in a minute.")
CLICK_FAILED = N_("Your click could not be handled ({what}); nothing was done. Try again in a minute.")
NO_DIALOG = N_("I could not open the confirmation dialog ({error}); nothing was done. Click the button again.")
CONFIRM_EXPIRED = N_("This confirmation has expired or is not yours; nothing was done. Click the fix button again.")
# ---- … and of the cluster picker
PICK_EXPIRED = N_("This choice has expired (pickers are kept for an hour); ask again with `/gke explain`.")
PICK_NOT_YOURS = N_("Only {user}, who asked, may choose the cluster.")
PICK_UNKNOWN = N_("That cluster was not one of those offered; nothing was started.")
PICK_DONE = N_("Diagnosing `{cluster}` in the thread.")


def from_home(body: dict) -> bool:
    """Was it clicked on the Home tab (a view), rather than on a message?"""
    return (body.get("container") or {}).get("type") == "view"


def register(app, edge) -> None:
    Remediations(edge).register(app)
    Pickers(edge).register(app)


def confirm_view(plan, token: str, approver: str) -> dict:
    """The confirmation dialog, in the current language: what exactly changes (from the plan's kind and params),
    where, who asked. Its submission runs the fix."""
    body = f"*{render.escape(plans.label(plan.kind, plan.params, plan.label))}*\n" + \
        plans.summary(plan.kind, plan.params, plan.summary)
    where = _("Cluster {cluster}, asked by {requester}. It runs once, is audited, and everything is checked again "
              "before anything changes.").format(cluster=render.code(plan.cluster), requester=render.mention(plan.requester))
    return {
        "type": "modal", "callback_id": CONFIRM_VIEW, "private_metadata": token,
        "title": {"type": "plain_text", "text": _("Run this fix?")},
        "submit": {"type": "plain_text", "text": _("Run it")},
        "close": {"type": "plain_text", "text": _("Cancel")},
        "blocks": render.sections(body) + [render.context(where)],
    }


def notice_view(text: str) -> dict:
    return {"type": "modal", "title": {"type": "plain_text", "text": _("Fix not run")},
            "close": {"type": "plain_text", "text": _("Close")}, "blocks": [render.section(text)]}


class Remediations:
    def __init__(self, edge):
        self.edge = edge
        self.settings: Settings = edge.settings
        self.store: Store | None = edge.store
        self.queue = edge.queue
        self.gate: Gate = edge.gate

    def register(self, app) -> None:
        app.action(re.compile(r"^remediate:"))(self.on_remediate)
        app.view(CONFIRM_VIEW)(self.on_confirm)

    # ---- the click: checks, then the confirmation dialog ------------------------------------------------
    def on_remediate(self, ack, body, action, client, respond):
        ack()

        def private(msg: str, **_extra) -> None:
            if from_home(body):  # a view has no response_url: the app's messages tab
                self.edge._say(client, body.get("user", {}).get("id", ""), None, msg)
                return
            respond(text=msg, response_type="ephemeral", replace_original=False)
        self.edge.submit(self.click, client, body, action, private, busy=private)

    def click(self, client, body: dict, action: dict, private) -> None:
        """A fix button was clicked (runs after the ack). Every outcome is answered and audited."""
        user = body.get("user", {}).get("id", "")
        channel = body.get("container", {}).get("channel_id") or body.get("channel", {}).get("id", "")
        with language(self.gate.language(client, user, channel)) as lang:
            try:
                self._click(client, body, action, private, lang)
            except Exception as exc:  # noqa: BLE001 - runs on a pool: never lose a click silently
                log.exception("fix click failed")
                private(render.error_text(_(CLICK_FAILED).format(what=type(exc).__name__)))

    def _vet(self, client, user: str, plan_id: str, channel: str, private):
        """Everything that must hold before a fix may be approved (on click, and again on confirmation):
        (plan, binding), or None when refused (answered and audited)."""
        try:
            plan = self.store.plan(plan_id)
        except PlanTampered as exc:
            security_event("tampered fix plan refused on click", plan_id=plan_id, user=user, why=str(exc))
            self.store.audit("tampered", user=user, plan_id=plan_id, result=f"refused on click: {exc}")
            private(render.error_text(_(TAMPERED)))
            return None
        if plan is None:
            self.store.audit("expired", user=user, plan_id=plan_id, result="plan not found or expired")
            private(render.error_text(_(EXPIRED).format(hours=self.settings.plan_ttl // 3600)))
            return None
        if plan.channel != channel:
            self.store.audit("denied", user=user, plan=plan, result=f"clicked in another channel {channel}")
            private(render.error_text(_(OTHER_CONVERSATION)))
            return None
        try:
            allowed, binding = self.gate.approver(client, plan.channel, user)
        except DirectoryUnavailable as exc:
            self.store.audit("failed", user=user, plan=plan, result=str(exc))
            private(render.error_text(_(UNKNOWN_APPROVERS).format(why=render.escape(str(exc)))))
            return None
        if not allowed:
            self.store.audit("denied", user=user, plan=plan, result="not an approver")
            private(render.error_text(_(NOT_APPROVER)))
            return None
        project = str((plan.params or {}).get("project", ""))
        if project not in binding.projects:
            self.store.audit("denied", user=user, plan=plan, result=f"project {project} outside the binding")
            private(render.error_text(_(OUTSIDE).format(project=render.escape(project))))
            return None
        if user == plan.requester and not self.settings.allow_self_approval:
            self.store.audit("denied", user=user, plan=plan, result="self-approval (four-eyes)")
            private(render.error_text(_(SELF)))
            return None
        return plan, binding

    def _click(self, client, body: dict, action: dict, private, lang: str) -> None:
        user = body.get("user", {}).get("id", "")
        plan_id = str(action.get("value", ""))[:64]
        container = body.get("container", {})
        channel = container.get("channel_id") or body.get("channel", {}).get("id", "")
        message_ts = container.get("message_ts") or body.get("message", {}).get("ts", "")
        message = body.get("message", {})
        if self.store is None:
            private(render.error_text(_(NO_REDIS)))
            return
        if from_home(body):  # the Home tab: the plan's own conversation and message (checked as any click)
            channel, message_ts, message = self._located(plan_id)
        count, window = self.settings.rate_click
        if not self.store.click_allowed(user, self.settings.rate_click):
            private(render.error_text(_(TOO_MANY).format(count=count, window=window)))
            log.info("click by %s rate limited", user)
            return
        vetted = self._vet(client, user, plan_id, channel, private)
        if vetted is None:
            return
        plan, _binding = vetted
        # what the dialog's submission needs, kept server-side (signed): the dialog carries only its token
        token = self.store.save_confirmation({
            "plan_id": plan.id, "user": user, "channel": channel, "message_ts": message_ts, "lang": lang,
            "text": message.get("text") or "gke-bot", "blocks": message.get("blocks", []),
            "response_url": body.get("response_url", ""), "home": from_home(body)})
        try:
            client.views_open(trigger_id=body.get("trigger_id", ""), view=confirm_view(plan, token, user))
        except SlackApiError as exc:
            log.warning("could not open the confirmation: %s", exc.response.get("error"))
            private(render.error_text(_(NO_DIALOG).format(error=render.escape(str(exc.response.get("error", ""))))))

    def _located(self, plan_id: str) -> tuple[str, str, dict]:
        """Where a plan clicked on the Home tab was posted: (channel, its message's ts, the message), from the plan
        and the diagnosis record; ("", "", {}) when unknown (the checks then refuse it as expired or tampered)."""
        try:
            plan = self.store.plan(plan_id)
        except PlanTampered:
            return "", "", {}
        if plan is None:
            return "", "", {}
        history = history_for(self.settings, self.store.redis)
        record = history.load(plan.channel, plan.thread_ts) if history else None
        if record and plan.id in (record.get("plans") or []):
            return plan.channel, str(record.get("reply_ts", "")), {"text": "gke-bot", "blocks": record.get("blocks")}
        return plan.channel, "", {}

    # ---- the confirmation: checks again, then once-only, queued, audited --------------------------------
    def on_confirm(self, ack, body, view, client):
        user = body.get("user", {}).get("id", "")
        data = self.store.confirmation(str(view.get("private_metadata", ""))) if self.store else None
        if data is None or data.get("user") != user:
            with language(self.gate.quick_language(user, "", "") or (data or {}).get("lang", "")):
                ack(response_action="update", view=notice_view(render.error_text(_(CONFIRM_EXPIRED))))
            return
        ack()
        self.edge.submit(self.confirmed, client, data)

    def confirmed(self, client, data: dict) -> None:
        def private(msg: str, **_extra) -> None:
            try:
                if data.get("home"):  # clicked on the Home tab: the app's messages tab
                    client.chat_postMessage(channel=data["user"], text=msg)
                else:
                    self.edge.privately(client, data["channel"], data["user"], msg, data.get("response_url", ""))
            except Exception as exc:  # noqa: BLE001 - the audit trail still has it
                log.warning("could not answer the approver: %s", type(exc).__name__)
        with language(data.get("lang", "")):
            try:
                self._run(client, data, private)
            except Exception as exc:  # noqa: BLE001 - runs on a pool: never lose a confirmation silently
                log.exception("fix confirmation failed")
                private(render.error_text(_(CLICK_FAILED).format(what=type(exc).__name__)))

    def _run(self, client, data: dict, private) -> None:
        user, channel, message_ts = data["user"], data["channel"], data.get("message_ts", "")
        vetted = self._vet(client, user, str(data.get("plan_id", ""))[:64], channel, private)
        if vetted is None:
            return
        plan, _binding = vetted
        if not self.store.claim_plan(plan.id, user):
            holder = self.store.plan_holder(plan.id)
            self.store.audit("duplicate", user=user, plan=plan, result=f"already approved by {holder}")
            private(render.error_text(_(ALREADY).format(who=render.mention(holder))))
            return
        text = data.get("text") or "gke-bot"
        history = history_for(self.settings, self.store.redis)
        blocks = replace_actions(current_blocks(history, plan.channel, plan.thread_ts, message_ts,
                                                data.get("blocks") or []), plan.id, ":hourglass_flowing_sand: " + _(
            "Approved by {approver} at {time} — running…").format(approver=render.mention(user), time=hhmm()))
        try:
            self.queue.enqueue({"kind": "remediate", "plan_id": plan.id, "approver": user, "channel": channel,
                                "message_ts": message_ts, "blocks": blocks, "text": text,
                                "lang": data.get("lang", "")})
        except QueueUnavailable:
            self.store.release_plan(plan.id)  # nothing ran: the button stays usable
            self.store.audit("failed", user=user, plan=plan, result="queue unavailable; nothing done")
            private(render.error_text(_(QUEUE_DOWN)))
            return
        self.store.audit("approved", user=user, plan=plan, result="queued")
        try:
            client.chat_update(channel=channel, ts=message_ts, blocks=blocks, text=text)
            keep_blocks(history, plan.channel, plan.thread_ts, message_ts, blocks)
        except SlackApiError as exc:
            log.warning("could not replace the button: %s", exc.response.get("error"))
        # approvers' Home tabs: no longer waiting (after the button, in the background: many Slack calls)
        self.edge.submit(republish, self.settings, client, self.gate, plan.channel)


class Pickers:
    """The cluster picker of a pasted error (bot.work.explaining posts it)."""

    def __init__(self, edge):
        self.edge = edge

    def register(self, app) -> None:
        app.action(PICK_ACTION)(self.on_pick)

    def on_pick(self, ack, body, action, client, respond):
        ack()

        def private(msg: str = "", **extra) -> None:
            respond(text=msg, response_type="ephemeral", replace_original=False, **extra)
        self.edge.submit(self.pick, client, body, action, respond, private, busy=private)

    def pick(self, client, body: dict, action: dict, respond, private) -> None:
        user = body.get("user", {}).get("id", "")
        pick_id = str(action.get("block_id", "")).partition(":")[2][:64]
        chosen = str((action.get("selected_option") or {}).get("value", ""))[:200]
        picks = picks_for(self.edge.settings, self.edge.queue.redis)
        data = picks.load(pick_id)
        with language((data or {}).get("lang") or self.edge.gate.language(client, user, "")):
            if data is None:
                private(render.error_text(_(PICK_EXPIRED)))
                return
            if data.get("user") != user:
                private(render.error_text(_(PICK_NOT_YOURS).format(user=render.mention(data.get("user", "")))))
                return
            if chosen not in (data.get("clusters") or []):
                security_event("cluster pick outside the offered clusters", user=user, pick_id=pick_id)
                private(render.error_text(_(PICK_UNKNOWN)))
                return
            try:
                cmd = parse(str(data.get("text", "")))
                cluster = parse(f"why-404 {chosen}").cluster
            except GrammarError:
                private(render.error_text(_(PICK_EXPIRED)))
                return
            if not picks.take(pick_id):
                return  # chosen already (a double selection or a Slack retry): that one runs
            done = ":hourglass_flowing_sand: " + _(PICK_DONE).format(cluster=render.escape(chosen))
            try:
                respond(text=done, replace_original=True)
            except Exception:  # noqa: BLE001 - the picker stays; the diagnosis still starts
                log.warning("could not replace the cluster picker")
        cmd.lang = data.get("lang", "") or cmd.lang
        started = self.edge.start(client, cmd, f"pick:{pick_id}", channel=data["channel"], user=user,
                                  thread_ts=data["thread_ts"], private=private, cluster=cluster,
                                  parent={"thread_ts": data["thread_ts"], "status_ts": data["status_ts"]})
        if not started:
            picks.release(pick_id)
