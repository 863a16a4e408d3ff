"""FakeKube proven with the real kubernetes client (no mocks).

Findings about kubernetes==37 (pydantic-based client) that these tests pin down:
- Configuration.ca_cert_data takes the CA in memory, but only as *str* PEM: bytes are handed to
  ssl's cadata as DER and fail ("cadata does not contain a certificate").
- A TLS failure surfaces as urllib3 MaxRetryError (not ApiException).
- urllib3 follows a 307 from the pod proxy by default, re-sending the bearer token to the same
  host; Configuration.retries = urllib3.Retry(..., redirect=False) makes the 307 surface as
  ApiException(status=307) with e.headers["Location"].
- V1SubjectAccessReview() without api_version/kind is serialized without them.
"""
import base64

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.fakes.kube import FakeKube

RBAC = "rbac.authorization.k8s.io/v1"


@pytest.fixture
def kube():
    with FakeKube(token_ok=lambda token: token == "good") as fake:
        yield fake


def api_client(kube, token="good", **settings):
    cfg = client.Configuration()
    cfg.host = "https://" + kube.endpoint
    cfg.ca_cert_data = kube.ca_pem.decode()
    if token is not None:
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
    for name, value in settings.items():
        setattr(cfg, name, value)
    return client.ApiClient(cfg)


def core(kube, **kw):
    return client.CoreV1Api(api_client(kube, **kw))


def api_error(call, *args, **kwargs):
    with pytest.raises(ApiException) as info:
        call(*args, **kwargs)
    return info.value


def pod(name, ns="shop", labels=None, node="n1", sa="default"):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"nodeName": node, "serviceAccountName": sa, "containers": [{"name": "app", "image": "nginx"}]},
            "status": {"phase": "Running", "podIP": "10.8.0.7"}}


def test_tls_with_ca_file(kube, tmp_path):
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(kube.ca_pem)
    cfg_client = api_client(kube, ca_cert_data=None, ssl_ca_cert=str(ca_file))
    assert client.VersionApi(cfg_client).get_code().git_version.startswith("v1.")
    assert client.CoreV1Api(cfg_client).list_namespace().items == []
    assert base64.b64decode(kube.ca_b64) == kube.ca_pem


def test_tls_without_our_ca_fails(kube):
    with pytest.raises(urllib3.exceptions.MaxRetryError, match="CERTIFICATE_VERIFY_FAILED"):
        core(kube, ca_cert_data=None, retries=0).list_namespace()
    with pytest.raises(urllib3.exceptions.MaxRetryError, match="cadata does not contain a certificate"):
        core(kube, ca_cert_data=kube.ca_pem, retries=0).list_namespace()  # bytes = DER to ssl


@pytest.mark.parametrize("token", [None, "bad"])
def test_unauthorized(kube, token):
    err = api_error(core(kube, token=token).list_namespace)
    assert err.status == 401
    assert err.body == ('{"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", '
                        '"message": "Unauthorized", "reason": "Unauthorized", "code": 401}')


def test_list_get_and_not_found(kube):
    kube.add(pod("web-1", labels={"app": "web", "tier": "fe"}, node="n1"))
    kube.add(pod("web-2", labels={"app": "web"}, node="n2", sa="web"))
    kube.add(pod("db-1", ns="data", labels={"app": "db"}))
    v1 = core(kube)

    pods = v1.list_namespaced_pod("shop")
    assert pods.kind == "PodList" and pods.metadata.resource_version
    assert [p.metadata.name for p in pods.items] == ["web-1", "web-2"]
    assert pods.items[0].metadata.uid and pods.items[0].kind is None  # list items carry no kind, as on a server
    names = lambda resp: [p.metadata.name for p in resp.items]  # noqa: E731
    assert names(v1.list_namespaced_pod("shop", label_selector="app=web,tier=fe")) == ["web-1"]
    assert names(v1.list_pod_for_all_namespaces(label_selector="app in (db, cache)")) == ["db-1"]
    assert names(v1.list_pod_for_all_namespaces(field_selector="spec.nodeName=n2")) == ["web-2"]
    assert names(v1.list_pod_for_all_namespaces(field_selector="spec.serviceAccountName=web")) == ["web-2"]
    assert [n.metadata.name for n in v1.list_namespace().items] == ["data", "shop"]

    got = v1.read_namespaced_pod("web-1", "shop")
    assert (got.kind, got.api_version, got.status.pod_ip) == ("Pod", "v1", "10.8.0.7")
    err = api_error(v1.read_namespaced_service_account, "missing", "shop")
    assert err.status == 404
    assert err.body == ('{"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", '
                        '"message": "serviceaccounts \\"missing\\" not found", "reason": "NotFound", '
                        '"details": {"name": "missing", "kind": "serviceaccounts"}, "code": 404}')
    kube.remove("Pod", "web-1", "shop")
    assert api_error(v1.read_namespaced_pod, "web-1", "shop").status == 404


