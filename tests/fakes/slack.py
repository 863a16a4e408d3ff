"""A fake Slack: Web API, response_url endpoints, file uploads and Socket Mode, all on 127.0.0.1.

Speaks Slack's wire format so the real ``slack_sdk`` / ``slack_bolt`` clients can drive it::

    with FakeSlack() as fake:
        client = WebClient(token="xoxb-test", base_url=fake.api_url)
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import base64
import json
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode, urlparse

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve as ws_serve
from werkzeug.wrappers import Request, Response

from .base import Call, ServerThread

MANIFEST = Path(__file__).resolve().parents[2] / "app-manifest.yaml"
MAX_TEXT = 40000
MAX_BLOCKS = 50
BLOCK_TYPES = {"section", "divider", "header", "context", "actions", "image", "input", "rich_text",
               "file", "video", "markdown", "table", "context_actions"}
# (block type, pointer into the block, max length) for text-object limits Slack enforces.
TEXT_LIMITS = [("section", "text", 3000), ("header", "text", 150)]
ELEMENT_LIMITS = {"context": 10, "actions": 25}
BUTTON_LIMITS = [("text", 75), ("value", 2000), ("action_id", 255), ("url", 3000)]
JSON_PARAMS = ("blocks", "attachments", "metadata", "files", "view")
DEFAULT_RESPONSE_URL = "http://127.0.0.1:9/response/unset"  # loopback, refused: never leaves the host
# Web API method -> the bot scopes that allow it (any one of them), as api.slack.com lists them.
METHOD_SCOPES = {
    "chat.postMessage": ("chat:write",), "chat.update": ("chat:write",), "chat.postEphemeral": ("chat:write",),
    "users.info": ("users:read",), "usergroups.users.list": ("usergroups:read",),
    "conversations.info": ("channels:read", "groups:read", "im:read", "mpim:read"),
    "conversations.members": ("channels:read", "groups:read", "im:read", "mpim:read"),
    "files.getUploadURLExternal": ("files:write",), "files.completeUploadExternal": ("files:write",),
}


def manifest_scopes(path: Path = MANIFEST) -> tuple[str, ...]:
    """The bot scopes app-manifest.yaml requests (what the installed app's bot token carries)."""
    import yaml

    manifest = yaml.safe_load(path.read_text())
    return tuple(manifest["oauth_config"]["scopes"]["bot"])


class SlackError(Exception):
    def __init__(self, error: str, **extra):
        super().__init__(error)
        self.body = {"ok": False, "error": error, **extra}


def parse_params(query: str, body: bytes, content_type: str | None) -> dict:
    """Merge query string, form or JSON body into one dict; JSON-encoded form fields are decoded."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    if body:
        if (content_type or "").startswith("application/json"):
            params.update(json.loads(body))
        else:
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
    for key in JSON_PARAMS:
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                pass  # left as a string; validation reports it
    return params


def block_errors(blocks) -> list[str]:
    """Slack-style validation errors for a ``blocks`` array (empty list when valid)."""
    if not isinstance(blocks, list):
        return ["expected array [json-pointer:/blocks]"]
    errs = [f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"] if len(blocks) > MAX_BLOCKS else []
    block_ids = set()
    for i, block in enumerate(blocks):
        ptr = f"/blocks/{i}"
        btype = block.get("type") if isinstance(block, dict) else None
        if btype not in BLOCK_TYPES:
            errs.append(f"failed to match all allowed schemas [json-pointer:{ptr}]")
            continue
        bid = block.get("block_id")
        if bid is not None and (bid in block_ids or len(bid) > 255):
            errs.append(f"invalid or duplicate block_id [json-pointer:{ptr}/block_id]")
        block_ids.add(bid)
        if btype == "input":
            errs += input_errors(block, ptr)
        for ltype, key, limit in TEXT_LIMITS:
            text = (block.get(key) or {}).get("text") if btype == ltype else None
            if text is not None and not 0 < len(text) <= limit:
                errs.append(f"must be between 1 and {limit} characters [json-pointer:{ptr}/{key}/text]")
        if btype == "section":
            if "text" not in block and "fields" not in block:
                errs.append(f"must provide either text or fields [json-pointer:{ptr}]")
            fields = block.get("fields") or []
            if len(fields) > 10 or any(len(f.get("text", "")) > 2000 for f in fields):
                errs.append(f"fields must be at most 10 items of at most 2000 characters [json-pointer:{ptr}/fields]")
        elements = block.get("elements") or []
        if len(elements) > ELEMENT_LIMITS.get(btype, len(elements)):
            errs.append(f"no more than {ELEMENT_LIMITS[btype]} items allowed [json-pointer:{ptr}/elements]")
        buttons = [(f"{ptr}/elements/{j}", e) for j, e in enumerate(elements) if btype == "actions"]
        buttons += [(f"{ptr}/accessory", block["accessory"])] if isinstance(block.get("accessory"), dict) else []
        selects = [(f"{ptr}/elements/{j}", e) for j, e in enumerate(elements) if btype == "actions"]
        selects += [(f"{ptr}/accessory", block["accessory"])] if isinstance(block.get("accessory"), dict) else []
        errs += [e for eptr, el in selects if el.get("type") == "static_select" for e in select_errors(el, eptr)]
        for eptr, el in buttons:
            for key, limit in BUTTON_LIMITS if el.get("type") == "button" else ():
                value = el.get(key)
                value = value.get("text") if isinstance(value, dict) else value
                if value is not None and len(value) > limit:
                    errs.append(f"must be less than {limit + 1} characters [json-pointer:{eptr}/{key}]")
    return errs


def select_errors(el: dict, ptr: str) -> list[str]:
    """A static_select as Slack checks it: 1–100 options, option text at most 75 characters, value at most 150,
    a placeholder of at most 150."""
    errs = []
    options = el.get("options")
    if not isinstance(options, list) or not 1 <= len(options) <= 100:
        errs.append(f"must provide between 1 and 100 options [json-pointer:{ptr}/options]")
        options = []
    for k, opt in enumerate(options):
        text = (opt.get("text") or {}).get("text", "")
        if not 0 < len(text) <= 75:
            errs.append(f"must be less than 76 characters [json-pointer:{ptr}/options/{k}/text/text]")
        if not 0 < len(str(opt.get("value", ""))) <= 150:
            errs.append(f"must be less than 151 characters [json-pointer:{ptr}/options/{k}/value]")
    if len((el.get("placeholder") or {}).get("text", "")) > 150:
        errs.append(f"must be less than 151 characters [json-pointer:{ptr}/placeholder/text]")
    return errs


INPUT_ELEMENTS = {"plain_text_input", "static_select", "external_select", "users_select", "conversations_select",
                  "channels_select", "multi_static_select", "multi_external_select", "checkboxes", "radio_buttons",
                  "datepicker", "timepicker", "number_input", "email_text_input", "url_text_input",
                  "multi_conversations_select", "multi_users_select", "rich_text_input"}


def input_errors(block: dict, ptr: str) -> list[str]:
    """An input block as Slack checks it: a plain_text label of at most 2000 characters and one input element;
    select options as in static_select, external_select without options, text inputs' max_length at most 3000."""
    errs = []
    label = block.get("label")
    if not isinstance(label, dict) or label.get("type") != "plain_text" or not 0 < len(label.get("text", "")) <= 2000:
        errs.append(f"must be plain_text of 1 to 2000 characters [json-pointer:{ptr}/label]")
    el = block.get("element")
    if not isinstance(el, dict) or el.get("type") not in INPUT_ELEMENTS:
        return errs + [f"failed to match all allowed schemas [json-pointer:{ptr}/element]"]
    if len(el.get("action_id") or "") > 255:
        errs.append(f"must be less than 256 characters [json-pointer:{ptr}/element/action_id]")
    if el["type"] == "static_select":
        errs += select_errors(el, f"{ptr}/element")
    if el["type"] == "external_select" and "options" in el:
        errs.append(f"options are not allowed on external_select [json-pointer:{ptr}/element/options]")
    if el["type"] == "plain_text_input" and int(el.get("max_length") or 0) > 3000:
        errs.append(f"must be at most 3000 [json-pointer:{ptr}/element/max_length]")
    return errs


def view_errors(view, kind: str = "modal") -> list[str]:
    """Slack-style validation errors for a modal view (views.open, views.update) or a Home tab (views.publish)."""
    if not isinstance(view, dict) or view.get("type") != kind:
        return [f"must be a {kind} view [json-pointer:/view/type]"]
    if kind == "home":
        blocks = view.get("blocks")
        if not isinstance(blocks, list) or len(blocks) > 100:
            return ["must be at most 100 blocks [json-pointer:/view/blocks]"]
        return [e for e in block_errors(blocks) if not e.startswith("no more than 50 items")]
    errs = []
    for key, required in (("title", True), ("submit", False), ("close", False)):
        obj = view.get(key)
        if obj is None:
            if required:
                errs.append(f"is required [json-pointer:/view/{key}]")
            continue
        if obj.get("type") != "plain_text" or not 0 < len(obj.get("text", "")) <= 24:
            errs.append(f"must be plain_text of 1 to 24 characters [json-pointer:/view/{key}/text]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or len(blocks) > 100:
        errs.append("must be at most 100 blocks [json-pointer:/view/blocks]")
    else:
        errs += [e for e in block_errors(blocks) if not e.startswith("no more than 50 items")]
    if len(view.get("private_metadata") or "") > 3000:
        errs.append("must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(view.get("callback_id") or "") > 255:
        errs.append("must be less than 256 characters [json-pointer:/view/callback_id]")
    return errs


def check_content(params: dict) -> None:
    text, blocks = params.get("text") or "", params.get("blocks")
    if blocks is not None and not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")
    if blocks is not None and (errs := block_errors(blocks)):
        raise SlackError("invalid_blocks", errors=errs,
                         response_metadata={"messages": [f"[ERROR] {e}" for e in errs]})
    if not text and not blocks and not params.get("attachments"):
        raise SlackError("no_text")
    if len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")


def with_block_ids(blocks: list) -> list:
    """The blocks as Slack returns them in a view: each with a block_id (Slack makes one up where none was given)."""
    return [dict(b, block_id=b.get("block_id") or uuid.uuid4().hex[:5]) for b in blocks]


def wait_until(predicate, timeout: float, describe) -> object:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s\n{describe()}")
        time.sleep(0.02)
    return result


class FakeSlack:
    def __init__(self, bot_token: str = "xoxb-test", app_token: str = "xapp-test",
                 bot_user_id: str = "UBOT", team_id: str = "T1", scopes=None):
        self.bot_token, self.app_token = bot_token, app_token
        # The bot token's scopes: those app-manifest.yaml requests unless a test says otherwise.
        self.scopes: set[str] = set(manifest_scopes() if scopes is None else scopes)
        self.bot_user_id, self.team_id, self.bot_id, self.app_id = bot_user_id, team_id, "B1", "A1"
        self.calls: list[Call] = []
        self.ephemerals: list[dict] = []
        self.responses: list[dict] = []
        self.files: list[dict] = []           # completed uploads: id, filename, title, content, channel, thread_ts
        self.views: list[dict] = []           # views.open: {"trigger_id", "view" as Slack returns it}
        self.open_views: dict[str, dict] = {}  # view id → the view as it is now (views.open, views.update)
        self.homes: dict[str, dict] = {}       # user id → their published Home tab (views.publish)
        self.expired_triggers: set[str] = set()  # trigger ids views.open refuses (Slack's are valid 3 s)
        self.socket_acks: list[dict] = []
        self._responses_by_url: dict[str, list[dict]] = {}
        self._users: dict[str, dict] = {}
        self._groups: dict[str, list[str]] = {}
        self._channels: dict[str, dict] = {}
        self._members: dict[str, list[str]] = {}  # channel id → user ids (conversations.members)
        self._messages: dict[str, list[dict]] = {}
        self._uploads: dict[str, dict] = {}
        self._failures: dict[str, list[dict]] = {}
        self._tickets: set[str] = set()
        self._sockets: list = []
        self._ts = itertools.count(1700000000_000100, 100)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._http = ServerThread(self._app)
        self._ws = ws_serve(self._ws_handler, "127.0.0.1", 0)
        self._ws_thread = threading.Thread(target=self._ws.serve_forever, daemon=True)

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    @property
    def ws_port(self) -> int:
        return self._ws.socket.getsockname()[1]

    def start(self) -> "FakeSlack":
        self._http.start()
        self._ws_thread.start()
        return self

    def stop(self) -> None:
        self.socket_disconnect(reason=None)
        self._ws.shutdown()
        self._http.stop()

    def __enter__(self) -> "FakeSlack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- test setup -------------------------------------------------------------------------
    def add_user(self, user_id: str, email: str | None = None, name: str = "alice", tz: str = "UTC",
                 locale: str = "en-US", *, guest: str = "", team_id: str | None = None, deleted: bool = False,
                 bot: bool = False, admin: bool = False) -> dict:
        """A user as users.info returns it (https://api.slack.com/types/user). `locale` is the user's Slack
        language (e.g. "ja-JP"); users.info returns it only when asked with include_locale=true, as Slack does.
        guest: "multi" (is_restricted) or "single" (also is_ultra_restricted); team_id: another workspace's id
        makes a Slack Connect user (Slack adds `is_stranger`); deleted: a deactivated account (Slack keeps a bare
        profile); bot: a bot user."""
        team = team_id or self.team_id
        profile = {"real_name": name.title(), "display_name": name, "team": team,
                   **({"email": email} if email and not deleted else {})}
        user = {"id": user_id, "team_id": team, "name": name, "deleted": deleted, "color": "9f69e7",
                "real_name": name.title(), "tz": tz, "tz_label": "Coordinated Universal Time", "tz_offset": 0,
                "profile": profile, "is_admin": admin, "is_owner": False, "is_primary_owner": False,
                "is_restricted": bool(guest), "is_ultra_restricted": guest == "single", "is_bot": bot,
                "is_app_user": False, "updated": 1700000000, "is_email_confirmed": bool(email), "locale": locale}
        if team != self.team_id:
            user["is_stranger"] = True  # present for users of a foreign workspace party to a shared channel
        if bot:
            profile.update(bot_id="B" + user_id[1:], api_app_id="A" + user_id[1:], always_active=False)
        if deleted:  # Slack drops most fields of a deactivated account
            for key in ("tz", "tz_label", "tz_offset", "is_admin", "is_owner", "is_primary_owner",
                        "is_restricted", "is_ultra_restricted", "is_email_confirmed"):
                user.pop(key, None)
        self._users[user_id] = user
        return user

    def add_usergroup(self, group_id: str, user_ids) -> None:
        self._groups[group_id] = list(user_ids)

    def add_channel(self, channel_id: str, member: bool = True, name: str | None = None,
                    private: bool = False, archived: bool = False, members=None) -> None:
        """A channel; `member`: the bot is in it. A private channel the bot is not in is invisible to it
        (channel_not_found); a public one takes posts with chat:write.public (see _channel). `members`: the
        user ids in it (conversations.members)."""
        self._channels[channel_id] = {"id": channel_id, "name": name or channel_id.lower(), "is_member": member,
                                      "is_private": private, "is_archived": archived}
        self._members[channel_id] = list(members or [])

    def new_response_url(self) -> str:
        return f"{self.url}/response/{uuid.uuid4().hex}"

    def fail_next(self, method_name: str, error: str = "ratelimited", status: int = 200,
                  retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next ``times`` calls of a Web API method (or "response_url") with an error.

        A 429 always carries Retry-After (default 1), as real Slack does."""
        if status == 429 and retry_after is None:
            retry_after = 1
        spec = {"error": error, "status": status, "retry_after": retry_after}
        with self._lock:
            self._failures.setdefault(method_name, []).extend([spec] * times)

    # -- inspection -------------------------------------------------------------------------
    def messages(self, channel: str) -> list[dict]:
        with self._lock:
            return list(self._messages.get(channel, []))

    def thread(self, channel: str, ts: str) -> list[dict]:
        return [m for m in self.messages(channel) if m.get("thread_ts") == ts and m["ts"] != ts]

    def responses_to(self, response_url: str) -> list[dict]:
        return list(self._responses_by_url.get(urlparse(response_url).path, []))

    def calls_to(self, method_name: str) -> list[dict]:
        return [parse_params(c.query, c.body, c.headers.get("Content-Type"))
                for c in list(self.calls) if c.path == f"/api/{method_name}"]

    def describe_calls(self, last: int = 20) -> str:
        return "recent calls:\n" + "\n".join(
            f"  {c.method} {c.path} {c.body[:300]!r}" for c in list(self.calls)[-last:])

    def wait_for(self, predicate, timeout: float = 15.0):
        return wait_until(predicate, timeout, self.describe_calls)

    # -- socket mode ------------------------------------------------------------------------
    def wait_socket_connected(self, timeout: float = 5.0) -> None:
        wait_until(lambda: self._sockets, timeout, lambda: "no Socket Mode client connected\n" + self.describe_calls())

    def socket_send(self, envelope_type: str, payload: dict, accepts_response_payload: bool = True) -> str:
        if not self._sockets:
            raise AssertionError("no Socket Mode client connected")
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
                    "accepts_response_payload": accepts_response_payload}
        if envelope_type == "events_api":
            envelope.update(retry_attempt=0, retry_reason="")
        self._sockets[-1].send(json.dumps(envelope))
        return envelope_id

    def socket_disconnect(self, reason: str | None = "refresh_requested") -> None:
        """Drop Socket Mode connections as Slack does: a "disconnect" message (unless reason is None), then close.

        Closing from this side is also the quick way to end a test: slack_sdk's builtin client otherwise
        blocks close() for up to 3 s (the socket timeout it uses on non-443 ports)."""
        for ws in list(self._sockets):
            try:
                if reason is not None:
                    ws.send(json.dumps({"type": "disconnect", "reason": reason,
                                        "debug_info": {"host": "applink-fake"}}))
            finally:
                ws.close()

    def _ws_handler(self, ws) -> None:
        ticket = parse_qs(urlparse(ws.request.path).query).get("ticket", [""])[0]
        with self._lock:
            valid = ticket in self._tickets
            self._tickets.discard(ticket)
        if not valid:
            ws.close(1008, "invalid ticket")
            return
        ws.send(json.dumps({"type": "hello", "num_connections": len(self._sockets) + 1,
                            "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                            "connection_info": {"app_id": self.app_id}}))
        self._sockets.append(ws)
        try:
            for raw in ws:
                self.socket_acks.append(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            self._sockets.remove(ws)

    # -- HTTP -------------------------------------------------------------------------------
    @Request.application
    def _app(self, request: Request) -> Response:
        body = request.get_data()
        self.calls.append(Call(request.method, request.path, request.query_string.decode(), body,
                               dict(request.headers)))
        kind, _, rest = request.path.strip("/").partition("/")
        if kind == "api":
            params = parse_params(request.query_string.decode(), body, request.content_type)
            return self._api(rest, params, request.headers.get("Authorization", ""))
        if kind == "response" and request.method == "POST":
            return self._response_url(request.path, body)
        if kind == "upload" and request.method == "POST":
            return self._upload(rest.rpartition("/")[2], body)
        return Response("not found", status=404)

    def _take_failure(self, name: str) -> dict | None:
        with self._lock:
            pending = self._failures.get(name)
            return pending.pop(0) if pending else None

    def _api(self, method: str, params: dict, authorization: str) -> Response:
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        headers = {}
        try:
            if handler is None:
                raise SlackError("unknown_method")
            if failure := self._take_failure(method):
                if failure["retry_after"] is not None:
                    headers["Retry-After"] = str(failure["retry_after"])
                return _json({"ok": False, "error": failure["error"]}, failure["status"], headers)
            token = params.pop("token", None) or authorization.removeprefix("Bearer ").strip()
            wanted = self.app_token if method == "apps.connections.open" else self.bot_token
            if not token:
                raise SlackError("not_authed")
            if token != wanted:
                raise SlackError("not_allowed_token_type" if token in (self.app_token, self.bot_token)
                                 else "invalid_auth")
            if method != "apps.connections.open":
                self._require_scope(method)
            with self._lock:
                result = {"ok": True, **handler(params)}
        except SlackError as e:
            result = e.body
        return _json(result, 200, headers)

    def _require_scope(self, method: str) -> None:
        """Slack's missing_scope answer when the bot token lacks every scope the method accepts."""
        needed = METHOD_SCOPES.get(method, ())
        if needed and not self.scopes.intersection(needed):
            raise SlackError("missing_scope", needed=",".join(needed), provided=",".join(sorted(self.scopes)))

    def _channel(self, channel_id: str | None, public_write: bool = False) -> str:
        """Resolve a channel the bot may post to; a user id opens (fakes) the bot's DM with that user.

        As on Slack: a private channel the bot is not in does not exist for it (channel_not_found); a
        public one it is not in refuses with not_in_channel, except where `public_write` (chat.postMessage,
        and updates of the app's own messages) meets the chat:write.public scope."""
        if channel_id in self._users:
            channel_id = "D" + channel_id[1:]
            self._channels.setdefault(channel_id, {"id": channel_id, "name": channel_id, "is_member": True,
                                                   "is_private": True, "is_archived": False})
        channel = self._channels.get(channel_id or "")
        if channel is None or (channel.get("is_private") and not channel["is_member"]):
            raise SlackError("channel_not_found")
        if channel.get("is_archived"):
            raise SlackError("is_archived")
        if not channel["is_member"] and not (public_write and "chat:write.public" in self.scopes):
            raise SlackError("not_in_channel")
        return channel_id

    def _next_ts(self) -> str:
        n = next(self._ts)
        return f"{n // 1_000_000}.{n % 1_000_000:06d}"

    def _find(self, channel: str, ts: str) -> dict:
        for m in self._messages.get(channel, []):
            if m["ts"] == ts:
                return m
        raise SlackError("message_not_found")

    @staticmethod
    def _public(msg: dict) -> dict:
        return {k: v for k, v in msg.items() if k not in ("edits", "channel")}

    def _add_message(self, channel: str, params: dict, **extra) -> dict:
        msg = {"type": "message", "channel": channel, "ts": self._next_ts(), "user": self.bot_user_id,
               "bot_id": self.bot_id, "text": params.get("text") or "", "blocks": params.get("blocks") or [],
               "edits": [], **extra}
        for key in ("thread_ts", "attachments", "metadata", "reply_broadcast"):
            if params.get(key) is not None:
                msg[key] = params[key]
        self._messages.setdefault(channel, []).append(msg)
        return msg

    # Web API methods: each returns the body fields after "ok": true, or raises SlackError.
    def _api_auth_test(self, params: dict) -> dict:
        return {"url": "https://fake.slack.com/", "team": "Fake", "user": "gke-bot", "team_id": self.team_id,
                "user_id": self.bot_user_id, "bot_id": self.bot_id, "is_enterprise_install": False}

    def _api_chat_postMessage(self, params: dict) -> dict:
        channel = self._channel(params.get("channel"), public_write=True)
        check_content(params)
        msg = self._add_message(channel, params)
        return {"channel": channel, "ts": msg["ts"], "message": self._public(msg)}

    def _api_chat_update(self, params: dict) -> dict:
        channel = self._channel(params.get("channel"), public_write=True)
        msg = self._find(channel, params.get("ts", ""))
        check_content({**msg, **{k: params[k] for k in ("text", "blocks", "attachments") if k in params}})
        msg["edits"].append({"text": msg["text"], "blocks": msg["blocks"], "at": time.time()})
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in params:
                msg[key] = params[key] if params[key] is not None else ([] if key == "blocks" else "")
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"channel": channel, "ts": msg["ts"], "text": msg["text"], "message": self._public(msg)}

    def _api_chat_postEphemeral(self, params: dict) -> dict:
        channel = self._channel(params.get("channel"))
        if not params.get("user"):
            raise SlackError("user_not_found")
        check_content(params)
        record = {"channel": channel, "user": params["user"], "text": params.get("text") or "",
                  "blocks": params.get("blocks") or [], "ts": self._next_ts()}
        if params.get("thread_ts"):
            record["thread_ts"] = params["thread_ts"]
        self.ephemerals.append(record)
        return {"message_ts": record["ts"]}

    def _api_users_info(self, params: dict) -> dict:
        if params.get("user") not in self._users:
            raise SlackError("user_not_found")
        user = dict(self._users[params["user"]])
        if str(params.get("include_locale", "")).lower() not in ("true", "1"):
            user.pop("locale", None)  # Slack sends the locale only when asked for it
        if "users:read.email" not in self.scopes:
            user["profile"] = {k: v for k, v in user["profile"].items() if k != "email"}
        return {"user": user}

    def _api_usergroups_users_list(self, params: dict) -> dict:
        if params.get("usergroup") not in self._groups:
            raise SlackError("no_such_subteam")
        return {"users": list(self._groups[params["usergroup"]])}

    def _api_conversations_info(self, params: dict) -> dict:
        channel = self._channels.get(params.get("channel", ""))
        if channel is None or (channel.get("is_private") and not channel["is_member"]):
            raise SlackError("channel_not_found")
        return {"channel": {**channel, "is_channel": True}}

    def _api_conversations_members(self, params: dict) -> dict:
        """https://api.slack.com/methods/conversations.members: cursor pagination, `limit` up to 1000
        (default 100); a private channel the bot is not in does not exist for it."""
        channel_id = params.get("channel", "")
        channel = self._channels.get(channel_id)
        if channel is None or (channel.get("is_private") and not channel["is_member"]):
            raise SlackError("channel_not_found")
        needed = "groups:read" if channel.get("is_private") else "channels:read"  # per conversation type
        if needed not in self.scopes:
            raise SlackError("missing_scope", needed=needed, provided=",".join(sorted(self.scopes)))
        try:
            limit = int(params.get("limit") or 100)
        except ValueError:
            raise SlackError("invalid_limit")
        limit = max(1, min(limit, 1000))
        cursor = params.get("cursor") or ""
        try:
            start = int(base64.b64decode(cursor).decode().split(":", 1)[1]) if cursor else 0
        except (ValueError, IndexError, UnicodeDecodeError):
            raise SlackError("invalid_cursor")
        members = self._members.get(channel_id, [])
        page, end = members[start:start + limit], start + limit
        next_cursor = base64.b64encode(f"next:{end}".encode()).decode() if end < len(members) else ""
        return {"members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _api_views_open(self, params: dict) -> dict:
        trigger = params.get("trigger_id")
        if not trigger:
            raise SlackError("invalid_arguments")
        if trigger in self.expired_triggers:
            raise SlackError("expired_trigger_id")
        view = params.get("view")
        if errs := view_errors(view):
            raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errs]})
        view_id = f"V{next(self._ids):09d}"
        shown = {"id": view_id, "team_id": self.team_id, "type": "modal",
                 "blocks": with_block_ids(view.get("blocks", [])),
                 "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
                 "state": {"values": {}}, "hash": uuid.uuid4().hex[:20], "title": view["title"],
                 "close": view.get("close"), "submit": view.get("submit"), "clear_on_close": False,
                 "notify_on_close": False, "root_view_id": view_id, "previous_view_id": None,
                 "app_id": self.app_id, "external_id": "", "app_installed_team_id": self.team_id,
                 "bot_id": self.bot_id}
        self.views.append({"trigger_id": trigger, "view": shown})
        self.open_views[view_id] = shown
        return {"view": shown}

    def _api_views_update(self, params: dict) -> dict:
        """views.update: by view_id (or external_id); a `hash` that is not the view's current one is refused
        (hash_conflict), as Slack does to protect against racing updates."""
        view_id = params.get("view_id") or next((i for i, v in self.open_views.items()
                                                  if params.get("external_id") and
                                                  v.get("external_id") == params.get("external_id")), None)
        if not view_id and not params.get("external_id"):
            raise SlackError("invalid_arguments")
        current = self.open_views.get(view_id or "")
        if current is None:
            raise SlackError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view = params.get("view")
        if errs := view_errors(view):
            raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errs]})
        current.update(blocks=with_block_ids(view.get("blocks", [])), private_metadata=view.get("private_metadata", ""),
                       callback_id=view.get("callback_id", ""), title=view["title"], close=view.get("close"),
                       submit=view.get("submit"), hash=uuid.uuid4().hex[:20],
                       external_id=view.get("external_id", current.get("external_id", "")))
        return {"view": current}

    def _api_views_publish(self, params: dict) -> dict:
        """views.publish: a user's Home tab (type "home")."""
        user = params.get("user_id")
        if user not in self._users:
            raise SlackError("user_not_found")
        view = params.get("view")
        if errs := view_errors(view, "home"):
            raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errs]})
        old = self.homes.get(user)
        if params.get("hash") and old and params["hash"] != old["hash"]:
            raise SlackError("hash_conflict")
        view_id = old["id"] if old else f"V{next(self._ids):09d}"
        shown = {"id": view_id, "team_id": self.team_id, "type": "home",
                 "blocks": with_block_ids(view.get("blocks", [])),
                 "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
                 "state": {"values": {}}, "hash": uuid.uuid4().hex[:20], "title": {"type": "plain_text", "text": "View"},
                 "clear_on_close": False, "notify_on_close": False, "close": None, "submit": None,
                 "previous_view_id": None, "root_view_id": view_id, "app_id": self.app_id, "external_id": "",
                 "app_installed_team_id": self.team_id, "bot_id": self.bot_id}
        self.homes[user] = shown
        return {"view": shown}

    def _api_chat_getPermalink(self, params: dict) -> dict:
        channel = self._channel(params.get("channel"))
        msg = self._find(channel, params.get("message_ts", ""))
        return {"channel": channel,
                "permalink": f"https://fake.slack.com/archives/{channel}/p{msg['ts'].replace('.', '')}"}

    def _api_apps_connections_open(self, params: dict) -> dict:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return {"url": f"ws://127.0.0.1:{self.ws_port}/link/?ticket={ticket}&app_id={self.app_id}"}

    def _api_files_getUploadURLExternal(self, params: dict) -> dict:
        if not params.get("filename") or not str(params.get("length", "")).isdigit():
            raise SlackError("invalid_arguments")
        file_id = f"F{next(self._ids):07d}"
        self._uploads[file_id] = {"id": file_id, "filename": params["filename"],
                                  "length": int(params["length"]), "content": None}
        return {"upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}

    def _api_files_completeUploadExternal(self, params: dict) -> dict:
        files = params.get("files")
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments")
        uploads = [self._uploads.get(f.get("id")) for f in files]
        if any(u is None or u["content"] is None for u in uploads):
            raise SlackError("file_not_found")
        channel = self._channel(params["channel_id"]) if params.get("channel_id") else None
        done = []
        for spec, upload in zip(files, uploads):
            done.append({**upload, "title": spec.get("title") or upload["filename"], "channel": channel,
                         "thread_ts": params.get("thread_ts"), "initial_comment": params.get("initial_comment")})
        self.files.extend(done)
        public = [{"id": f["id"], "name": f["filename"], "title": f["title"], "size": len(f["content"])}
                  for f in done]
        if channel:
            self._add_message(channel, {"text": params.get("initial_comment"), "thread_ts": params.get("thread_ts")},
                              files=public, upload=True)
        return {"files": public}

    # Non-API endpoints.
    def _upload(self, file_id: str, body: bytes) -> Response:
        with self._lock:
            if file_id not in self._uploads:
                return Response("file not found", status=404)
            self._uploads[file_id]["content"] = body
        return Response(f"OK - {len(body)}", status=200)

    def _response_url(self, path: str, body: bytes) -> Response:
        if failure := self._take_failure("response_url"):
            return Response(failure["error"], status=failure["status"])
        try:
            payload = json.loads(body)
            if not payload.get("delete_original"):
                check_content(payload)
        except ValueError:
            return Response("invalid_payload", status=400)
        except SlackError as e:
            return Response(e.body["error"], status=400)
        with self._lock:
            self.responses.append(payload)
            self._responses_by_url.setdefault(path, []).append(payload)
        return Response("ok", status=200, content_type="text/html")


def _json(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json; charset=utf-8")


# -- request builders for tests that play "Slack calling the app" ------------------------------
def sign(signing_secret: str, body: bytes | str, timestamp: int | None = None) -> dict:
    """Headers Slack sends with a signed request (JSON bodies get a JSON Content-Type)."""
    raw = body.encode() if isinstance(body, str) else body
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(signing_secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    ctype = "application/json" if raw.lstrip().startswith(b"{") else "application/x-www-form-urlencoded"
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}", "Content-Type": ctype}


def slash_command_payload(command: str = "/gke", text: str = "why-403 cluster-x", user_id: str = "U123",
                          channel_id: str = "C123", response_url: str = DEFAULT_RESPONSE_URL, trigger_id: str = "t1",
                          team_id: str = "T1", user_name: str = "alice", channel_name: str = "general") -> dict:
    """The fields of a slash command, in Slack's order (the Socket Mode payload; see slash_command_body)."""
    return {"token": "verification-token", "team_id": team_id, "team_domain": "fake", "channel_id": channel_id,
            "channel_name": channel_name, "user_id": user_id, "user_name": user_name, "command": command,
            "text": text, "api_app_id": "A1", "is_enterprise_install": "false", "response_url": response_url,
            "trigger_id": trigger_id}


def slash_command_body(**kwargs) -> str:
    """URL-encoded slash command POST body; same arguments as slash_command_payload."""
    return urlencode(slash_command_payload(**kwargs))


def interactive_body(payload: dict) -> str:
    return urlencode({"payload": json.dumps(payload)})


def block_actions_payload(action_id: str, value: str, user_id: str, channel_id: str, message_ts: str,
                          response_url: str, container: dict | None = None, block_id: str = "actions",
                          team_id: str = "T1", user_name: str = "alice") -> dict:
    container = container or {"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                              "is_ephemeral": False}
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": "A1", "token": "verification-token", "container": container, "trigger_id": "t1",
        "team": {"id": team_id, "domain": "fake"}, "enterprise": None, "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "general"},
        "message": {"type": "message", "ts": message_ts, "user": "UBOT", "bot_id": "B1", "text": "", "blocks": []},
        "state": {"values": {}}, "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": block_id, "value": value, "type": "button",
                     "text": {"type": "plain_text", "text": value[:75] or "button"},
                     "action_ts": f"{time.time():.6f}"}],
    }


