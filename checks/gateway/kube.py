"""The diagnosed cluster's Kubernetes API: reads as the API server's JSON, each through its declaration.

Objects come back as the API server sends them (camelCase, verbatim), which checks quote as evidence.
Lists are paginated (`limit`/`continue`) and capped (`Items.truncated` says when the cap cut a list);
every request has a timeout; redirects are never followed (a redirect is a finding, not a request to
make).
"""
from __future__ import annotations

import base64
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

from kubernetes import client as k8s_client

from checks.gateway.core import GatewayCore
from checks.gateway.endpoints import Endpoint, choose as choose_endpoint, unreachable_hint
from checks.gateway.errors import ApiError
from checks.gateway.permissions import KubeCall, KubePathCall, kube, kube_path
from checks.i18n import _
from checks.model import ClusterRef

K8S_TIMEOUT = (5, 30)  # seconds to connect, to read: a private endpoint must not hang a job
PAGE = 500  # items per list request
LIST_CAP = 5000  # items a list reads at most (more: Items.truncated)
PROXY_BYTES = 4096  # of a proxied answer, at most
PROXY_SECONDS = 5.0  # a proxied answer must be complete within this

# ---- declarations -----------------------------------------------------------------------------
CORE, NET, RBAC = "", "networking.k8s.io", "rbac.authorization.k8s.io"
PODS_LIST = kube("pods.list", "list", CORE, "v1", "pods", True, "the pods of a service account, kube-system, a backend")
PODS_PROXY = kube("pods.proxy", "get", CORE, "v1", "pods/proxy", True,
                  "ask a serving pod what the load balancer's health check gets")
NODES_LIST = kube("nodes.list", "list", CORE, "v1", "nodes", False, "node pools' metadata mode (Workload Identity)")
SERVICEACCOUNTS_GET = kube("serviceaccounts.get", "get", CORE, "v1", "serviceaccounts", True,
                           "a Kubernetes service account's Workload Identity annotation")
SERVICEACCOUNTS_LIST = kube("serviceaccounts.list", "list", CORE, "v1", "serviceaccounts", True,
                            "count Kubernetes service accounts (Workload Identity limit)")
NAMESPACES_GET = kube("namespaces.get", "get", CORE, "v1", "namespaces", False,
                      "kube-system's labels, which NetworkPolicy namespaceSelectors match (DNS egress)")
SERVICES_GET = kube("services.get", "get", CORE, "v1", "services", True, "an Ingress backend's Service")
SERVICES_LIST = kube("services.list", "list", CORE, "v1", "services", True,
                     "the Services an Ingress may name, read with the Ingresses (one round trip)")
EVENTS_LIST = kube("events.list", "list", CORE, "v1", "events", True, "the Ingress controller's events")
INGRESSES_GET = kube("ingresses.get", "get", NET, "v1", "ingresses", True, "the Ingress asked about")
INGRESSES_LIST = kube("ingresses.list", "list", NET, "v1", "ingresses", True, "every Ingress of the cluster")
NETWORKPOLICIES_LIST = kube("networkpolicies.list", "list", NET, "v1", "networkpolicies", True,
                            "network policies that may block the metadata server")
CLUSTERROLEBINDINGS_LIST = kube("clusterrolebindings.list", "list", RBAC, "v1", "clusterrolebindings", False,
                                "bindings that name the principal")
ROLEBINDINGS_LIST = kube("rolebindings.list", "list", RBAC, "v1", "rolebindings", True,
                         "bindings that name the principal")
BACKENDCONFIGS_GET = kube("backendconfigs.get", "get", "cloud.google.com", "v1", "backendconfigs", True,
                          "an Ingress backend's BackendConfig (health check settings)")