def test_pagination_and_events(kube):
    for i in range(5):
        kube.add({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": f"sa-{i}", "namespace": "ns"}})
    kube.add({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "ev1", "namespace": "ns"},
              "involvedObject": {"kind": "Pod", "name": "web-1"}, "reason": "BackOff", "type": "Warning"})
    v1, seen, token = core(kube), [], None
    while True:
        page = v1.list_service_account_for_all_namespaces(limit=2, _continue=token)
        seen += [sa.metadata.name for sa in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert seen == [f"sa-{i}" for i in range(5)]
    events = v1.list_namespaced_event("ns", field_selector="involvedObject.kind=Pod,involvedObject.name=web-1")
    assert [e.reason for e in events.items] == ["BackOff"]


def test_group_apis_and_custom_objects(kube):
    kube.add({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "shop"},
              "spec": {"rules": [{"host": "shop.example.com"}]}})
    kube.add({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "deny", "namespace": "shop"}, "spec": {"podSelector": {}}})
    kube.add({"apiVersion": "cloud.google.com/v1", "kind": "BackendConfig", "metadata": {"name": "bc", "namespace": "shop"},
              "spec": {"healthCheck": {"requestPath": "/healthz"}}})
    net = client.NetworkingV1Api(api_client(kube))
    assert [i.spec.rules[0].host for i in net.list_ingress_for_all_namespaces().items] == ["shop.example.com"]
    assert net.read_namespaced_network_policy("deny", "shop").kind == "NetworkPolicy"
    custom = client.CustomObjectsApi(api_client(kube))
    bc = custom.get_namespaced_custom_object("cloud.google.com", "v1", "shop", "backendconfigs", "bc")
    assert bc["spec"]["healthCheck"]["requestPath"] == "/healthz" and bc["kind"] == "BackendConfig"
    listed = custom.list_namespaced_custom_object("cloud.google.com", "v1", "shop", "backendconfigs")
    assert listed["kind"] == "BackendConfigList" and listed["items"][0]["kind"] == "BackendConfig"
    err = api_error(custom.get_namespaced_custom_object, "cloud.google.com", "v1", "shop", "backendconfigs", "x")
    assert '"group": "cloud.google.com"' in err.body
    groups = {g.name for g in client.ApisApi(api_client(kube)).get_api_versions().groups}
    assert {"apps", "networking.k8s.io", "rbac.authorization.k8s.io", "cloud.google.com"} <= groups


def review(user, verb, resource, ns="shop", groups=None, name=None, **extra):
    attrs = client.V1ResourceAttributes(namespace=ns, verb=verb, resource=resource, name=name, **extra)
    return client.V1SubjectAccessReview(api_version="authorization.k8s.io/v1", kind="SubjectAccessReview",
                                        spec=client.V1SubjectAccessReviewSpec(user=user, groups=groups,
                                                                              resource_attributes=attrs))


def binding(kind, name, role_kind, role, subjects, ns=None):
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}}


