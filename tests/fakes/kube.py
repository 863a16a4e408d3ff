"""A fake Kubernetes API server over HTTPS on 127.0.0.1, for the real ``kubernetes`` client.

Objects are plain dicts; the fake serves lists/gets with real shapes (Status errors, List kinds,
selectors, pagination), SubjectAccessReviews and SelfSubjectAccessReviews evaluated with real RBAC rules
(bootstrap policy included), every request authorized for its caller (impersonation headers too), legacy
and aggregated discovery, and a pod proxy. See kube_api for identities, impersonation and discovery.

The pod proxy (`/api/v1/namespaces/NS/pods/[SCHEME:]POD[:PORT]/proxy/PATH?QUERY`) behaves as
kube-apiserver's (k8s.io/apimachinery/pkg/util/proxy: UpgradeAwareHandler with its rewriting
Transport): the request reaches the Pod with its path and query string, the caller's Host header and
an `X-Forwarded-Uri` of the proxy path, without the caller's credentials; a failure to connect is a
503 "error trying to reach service: …"; and a `Location` in the Pod's answer is rewritten by
Transport.rewriteURL: a Location on another host, or a relative path that does not start with `/`, is
passed on unchanged; one on the Pod's own address (IP:PORT) or a host-relative path (`/login`) loses
its scheme and host and gets the proxy path prefixed (`/api/v1/namespaces/NS/pods/POD:PORT/proxy/login`);
one on the API server's host (the Host header the Pod received) keeps scheme and host and gets the
proxy path prefixed. (On a real server the incoming request URL has no scheme and host, so the
Transport's own Scheme and Host are empty, which is what drops them.)
"""
from __future__ import annotations

import base64
import copy
import datetime
import ipaddress
import itertools
import json
import posixpath
import re
import ssl
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from werkzeug.wrappers import Request, Response

from . import kube_api
from .base import Call, ServerThread

# (groupVersion, kind, namespaced) known up front; kinds added with fake.add() register themselves.
RESOURCES = [
    ("v1", "Namespace", False), ("v1", "Node", False), ("v1", "PersistentVolume", False),
    ("v1", "Pod", True), ("v1", "Service", True), ("v1", "ServiceAccount", True), ("v1", "Event", True),
    ("v1", "Endpoints", True), ("v1", "ConfigMap", True), ("v1", "Secret", True),
    ("v1", "PersistentVolumeClaim", True),
    ("apps/v1", "Deployment", True), ("apps/v1", "ReplicaSet", True), ("apps/v1", "StatefulSet", True),
    ("apps/v1", "DaemonSet", True),
    ("networking.k8s.io/v1", "Ingress", True), ("networking.k8s.io/v1", "NetworkPolicy", True),
    ("networking.k8s.io/v1", "IngressClass", False), ("discovery.k8s.io/v1", "EndpointSlice", True),
    ("rbac.authorization.k8s.io/v1", "Role", True), ("rbac.authorization.k8s.io/v1", "RoleBinding", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", False),
    ("authorization.k8s.io/v1", "SubjectAccessReview", False),
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview", True),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview", False), ("events.k8s.io/v1", "Event", True),
    ("cloud.google.com/v1", "BackendConfig", True), ("networking.gke.io/v1beta1", "FrontendConfig", True),
    ("networking.gke.io/v1", "ManagedCertificate", True),
]
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           409: "Conflict", 410: "Expired", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}
ANONYMOUS_PATHS = {"/version", "/healthz", "/livez", "/readyz"}  # GKE's system:public-info-viewer
SAR_GROUP = "authorization.k8s.io"


def plural(kind: str) -> str:
    k = kind.lower()
    if k == "endpoints":
        return k
    if k.endswith("y") and k[-2:-1] not in "aeiou":
        return k[:-1] + "ies"
    return k + ("es" if k.endswith(("s", "x", "ch", "sh")) else "s")


def split_gv(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def builtin_group(group: str) -> bool:
    """Typed (non-CRD) groups: their list items carry no kind/apiVersion, as on a real server."""
    return group in ("", "apps", "batch", "policy", "autoscaling") or group.endswith(".k8s.io")


def status(code: int, message: str, details: dict | None = None, reason: str | None = None) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason or REASONS.get(code, "Unknown")}
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def lookup(obj: dict, dotted: str) -> str:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return "" if obj is None else str(obj)


