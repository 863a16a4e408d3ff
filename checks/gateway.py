"""The one gateway through which checks read facts from Google Cloud and Kubernetes.

One `Gateway` serves one job. Every fact is fetched at most once per job (a per-job memo of
futures, so concurrent checks asking for the same fact share one request), errors are memoised
too, and every failed call becomes an `ApiError` that names the API call and the permission the
bot needed, so a check can report it instead of crashing or claiming "OK".

Google clients use the REST transport (RQ forks per job; gRPC is not fork-safe) and honour
GKE_BOT_GOOGLE_API_URL. google-cloud-iam has no REST transport, so IAM v1 is called through
google-auth's AuthorizedSession.
"""
from __future__ import annotations

import base64
import json
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
from google.cloud import container_v1, resourcemanager_v3, service_usage_v1
from google.iam.v1 import iam_policy_pb2, options_pb2, policy_pb2
from kubernetes import client as k8s_client

from checks.iam import sa_project
from checks.model import ClusterRef

log = logging.getLogger(__name__)

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
RETRYABLE = {429, 500, 502, 503, 504}
_ROLE_TTL = 3600.0
_role_cache: dict[str, tuple[float, dict]] = {}  # across jobs in one process
_role_lock = threading.Lock()


K8S_TIMEOUT = (5, 30)  # seconds to connect, to read: a private endpoint must not hang a job


class TimedApiClient(k8s_client.ApiClient):
    """A kubernetes ApiClient whose every request has a timeout unless the caller gave one (the
    generated APIs pass None, which urllib3 takes as "wait forever")."""

    def call_api(self, *args, **kwargs):
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = K8S_TIMEOUT
        return super().call_api(*args, **kwargs)


class ApiError(Exception):
    """A Google or Kubernetes API call the bot made failed."""

    def __init__(self, api: str, call: str, code: int, status: str, message: str, permission: str = "",
                 headers: dict | None = None, body: str = ""):
        super().__init__(f"{call}: {code} {status}: {message}")
        self.api, self.call, self.code, self.status = api, call, code, status
        self.message, self.permission = message, permission
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
        text = f"`{self.call}` ({self.api}) answered {self.code} {self.status}: {self.message}"
        if self.code in (401, 403) and self.permission:
            text += f" The bot's own identity needs `{self.permission}` for this check."
        return text


_PERM_RE = re.compile(r"[Pp]ermission[s]?\(?s?\)? ?['\"]?([a-z]+\.[a-zA-Z]+\.[a-zA-Z]+)")


def _auth_error(exc: Exception) -> "ApiError":
    return ApiError("oauth2.googleapis.com", "token refresh", 503 if "Transport" in type(exc).__name__ else 401,
                    type(exc).__name__, f"the bot could not get an access token for its own credentials: "
                                        f"{str(exc).splitlines()[0][:200]}", "")


def _from_google(exc: gexc.GoogleAPICallError, api: str, call: str, permission: str) -> ApiError:
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


