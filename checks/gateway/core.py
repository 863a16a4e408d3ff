"""Plumbing shared by every part of the gateway: the per-job memo, retries, REST sessions, tokens."""
from __future__ import annotations

import contextvars
import logging
import random
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.api_core import exceptions as gexc

from checks.gateway.errors import ApiError, auth_error, from_google
from checks.gateway.permissions import GoogleCall
from checks.i18n import _

log = logging.getLogger(__name__)

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
RETRYABLE = {429, 500, 502, 503, 504}
# A project a request is about: `projects/P/…` in its target, or, when the target is a user-managed service
# account (`NAME@P.iam.gserviceaccount.com`: reading the account), the project that owns it. (Google-managed
# accounts name a project number instead; a principal merely named in a request about a cluster is no target.)
_PROJECT_IN = re.compile(r"(?:^|/)projects/([^/\s]+)")
_SA_TARGET = re.compile(r"^[^@\s/]+@([a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$")


def keep_auth_on_endpoint() -> None:
    """With GKE_BOT_GOOGLE_API_URL set, every Google request must go to that base URL.

    google-auth (2.4x+) looks up a "regional access boundary" at iamcredentials.googleapis.com in
    a background thread after each token refresh, whatever endpoint the clients use; behind a
    private endpoint (or in tests) that host must not be contacted. Without the lookup the
    credentials simply send no x-allowed-locations header.
    """
    try:
        from google.auth import _regional_access_boundary_utils as rab
    except ImportError:  # older google-auth: no such lookup
        return
    manager = getattr(rab, "_RegionalAccessBoundaryManager", None)
    if manager is not None:
        manager.maybe_start_refresh = lambda self, credentials, request: None