def match_labels(selector: str, labels: dict) -> bool:
    """Equality (=, ==, !=), existence (k, !k) and set-based (in, notin) label selectors."""
    for term in filter(None, (t.strip() for t in re.split(r",(?![^()]*\))", selector))):
        if m := re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", term):
            key, op, values = m.groups()
            ok = (labels.get(key) in {v.strip() for v in values.split(",")}) == (op == "in")
        elif "!=" in term:
            key, value = term.split("!=", 1)
            ok = labels.get(key.strip()) != value.strip()
        elif "=" in term:
            key, value = re.split(r"==?", term, maxsplit=1)
            ok = labels.get(key.strip()) == value.strip()
        else:
            ok = (term[1:] not in labels) if term.startswith("!") else (term in labels)
        if not ok:
            return False
    return True


def match_fields(selector: str, obj: dict) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        key, value = re.split(r"!=|==?", term, maxsplit=1)
        if (lookup(obj, key.strip()) == value.strip()) == negate:
            return False
    return True


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_tls(ca_common_name: str = "fake-kube-ca", ips: tuple = ("127.0.0.1",),
             names: tuple = ("localhost",)) -> tuple[bytes, ssl.SSLContext]:
    """A fresh CA and a server certificate for `ips` and `names` signed by it: (ca_pem, server context)."""
    def build(subject, issuer, key, signing_key, extensions):
        start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(start)
                   .not_valid_after(start + datetime.timedelta(days=2)))
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical=critical)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_common_name)])
    ca = build(ca_name, ca_name, ca_key, ca_key, [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
        (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)])
    cert = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]), ca_name, key, ca_key, [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.KeyUsage(True, False, True, False, False, False, False, False, False), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
                                     + [x509.DNSName(n) for n in names]), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False)])
    pem = serialization.Encoding.PEM
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:  # ssl only loads key material from files
        cert_file, key_file = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        cert_file.write_bytes(cert.public_bytes(pem))
        key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        context.load_cert_chain(cert_file, key_file)
    return ca.public_bytes(pem), context


class KubeError(Exception):
    def __init__(self, code: int, message: str, details: dict | None = None, reason: str | None = None):
        super().__init__(message)
        self.body = status(code, message, details, reason)


