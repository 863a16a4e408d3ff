"""A fake of the Google Cloud REST APIs the bot uses, on one loopback base URL.

Speaks the real wire format (camelCase JSON, enum names, Google's error JSON) so the real client
libraries can talk to it with `transport="rest"` and `client_options={"api_endpoint": fake.url}`:
Kubernetes Engine v1, Resource Manager v3, Service Usage v1, IAM v1, Policy Troubleshooter v3, Cloud
Logging v2 (entries:list, filter applied: tests/fakes/logging.py), Compute Engine v1 (networks, effective
firewalls, the Ingress controller's load balancers: see tests/fakes/compute.py), and an OAuth token
endpoint for service-account keys written
by `write_service_account_key`.

State comes from real recorded responses (gcpdiag test data, see tests/fixtures/gcpdiag/README.md)
and lives in plain dicts on `fake.projects[project_id]` that tests edit to build broken variants.
"""
from __future__ import annotations

import base64
import copy
import functools
import gzip
import json
import os
import re
import secrets
import threading
import time
import uuid
import traceback
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt
from werkzeug.wrappers import Request, Response

from tests.fakes.base import Call, ServerThread
from tests.fakes.compute import COMPUTE_ROUTES, ComputeMixin, ComputeState
from tests.fakes import iam_policy
from tests.fakes import logging as fake_logging


def block_google_egress() -> None:
    """Stop google-auth's "regional access boundary" lookups (idempotent; applied on import).

    google-auth >= 2.4x asks https://iamcredentials.googleapis.com/.../allowedLocations in a
    background thread after a service-account credential gets a token, whatever token_uri or
    api_endpoint say, and has no switch to turn it off. Tests may only reach loopback, so in
    this process that lookup becomes a no-op (the credentials then simply send no
    x-allowed-locations header, as when the lookup fails).
    """
    try:
        from google.auth import _regional_access_boundary_utils as rab
    except ImportError:  # older google-auth: no such lookup
        return

    async def _skip_async(self, credentials, request):
        return None
    rab._RegionalAccessBoundaryManager.maybe_start_refresh = lambda self, credentials, request: None
    rab._RegionalAccessBoundaryManager.maybe_start_refresh_async = _skip_async


block_google_egress()

FIXTURES = Path(os.environ.get("GKE_BOT_FIXTURES")
                or Path(__file__).resolve().parents[1] / "fixtures" / "gcpdiag")

STATUS_FOR_CODE = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                   409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
                   502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
UNAUTHENTICATED = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                   "or other valid authentication credential.")
# google-auth signs its token-grant JWTs for Google's token URL whatever token_uri says.
GOOGLE_TOKEN_AUDIENCES = ("https://oauth2.googleapis.com/token", "https://www.googleapis.com/oauth2/v4/token")
# Services a project made with add_project() starts with (a GKE project has at least these on).
DEFAULT_SERVICES = ("cloudresourcemanager.googleapis.com", "compute.googleapis.com", "container.googleapis.com",
                    "iam.googleapis.com", "serviceusage.googleapis.com")
# Role definitions the product relies on; all are in the fixtures today. Should one disappear
# from them, this SYNTHESIZED minimal definition stands in (permissions are a plausible subset).
REQUIRED_ROLES = {
    "roles/container.serviceAgent": ["compute.instances.list", "container.clusters.get", "iam.serviceAccounts.actAs",
                                     "resourcemanager.projects.get"],
    "roles/container.clusterViewer": ["container.clusters.get", "container.clusters.list",
                                      "resourcemanager.projects.get", "resourcemanager.projects.list"],
    "roles/editor": ["container.clusters.get", "container.clusters.list", "container.clusters.update",
                     "resourcemanager.projects.get"],
    "roles/owner": ["container.clusters.get", "container.clusters.list", "container.clusters.update",
                    "resourcemanager.projects.get", "resourcemanager.projects.getIamPolicy",
                    "resourcemanager.projects.setIamPolicy"],
    "roles/container.defaultNodeServiceAccount": ["autoscaling.sites.writeMetrics", "logging.logEntries.create",
                                                  "monitoring.metricDescriptors.create",
                                                  "monitoring.metricDescriptors.list",
                                                  "monitoring.timeSeries.create", "monitoring.timeSeries.list"],
}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _etag_bytes(etag: str) -> bytes:
    """An etag is a proto `bytes` field: JSON carries it base64, standard or URL-safe alphabet (apitools,
    hence gcloud, sends the URL-safe one); Google compares the bytes."""
    try:
        return base64.b64decode(etag.replace("-", "+").replace("_", "/") + "=" * (-len(etag) % 4))
    except ValueError:
        return etag.encode()


def _new_etag() -> str:
    return base64.b64encode(b"\x07" + os.urandom(7)).decode()  # shaped like "BwXSd+CQHPE="