def test_subject_access_review_rbac(kube):
    kube.add({"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "pod-reader"},
              "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]})
    kube.add({"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "cm-one", "namespace": "shop"},
              "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"], "resourceNames": ["one"]}]})
    kube.add(binding("ClusterRoleBinding", "alice-read", "ClusterRole", "pod-reader",
                     [{"kind": "User", "name": "alice@example.com", "apiGroup": "rbac.authorization.k8s.io"}]))
    kube.add(binding("RoleBinding", "devs-read", "ClusterRole", "pod-reader",
                     [{"kind": "Group", "name": "devs@example.com", "apiGroup": "rbac.authorization.k8s.io"}], ns="shop"))
    kube.add(binding("RoleBinding", "bot-cm", "Role", "cm-one", [{"kind": "ServiceAccount", "name": "bot"}], ns="shop"))
    authz = client.AuthorizationV1Api(api_client(kube))
    decide = lambda *a, **kw: authz.create_subject_access_review(review(*a, **kw)).status  # noqa: E731

    allowed = decide("alice@example.com", "list", "pods", ns="other")
    assert allowed.allowed and allowed.reason == ('RBAC: allowed by ClusterRoleBinding "alice-read" of '
                                                  'ClusterRole "pod-reader" to User "alice@example.com"')
    assert decide("alice@example.com", "get", "pods", subresource="log").allowed
    assert not decide("alice@example.com", "delete", "pods").allowed
    assert decide("bob@example.com", "get", "pods", groups=["devs@example.com"]).reason == (
        'RBAC: allowed by RoleBinding "devs-read/shop" of ClusterRole "pod-reader" to Group "devs@example.com"')
    assert not decide("bob@example.com", "get", "pods", ns="other", groups=["devs@example.com"]).allowed
    sa = "system:serviceaccount:shop:bot"
    assert decide(sa, "update", "configmaps", name="one").reason.endswith('to ServiceAccount "bot/shop"')
    assert not decide(sa, "update", "configmaps", name="two").allowed

    kube.sar_handler = lambda spec: {"allowed": spec["user"] == "root", "reason": "handler"}
    assert decide("root", "delete", "nodes").reason == "handler"


def test_subject_access_review_requires_type_meta(kube):
    spec = client.V1SubjectAccessReviewSpec(user="u", resource_attributes=client.V1ResourceAttributes(verb="get"))
    err = api_error(client.AuthorizationV1Api(api_client(kube)).create_subject_access_review,
                    client.V1SubjectAccessReview(spec=spec))
    assert err.status == 400 and "'Kind' is missing" in err.body
    assert b'"kind"' not in kube.calls[-1].body  # the client leaves unset api_version/kind out


def test_pod_proxy(kube):
    kube.add(pod("web-1"))
    seen = []
    kube.proxy_handlers[("shop", "web-1", 8080)] = lambda path, headers: (
        seen.append((path, headers)) or (200, {"Content-Type": "text/plain"}, b"ok"))
    kube.proxy_handlers[("shop", "web-1", 9090)] = lambda path, headers: (
        (307, {"Location": "/login"}, b"") if path == "/healthz" else
        seen.append((path, headers)) or (200, {"Content-Type": "text/plain"}, b"login"))
    v1 = core(kube)

    assert v1.connect_get_namespaced_pod_proxy_with_path("web-1:8080", "shop", "healthz") == "ok"
    assert seen[0][0] == "/healthz" and "Authorization" not in seen[0][1]
    assert seen[0][1]["X-Forwarded-Uri"] == "/api/v1/namespaces/shop/pods/web-1:8080/proxy/healthz"

    no_redirects = core(kube, retries=urllib3.Retry(3, redirect=False))
    err = api_error(no_redirects.connect_get_namespaced_pod_proxy_with_path, name="web-1:9090", namespace="shop",
                    path="healthz", _preload_content=False)
    # the API server rewrites a host-relative redirect into its own proxy path
    assert err.status == 307 and err.headers["Location"] == "/api/v1/namespaces/shop/pods/web-1:9090/proxy/login"
    assert len(seen) == 1

    # Default client settings DO follow the redirect (here to a loopback path), token included.
    v1.connect_get_namespaced_pod_proxy_with_path(name="web-1:9090", namespace="shop", path="healthz",
                                                  _preload_content=False)
    assert seen[-1][0] == "/login"
    assert kube.calls[-1].headers["Authorization"] == "Bearer good"

    down = api_error(v1.connect_get_namespaced_pod_proxy_with_path, "web-1:7070", "shop", "metrics")
    assert down.status == 503 and "dial tcp 10.8.0.7:7070: connect: connection refused" in down.body
    assert api_error(v1.connect_get_namespaced_pod_proxy_with_path, "nope:80", "shop", "x").status == 404