class FakeKube:
    def __init__(self, token_ok=None):
        self.token_ok = token_ok or bool
        self.aggregated_discovery = True   # False: an API server before aggregated discovery (legacy lists only)
        self.users: dict[str, tuple[str, list]] = {}  # token -> (user name, groups); other tokens: system:masters
        self.sar_handler = None
        self.require_type_meta = True      # reject SARs without apiVersion/kind (see module notes in tests)
        self.proxy_handlers: dict = {}     # (namespace, pod, port) -> fn(path, headers) -> (status, headers, body)
        self.calls: list[Call] = []
        self.latency = 0.0                 # seconds slept before answering each request (benchmarks)
        self.delays: dict[str, float] = {}  # path regex -> seconds slept before answering (a slow API server)
        self._objects: dict[tuple, dict] = {}    # (group, plural, namespace, name) -> object
        self._resources: dict[tuple, dict] = {}  # (group, plural) -> {"kind", "namespaced", "versions"}
        self._failures: list[dict] = []
        self._rv = itertools.count(1000)
        self._lock = threading.RLock()
        for api_version, kind, namespaced in RESOURCES:
            self._register(api_version, kind, namespaced)
        # The IP endpoints present a certificate of the cluster's own CA (masterAuth.clusterCaCertificate).
        self.ca_pem, context = make_tls()
        self.ca_b64 = base64.b64encode(self.ca_pem).decode()
        # The DNS endpoint (a name, here "localhost": the loopback guard lets tests resolve it) presents a
        # certificate of a "public" root instead, as Google's front end does: clients that reach the API
        # server by that name (TLS SNI) verify it with their system trust store (tests: SSL_CERT_FILE =
        # public_ca_file), never with the cluster CA.
        self.dns_host = "localhost"
        self.public_ca_pem, public_context = make_tls("fake-public-root-ca", ips=(), names=(self.dns_host,))

        def by_name(sock, server_name, _context):
            if server_name == self.dns_host:
                sock.context = public_context
        context.sni_callback = by_name
        self._server = ServerThread(self._app, ssl_context=context)

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self._server.port}"

    @property
    def dns_endpoint(self) -> str:
        """The DNS-based control-plane endpoint (controlPlaneEndpointsConfig.dnsEndpointConfig.endpoint)."""
        return f"{self.dns_host}:{self._server.port}"

    def public_ca_file(self, directory) -> str:
        """Write the public root of the DNS endpoint's certificate to a file (for SSL_CERT_FILE)."""
        path = Path(directory) / "public-roots.pem"
        path.write_bytes(self.public_ca_pem)
        return str(path)

    def start(self) -> "FakeKube":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> "FakeKube":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- objects ----------------------------------------------------------------------------
    def _register(self, api_version: str, kind: str, namespaced: bool) -> dict:
        group, version = split_gv(api_version)
        res = self._resources.setdefault((group, plural(kind)), {"kind": kind, "namespaced": namespaced,
                                                                 "versions": set()})
        res["versions"].add(version)
        return res

    def add(self, obj: dict) -> dict:
        """Store an object (copied); fills uid, resourceVersion, creationTimestamp and, for namespaced
        kinds, namespace "default" and the Namespace object itself when missing."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        group, _ = split_gv(obj["apiVersion"])
        with self._lock:
            res = self._resources.get((group, plural(obj["kind"]))) or \
                self._register(obj["apiVersion"], obj["kind"], "namespace" in meta)
            if res["namespaced"]:
                meta.setdefault("namespace", "default")
                if ("", "namespaces", "", meta["namespace"]) not in self._objects:
                    self.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": meta["namespace"]},
                              "status": {"phase": "Active"}})
            if obj["kind"] == "Namespace":  # set by the apiserver (NamespaceDefaultLabelName), immutable
                meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now())
            meta["resourceVersion"] = str(next(self._rv))
            self._objects[(group, plural(obj["kind"]), meta.get("namespace", ""), meta["name"])] = obj
        return copy.deepcopy(obj)

    def remove(self, kind: str, name: str, namespace: str | None = None) -> None:
        with self._lock:
            keys = [k for k, o in self._objects.items()
                    if o["kind"] == kind and k[3] == name and k[2] == (namespace or "")]
            if not keys:
                raise KeyError(f"{kind} {namespace}/{name} not stored")
            for key in keys:
                del self._objects[key]

    def objects(self, kind: str) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(o) for o in self._objects.values() if o["kind"] == kind]

    # -- failures and calls -----------------------------------------------------------------
    def fail(self, method: str, path_regex: str, status: int, times: int | None = None,
             message: str | None = None) -> None:
        """Answer matching requests (re.search on the path) with a Status of ``status``; times=None: forever."""
        with self._lock:
            self._failures.append({"method": method.upper(), "path": re.compile(path_regex), "code": status,
                                   "times": times, "message": message or f"injected failure ({status})"})

    def reset_calls(self) -> None:
        self.calls.clear()

    def _take_failure(self, method: str, path: str) -> dict | None:
        with self._lock:
            for f in self._failures:
                if f["method"] == method and f["path"].search(path) and f["times"] != 0:
                    if f["times"] is not None:
                        f["times"] -= 1
                    return f
        return None

    # -- HTTP -------------------------------------------------------------------------------
    @Request.application
    def _app(self, request: Request) -> Response:
        body = request.get_data()
        self.calls.append(Call(request.method, request.path, request.query_string.decode(), body,
                               dict(request.headers)))
        if self.latency:
            time.sleep(self.latency)
        for pattern, seconds in list(self.delays.items()):
            if re.search(pattern, request.path):
                time.sleep(seconds)
        try:
            if failure := self._take_failure(request.method, request.path):
                raise KubeError(failure["code"], failure["message"])
            auth = request.headers.get("Authorization", "")
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            if (auth or request.path not in ANONYMOUS_PATHS) and not (token and self.token_ok(token)):
                raise KubeError(401, "Unauthorized")
            request.identity = self._identity(request, token)
            self._authorize_request(request)
            result = self._route(request, body)
        except KubeError as e:
            result = (e.body["code"], e.body)
        if isinstance(result, Response):
            return result
        code, payload = result[:2]
        return Response(json.dumps(payload), status=code,
                        content_type=result[2] if len(result) > 2 else "application/json")

    # -- who asks, as whom, and may they ----------------------------------------------------
    def _identity(self, request: Request, token: str) -> tuple[str, list]:
        """The user the request runs as: the token's, or the impersonated one when the caller may."""
        if not token:
            user, groups = "system:anonymous", kube_api.with_authenticated("system:anonymous", [])
        else:
            user, groups = self.users.get(token) or ("admin", ["system:masters"])
            groups = kube_api.with_authenticated(user, groups)
        as_user = request.headers.get("Impersonate-User", "")
        # repeated headers reach WSGI joined by ", " (client-go sends one Impersonate-Group per group)
        as_groups = [g.strip() for h in request.headers.getlist("Impersonate-Group") for g in h.split(",") if g.strip()]
        if as_groups and not as_user:
            raise KubeError(500, f"Internal error occurred: requested [{', '.join(as_groups)}] without "
                                 "impersonating a user")
        if not as_user:
            return user, groups
        for resource, name in [("users", as_user)] + [("groups", g) for g in as_groups]:
            spec = {"user": user, "groups": groups, "resourceAttributes": {
                "verb": "impersonate", "group": "", "resource": resource, "name": name}}
            if not self.authorize(spec)["allowed"]:
                message, details = kube_api.forbidden_message(user, spec)
                raise KubeError(403, message, details)
        if not as_groups and (m := re.fullmatch(r"system:serviceaccount:([^:]+):[^:]+", as_user)):
            as_groups = ["system:serviceaccounts", f"system:serviceaccounts:{m[1]}"]
        return as_user, kube_api.with_authenticated(as_user, as_groups)

    def _authorize_request(self, request: Request) -> None:
        user, groups = request.identity
        spec = {"user": user, "groups": groups,
                **kube_api.request_attributes(request.method, request.path, request.args)}
        if user == "system:anonymous" and request.path in ANONYMOUS_PATHS:
            return  # GKE's system:public-info-viewer
        if not self.authorize(spec)["allowed"]:
            message, details = kube_api.forbidden_message(user, spec)
            raise KubeError(403, message, details if details else None)

    def _route(self, request: Request, body: bytes):
        path = request.path.rstrip("/") or "/"
        if path == "/version":
            return 200, {"major": "1", "minor": "30", "gitVersion": "v1.30.5-gke.1014001",
                         "gitCommit": "4b3b1d2c9e6f0a7d8e5c3b2a1f0e9d8c7b6a5f4e", "gitTreeState": "clean",
                         "buildDate": "2024-09-18T09:17:41Z", "goVersion": "go1.22.6 X:boringcrypto",
                         "compiler": "gc", "platform": "linux/amd64"}
        if path in ("/healthz", "/livez", "/readyz"):
            return Response("ok", content_type="text/plain")
        if path in ("/api", "/apis") and self.aggregated_discovery and \
                kube_api.wants_aggregated(request.headers.get("Accept", "")):
            with self._lock:
                doc = kube_api.aggregated(self._resources, legacy=path == "/api")
            return 200, doc, kube_api.AGGREGATED
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": self.endpoint}]}
        if path == "/apis":
            return 200, self._group_list()
        m = re.fullmatch(r"/api/(v1)(/.*)?|/apis/([^/]+)/([^/]+)(/.*)?", path)
        if not m:
            raise KubeError(404, "the server could not find the requested resource", {})
        group, version = (m[3], m[4]) if m[3] else ("", m[1])
        segs = [s for s in (m[2] or m[5] or "").split("/") if s]
        if not segs:
            return 200, self._resource_list(group, version)
        namespace = None
        if segs[0] == "namespaces" and len(segs) >= 3:
            namespace, segs = segs[1], segs[2:]
        res = self._resources.get((group, segs[0]))
        if res is None or version not in res["versions"] or (namespace and not res["namespaced"]):
            raise KubeError(404, "the server could not find the requested resource", {})
        gv = f"{group}/{version}" if group else version
        if group == SAR_GROUP:
            return self._sar(request.method, gv, res["kind"], namespace, body, request.identity)
        if request.method != "GET":
            raise KubeError(405, "the server does not allow this method on the requested resource", {})
        if len(segs) == 1:
            return 200, self._list(group, gv, segs[0], res, namespace, request.args)
        if len(segs) >= 3 and segs[:1] == ["pods"] and segs[2] == "proxy" and namespace:
            return self._proxy(namespace, segs[1], request)
        if len(segs) > 2:
            raise KubeError(404, "the server could not find the requested resource", {})
        obj = self._objects.get((group, segs[0], namespace or "", segs[1]))
        if obj is None:
            raise KubeError(404, f'{segs[0]} "{segs[1]}" not found',
                            {"name": segs[1], **({"group": group} if group else {}), "kind": segs[0]})
        return 200, copy.deepcopy(obj)

    def _group_list(self) -> dict:
        groups: dict[str, set] = {}
        for (group, _), res in self._resources.items():
            if group:
                groups.setdefault(group, set()).update(res["versions"])
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in sorted(vs)],
             "preferredVersion": {"groupVersion": f"{g}/{max(vs)}", "version": max(vs)}}
            for g, vs in sorted(groups.items())]}

    def _resource_list(self, group: str, version: str) -> dict:
        resources = [entry for (g, p), res in sorted(self._resources.items())
                     if g == group and version in res["versions"]
                     for entry in kube_api.resource_entry(g, p, res, aggregated=False)]
        if not resources:
            raise KubeError(404, "the server could not find the requested resource", {})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": resources}

    def _list(self, group: str, gv: str, res_plural: str, res: dict, namespace: str | None, args) -> dict:
        with self._lock:
            items = [o for k, o in sorted(self._objects.items())
                     if k[:2] == (group, res_plural) and namespace in (None, k[2])]
            rv = str(next(self._rv))
        if args.get("labelSelector"):
            items = [o for o in items if match_labels(args["labelSelector"], o["metadata"].get("labels") or {})]
        if args.get("fieldSelector"):
            items = [o for o in items if match_fields(args["fieldSelector"], o)]
        meta = {"resourceVersion": rv}
        start = 0
        if args.get("continue"):
            try:
                start = json.loads(base64.urlsafe_b64decode(args["continue"]))["start"]
            except (ValueError, KeyError, TypeError):
                raise KubeError(400, "continue key is not valid") from None
        limit = int(args.get("limit") or 0)
        end = start + limit if limit else len(items)
        if end < len(items):
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"start": end}).encode()).decode()
            meta["remainingItemCount"] = len(items) - end
        strip = builtin_group(group)
        page = [{k: v for k, v in copy.deepcopy(o).items() if not (strip and k in ("kind", "apiVersion"))}
                for o in items[start:end]]
        return {"kind": res["kind"] + "List", "apiVersion": gv, "metadata": meta, "items": page}

    # -- pod proxy --------------------------------------------------------------------------
    def _proxy(self, namespace: str, target: str, request: Request) -> Response:
        parts = target.split(":")
        if len(parts) == 3:      # scheme:pod:port
            parts = parts[1:]
        pod, port = parts[0], (parts[1] if len(parts) > 1 and parts[1] else None)
        port = int(port) if port and port.isdigit() else port
        handler = self.proxy_handlers.get((namespace, pod, port))
        if handler is None:
            obj = self._objects.get(("", "pods", namespace, pod))
            if obj is None:
                raise KubeError(404, f'pods "{pod}" not found', {"name": pod, "kind": "pods"})
            ip = (obj.get("status") or {}).get("podIP", "10.8.0.5")
            raise KubeError(503, f"error trying to reach service: dial tcp {ip}:{port or 80}: "
                                 f"connect: connection refused")
        m = re.fullmatch(r"(.*?/pods/[^/]+/proxy)(/.*)?", request.path)
        prefix, path = m[1], m[2] or "/"
        if request.query_string:
            path += "?" + request.query_string.decode()
        # The apiserver drops the caller's credentials after authenticating; the pod never sees them.
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        headers["X-Forwarded-Uri"] = prefix + (m[2] or "/")
        headers["X-Forwarded-For"] = request.remote_addr or "127.0.0.1"
        code, out_headers, out_body = handler(path, headers)
        out_headers = dict(out_headers)
        for key in [k for k in out_headers if k.lower() == "location"]:
            obj = self._objects.get(("", "pods", namespace, pod)) or {}
            pod_host = f"{(obj.get('status') or {}).get('podIP', '')}:{port}"
            out_headers[key] = rewrite_location(out_headers[key], pod_host, request.host, prefix)
        return Response(out_body, status=code, headers=out_headers)

    # -- SubjectAccessReview ----------------------------------------------------------------
    def _sar(self, method: str, gv: str, kind: str, namespace: str | None, body: bytes,
             identity: tuple[str, list] = ("", [])):
        if method != "POST":
            raise KubeError(405, "the server does not allow this method on the requested resource", {})
        try:
            review = json.loads(body)
        except ValueError:
            raise KubeError(400, "the object provided is unrecognized (not valid JSON)") from None
        if self.require_type_meta and not (review.get("apiVersion") and review.get("kind")):
            raise KubeError(400, f"Object 'Kind' is missing in '{body.decode()}'")
        if review.get("kind", kind) != kind or review.get("apiVersion", gv) != gv:
            raise KubeError(400, f"the API version in the data ({review.get('apiVersion')}) does not match "
                                 f"the expected API version ({gv})")
        spec = review.get("spec") or {}
        if kind == "SelfSubjectAccessReview":  # the caller (or whom it impersonates) asks about itself
            spec = {**{k: v for k, v in spec.items() if k in ("resourceAttributes", "nonResourceAttributes")},
                    "user": identity[0], "groups": list(identity[1])}
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if namespace is not None and ra is not None:
            ra.setdefault("namespace", namespace)
        invalid = []
        if (ra is None) == (nra is None):
            invalid.append('spec.resourceAttributes: Invalid value: "null": exactly one of '
                           'nonResourceAttributes or resourceAttributes must be specified')
        if not spec.get("user") and not spec.get("groups"):
            invalid.append('spec.user: Invalid value: "": at least one of user or group must be specified')
        if invalid:
            raise KubeError(422, f'{kind}.{SAR_GROUP} "" is invalid: ' + ", ".join(invalid),
                            {"group": SAR_GROUP, "kind": kind})
        result = self.sar_handler(spec) if self.sar_handler else self.authorize(spec)
        return 201, {"kind": kind, "apiVersion": gv, "metadata": {"creationTimestamp": None},
                     "spec": spec, "status": result}

    def authorize(self, spec: dict) -> dict:
        """Kubernetes RBAC: ClusterRoleBindings first, then RoleBindings in the request's namespace."""
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        user, groups = spec.get("user", ""), set(spec.get("groups") or [])
        namespace = (ra or {}).get("namespace", "")
        with self._lock:
            stored = {o["metadata"]["name"] for k, o in self._objects.items() if k[1] == "clusterrolebindings"}
            bindings = [o for k, o in sorted(self._objects.items()) if k[1] == "clusterrolebindings"]
            bindings += [b for b in kube_api.BOOTSTRAP_BINDINGS if b["metadata"]["name"] not in stored]
            if namespace:
                bindings += [o for k, o in sorted(self._objects.items())
                             if k[1] == "rolebindings" and k[2] == namespace]
            for binding in bindings:
                bns = binding["metadata"].get("namespace", "")
                rules = self._role_rules(binding.get("roleRef") or {}, bns)
                for subject in binding.get("subjects") or []:
                    if not subject_matches(subject, user, groups, bns):
                        continue
                    if any(rule_allows(rule, ra, nra, bool(bns)) for rule in rules):
                        return {"allowed": True, "reason": "RBAC: allowed by " + describe(binding, subject)}
        return {"allowed": False}

    def _role_rules(self, role_ref: dict, namespace: str) -> list[dict]:
        kind = role_ref.get("kind")
        key = ("rbac.authorization.k8s.io", plural(kind or ""), namespace if kind == "Role" else "",
               role_ref.get("name"))
        found = self._objects.get(key)
        if found is None and kind == "ClusterRole":
            found = kube_api.BOOTSTRAP_ROLES.get(role_ref.get("name"))
        return (found or {}).get("rules") or []