class GatewayCore:
    """Facts about one job's world. Construct one per job; it is thread-safe."""

    def __init__(self, google_api_url: str = "", credentials=None, deadline: float | None = None,
                 shared_cache=None, endpoint: str = "auto", projects: tuple[str, ...] | None = None,
                 limiter=None):
        from checks.gateway.endpoints import MODES
        if endpoint not in MODES:
            raise ValueError(f"endpoint is one of {', '.join(MODES)}; got {endpoint!r}")
        self.endpoint_mode = endpoint  # which control-plane endpoint to use (GKE_BOT_ENDPOINT, see endpoints.py)
        self.google_api_url = google_api_url.rstrip("/")
        # The projects this job may touch (every Slack path): a call about any other project is refused
        # before it is sent. None: no limit (the terminal, with the user's own credentials).
        self.allowed_projects = None if projects is None else frozenset(projects)
        self.truncated: list[tuple[str, int]] = []  # (list label, cap) of Kubernetes lists the cap cut
        self.shared_cache = shared_cache  # a redis.Redis for cross-job caches, or None
        # A rate limit shared per Google API (the bot's workers inject one: bot.work.ratelimit): anything with
        # acquire(api, deadline) before each request (True: token taken; False: the limiter is unreachable, send
        # anyway; raises TimeoutError when waiting would pass the deadline: not sent) and backoff(api, seconds)
        # after a 429. None: no limit.
        self.limiter = limiter
        if self.google_api_url:
            keep_auth_on_endpoint()
        if credentials is None:
            credentials, _project = google.auth.default(scopes=SCOPES)
        self.credentials = credentials
        self.deadline = deadline  # time.monotonic() by which retries stop
        self._memo: dict[tuple, Future] = {}
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._session: requests.Session | None = None
        self.calls: list[str] = []  # every request issued, for tests and benchmarks

    # ---- memo ---------------------------------------------------------------------------------
    def memo(self, key: tuple, fn: Callable[[], Any]) -> Any:
        """Run fn once per key for this job; later callers get the same result or error."""
        with self._lock:
            fut = self._memo.get(key)
            owner = fut is None
            if owner:
                fut = self._memo[key] = Future()
        if owner:
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - memoise the failure as well
                fut.set_exception(exc)
        return fut.result()

    def seed(self, key: tuple, value: Any) -> None:
        """Record a fact learnt as a by-product (e.g. a cluster from a listing) so it is not fetched again."""
        with self._lock:
            if key not in self._memo:
                fut: Future = Future()
                fut.set_result(value)
                self._memo[key] = fut

    def parallel(self, *fns: Callable[[], Any]) -> list[Any]:
        """Run independent fact look-ups at once (one round trip instead of several); errors propagate.
        Each runs in a copy of the caller's context, so the reader's language (checks.i18n) goes with it."""
        if len(fns) <= 1:
            return [fn() for fn in fns]
        with ThreadPoolExecutor(max_workers=len(fns), thread_name_prefix="fact") as pool:
            futures = [pool.submit(contextvars.copy_context().run, fn) for fn in fns]
        return [f.result() for f in futures]

    # ---- limits every call obeys -----------------------------------------------------------------
    def guard(self, api: str, call: str, target: str = "") -> None:
        """Refuse (ApiError, nothing sent) a call past the job's deadline or about a project outside the
        allowlist. Project numbers (digits) are what Google itself returns and pass."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise self._deadline_error(api, call)
        if self.allowed_projects is not None:
            owner = _SA_TARGET.match(target)
            for project in _PROJECT_IN.findall(target or call) + ([owner.group(1)] if owner else []):
                if not project.isdigit() and project != "-" and project not in self.allowed_projects:
                    raise ApiError(api, call, 403, "OUTSIDE_ALLOWLIST",
                                   _("project `{project}` is not one this conversation may ask about, so the bot "
                                     "did not send this request").format(project=project))

    @staticmethod
    def _deadline_error(api: str, call: str) -> ApiError:
        return ApiError(api, call, 504, "DEADLINE_EXCEEDED",
                        _("the diagnosis deadline passed, so this request was not sent"))

    # ---- Google calls -------------------------------------------------------------------------
    def _retrying(self, decl: GoogleCall, target: str, fn: Callable[[], Any], attempts: int = 4) -> Any:
        """Call fn (the declared call `decl` on `target`) with bounded retries (backoff and jitter) on
        429/5xx within the deadline (writes pass attempts=1: never sent twice). Every failure becomes an
        ApiError naming the call and permission."""
        if not isinstance(decl, GoogleCall):
            raise TypeError("every Google call must name its declaration (checks.gateway.permissions)")
        call = f"{decl.name} {target}".strip()
        self.guard(decl.api, call, target)
        attempt = 0
        while True:
            attempt += 1
            if self.limiter is not None:
                try:  # False (the limiter is unreachable): sent without a token – an outage must not stop a job
                    self.limiter.acquire(decl.api, self.deadline)
                except TimeoutError:  # the token would come after the deadline: not sent
                    raise self._deadline_error(decl.api, call) from None
            self.calls.append(call)
            try:
                return fn()
            except gexc.GoogleAPICallError as exc:
                err = from_google(exc, decl.api, call, decl.permission)
            except ApiError as exc:
                err = exc
            except requests.RequestException as exc:
                err = ApiError(decl.api, call, 503, "UNAVAILABLE",
                               _("connection failed: {error}").format(error=type(exc).__name__), decl.permission)
            except google.auth.exceptions.GoogleAuthError as exc:
                err = auth_error(exc)
            delay = min(4.0, 0.25 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            if err.code == 429 and self.limiter is not None:
                self.limiter.backoff(decl.api, delay)  # every worker slows down, not only this one
            out_of_time = self.deadline is not None and time.monotonic() + delay > self.deadline
            if err.code not in RETRYABLE or attempt >= attempts or out_of_time:
                raise err
            log.info("retrying %s after %s (attempt %d)", call, err.code, attempt)
            time.sleep(delay)

    def _fact(self, key: tuple, decl: GoogleCall, target: str, fn: Callable[[], Any]) -> Any:
        """A declared Google read, once per job."""
        return self.memo(key, lambda: self._retrying(decl, target, fn))

    def _opts(self) -> dict | None:
        return {"api_endpoint": self.google_api_url} if self.google_api_url else None

    def _client(self, name: str, factory: Callable[..., Any]):
        with self._lock:
            if name not in self._clients:
                self._clients[name] = factory(credentials=self.credentials, transport="rest",
                                              client_options=self._opts())
            return self._clients[name]

    def session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                self._session = google.auth.transport.requests.AuthorizedSession(self.credentials)
            return self._session

    def _base(self, host: str) -> str:
        return self.google_api_url or f"https://{host}"

    def _rest(self, decl: GoogleCall, target: str, method: str, url: str, body: dict | None = None,
              params: dict | None = None, missing_ok: bool = False) -> dict | None:
        """A declared Google call over plain REST (APIs without a REST-transport client library)."""
        def go():
            resp = self.session().request(method, url, json=body, params=params, timeout=30)
            if resp.status_code == 404 and missing_ok:
                return None
            if resp.status_code >= 400:
                try:
                    err = resp.json().get("error", {})
                except ValueError:
                    err = {}
                info = next((d for d in err.get("details", []) if "metadata" in d), {})
                raise ApiError(decl.api, f"{decl.name} {target}".strip(), resp.status_code,
                               err.get("status", "HTTP_ERROR"), err.get("message", resp.text[:200]),
                               info.get("metadata", {}).get("permission", decl.permission))
            return resp.json() if resp.content else {}
        return self._retrying(decl, target, go)

    # ---- the bot's own token --------------------------------------------------------------------
    def access_token(self) -> str:
        """A valid OAuth access token of the bot's identity, refreshed before expiry."""
        with self._lock:
            creds = self.credentials
            if not creds.valid:  # `valid` already allows google-auth's refresh margin before expiry
                try:
                    creds.refresh(google.auth.transport.requests.Request())
                except google.auth.exceptions.GoogleAuthError as exc:
                    raise auth_error(exc) from exc
            return creds.token
