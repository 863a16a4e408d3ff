"""The one error type of the gateway: a Google or Kubernetes call the bot made failed."""
from __future__ import annotations

import json
import re

from google.api_core import exceptions as gexc

from checks.i18n import _


class ApiError(Exception):
    """A Google or Kubernetes API call the bot made failed."""

    def __init__(self, api: str, call: str, code: int, status: str, message: str, permission: str = "",
                 headers: dict | None = None, body: str = "", hint: str = ""):
        super().__init__(f"{call}: {code} {status}: {message}")
        self.api, self.call, self.code, self.status = api, call, code, status
        self.message, self.permission = message, permission
        self.hint = hint  # what to change, when the bot knows (becomes the finding's remedy)
        self.headers = dict(headers or {})  # response headers (e.g. Location of a redirect)
        self.body = body  # the start of the response body (Kubernetes: a Status object, or a proxied answer)

    @property
    def kube_status(self) -> dict | None:
        """The Kubernetes API server's own Status object, when it (not a proxied app) answered."""
        try:
            out = json.loads(self.body)
        except (TypeError, ValueError):
            return None
        return out if isinstance(out, dict) and out.get("kind") == "Status" else None

    @property
    def denied(self) -> bool:
        return self.code == 403

    @property
    def not_found(self) -> bool:
        return self.code == 404

    def explain(self) -> str:
        """One sentence for a finding: which call failed, and what the bot needs."""
        if self.code in (401, 403) and self.permission:
            return _("`{call}` ({api}) answered {code} {status}: {message} The bot's own identity needs "
                     "`{permission}` for this check.").format(call=self.call, api=self.api, code=self.code,
                                                               status=self.status, message=self.message,
                                                               permission=self.permission)
        return _("`{call}` ({api}) answered {code} {status}: {message}").format(
            call=self.call, api=self.api, code=self.code, status=self.status, message=self.message)


_PERM_RE = re.compile(r"[Pp]ermission[s]?\(?s?\)? ?['\"]?([a-z]+\.[a-zA-Z]+\.[a-zA-Z]+)")


def auth_error(exc: Exception) -> "ApiError":
    return ApiError("oauth2.googleapis.com", "token refresh", 503 if "Transport" in type(exc).__name__ else 401,
                    type(exc).__name__, _("the bot could not get an access token for its own credentials: {error}")
                    .format(error=str(exc).splitlines()[0][:200]), "")


def from_google(exc: gexc.GoogleAPICallError, api: str, call: str, permission: str) -> ApiError:
    code = int(exc.code or 500)
    status = getattr(exc, "grpc_status_code", None)
    status_name = status.name if status is not None else ""
    if not status_name:  # REST transports raise HTTP-code classes; Google's status is in the body
        try:
            status_name = exc.response.json()["error"]["status"]
        except Exception:  # noqa: BLE001 - no JSON body
            status_name = type(exc).__name__
    meta_perm = (getattr(exc, "metadata", None) or {}).get("permission", "")
    m = _PERM_RE.search(exc.message or "")
    return ApiError(api, call, code, status_name, exc.message or str(exc), meta_perm or (m.group(1) if m else permission))