def _version_key(v: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", v))


@functools.lru_cache(maxsize=None)
def _fixture_text(path: Path) -> str:
    return (gzip.open(path, "rt") if path.suffix == ".gz" else path.open()).read()


def _read(path: Path):
    """Parsed JSON of a fixture file (a fresh copy each time); None when missing or empty."""
    if not path.is_file():
        return None
    text = _fixture_text(path)
    return json.loads(text) if text.strip() else None


class GoogleError(Exception):
    """An error answer in Google's JSON error format."""

    def __init__(self, code: int, message: str, status: str | None = None, details: list | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.headers = code, message, headers or {}
        self.status = status or STATUS_FOR_CODE.get(code, "UNKNOWN")
        self.details = details

    def body(self) -> dict:
        err = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            err["details"] = self.details
        return {"error": err}


def error_info(reason: str, domain: str, **metadata) -> dict:
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": domain,
            "metadata": metadata}


def permission_denied(permission: str, resource: str) -> GoogleError:
    """IAM's 403, exactly as Google words it."""
    return GoogleError(403, f"Permission '{permission}' denied on resource '{resource}' (or it may not exist).",
                       details=[error_info("IAM_PERMISSION_DENIED", "iam.googleapis.com", permission=permission)])


@dataclass
class ProjectState:
    """One project. Every field is a plain mutable dict/list in wire format: edit them in tests."""
    project: dict
    number: str
    iam_policy: dict = field(default_factory=lambda: {"version": 1, "etag": _new_etag(), "bindings": []})
    clusters: list = field(default_factory=list)
    services: dict = field(default_factory=dict)  # "container.googleapis.com" -> "ENABLED" | "DISABLED"
    service_accounts: dict = field(default_factory=dict)  # email -> SA dict
    sa_policies: dict = field(default_factory=dict)  # email -> IAM policy dict
    custom_roles: dict = field(default_factory=dict)  # "projects/P/roles/X" -> role dict
    operations: list = field(default_factory=list)  # container Operation dicts (matched on zone, targetLink)
    server_configs: dict = field(default_factory=dict)  # location -> ServerConfig dict
    service_configs: dict = field(default_factory=dict)  # service name -> its "config" as recorded
    networks: dict = field(default_factory=dict)  # VPC network name -> its getEffectiveFirewalls answer
    compute: ComputeState = field(default_factory=ComputeState)  # the rest of Compute Engine (tests/fakes/compute.py)
    deny_policies: list = field(default_factory=list)  # IAM v2 deny policies attached to the project
    _policy_seen: tuple | None = field(default=None, repr=False)  # (content digest, etag) last served

    @property
    def project_id(self) -> str:
        return self.project["projectId"]


@dataclass(eq=False)
class Failure:
    """An injected error (see FakeGoogle.fail); `.remove()` withdraws it."""
    method: str | None
    pattern: re.Pattern
    error: Callable[[str], GoogleError]
    times: int | None
    _owner: "FakeGoogle" = field(repr=False)
    hits: int = 0

    def remove(self) -> None:
        with self._owner._lock:
            if self in self._owner._failures:
                self._owner._failures.remove(self)


_ID = r"[^/:]+"
_P = rf"/v1/projects/(?P<p>{_ID})"
_LOC = rf"{_P}/locations/(?P<loc>{_ID})"
_CL = rf"{_LOC}/clusters/(?P<c>{_ID})"
ROUTES = [(m, re.compile(rx), h) for m, rx, h in [
    # Kubernetes Engine v1
    ("GET", rf"{_LOC}/clusters", "list_clusters"),
    ("GET", _CL, "get_cluster"),
    ("PUT", _CL, "update_cluster"),
    ("POST", rf"{_CL}:startIpRotation", "start_ip_rotation"),
    ("POST", rf"{_CL}:completeIpRotation", "complete_ip_rotation"),
    ("GET", rf"{_CL}/nodePools", "list_node_pools"),
    ("GET", rf"{_CL}/nodePools/(?P<np>{_ID})", "get_node_pool"),
    ("PUT", rf"{_CL}/nodePools/(?P<np>{_ID})", "update_node_pool"),
    ("GET", rf"{_LOC}/operations", "list_operations"),
    ("GET", rf"{_LOC}/operations/(?P<op>{_ID})", "get_operation"),
    ("GET", rf"{_LOC}/serverConfig", "server_config"),
    # Resource Manager v3
    ("GET", rf"/v3/projects/(?P<p>{_ID})", "get_project"),
    ("POST", rf"/v3/projects/(?P<p>{_ID}):getIamPolicy", "get_iam_policy"),
    ("POST", rf"/v3/projects/(?P<p>{_ID}):setIamPolicy", "set_iam_policy"),
    ("POST", rf"/v3/projects/(?P<p>{_ID}):testIamPermissions", "test_iam_permissions"),
    # Resource Manager v1 (what gcloud projects describe / get-iam-policy / add-iam-policy-binding call)
    ("GET", rf"/v1/projects/(?P<p>{_ID})", "get_project_v1"),
    ("POST", rf"/v1/projects/(?P<p>{_ID}):getIamPolicy", "get_iam_policy"),
    ("POST", rf"/v1/projects/(?P<p>{_ID}):setIamPolicy", "set_iam_policy"),
    # Service Usage v1
    ("GET", rf"{_P}/services", "list_services"),
    ("GET", rf"{_P}/services:batchGet", "batch_get_services"),
    ("GET", rf"{_P}/services/(?P<s>{_ID})", "get_service"),
    # IAM v1
    ("GET", rf"{_P}/serviceAccounts", "list_service_accounts"),
    ("GET", rf"{_P}/serviceAccounts/(?P<sa>{_ID})", "get_service_account"),
    ("POST", rf"{_P}/serviceAccounts/(?P<sa>{_ID}):getIamPolicy", "get_sa_policy"),
    ("GET", r"/v1/roles", "list_roles"),
    ("GET", rf"/v1/roles/(?P<r>{_ID})", "get_role"),
    ("GET", rf"{_P}/roles", "list_custom_roles"),
    ("GET", rf"{_P}/roles/(?P<r>{_ID})", "get_custom_role"),
    ("GET", rf"/v1/organizations/(?P<o>{_ID})/roles/(?P<r>{_ID})", "get_org_role"),
    # Cloud Logging v2
    ("POST", r"/v2/entries:list", "list_log_entries"),
    # Policy Troubleshooter v3
    ("POST", r"/v3/iam:troubleshoot", "troubleshoot_v3"),
    # Compute Engine v1 (tests/fakes/compute.py)
    *COMPUTE_ROUTES,
]]
# Legacy zonal container paths (/zones/Z/..., serverconfig) map onto the locations/ ones for reads.
_ZONAL = re.compile(r"^(/v1/projects/[^/]+)/zones/([^/]+)/(clusters|operations|serverconfig)")


class FakeGoogle(ComputeMixin):
    def __init__(self):
        self._server = ServerThread(self._wsgi)  # binds the port now, so .url is known before start()
        self.url = f"http://127.0.0.1:{self._server.port}"
        self.token_uri = f"{self.url}/token"
        self.projects: dict[str, ProjectState] = {}
        self.deleted_projects: set[str] = set()  # ids or numbers; GET answers state DELETE_REQUESTED
        self.predefined_roles: dict[str, dict] = self._load_role_catalog()
        self.calls: list[Call] = []
        self.latency = 0.0
        self.operation_polls = 1
        self.operation_error: dict | None = None  # e.g. {"code": 9, "message": "..."}: the next operation fails so
        self.troubleshooter_enabled = False
        self.troubleshooter_reads_deny = True  # False: the caller lacks iam.denypolicies.* (UNKNOWN_INFO)
        self.org_roles: dict[str, dict] = {}  # "organizations/O/roles/X" -> role dict
        self.log_entries: list[dict] = []  # Cloud Logging LogEntry dicts (see tests/fakes/logging.py)
        self.on_set_iam_policy: Callable[[str], None] | None = None
        self._lock = threading.Lock()
        self._keys: dict[str, str] = {}  # private_key_id -> public key PEM
        self._tokens: dict[str, tuple[float, str]] = {}  # access token -> (expiry epoch, client email)
        self._jwts: dict[str, tuple[float, str]] = {}  # verified self-signed JWTs, same shape
        self._failures: list[Failure] = []
        self._pending: dict[str, list] = {}  # operation name -> [polls seen, apply()]
        # (project id, location, cluster) -> names of node pools still to be recreated after a started
        # credential or IP rotation (GKE's own bookkeeping; not part of the Cluster resource)
        self.rotations: dict[tuple, set] = {}

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> "FakeGoogle":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> "FakeGoogle":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- state ----------------------------------------------------------------------------
    @staticmethod
    def _load_role_catalog() -> dict[str, dict]:
        roles: dict[str, dict] = {}
        for pattern in ("*/iam-roles-predefined-*.json.gz", "*/iam-roles-get.json"):  # later dirs are newer
            for path in sorted(FIXTURES.glob(pattern)):
                roles.update((r["name"], r) for r in (_read(path) or {}).get("roles", []))
        for name, perms in REQUIRED_ROLES.items():  # synthesized only if the fixtures lack one
            roles.setdefault(name, {"name": name, "title": name, "includedPermissions": perms, "stage": "GA",
                                    "etag": "AA=="})
        return roles

    def add_project(self, project_id: str, number: str, parent: str = "folders/1") -> ProjectState:
        now = _now()
        st = ProjectState(project={"name": f"projects/{number}", "parent": parent, "projectId": project_id,
                                   "state": "ACTIVE", "displayName": project_id, "createTime": now,
                                   "updateTime": now, "etag": _new_etag()},
                          number=str(number), services={s: "ENABLED" for s in DEFAULT_SERVICES})
        self.projects[project_id] = st
        return st

    def load_fixture(self, name: str) -> str:
        """Load tests/fixtures/gcpdiag/<name> into a project; returns its project id."""
        d = FIXTURES / name
        project = _read(d / "project.json")
        if project is None:
            raise FileNotFoundError(f"no fixture project at {d} (set GKE_BOT_FIXTURES?)")
        st = ProjectState(project=project, number=project["name"].split("/", 1)[1])
        if policy := _read(d / "iam-policy.json"):
            st.iam_policy = policy
        listed = _read(d / "container-clusters.json") or {}
        st.clusters = listed.get("clusters", [listed] if "name" in listed else [])
        for path in sorted(d.glob("container-cluster-*.json")):  # single-cluster GET answers win
            one = _read(path)
            st.clusters = [c for c in st.clusters
                           if (c["name"], c.get("location")) != (one["name"], one.get("location"))] + [one]
        for svc in (_read(d / "services.json") or {}).get("services", []):
            st.services[svc["config"]["name"]] = svc.get("state", "ENABLED")
            st.service_configs[svc["config"]["name"]] = svc["config"]
        accounts = (_read(d / "iam-service-accounts.json") or {}).get("accounts", [])
        st.service_accounts = {sa["email"]: sa for sa in accounts}
        # gcpdiag answers every serviceAccounts.getIamPolicy with the one recorded policy; so do we.
        if sa_policy := _read(d / "iam-service-account-policy.json"):
            st.sa_policies = {email: copy.deepcopy(sa_policy) for email in st.service_accounts}
        st.custom_roles = {r["name"]: r for r in (_read(d / "iam-roles-custom.json") or {}).get("roles", [])}
        for path in d.glob("container-server-config-*.json"):
            st.server_configs[path.stem.removeprefix("container-server-config-")] = _read(path)
        for path in d.glob("compute-effective-firewalls-*.json"):
            st.networks[path.stem.removeprefix("compute-effective-firewalls-")] = _read(path)
        st.compute.load(d, _read)
        self.projects[st.project_id] = st
        return st.project_id

    def cluster(self, project_id: str, name: str, location: str | None = None) -> dict:
        for c in self.projects[project_id].clusters:
            if c["name"] == name and location in (None, c.get("location")):
                return c
        raise KeyError(f"{project_id}/{location or '*'}/{name}")

    def _project(self, p: str) -> ProjectState | None:
        return self.projects.get(p) or next((s for s in self.projects.values() if s.number == p), None)

    # ---- auth -----------------------------------------------------------------------------
    def write_service_account_key(self, path, client_email: str = "gke-bot@bot-project.iam.gserviceaccount.com"):
        """Write a fresh service-account JSON key whose signatures this fake accepts."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = secrets.token_hex(20)
        self._keys[kid] = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        info = {
            "type": "service_account", "project_id": client_email.split("@")[1].split(".")[0],
            "private_key_id": kid,
            "private_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode(),
            "client_email": client_email, "client_id": str(10**20 + secrets.randbelow(10**20)),
            # Only token_uri is ever contacted; the other URLs point at the fake too, for safety.
            "auth_uri": f"{self.url}/o/oauth2/auth", "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": f"{self.url}/oauth2/v1/certs",
            "client_x509_cert_url": f"{self.url}/robot/v1/metadata/x509/{urllib.parse.quote(client_email)}",
            "universe_domain": "googleapis.com",
        }
        Path(path).write_text(json.dumps(info, indent=2))
        return path

    def issue_token(self, email: str, ttl: float = 3600) -> str:
        """An access token for `email`, as if it had signed in (for clients such as gcloud that take a
        token file instead of a key)."""
        token = f"ya29.fake-{secrets.token_urlsafe(24)}"
        self._tokens[token] = (time.time() + ttl, email)
        return token

    def token_valid(self, token: str) -> bool:
        """True only for unexpired access tokens issued by /token."""
        hit = self._tokens.get(token)
        return bool(hit and hit[0] > time.time())

    def expire_tokens(self) -> None:
        """Forget every issued access token (clients must fetch new ones)."""
        self._tokens.clear()

    def _verify_jwt(self, token: str, audience=None) -> dict:
        return jwt.decode(token, certs=self._keys, audience=audience, clock_skew_in_seconds=10)

    def _caller(self, req: Request) -> str:
        """The caller's service-account email, from an issued token or a self-signed JWT."""
        auth = req.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        hit = self._tokens.get(token) or self._jwts.get(token)
        if not hit and token.count(".") == 2:
            try:
                claims = self._verify_jwt(token)
                hit = self._jwts[token] = (float(claims["exp"]), claims["iss"])
            except Exception:  # noqa: BLE001 - any malformed or foreign token is just invalid
                pass
        if not hit or hit[0] <= time.time():
            raise GoogleError(401, UNAUTHENTICATED,
                              headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
        return hit[1]

    def _token(self, body: bytes) -> Response:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return _json(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."})
        try:
            claims = self._verify_jwt(form.get("assertion", ""), audience=[self.token_uri, *GOOGLE_TOKEN_AUDIENCES])
        except Exception:  # noqa: BLE001
            return _json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        token = f"ya29.fake-{secrets.token_urlsafe(24)}"
        self._tokens[token] = (time.time() + 3600, claims["iss"])
        return _json(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    # ---- error injection ------------------------------------------------------------------
    def fail(self, method: str | None, path_regex: str, status_code: int, times: int | None = None,
             google_status: str | None = None, message: str | None = None, details: list | None = None) -> Failure:
        """Answer matching requests (method None/"*" = any; regex searched in the path) with an error."""
        msg = message or {429: "Quota exceeded.", 500: "Internal error encountered.",
                          503: "The service is currently unavailable."}.get(status_code, "Injected error.")
        return self._inject(method, path_regex, times,
                            lambda path: GoogleError(status_code, msg, google_status, details))

    def deny(self, method: str | None, path_regex: str, permission: str, times: int | None = None,
             resource: str | None = None) -> Failure:
        """A 403 IAM_PERMISSION_DENIED as Google sends it, for `permission` on the requested resource."""
        service = {"resourcemanager": "cloudresourcemanager"}.get(permission.split(".")[0], permission.split(".")[0])

        def error(path: str) -> GoogleError:
            res = resource or f"//{service}.googleapis.com/" + re.sub(r"^/v\d+\w*/", "", path).split(":")[0]
            return permission_denied(permission, res)
        return self._inject(method, path_regex, times, error)

    def _inject(self, method, path_regex, times, error) -> Failure:
        rule = Failure(None if method in (None, "*") else method.upper(), re.compile(path_regex), error, times, self)
        with self._lock:
            self._failures.append(rule)
        return rule

    def _injected(self, method: str, path: str) -> GoogleError | None:
        with self._lock:
            for rule in self._failures:
                if rule.method in (None, method) and rule.pattern.search(path):
                    rule.hits += 1
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self._failures.remove(rule)
                    return rule.error(path)
        return None

    def reset_calls(self) -> None:
        self.calls.clear()

    # ---- HTTP plumbing --------------------------------------------------------------------
    def _wsgi(self, environ, start_response):
        req = Request(environ)
        body = req.get_data()
        self.calls.append(Call(req.method, req.path, environ.get("QUERY_STRING", ""), body, dict(req.headers)))
        is_token = req.path == "/token"
        if self.latency and not is_token:
            time.sleep(self.latency)
        try:
            if err := self._injected(req.method, req.path):
                raise err
            if is_token and req.method == "POST":
                return self._token(body)(environ, start_response)
            req.caller = self._caller(req)
            path = _ZONAL.sub(lambda m: f"{m[1]}/locations/{m[2]}/{m[3].replace('serverconfig', 'serverConfig')}",
                              req.path) if req.method == "GET" else req.path
            for method, rx, name in ROUTES:
                if method == req.method and (m := rx.fullmatch(path)):
                    break
            else:
                raise GoogleError(404, f"fake-google has no route for {req.method} {req.path}")
            try:
                payload = json.loads(body) if body.strip() else {}
            except ValueError:
                raise GoogleError(400, "Invalid JSON payload received.") from None
            with self._lock:  # serialise under the lock: handlers return live state
                resp = _json(200, getattr(self, "_h_" + name)(req, payload, **m.groupdict()))
        except GoogleError as e:
            resp = _json(e.code, e.body())
            resp.headers.update(e.headers)
        except Exception as e:  # noqa: BLE001 - a fake bug (or a bad test edit): say so in Google's format
            traceback.print_exc()
            resp = _json(500, GoogleError(500, f"fake-google crashed: {e!r}").body())
        return resp(environ, start_response)

    @contextmanager
    def _unlocked(self):
        """Let a test hook run (and even call this fake) in the middle of a handler."""
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()

    # ---- Kubernetes Engine v1 -------------------------------------------------------------
    def _gke(self, p: str) -> ProjectState:
        st = self._project(p)
        if st is None:
            raise GoogleError(404, f'Project "{p}" not found.')
        if st.services.get("container.googleapis.com") != "ENABLED":
            raise _service_disabled(st, "container.googleapis.com", "Kubernetes Engine API")
        return st

    def _find_cluster(self, p, loc, c) -> tuple[ProjectState, dict]:
        st = self._gke(p)
        for cl in st.clusters:
            if cl["name"] == c and cl.get("location") == loc:
                return st, cl
        raise GoogleError(404, f"Not found: projects/{p}/locations/{loc}/clusters/{c}.")

    def _find_pool(self, p, loc, c, np) -> tuple[ProjectState, dict, dict]:
        st, cl = self._find_cluster(p, loc, c)
        for pool in cl.get("nodePools", []):
            if pool["name"] == np:
                return st, cl, pool
        raise GoogleError(404, f"Not found: projects/{p}/locations/{loc}/clusters/{c}/nodePools/{np}.")

    def _h_list_clusters(self, req, body, p, loc):
        return _envelope("clusters", [c for c in self._gke(p).clusters if loc in ("-", c.get("location"))])

    def _h_get_cluster(self, req, body, p, loc, c):
        return self._find_cluster(p, loc, c)[1]

    def _h_list_node_pools(self, req, body, p, loc, c):
        return _envelope("nodePools", self._find_cluster(p, loc, c)[1].get("nodePools", []))

    def _h_get_node_pool(self, req, body, p, loc, c, np):
        return self._find_pool(p, loc, c, np)[2]

    def _h_update_node_pool(self, req, body, p, loc, c, np):
        st, cl, pool = self._find_pool(p, loc, c, np)
        version = body.get("nodeVersion") or pool.get("version")
        if version in ("-", "latest"):
            version = cl.get("currentMasterVersion")
        return self._pool_operation(st, cl, pool, lambda: pool.update(version=version))

    def _pool_operation(self, st: ProjectState, cl: dict, pool: dict, change: Callable) -> dict:
        """An UPGRADE_NODES operation that applies `change` to the pool and recreates its nodes (RECONCILING
        while it runs; a new etag; the cluster's currentNodeVersion follows)."""
        prev_status = pool.get("status", "RUNNING")

        def apply():
            change()
            pool["status"] = "RUNNING" if prev_status == "RECONCILING" else prev_status
            pool["etag"] = str(uuid.uuid4())
            self.recreated(st, cl, pool)
            versions = [x["version"] for x in cl.get("nodePools", []) if x.get("version")]
            if versions:
                cl["currentNodeVersion"] = min(versions, key=_version_key)
        op = self._start_operation(st, cl, "UPGRADE_NODES", f"/nodePools/{pool['name']}", apply)
        if op["status"] == "RUNNING":
            pool["status"] = "RECONCILING"
        return op

    def _h_update_cluster(self, req, body, p, loc, c):
        st, cl = self._find_cluster(p, loc, c)
        update = dict(body.get("update", {}))
        etag = update.pop("etag", None)
        if etag and cl.get("etag") and etag != cl["etag"]:
            raise GoogleError(409, "Cluster etag does not match the current etag; the cluster changed meanwhile.",
                              "ABORTED")
        pool_fields = {"desiredNodeVersion", "desiredImageType", "desiredNodePoolAutoscaling"} & set(update)
        if pool_fields:  # ClusterUpdate's node-pool fields act on one pool (gcloud clusters upgrade --node-pool)
            return self._update_pool_via_cluster(st, cl, update, pool_fields)

        def apply():
            for key, value in update.items():
                if key == "desiredAddonsConfig":
                    cl.setdefault("addonsConfig", {}).update(value)
                elif key == "desiredMasterVersion":
                    cl["currentMasterVersion"] = value
                elif key.startswith("desired"):  # desiredFooBar -> fooBar, replaced whole
                    cl[key[7].lower() + key[8:]] = value
            cl["etag"] = str(uuid.uuid4())  # every change gives the cluster a new etag
        op_type = "UPGRADE_MASTER" if "desiredMasterVersion" in update else "UPDATE_CLUSTER"
        return self._start_operation(st, cl, op_type, "", apply)

    def _update_pool_via_cluster(self, st: ProjectState, cl: dict, update: dict, pool_fields: set) -> dict:
        """ClusterUpdate.desiredNodeVersion (and desiredImageType, desiredNodePoolAutoscaling) change the node
        pool named by desiredNodePoolId (mandatory with more than one pool), not the cluster: an
        UPGRADE_NODES operation on that pool; "-" (or "latest") means the control plane's version, and
        the same version as now recreates the pool's nodes."""
        pools = cl.get("nodePools", [])
        pool_id = update.get("desiredNodePoolId")
        if not pool_id and len(pools) == 1:
            pool_id = pools[0]["name"]
        if not pool_id:
            raise GoogleError(400, "desired_node_pool_id must be specified when the cluster has more than one "
                                   f"node pool and one of {', '.join(sorted(pool_fields))} is set.")
        pool = next((x for x in pools if x["name"] == pool_id), None)
        if pool is None:
            raise GoogleError(404, f"Node pool \"{pool_id}\" not found.")
        version = update.get("desiredNodeVersion") or pool.get("version")
        if version in ("-", "latest"):
            version = cl.get("currentMasterVersion")

        def change():
            if "desiredNodeVersion" in update:
                pool["version"] = version
            if update.get("desiredImageType"):
                pool.setdefault("config", {})["imageType"] = update["desiredImageType"]
            if "desiredNodePoolAutoscaling" in update:
                pool["autoscaling"] = update["desiredNodePoolAutoscaling"]
        return self._pool_operation(st, cl, pool, change)

    def recreated(self, st: ProjectState, cl: dict, pool: dict) -> None:
        """A pool's nodes were recreated (an upgrade, to the same version included): a started rotation no
        longer waits for it."""
        self.rotations.get((st.project_id, cl.get("location"), cl["name"]), set()).discard(pool["name"])

    # Credential / IP rotation: start adds a new cluster CA beside the old one (both are in
    # masterAuth.clusterCaCertificate until completion) and marks every node pool for recreation;
    # completion is refused while a pool still waits for it, with GKE's words.
    def _h_start_ip_rotation(self, req, body, p, loc, c):
        st, cl = self._find_cluster(p, loc, c)
        key = (st.project_id, loc, c)
        if key in self.rotations:
            raise GoogleError(400, f"Cluster {c} is already rotating its IP address and credentials.",
                              "FAILED_PRECONDITION")

        def apply():
            auth = cl.setdefault("masterAuth", {})
            auth["clusterCaCertificate"] = base64.b64encode(
                (_ca_bundle_pem(auth.get("clusterCaCertificate", "")) or new_ca_pem("old")).encode()
                + new_ca_pem("rotated").encode()).decode()
            self.rotations[key] = {pool["name"] for pool in cl.get("nodePools", [])}
        return self._start_operation(st, cl, "UPDATE_CLUSTER", "", apply)

    def _h_complete_ip_rotation(self, req, body, p, loc, c):
        st, cl = self._find_cluster(p, loc, c)
        key = (st.project_id, loc, c)
        if key not in self.rotations:
            raise GoogleError(400, f"Cluster {c} is not rotating its IP address or credentials.",
                              "FAILED_PRECONDITION")
        if waiting := sorted(self.rotations[key]):
            raise GoogleError(400, f'Node pool "{waiting[0]}" requires recreation.', "FAILED_PRECONDITION")

        def apply():
            auth = cl.setdefault("masterAuth", {})
            pems = _ca_bundle_pem(auth.get("clusterCaCertificate", "")).split("-----END CERTIFICATE-----")
            newest = [x for x in pems if "BEGIN CERTIFICATE" in x][-1].strip() + "\n-----END CERTIFICATE-----\n"
            auth["clusterCaCertificate"] = base64.b64encode(newest.encode()).decode()
            self.rotations.pop(key, None)
        return self._start_operation(st, cl, "UPDATE_CLUSTER", "", apply)

    def _start_operation(self, st: ProjectState, cl: dict, op_type: str, target: str, apply: Callable) -> dict:
        for other in st.operations:
            if other.get("status") in ("PENDING", "RUNNING") and _op_cluster(other) == (cl.get("location"), cl["name"]):
                raise GoogleError(400, f"Cluster is running incompatible operation {other['name']}.",
                                  "FAILED_PRECONDITION")
        loc = cl.get("location")
        name = f"operation-{int(time.time() * 1000)}-{secrets.token_hex(4)}"
        base = f"https://container.googleapis.com/v1/projects/{st.number}/zones/{loc}"
        op = {"name": name, "zone": loc, "operationType": op_type, "status": "RUNNING",
              "selfLink": f"{base}/operations/{name}", "targetLink": f"{base}/clusters/{cl['name']}{target}",
              "startTime": _now()}
        st.operations.append(op)
        self._pending[name] = [0, apply]
        if self.operation_polls <= 0:
            self._finish(op)
        return copy.deepcopy(op)

    def _finish(self, op: dict) -> None:
        _, apply = self._pending.pop(op["name"])
        if self.operation_error:  # GKE reports a failed operation as DONE with `error` and statusMessage
            err, self.operation_error = self.operation_error, None
            op.update(status="DONE", endTime=_now(), error=err, statusMessage=err.get("message", ""))
            return
        apply()
        op.update(status="DONE", endTime=_now())

    def _h_list_operations(self, req, body, p, loc):
        return _envelope("operations", [o for o in self._gke(p).operations if loc in ("-", o.get("zone"))])

    def _h_get_operation(self, req, body, p, loc, op):
        for o in self._gke(p).operations:
            if o["name"] == op and loc in ("-", o.get("zone")):
                if pending := self._pending.get(op):
                    pending[0] += 1
                    if pending[0] >= self.operation_polls:
                        self._finish(o)
                return o
        raise GoogleError(404, f"Not found: projects/{p}/locations/{loc}/operations/{op}.")

    def _h_server_config(self, req, body, p, loc):
        configs = self._gke(p).server_configs
        config = configs.get(loc) or configs.get(loc.rsplit("-", 1)[0] if loc.count("-") == 2 else "")
        if config is None:
            raise GoogleError(404, f"Not found: projects/{p}/locations/{loc}/serverConfig.")
        return config

    # ---- Resource Manager v3 --------------------------------------------------------------
    def _crm(self, p: str, permission: str) -> ProjectState:
        st = self._project(p)
        if st is None:
            raise permission_denied(permission, f"//cloudresourcemanager.googleapis.com/projects/{p}")
        return st

    def _h_get_project(self, req, body, p):
        st = self._crm(p, "resourcemanager.projects.get")
        deleted = {p, st.project_id, st.number} & self.deleted_projects
        return {**st.project, "state": "DELETE_REQUESTED"} if deleted else st.project

    def _h_get_project_v1(self, req, body, p):
        """The same project in Resource Manager v1's shape (projectNumber, lifecycleState, parent {type, id})."""
        v3 = self._h_get_project(req, body, p)
        kind, _, parent_id = v3.get("parent", "").partition("/")
        out = {"projectNumber": v3["name"].split("/", 1)[1], "projectId": v3["projectId"],
               "lifecycleState": v3.get("state", "ACTIVE"), "name": v3.get("displayName", v3["projectId"]),
               "createTime": v3.get("createTime")}
        if parent_id:
            out["parent"] = {"type": kind.rstrip("s"), "id": parent_id}
        return out

    def _policy(self, st: ProjectState) -> dict:
        """The stored policy; a direct edit by a test that kept the etag gets a new etag, as on GCP."""
        digest = json.dumps({k: v for k, v in st.iam_policy.items() if k != "etag"}, sort_keys=True)
        if st._policy_seen and st._policy_seen[0] != digest and st._policy_seen[1] == st.iam_policy.get("etag"):
            st.iam_policy["etag"] = _new_etag()
        st._policy_seen = (digest, st.iam_policy.get("etag"))
        return st.iam_policy

    def _h_get_iam_policy(self, req, body, p):
        policy = self._policy(self._crm(p, "resourcemanager.projects.getIamPolicy"))
        version = int(((body.get("options") or {}).get("requestedPolicyVersion")) or 0)
        return iam_policy.versioned(policy, version)

    def _h_set_iam_policy(self, req, body, p):
        st = self._crm(p, "resourcemanager.projects.setIamPolicy")
        new = body.get("policy") or {}
        self._policy(st)
        if self.on_set_iam_policy:
            with self._unlocked():
                self.on_set_iam_policy(st.project_id)
        current = self._policy(st)
        if new.get("etag") and _etag_bytes(new["etag"]) != _etag_bytes(current.get("etag", "")):
            raise GoogleError(409, "There were concurrent policy changes. Please retry the whole read-modify-write "
                                   f"with exponential backoff. The request's ETag '{new['etag']}' did not match the "
                                   f"current policy's ETag '{current.get('etag')}'.", "ABORTED")
        mask = [f.strip() for f in (body.get("updateMask") or "bindings,etag").split(",")] + ["version"]
        for key in mask:
            if key == "etag":
                continue  # a fresh one is issued below
            if key in new:
                current[key] = new[key]
            elif key not in ("etag", "version"):
                current.pop(key, None)
        current["etag"] = _new_etag()
        return self._policy(st)

    def _h_test_iam_permissions(self, req, body, p):
        st = self._crm(p, "resourcemanager.projects.get")
        member = f"serviceAccount:{req.caller}"
        return _envelope("permissions", [perm for perm in body.get("permissions", [])
                                         if self._access(st, member, perm)[0] == "GRANTED"])

    # ---- Service Usage v1 -----------------------------------------------------------------
    def _usage(self, p: str, what: str) -> ProjectState:
        st = self._project(p)
        if st is None:
            raise GoogleError(403, f"Permission denied to {what} for consumer container [projects/{p}]",
                              details=[error_info("AUTH_PERMISSION_DENIED", "serviceusage.googleapis.com",
                                                  consumer=f"projects/{p}")])
        return st

    def _service(self, st: ProjectState, name: str) -> dict:
        return {"name": f"projects/{st.number}/services/{name}", "config": st.service_configs.get(name, {"name": name}),
                "state": st.services.get(name, "DISABLED"), "parent": f"projects/{st.number}"}

    def _h_list_services(self, req, body, p):
        st = self._usage(p, "list services")
        want = re.fullmatch(r"\s*state:(\w+)\s*", req.args.get("filter", ""))
        names = sorted(n for n, s in st.services.items() if not want or s == want[1].upper())
        return _page(req, "services", [self._service(st, n) for n in names], default_size=50, max_size=200)

    def _h_batch_get_services(self, req, body, p):
        st = self._usage(p, "get services")
        return _envelope("services", [self._service(st, n.rsplit("/", 1)[-1]) for n in req.args.getlist("names")])

    def _h_get_service(self, req, body, p, s):
        return self._service(self._usage(p, "get service"), s)

    # ---- IAM v1 ---------------------------------------------------------------------------
    def _h_list_service_accounts(self, req, body, p):
        st = self._project(p)
        if st is None:
            raise permission_denied("iam.serviceAccounts.list", f"projects/{p}")
        return _page(req, "accounts", list(st.service_accounts.values()), default_size=100, max_size=100)

    def _sa(self, sa: str) -> tuple[ProjectState, str]:
        for st in self.projects.values():
            for email, account in st.service_accounts.items():
                if sa in (email, account.get("uniqueId")):
                    return st, email
        raise GoogleError(404, "Unknown service account")

    def _h_get_service_account(self, req, body, p, sa):
        st, email = self._sa(sa)
        return st.service_accounts[email]

    def _h_get_sa_policy(self, req, body, p, sa):
        # iam.projects.serviceAccounts.getIamPolicy has no request body (gcloud sends none: the version is
        # the query parameter options.requestedPolicyVersion); a JSON body names fields the method lacks.
        if body:
            name = next(iter(body))
            raise GoogleError(400, f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.',
                              details=[{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
                                  {"description": f'Invalid JSON payload received. Unknown name "{name}": '
                                                  "Cannot find field."}]}])
        st, email = self._sa(sa)
        version = req.args.get("options.requestedPolicyVersion", "0")
        if not version.isdigit():
            raise GoogleError(400, f"Invalid value at 'options.requested_policy_version' (TYPE_INT32), \"{version}\"")
        return iam_policy.versioned(st.sa_policies.get(email) or {"etag": "ACAB"}, int(version))

    def _h_list_roles(self, req, body):
        roles = sorted(self.predefined_roles.values(), key=lambda r: r["name"])
        if req.args.get("view") != "FULL":
            roles = [{k: v for k, v in r.items() if k != "includedPermissions"} for r in roles]
        return _page(req, "roles", roles, default_size=300, max_size=1000)

    def _h_get_role(self, req, body, r):
        role = self.predefined_roles.get(f"roles/{r}")
        if role is None:
            raise GoogleError(404, f"The role named roles/{r} was not found.")
        return role

    def _h_list_custom_roles(self, req, body, p):
        st = self._project(p)
        return _page(req, "roles", list(st.custom_roles.values()) if st else [], default_size=300, max_size=1000)

    def _h_get_custom_role(self, req, body, p, r):
        st = self._project(p)
        role = st and st.custom_roles.get(f"projects/{st.project_id}/roles/{r}")
        if not role:
            raise GoogleError(404, f"The role named projects/{p}/roles/{r} was not found.")
        return role

    def _h_get_org_role(self, req, body, o, r):
        role = self.org_roles.get(f"organizations/{o}/roles/{r}")
        if not role:
            raise GoogleError(404, f"The role named organizations/{o}/roles/{r} was not found.")
        return role

    def _role_permissions(self, role: str) -> set | None:
        found = self.predefined_roles.get(role) or self.org_roles.get(role) or next(
            (s.custom_roles[role] for s in self.projects.values() if role in s.custom_roles), None)
        return iam_policy.role_grants(found)

    def _h_list_log_entries(self, req, body):
        for name in body.get("resourceNames") or []:
            if name.startswith("projects/") and self._project(name.split("/")[1]) is None:
                raise permission_denied("logging.logEntries.list", name)
        try:
            return fake_logging.list_entries(self.log_entries, body)
        except ValueError as err:  # FilterError included
            raise GoogleError(400, str(err), "INVALID_ARGUMENT") from None

    def _h_troubleshoot_v3(self, req, body):
        if not self.troubleshooter_enabled:
            raise GoogleError(403, "The caller does not have permission")
        tup = body.get("accessTuple") or {}
        missing = [f for f in ("principal", "fullResourceName", "permission") if not tup.get(f)]
        if missing:
            raise GoogleError(400, f"Request contains an invalid argument: access_tuple.{missing[0]} is required.")
        m = re.search(r"/projects/([^/]+)", tup["fullResourceName"])
        st = self._project(m[1]) if m else None
        resource = f"//cloudresourcemanager.googleapis.com/projects/{st.project_id}" if st else ""
        return iam_policy.troubleshoot_v3(tup, self._policy(st) if st else None, st.deny_policies if st else [],
                                          resource, self._role_permissions, self.troubleshooter_reads_deny)

    # ---- IAM access evaluation (testIamPermissions) ---------------------------------------
    def _access(self, st: ProjectState, principal: str, permission: str) -> tuple[str, list]:
        """(access, bindingExplanations) of the project policy for one principal and permission.

        `principal` is a member (`user:EMAIL`) or, as the real v1 AccessTuple carries it, a bare email,
        which matches `user:` and `serviceAccount:` members."""
        forms = [principal] if ":" in principal else [f"user:{principal}", f"serviceAccount:{principal}"]
        explanations = []
        for b in self._policy(st).get("bindings", []):
            perms = self._role_permissions(b["role"])
            has_perm = perms is not None and permission in perms
            found = next((f for f in forms if f in b.get("members", [])), None)
            member = found is not None
            access = "NOT_GRANTED"
            if has_perm and member:
                access = "UNKNOWN_CONDITIONAL" if "condition" in b else "GRANTED"
            exp = {"access": access, "role": b["role"],
                   "rolePermission": ("ROLE_PERMISSION_UNKNOWN_INFO_DENIED" if perms is None else
                                      "ROLE_PERMISSION_INCLUDED" if has_perm else "ROLE_PERMISSION_NOT_INCLUDED"),
                   "rolePermissionRelevance": "HIGH" if has_perm else "NORMAL",
                   "memberships": {found or forms[0]: {
                       "membership": "MEMBERSHIP_INCLUDED" if member else "MEMBERSHIP_NOT_INCLUDED",
                       "relevance": "HIGH" if member else "NORMAL"}},
                   "relevance": "HIGH" if has_perm or member else "NORMAL"}
            if "condition" in b:
                exp["condition"] = b["condition"]
            explanations.append(exp)
        accesses = {e["access"] for e in explanations}
        access = next((a for a in ("GRANTED", "UNKNOWN_CONDITIONAL") if a in accesses), "NOT_GRANTED")
        return access, explanations



def new_ca_pem(name: str) -> str:
    """A fresh self-signed cluster CA certificate (PEM), valid from now for five years."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}-{uuid.uuid4()}")])
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=5 * 365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _ca_bundle_pem(b64: str) -> str:
    """The PEM text of a base64 masterAuth.clusterCaCertificate, or '' when it holds no certificate."""
    try:
        text = base64.b64decode(b64 or "", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return ""
    return text if "BEGIN CERTIFICATE" in text else ""


def _json(code: int, payload) -> Response:
    return Response(json.dumps(payload, indent=2), status=code, content_type="application/json; charset=UTF-8")


def _envelope(key: str, items: list) -> dict:
    return {key: items} if items else {}  # Google omits empty repeated fields


def _page(req: Request, key: str, items: list, default_size: int, max_size: int) -> dict:
    """Offset paging with pageSize/pageToken, Google-style (nextPageToken only when more remain)."""
    size = min(int(req.args.get("pageSize") or default_size), max_size)
    start = int(req.args.get("pageToken") or 0)
    out = _envelope(key, items[start:start + size])
    if start + size < len(items):
        out["nextPageToken"] = str(start + size)
    return out


def _op_cluster(op: dict) -> tuple | None:
    m = re.search(r"/(?:zones|locations)/([^/]+)/clusters/([^/]+)", op.get("targetLink", ""))
    return (m[1], m[2]) if m else None


def _service_disabled(st: ProjectState, service: str, title: str) -> GoogleError:
    n = st.number
    return GoogleError(403, f"{title} has not been used in project {n} before or it is disabled. Enable it by "
                            f"visiting https://console.developers.google.com/apis/api/{service}/overview?project={n} "
                            "then retry. If you enabled this API recently, wait a few minutes for the action to "
                            "propagate to our systems and retry.",
                       details=[error_info("SERVICE_DISABLED", "googleapis.com", service=service,
                                           consumer=f"projects/{n}")])