class Gateway:
    """Facts about one job's world. Construct one per job; it is thread-safe."""

    def __init__(self, google_api_url: str = "", credentials=None, deadline: float | None = None,
                 shared_cache=None):
        self.google_api_url = google_api_url.rstrip("/")
        self.shared_cache = shared_cache  # a redis.Redis for cross-job caches, or None
        if self.google_api_url:
            keep_auth_on_endpoint()
        if credentials is None:
            credentials, _ = google.auth.default(scopes=SCOPES)
        self.credentials = credentials
        self.deadline = deadline  # time.monotonic() by which retries stop
        self._memo: dict[tuple, Future] = {}
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._session: requests.Session | None = None
        self.calls: list[str] = []  # every request issued, for tests and benchmarks

    # ---- plumbing -------------------------------------------------------------------------
    def _opts(self) -> dict | None:
        return {"api_endpoint": self.google_api_url} if self.google_api_url else None

    def _client(self, name: str, factory: Callable[..., Any]):
        with self._lock:
            if name not in self._clients:
                self._clients[name] = factory(credentials=self.credentials, transport="rest", client_options=self._opts())
            return self._clients[name]

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
        """Run independent fact look-ups at once (one round trip instead of several); errors propagate."""
        if len(fns) <= 1:
            return [fn() for fn in fns]
        with ThreadPoolExecutor(max_workers=len(fns), thread_name_prefix="fact") as pool:
            futures = [pool.submit(fn) for fn in fns]
        return [f.result() for f in futures]

    def _retrying(self, api: str, call: str, permission: str, fn: Callable[[], Any]) -> Any:
        """Call fn with bounded retries (backoff and jitter) on 429/5xx within the deadline."""
        attempt = 0
        while True:
            attempt += 1
            self.calls.append(call)
            try:
                return fn()
            except gexc.GoogleAPICallError as exc:
                err = _from_google(exc, api, call, permission)
            except ApiError as exc:
                err = exc
            except requests.RequestException as exc:
                err = ApiError(api, call, 503, "UNAVAILABLE", f"connection failed: {type(exc).__name__}", permission)
            except google.auth.exceptions.GoogleAuthError as exc:
                err = _auth_error(exc)
            delay = min(4.0, 0.25 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            out_of_time = self.deadline is not None and time.monotonic() + delay > self.deadline
            if err.code not in RETRYABLE or attempt >= 4 or out_of_time:
                raise err
            log.info("retrying %s after %s (attempt %d)", call, err.code, attempt)
            time.sleep(delay)

    def _fact(self, key: tuple, api: str, call: str, permission: str, fn: Callable[[], Any]) -> Any:
        return self.memo(key, lambda: self._retrying(api, call, permission, fn))

    def session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                self._session = google.auth.transport.requests.AuthorizedSession(self.credentials)
            return self._session

    def _rest(self, api: str, call: str, permission: str, method: str, url: str, body: dict | None = None,
              missing_ok: bool = False) -> dict | None:
        def go():
            resp = self.session().request(method, url, json=body, timeout=30)
            if resp.status_code == 404 and missing_ok:
                return None
            if resp.status_code >= 400:
                try:
                    err = resp.json().get("error", {})
                except ValueError:
                    err = {}
                info = next((d for d in err.get("details", []) if "metadata" in d), {})
                raise ApiError(api, call, resp.status_code, err.get("status", "HTTP_ERROR"),
                               err.get("message", resp.text[:200]),
                               info.get("metadata", {}).get("permission", permission))
            return resp.json() if resp.content else {}
        return self._retrying(api, call, permission, go)

    def _base(self, host: str) -> str:
        return self.google_api_url or f"https://{host}"

    # ---- Kubernetes Engine ----------------------------------------------------------------
    @property
    def container(self) -> container_v1.ClusterManagerClient:
        return self._client("container", container_v1.ClusterManagerClient)

    def cluster(self, ref: ClusterRef) -> container_v1.Cluster:
        return self._fact(("cluster", ref.path), "container.googleapis.com", f"clusters.get {ref.path}",
                          "container.clusters.get", lambda: self.container.get_cluster(name=ref.path))

    def clusters(self, project: str, location: str = "-") -> list[container_v1.Cluster]:
        parent = f"projects/{project}/locations/{location}"
        return self._fact(("clusters", parent), "container.googleapis.com", f"clusters.list {parent}",
                          "container.clusters.list",
                          lambda: list(self.container.list_clusters(parent=parent).clusters))

    def operations(self, project: str, location: str) -> list[container_v1.Operation]:
        parent = f"projects/{project}/locations/{location}"
        return self._fact(("operations", parent), "container.googleapis.com", f"operations.list {parent}",
                          "container.operations.list",
                          lambda: list(self.container.list_operations(parent=parent).operations))

    # ---- Resource Manager -----------------------------------------------------------------
    @property
    def projects(self) -> resourcemanager_v3.ProjectsClient:
        return self._client("projects", resourcemanager_v3.ProjectsClient)

    def project(self, project: str) -> resourcemanager_v3.Project:
        return self._fact(("project", project), "cloudresourcemanager.googleapis.com", f"projects.get projects/{project}",
                          "resourcemanager.projects.get",
                          lambda: self.projects.get_project(name=f"projects/{project}"))

    def project_number(self, project: str) -> str:
        return self.project(project).name.split("/", 1)[1]

    def project_iam_policy(self, project: str) -> policy_pb2.Policy:
        req = iam_policy_pb2.GetIamPolicyRequest(
            resource=f"projects/{project}", options=options_pb2.GetPolicyOptions(requested_policy_version=3))
        return self._fact(("project_policy", project), "cloudresourcemanager.googleapis.com",
                          f"projects.getIamPolicy projects/{project}", "resourcemanager.projects.getIamPolicy",
                          lambda: self.projects.get_iam_policy(request=req))

    # ---- Service Usage --------------------------------------------------------------------
    def service_enabled(self, project: str, service: str) -> bool:
        client = self._client("serviceusage", service_usage_v1.ServiceUsageClient)
        name = f"projects/{project}/services/{service}"
        svc = self._fact(("service", name), "serviceusage.googleapis.com", f"services.get {name}",
                         "serviceusage.services.get", lambda: client.get_service(request={"name": name}))
        return svc.state == service_usage_v1.State.ENABLED

    # ---- IAM (REST through AuthorizedSession) -------------------------------------------
    def service_account(self, email: str, project: str = "") -> dict | None:
        """The service account resource, or None when it does not exist (deleted).

        The path names the owning project when known (from `project`, or the email's
        `@PROJECT.iam.gserviceaccount.com` domain): under `projects/-` IAM answers 403, not 404,
        for an account that does not exist, which would read as the bot lacking permission.
        """
        owner = project or sa_project(email)
        url = f"{self._base('iam.googleapis.com')}/v1/projects/{owner}/serviceAccounts/{email}"
        return self.memo(("sa", email), lambda: self._rest(
            "iam.googleapis.com", f"serviceAccounts.get {email}", "iam.serviceAccounts.get", "GET", url, missing_ok=True))

    def service_account_policy(self, email: str) -> dict:
        url = f"{self._base('iam.googleapis.com')}/v1/projects/-/serviceAccounts/{email}:getIamPolicy"
        return self.memo(("sa_policy", email), lambda: self._rest(
            "iam.googleapis.com", f"serviceAccounts.getIamPolicy {email}", "iam.serviceAccounts.getIamPolicy",
            "POST", url, {"options": {"requestedPolicyVersion": 3}}))

    def role(self, name: str) -> dict | None:
        """A role definition (predefined `roles/X` or custom `projects/P/roles/X`), or None if absent.

        Definitions are cached across jobs for an hour: in this process, and in Redis when the
        gateway has a shared cache (RQ forks a fresh process per job, so only Redis outlives one).
        """
        now = time.monotonic()
        with _role_lock:
            hit = _role_cache.get(name)
        if hit and hit[0] > now:
            return hit[1]
        rkey = f"gke-bot:role:{name}"
        if self.shared_cache is not None:
            try:
                raw = self.shared_cache.get(rkey)
            except Exception:  # noqa: BLE001 - a cache miss, not an error
                raw = None
            if raw:
                role = json.loads(raw)
                with _role_lock:
                    _role_cache[name] = (now + _ROLE_TTL, role)
                return role
        url = f"{self._base('iam.googleapis.com')}/v1/{name}"
        role = self.memo(("role", name), lambda: self._rest(
            "iam.googleapis.com", f"roles.get {name}", "iam.roles.get", "GET", url, missing_ok=True))
        if role is not None:
            with _role_lock:
                _role_cache[name] = (now + _ROLE_TTL, role)
            if self.shared_cache is not None:
                try:
                    self.shared_cache.set(rkey, json.dumps(role), ex=int(_ROLE_TTL))
                except Exception:  # noqa: BLE001
                    log.info("role cache write failed for %s", name)
        return role

    # ---- Kubernetes API -------------------------------------------------------------------
    def access_token(self) -> str:
        """A valid OAuth access token of the bot's identity, refreshed before expiry."""
        with self._lock:
            creds = self.credentials
            if not creds.valid:  # `valid` already allows google-auth's refresh margin before expiry
                try:
                    creds.refresh(google.auth.transport.requests.Request())
                except google.auth.exceptions.GoogleAuthError as exc:
                    raise _auth_error(exc) from exc
            return creds.token

    def kube(self, ref: ClusterRef):
        """A kubernetes ApiClient for the cluster: its endpoint, its CA (in memory), ADC token."""
        import urllib3
        from kubernetes import client as k8s

        def build():
            cluster = self.cluster(ref)
            if not cluster.endpoint:
                raise ApiError("kubernetes", "connect", 503, "NO_ENDPOINT",
                               f"cluster {ref.name} has no API server endpoint (status {cluster.status.name})")
            try:
                ca = base64.b64decode(cluster.master_auth.cluster_ca_certificate, validate=True).decode()
                if "BEGIN CERTIFICATE" not in ca:
                    raise ValueError("not PEM")
            except (ValueError, UnicodeDecodeError):
                raise ApiError("kubernetes", "connect", 502, "BAD_CA",
                               "the cluster's masterAuth.clusterCaCertificate is not a PEM certificate, so the bot "
                               "cannot verify the API server") from None
            cfg = k8s.Configuration()
            cfg.host = f"https://{cluster.endpoint}"
            cfg.ca_cert_data = ca
            cfg.api_key = {"authorization": self.access_token()}
            cfg.api_key_prefix = {"authorization": "Bearer"}

            def refresh(conf):
                conf.api_key["authorization"] = self.access_token()
            cfg.refresh_api_key_hook = refresh
            # Never follow redirects (a redirect is a finding to report, not a request to make),
            # and retry a connection failure once.
            cfg.retries = urllib3.Retry(total=1, redirect=False)
            return TimedApiClient(cfg)
        return self.memo(("kube", ref.path), build)

    def k8s(self, ref: ClusterRef, call: str, fn: Callable[[Any], Any], permission: str = "") -> Any:
        """Run fn(api_client) once per job (memoised by `call`), mapping Kubernetes errors to ApiError.

        `call` names the request for people ("pods.list kube-system"); `permission` is the RBAC the
        bot needs for it ("list pods in kube-system").
        """
        import urllib3
        from kubernetes.client.exceptions import ApiException

        def go():
            self.calls.append(f"k8s {call}")
            api = self.kube(ref)
            try:
                return fn(api)
            except ApiException as exc:
                message = str(exc.reason or "")
                body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body or "")
                try:
                    message = json.loads(body).get("message", message)
                except (TypeError, ValueError, AttributeError):
                    pass
                raise ApiError("kubernetes", call, exc.status or 500, exc.reason or "Error", message, permission,
                               headers=dict(exc.headers or {}), body=body[:2000])
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise ApiError("kubernetes", call, 503, "UNREACHABLE",
                               f"the cluster's API server at {self.cluster(ref).endpoint} could not be reached "
                               f"({type(exc).__name__}): a private endpoint or master authorized networks may "
                               "keep the bot out", permission)
        return self.memo(("k8s", ref.path, call), go)

    def subject_access_review(self, ref: ClusterRef, *, user: str, verb: str, resource: str, namespace: str = "",
                              group: str = "", subresource: str = "", name: str = "",
                              groups: tuple[str, ...] = ()) -> dict:
        """SubjectAccessReview status for `user`: {"allowed": bool, "denied"?: bool, "reason"?: str}."""
        from kubernetes import client as k8s

        attrs = {"verb": verb, "resource": resource, "group": group, "namespace": namespace or None,
                 "subresource": subresource or None, "name": name or None}
        spec = {"user": user or None, "groups": list(groups) or None,
                "resourceAttributes": {k: v for k, v in attrs.items() if v is not None}}
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {k: v for k, v in spec.items() if v is not None}}
        where = f" in {namespace}" if namespace else " cluster-wide"
        who = user + (f" groups={','.join(groups)}" if groups else "")
        call = f"subjectaccessreviews.create {who} {verb} {group + '/' if group else ''}{resource}{where}"

        def go(api):
            out = k8s.AuthorizationV1Api(api).create_subject_access_review(body)
            status = out.status
            return {"allowed": bool(status.allowed), "denied": bool(status.denied),
                    "reason": status.reason or "", "evaluationError": status.evaluation_error or ""}
        return self.k8s(ref, call, go, "create subjectaccessreviews (cluster-wide)")

    # ---- Policy Troubleshooter ----------------------------------------------------------
    def troubleshoot(self, principal: str, full_resource_name: str, permission: str) -> dict:
        """Policy Troubleshooter's answer as JSON (camelCase), e.g. {"access": "GRANTED", ...}."""
        from google.cloud import policytroubleshooter_v1 as pt

        client = self._client("troubleshooter", pt.IamCheckerClient)
        req = pt.TroubleshootIamPolicyRequest(access_tuple=pt.AccessTuple(
            principal=principal.partition(":")[2] or principal, full_resource_name=full_resource_name,
            permission=permission))
        resp = self._fact(("troubleshoot", principal, full_resource_name, permission), "policytroubleshooter.googleapis.com",
                          f"iam.troubleshoot {principal} {permission}", "policytroubleshooter.iam.troubleshoot",
                          lambda: client.troubleshoot_iam_policy(request=req))
        return type(resp).to_dict(resp, use_integers_for_enums=False, preserving_proto_field_name=False)

    # ---- Compute ------------------------------------------------------------------------------
    def effective_firewalls(self, project: str, network: str) -> dict:
        """compute v1 networks.getEffectiveFirewalls as JSON (camelCase)."""
        from google.cloud import compute_v1

        client = self._client("networks", compute_v1.NetworksClient)
        resp = self._fact(("firewalls", project, network), "compute.googleapis.com",
                          f"networks.getEffectiveFirewalls projects/{project}/global/networks/{network}",
                          "compute.networks.getEffectiveFirewalls",
                          lambda: client.get_effective_firewalls(project=project, network=network))
        return json.loads(type(resp).to_json(resp))