def event_callback_body(event: dict, event_id: str = "Ev1") -> str:
    return json.dumps({
        "token": "verification-token", "team_id": "T1", "api_app_id": "A1", "event": event,
        "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": "T1", "user_id": "UBOT", "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    })


def message_action_payload(callback_id: str, user_id: str, channel_id: str, message: dict, response_url: str,
                           trigger_id: str = "t1", team_id: str = "T1", user_name: str = "alice") -> dict:
    """A message shortcut (https://api.slack.com/reference/interaction-payloads/shortcuts#message_actions)."""
    return {
        "type": "message_action", "token": "verification-token", "action_ts": f"{time.time():.6f}",
        "team": {"id": team_id, "domain": "fake"}, "user": {"id": user_id, "username": user_name, "name": user_name,
                                                             "team_id": team_id},
        "channel": {"id": channel_id, "name": "general"}, "is_enterprise_install": False, "enterprise": None,
        "callback_id": callback_id, "trigger_id": trigger_id, "response_url": response_url,
        "message_ts": message["ts"], "message": message,
    }


def select_action_payload(action_id: str, block_id: str, value: str, label: str, user_id: str, channel_id: str,
                          message_ts: str, response_url: str, team_id: str = "T1", ephemeral: bool = True) -> dict:
    """A static_select choice (block_actions); Slack sends no `message` for an ephemeral message."""
    payload = block_actions_payload(action_id, value, user_id, channel_id, message_ts, response_url,
                                    container={"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                                               "is_ephemeral": ephemeral}, block_id=block_id, team_id=team_id)
    if ephemeral:
        payload.pop("message")
    payload["actions"] = [{"type": "static_select", "action_id": action_id, "block_id": block_id,
                           "selected_option": {"text": {"type": "plain_text", "text": label}, "value": value},
                           "action_ts": f"{time.time():.6f}"}]
    return payload


def view_submission_payload(view: dict, user_id: str, team_id: str = "T1", user_name: str = "alice") -> dict:
    """A modal's submission (https://api.slack.com/reference/interaction-payloads/views#view_submission)."""
    return {"type": "view_submission", "team": {"id": team_id, "domain": "fake"},
            "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
            "api_app_id": "A1", "token": "verification-token", "trigger_id": uuid.uuid4().hex,
            "view": view, "response_urls": [], "is_enterprise_install": False, "enterprise": None}


def _user(user_id: str, team_id: str, user_name: str) -> dict:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


def global_shortcut_payload(callback_id: str, user_id: str, trigger_id: str = "t1", team_id: str = "T1",
                            user_name: str = "alice") -> dict:
    """A global shortcut (https://api.slack.com/reference/interaction-payloads/shortcuts): no channel, no message."""
    return {"type": "shortcut", "token": "verification-token", "action_ts": f"{time.time():.6f}",
            "team": {"id": team_id, "domain": "fake"}, "user": _user(user_id, team_id, user_name),
            "is_enterprise_install": False, "enterprise": None, "callback_id": callback_id, "trigger_id": trigger_id}


def view_action_payload(view: dict, action: dict, user_id: str, trigger_id: str = "t1", team_id: str = "T1",
                        user_name: str = "alice") -> dict:
    """block_actions from an element in a modal or a Home tab: the container is the view, there is no message
    and no response_url (https://api.slack.com/reference/interaction-payloads/block-actions)."""
    action = dict(action, action_ts=f"{time.time():.6f}")
    return {"type": "block_actions", "user": _user(user_id, team_id, user_name), "api_app_id": "A1",
            "token": "verification-token", "container": {"type": "view", "view_id": view["id"]},
            "trigger_id": trigger_id, "team": {"id": team_id, "domain": "fake"}, "enterprise": None,
            "is_enterprise_install": False, "view": view, "actions": [action]}


def block_suggestion_payload(view: dict, action_id: str, block_id: str, value: str, user_id: str,
                             team_id: str = "T1", user_name: str = "alice") -> dict:
    """An external_select asking for its options as the user types
    (https://api.slack.com/reference/block-kit/block-elements#external_select)."""
    return {"type": "block_suggestion", "user": _user(user_id, team_id, user_name),
            "container": {"type": "view", "view_id": view["id"]}, "api_app_id": "A1", "token": "verification-token",
            "action_id": action_id, "block_id": block_id, "value": value, "team": {"id": team_id, "domain": "fake"},
            "enterprise": None, "is_enterprise_install": False, "view": view}


def options_errors(answer: dict) -> list[str]:
    """What Slack refuses in an options load answer: at most 100 options, texts of 1–75, values of 1–150."""
    options = answer.get("options")
    if not isinstance(options, list):
        return ["options must be a list"]
    return select_errors({"options": options or [{"text": {"text": "x"}, "value": "x"}]}, "/options") + (
        ["no more than 100 options"] if len(options) > 100 else [])


def fill(view: dict, values: dict) -> dict:
    """The view as a submission carries it: `values` (block_id → text, or (value, label) for a select) set in
    view.state.values in Slack's shape for each input element."""
    view = json.loads(json.dumps(view))
    state = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input" or block.get("block_id") not in values:
            continue
        el, value = block["element"], values[block["block_id"]]
        if el["type"] == "plain_text_input":
            entry = {"type": "plain_text_input", "value": value}
        elif el["type"] == "conversations_select":
            entry = {"type": "conversations_select", "selected_conversation": value}
        else:
            val, label = value if isinstance(value, tuple) else (value, value)
            entry = {"type": el["type"], "selected_option": {"text": {"type": "plain_text", "text": label},
                                                             "value": val}}
        state.setdefault(block["block_id"], {})[el["action_id"]] = entry
    view["state"] = {"values": state}
    return view


def app_home_opened_event(user_id: str, channel: str = "", view: dict | None = None) -> dict:
    """app_home_opened (https://api.slack.com/events/app_home_opened): the Home tab, with the published view."""
    event = {"type": "app_home_opened", "user": user_id, "channel": channel or "D" + user_id[1:], "tab": "home",
             "event_ts": f"{time.time():.6f}"}
    if view is not None:
        event["view"] = view
    return event