def rewrite_location(location: str, pod_host: str, request_host: str, prefix: str) -> str:
    """kube-apiserver's Transport.rewriteURL for a proxied Location header (Transport Scheme and Host empty,
    PathPrepend = the proxy path): see the module docstring."""
    u = urllib.parse.urlsplit(location)
    different_host = u.netloc != "" and u.netloc not in (pod_host, request_host)
    if different_host or not u.path.startswith("/"):
        return location
    scheme, netloc = (u.scheme, u.netloc) if u.netloc == request_host else ("", "")
    path = u.path
    if not path.startswith(prefix):
        path = posixpath.normpath(prefix + "/" + path)  # Go's path.Join cleans the result
        if u.path.endswith("/") and not path.endswith("/"):
            path += "/"
    return urllib.parse.urlunsplit((scheme, netloc, path, u.query, u.fragment))


def subject_matches(subject: dict, user: str, groups: set, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        return user == f"system:serviceaccount:{subject.get('namespace') or binding_namespace}:{name}"
    return False


def rule_allows(rule: dict, ra: dict | None, nra: dict | None, namespaced_binding: bool) -> bool:
    def has(field, value):
        return "*" in (rule.get(field) or []) or value in (rule.get(field) or [])

    if ra is not None:
        resource, sub = ra.get("resource", ""), ra.get("subresource", "")
        combined = f"{resource}/{sub}" if sub else resource
        return (has("verbs", ra.get("verb")) and has("apiGroups", ra.get("group", ""))
                and ("*" in rule.get("resources", []) or combined in rule.get("resources", [])
                     or (sub and f"*/{sub}" in rule.get("resources", [])))
                and (not rule.get("resourceNames") or ra.get("name") in rule["resourceNames"]))
    path = nra.get("path", "")
    return not namespaced_binding and has("verbs", nra.get("verb")) and any(
        u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1]))
        for u in rule.get("nonResourceURLs") or [])