@pytest.mark.parametrize("location, expect", [
    # on the Pod's own address: scheme and host dropped, proxy path prefixed (Transport.rewriteURL)
    ("https://10.8.0.7:8080/healthz", "/api/v1/namespaces/shop/pods/web-1:8080/proxy/healthz"),
    ("http://10.8.0.7:8080/a/b?c=d", "/api/v1/namespaces/shop/pods/web-1:8080/proxy/a/b?c=d"),
    # a host-relative path: prefixed; ".." cleaned as Go's path.Join does; a trailing slash kept
    ("/x/../login/", "/api/v1/namespaces/shop/pods/web-1:8080/proxy/login/"),
    # another host, or a relative path without "/": passed on as it is
    ("https://localhost:8080/healthz", "https://localhost:8080/healthz"),
    ("login", "login"),
    # already the proxy path: unchanged
    ("/api/v1/namespaces/shop/pods/web-1:8080/proxy/x", "/api/v1/namespaces/shop/pods/web-1:8080/proxy/x"),
])
def test_pod_proxy_rewrites_redirects_as_the_api_server_does(kube, location, expect):
    kube.add(pod("web-1"))  # podIP 10.8.0.7
    kube.proxy_handlers[("shop", "web-1", 8080)] = lambda path, headers: (302, {"Location": location}, b"")
    no_redirects = core(kube, retries=urllib3.Retry(3, redirect=False))
    err = api_error(no_redirects.connect_get_namespaced_pod_proxy_with_path, name="web-1:8080", namespace="shop",
                    path="healthz", _preload_content=False)
    assert err.status == 302 and err.headers["Location"] == expect


def test_pod_proxy_keeps_the_scheme_of_a_redirect_to_the_api_servers_host(kube):
    kube.add(pod("web-1"))
    # the Pod sees the caller's Host header (the API server's address) and redirects to it, as argocd-server does
    kube.proxy_handlers[("shop", "web-1", 8080)] = lambda path, headers: (
        307, {"Location": f"https://{headers['Host']}{path}"}, b"")
    no_redirects = core(kube, retries=urllib3.Retry(3, redirect=False))
    err = api_error(no_redirects.connect_get_namespaced_pod_proxy_with_path, name="web-1:8080", namespace="shop",
                    path="healthz", _preload_content=False)
    assert err.headers["Location"] == f"https://{kube.endpoint}/api/v1/namespaces/shop/pods/web-1:8080/proxy/healthz"


def test_pod_proxy_passes_the_query_string(kube):
    kube.add(pod("web-1"))
    seen = []
    kube.proxy_handlers[("shop", "web-1", 8080)] = lambda path, headers: (
        seen.append(path) or (200, {"Content-Type": "text/plain"}, b"ok"))
    api = api_client(kube)
    path = "/api/v1/namespaces/shop/pods/web-1:8080/proxy/healthz?full=1&x=a%20b"
    resp = api.call_api(*api.param_serialize("GET", path, header_params={}, auth_settings=["BearerToken"]))
    assert resp.status == 200 and seen == ["/healthz?full=1&x=a%20b"]


def test_fail_injection_and_calls(kube):
    kube.fail("GET", r"/namespaces$", 503, times=1)
    v1 = core(kube)
    assert api_error(v1.list_namespace).status == 503
    assert v1.list_namespace().items == []
    assert [c.path for c in kube.calls] == ["/api/v1/namespaces"] * 2
    kube.reset_calls()
    assert kube.calls == []