# Discovery: which resources the cluster serves, in which API group (resolve `roles` to rbac.authorization.k8s.io).
DISCOVERY_CORE = kube_path("discovery /api", "get", "/api", "the core group's resources (aggregated discovery)")
DISCOVERY_GROUPS = kube_path("discovery /apis", "get", "/apis", "the named API groups' resources (aggregated discovery)")
DISCOVERY_GROUP_VERSION = kube_path("discovery /apis/GROUP/VERSION", "get", "/apis/*",
                                    "one group version's resources, where the server has no aggregated discovery")
DISCOVERY_CORE_VERSION = kube_path("discovery /api/v1", "get", "/api/*",
                                   "the core group's resources, where the server has no aggregated discovery")
AGGREGATED_DISCOVERY = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
SUBJECTACCESSREVIEWS_CREATE = kube("subjectaccessreviews.create", "create", "authorization.k8s.io", "v1",
                                   "subjectaccessreviews", False, "ask the API server whether RBAC allows a request")


class Items(list):
    """A Kubernetes list's items; `truncated` when the cap cut it (`cap` items were read)."""

    truncated: bool = False
    cap: int = 0


@dataclass
class ProxyAnswer:
    status: int
    headers: dict
    body: str  # at most PROXY_BYTES, decoded leniently
    complete: bool  # False: the answer was cut (size) or did not finish in time


class TimedApiClient(k8s_client.ApiClient):
    """A kubernetes ApiClient whose every request has a timeout unless the caller gave one (the
    generated APIs pass None, which urllib3 takes as "wait forever")."""

    def call_api(self, *args, **kwargs):
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = K8S_TIMEOUT
        return super().call_api(*args, **kwargs)


def _path(decl: KubeCall, namespace: str = "", name: str = "") -> str:
    base = "/api/v1" if not decl.group else f"/apis/{decl.group}/{decl.version}"
    q = urllib.parse.quote
    out = base + (f"/namespaces/{q(namespace, safe='')}" if decl.namespaced and namespace else "") + f"/{decl.plural}"
    if name:
        out += f"/{q(name, safe='')}"
    if decl.subresource:
        out += f"/{decl.subresource}"
    return out