def describe(binding: dict, subject: dict) -> str:
    """The apiserver's wording, e.g. ClusterRoleBinding "b" of ClusterRole "r" to User "u"."""
    meta, ref = binding["metadata"], binding["roleRef"]
    name = meta["name"] + (f"/{meta['namespace']}" if binding["kind"] == "RoleBinding" else "")
    who = subject["name"]
    if subject["kind"] == "ServiceAccount":
        who += "/" + (subject.get("namespace") or meta.get("namespace", ""))
    return f'{binding["kind"]} {json.dumps(name)} of {ref["kind"]} {json.dumps(ref["name"])} ' \
           f'to {subject["kind"]} {json.dumps(who)}'


# -- object builders for tests (complete enough for the real client's models) ---------------------
def pod(name: str, namespace: str = "default", *, sa: str = "default", node: str = "", labels: dict | None = None,
        annotations: dict | None = None, containers: list | None = None, init_containers: list | None = None,
        ready: bool = True, container_statuses: list | None = None) -> dict:
    """A Running pod using service account `sa`, scheduled on `node` (Pending when node is '')."""
    spec = {"serviceAccountName": sa, "containers": containers or [{"name": "main", "image": "debian"}]}
    if node:
        spec["nodeName"] = node
    if init_containers:
        spec["initContainers"] = init_containers
    status = {"phase": "Running" if node else "Pending",
              "conditions": [{"type": "Ready", "status": "True" if ready and node else "False"}]}
    if container_statuses is not None:
        status["containerStatuses"] = container_statuses
    meta = {"name": name, "namespace": namespace, "labels": labels or {}}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def node(name: str, pool: str) -> dict:
    """A GKE node of node pool `pool`."""
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"cloud.google.com/gke-nodepool": pool,
                                                  "kubernetes.io/hostname": name}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def service_account(name: str, namespace: str = "default", annotations: dict | None = None) -> dict:
    meta = {"name": name, "namespace": namespace, **({"annotations": annotations} if annotations else {})}
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def network_policy(name: str, namespace: str = "default", *, pod_selector: dict | None = None,
                   egress: list | None = None, policy_types: tuple = ("Egress",)) -> dict:
    """A NetworkPolicy (egress=None: no egress rule, which denies all egress when policy_types has Egress)."""
    spec = {"podSelector": pod_selector or {}, "policyTypes": list(policy_types)}
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}