class KubeMixin(GatewayCore):
    def endpoint(self, ref: ClusterRef) -> Endpoint:
        """The control-plane endpoint the bot uses for this cluster (see checks.gateway.endpoints)."""
        return self.memo(("endpoint", ref.path), lambda: choose_endpoint(self.cluster(ref), ref, self.endpoint_mode))

    def kube(self, ref: ClusterRef):
        """A kubernetes ApiClient for the cluster: the chosen endpoint, verified as gcloud's kubeconfig does
        (IP endpoints: the cluster CA, in memory; the DNS endpoint: the system's roots), ADC token."""
        import urllib3

        def build():
            cluster = self.cluster(ref)
            ep = self.endpoint(ref)
            cfg = k8s_client.Configuration()
            cfg.host = f"https://{ep.address}"
            if not ep.dns:
                try:
                    ca = base64.b64decode(cluster.master_auth.cluster_ca_certificate, validate=True).decode()
                    if "BEGIN CERTIFICATE" not in ca:
                        raise ValueError("not PEM")
                except (ValueError, UnicodeDecodeError):
                    raise ApiError("kubernetes", "connect", 502, "BAD_CA",
                                   _("the cluster's masterAuth.clusterCaCertificate is not a PEM certificate, so "
                                     "the bot cannot verify the API server at {endpoint}").format(
                                       endpoint=ep.describe())) from None
                cfg.ca_cert_data = ca
            # DNS endpoint: no CA given, so urllib3 loads the default trust store (OpenSSL honours
            # SSL_CERT_FILE / SSL_CERT_DIR), as kubectl does with gcloud's DNS kubeconfig.
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

    def _unreachable(self, ref: ClusterRef, label: str, exc: Exception, permission: str) -> ApiError:
        """The ERROR for an API server the bot could not reach or verify: the endpoint tried, why it was
        chosen, and what to change."""
        import ssl

        import urllib3

        reason = getattr(exc, "reason", None)
        tls = isinstance(exc, (ssl.SSLError, urllib3.exceptions.SSLError)) or isinstance(
            reason, (ssl.SSLError, urllib3.exceptions.SSLError)) or "CERTIFICATE_VERIFY_FAILED" in str(exc)
        cluster, ep = self.cluster(ref), self.endpoint(ref)
        if tls:
            message = _("the TLS certificate of the cluster's API server at {endpoint} could not be verified with "
                        "{verification} ({error}).").format(endpoint=ep.describe(), verification=ep.verification,
                                                            error=type(reason or exc).__name__)
        else:
            message = _("the cluster's API server could not be reached at {endpoint} ({error}).").format(
                endpoint=ep.describe(), error=type(reason or exc).__name__)
        return ApiError("kubernetes", label, 503, "TLS_VERIFY_FAILED" if tls else "UNREACHABLE", message,
                        permission, hint=unreachable_hint(cluster, ref, ep, tls))

    def k8s(self, ref: ClusterRef, decl: KubeCall, label: str, fn: Callable[[Any], Any], namespace: str = "") -> Any:
        """Run fn(api_client) once per job (memoised by `label`), mapping Kubernetes errors to ApiError.

        `label` names the request for people ("pods.list kube-system"); the declaration `decl` says what
        RBAC the bot needs for it ("list pods in kube-system").
        """
        import urllib3
        from kubernetes.client.exceptions import ApiException

        if not isinstance(decl, (KubeCall, KubePathCall)):
            raise TypeError("every Kubernetes call must name its declaration (checks.gateway.permissions)")
        permission = decl.permission(namespace)

        def go():
            self.guard("kubernetes", label, ref.path)
            self.calls.append(f"k8s {label}")
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
                raise ApiError("kubernetes", label, exc.status or 500, exc.reason or "Error", message, permission,
                               headers=dict(exc.headers or {}), body=body[:2000])
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise self._unreachable(ref, label, exc, permission) from exc
        return self.memo(("k8s", ref.path, label), go)

    @staticmethod
    def _send(api, path: str, query: list[tuple[str, Any]] | None = None, method: str = "GET", body: Any = None,
              timeout=None, accept: str = "application/json"):
        """One request with the client's own serialisation and auth; the response is not read yet."""
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = "application/json"
        m, url, hdrs, data, post = api.param_serialize(method=method, resource_path=path, query_params=query or [],
                                                      header_params=headers, body=body,
                                                      auth_settings=["BearerToken"])
        return api.call_api(m, url, header_params=hdrs, body=data, post_params=post, _request_timeout=timeout)

    @classmethod
    def _json(cls, api, path: str, query: list[tuple[str, Any]] | None = None, method: str = "GET",
              body: Any = None) -> dict:
        """The answer as JSON; a non-2xx answer raises the client's ApiException (with body and headers)."""
        from kubernetes.client.exceptions import ApiException

        resp = cls._send(api, path, query, method, body)
        data = resp.read()
        if not 200 <= resp.status <= 299:
            raise ApiException(http_resp=resp.response)
        return json.loads(data)

    def discovery(self, ref: ClusterRef) -> list[dict]:
        """Every resource the API server serves, as aggregated discovery (apidiscovery.k8s.io/v2) entries with
        `group` and `version` added: {"group", "version", "resource", "singularResource", "scope", "shortNames",
        "verbs", "subresources"}. Preferred versions first. Servers without aggregated discovery answer with
        the legacy lists, read group version by group version (one more round trip)."""
        from kubernetes.client.exceptions import ApiException

        def fetch(decl: KubePathCall, path: str) -> tuple[str, dict]:
            def go(api):
                resp = self._send(api, path, accept=f"{AGGREGATED_DISCOVERY},application/json")
                data = resp.read()
                if not 200 <= resp.status <= 299:
                    raise ApiException(http_resp=resp.response)
                return (resp.getheader("Content-Type") or ""), json.loads(data)
            return self.k8s(ref, decl, f"{decl.name}", go)

        def legacy(decl: KubePathCall, path: str, group: str, version: str) -> list[dict]:
            _type, doc = self.k8s(ref, decl, f"discovery {path}", lambda api: ("", self._json(api, path)))
            out, subs = [], {}
            for r in doc.get("resources") or []:
                base, _sep, sub = r["name"].partition("/")
                if sub:
                    subs.setdefault(base, []).append({"subresource": sub, "verbs": r.get("verbs") or []})
                else:
                    out.append({"group": group, "version": version, "resource": base,
                                "singularResource": r.get("singularName") or "", "kind": r.get("kind", ""),
                                "scope": "Namespaced" if r.get("namespaced") else "Cluster",
                                "shortNames": r.get("shortNames") or [], "verbs": r.get("verbs") or []})
            for r in out:
                r["subresources"] = subs.get(r["resource"], [])
            return out

        def build() -> list[dict]:
            (ctype_core, core), (ctype_groups, groups) = self.parallel(
                lambda: fetch(DISCOVERY_CORE, "/api"), lambda: fetch(DISCOVERY_GROUPS, "/apis"))
            if "as=APIGroupDiscoveryList" in ctype_core and "as=APIGroupDiscoveryList" in ctype_groups:
                out = []
                for item in (core.get("items") or []) + (groups.get("items") or []):
                    group = (item.get("metadata") or {}).get("name", "")
                    for v in item.get("versions") or []:  # in preference order
                        for r in v.get("resources") or []:
                            out.append({**r, "group": group, "version": v.get("version", ""),
                                        "kind": (r.get("responseKind") or {}).get("kind", "")})
                return out
            lists = [lambda: legacy(DISCOVERY_CORE_VERSION, "/api/v1", "", "v1")]
            for g in groups.get("groups") or []:
                pv = (g.get("preferredVersion") or {}).get("version") or (g.get("versions") or [{}])[0].get("version")
                lists.append(lambda g=g, pv=pv: legacy(DISCOVERY_GROUP_VERSION, f"/apis/{g['name']}/{pv}", g["name"], pv))
            return [r for part in self.parallel(*lists) for r in part]
        return self.memo(("discovery", ref.path), build)

    def kube_get(self, ref: ClusterRef, decl: KubeCall, name: str, namespace: str = "",
                 missing_ok: bool = True) -> dict | None:
        """One object as JSON; None when it does not exist (missing_ok)."""
        from kubernetes.client.exceptions import ApiException

        def go(api):
            try:
                return self._json(api, _path(decl, namespace, name))
            except ApiException as exc:
                if missing_ok and exc.status == 404:
                    return None
                raise
        where = f"{namespace}/{name}" if namespace else name
        return self.k8s(ref, decl, f"{decl.name} {where}", go, namespace)

    def kube_list(self, ref: ClusterRef, decl: KubeCall, namespace: str = "", *, label_selector: str = "",
                  field_selector: str = "", cap: int | None = None) -> Items:
        """Every item (up to `cap`) in a namespace, or in all namespaces when none is given, page by page."""
        cap = LIST_CAP if cap is None else cap
        sel = " ".join(filter(None, [f"-l {label_selector}" if label_selector else "",
                                     f"--field-selector {field_selector}" if field_selector else ""]))
        label = f"{decl.name} {namespace or '(all namespaces)' if decl.namespaced else ''} {sel}".strip()

        def go(api):
            out, token = Items(), None
            while True:
                query: list[tuple[str, Any]] = [("limit", min(PAGE, cap - len(out)) or 1)]
                if label_selector:
                    query.append(("labelSelector", label_selector))
                if field_selector:
                    query.append(("fieldSelector", field_selector))
                if token:
                    query.append(("continue", token))
                page = self._json(api, _path(decl, namespace), query)
                out.extend(page.get("items") or [])
                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    return out
                if len(out) >= cap:
                    out.truncated, out.cap = True, cap
                    with self._lock:
                        self.truncated.append((" ".join(label.split()), cap))
                    return out
        return self.k8s(ref, decl, " ".join(label.split()), go, namespace)

    def kube_count(self, ref: ClusterRef, decl: KubeCall, namespace: str = "") -> int:
        """How many objects there are, counted page by page without keeping them."""
        def go(api):
            total, token = 0, None
            while True:
                query: list[tuple[str, Any]] = [("limit", PAGE)] + ([("continue", token)] if token else [])
                page = self._json(api, _path(decl, namespace), query)
                total += len(page.get("items") or [])
                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    return total
        return self.k8s(ref, decl, f"{decl.name} {namespace or '(all namespaces)'} (count)", go, namespace)

    def pod_proxy(self, ref: ClusterRef, namespace: str, target: str, path: str) -> ProxyAnswer:
        """GET `path` on a pod (`POD:PORT` or `https:POD:PORT`) through the API server's pod proxy.

        The answer is read up to PROXY_BYTES within PROXY_SECONDS in all (a pod that trickles its answer
        cannot hold the job); redirects are returned, never followed. Errors of the API server itself
        (and the pod's non-2xx answers, which the client raises) are ApiErrors with headers and body.
        """
        decl = PODS_PROXY
        url = _path(decl, namespace, target) + "/" + path.lstrip("/")

        def go(api):
            import urllib3
            from kubernetes.client.exceptions import ApiException

            started = time.monotonic()
            resp = self._send(api, url, timeout=(K8S_TIMEOUT[0], PROXY_SECONDS)).response  # urllib3, unread
            chunks, size, complete = [], 0, True
            try:
                while size < PROXY_BYTES:
                    if time.monotonic() - started > PROXY_SECONDS:
                        complete = False
                        break
                    try:
                        piece = resp.read1(min(1024, PROXY_BYTES - size))  # what has come, not "wait for 1024"
                    except urllib3.exceptions.ReadTimeoutError:
                        complete = False
                        break
                    if not piece:
                        break
                    chunks.append(piece)
                    size += len(piece)
                else:
                    complete = False  # more than PROXY_BYTES: not read
            finally:
                if complete:
                    resp.release_conn()
                else:
                    resp.close()  # never hand back a connection with an answer still coming
            text = b"".join(chunks).decode("utf-8", "replace")
            if not 200 <= resp.status <= 299:  # the pod's answer, or the API server's own Status
                exc = ApiException(status=resp.status, reason=resp.reason, body=text)
                exc.headers = resp.headers
                raise exc
            return ProxyAnswer(resp.status, dict(resp.headers or {}), text, complete)
        return self.k8s(ref, decl, f"pods.proxy {namespace}/{target}{path}", go, namespace)

    def subject_access_review(self, ref: ClusterRef, *, user: str, verb: str, resource: str, namespace: str = "",
                              group: str = "", subresource: str = "", name: str = "",
                              groups: tuple[str, ...] = ()) -> dict:
        """SubjectAccessReview status for `user`: {"allowed": bool, "denied"?: bool, "reason"?: str}."""
        attrs = {"verb": verb, "resource": resource, "group": group, "namespace": namespace or None,
                 "subresource": subresource or None, "name": name or None}
        spec = {"user": user or None, "groups": list(groups) or None,
                "resourceAttributes": {k: v for k, v in attrs.items() if v is not None}}
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {k: v for k, v in spec.items() if v is not None}}
        where = f" in {namespace}" if namespace else " cluster-wide"
        who = user + (f" groups={','.join(groups)}" if groups else "")
        label = f"subjectaccessreviews.create {who} {verb} {group + '/' if group else ''}{resource}{where}"

        def go(api):
            out = self._json(api, _path(SUBJECTACCESSREVIEWS_CREATE), method="POST", body=body)
            status = out.get("status") or {}
            return {"allowed": bool(status.get("allowed")), "denied": bool(status.get("denied")),
                    "reason": status.get("reason") or "", "evaluationError": status.get("evaluationError") or ""}
        return self.k8s(ref, SUBJECTACCESSREVIEWS_CREATE, label, go)
