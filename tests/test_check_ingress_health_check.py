import json

from checks.model import Status
from tests.fakes.compute import gke_backend
from tests.helpers import GKE1, one
from tests.test_check_ingress_fixtures import (ARGO_BACKEND, ARGO_IP, ARGO_POD, NODE, REDIRECT, ZONE, argocd,  # noqa
                                               backend_config, check, container, http_probe, live, pod, web)

ID = "ingress/health-check-path"
TEXT = {"Content-Type": "text/plain"}


def proxied(kube) -> list[str]:
    return [c.path for c in kube.calls if "/proxy" in c.path]


def test_the_field_reports_argocd_server_redirect(google, kube, live, settings):
    world = argocd(kube, google)
    f = one(check(ID, settings), Status.FAIL)
    # the health check as the load balancer has it (the controller copied the readinessProbe's /healthz)
    assert f"`HTTP GET /healthz` on port 8080 (from health check `{ARGO_BACKEND}` of the load balancer)" in f.detail
    assert f"answers 307 with `Location: {REDIRECT}`" in f.detail
    assert "the health endpoint redirects (to HTTPS); load-balancer health checks need 200" in f.detail
    assert f.evidence == (f"`GET /api/v1/namespaces/argocd/pods/{ARGO_POD}:8080/proxy/healthz` (redirects not "
                          f"followed) → 307, Location: `{REDIRECT}`")
    # the seed's remedy: --insecure on argocd-server's command, as a Deployment patch and as the ConfigMap setting
    assert "        - argocd-repo-server:8081\n        - --insecure\n" in f.remedy
    assert ("kubectl -n argocd patch deployment argocd-server --type=json -p '[{\"op\": \"add\", \"path\": "
            "\"/spec/template/spec/containers/0/command/-\", \"value\": \"--insecure\"}]'") in f.remedy
    assert ("kubectl -n argocd patch configmap argocd-cmd-params-cm --type=merge -p "
            "'{\"data\": {\"server.insecure\": \"true\"}}'") in f.remedy
    assert "kubectl -n argocd rollout restart deployment argocd-server" in f.remedy
    assert "add `--insecure` to its command (Deployment `argocd/argocd-server`)" in f.remedy
    assert "    type: HTTPS\n    requestPath: /healthz" in f.remedy
    # one request, and the redirect was reported, never followed
    assert world["requests"] == ["/healthz"]
    assert proxied(kube) == [f"/api/v1/namespaces/argocd/pods/{ARGO_POD}:8080/proxy/healthz"]


def test_argocd_with_args_is_patched_in_args(google, kube, live, settings):
    argocd(kube, google)
    kube.add(pod(ARGO_POD, "argocd", {"app.kubernetes.io/name": "argocd-server"}, [
        container("dex", "ghcr.io/dexidp/dex:v2.41.1", ((None, 5556),)),
        container("argocd-server", "quay.io/argoproj/argocd:v2.13.1", ((None, 8080),), http_probe("/healthz", 8080),
                  args=["/usr/local/bin/argocd-server"])], replica_set="argocd-server-7d4f8b9c5d"))
    f = one(check(ID, settings), Status.FAIL)
    assert '"path": "/spec/template/spec/containers/1/args/-"' in f.remedy
    assert "        args:\n        - /usr/local/bin/argocd-server\n        - --insecure" in f.remedy


def test_other_redirects_fail_with_a_backend_config(kube, live, settings):
    web(kube, readiness=http_probe("/status", 8080),
        handler=lambda path: (302, {"Location": "/login?next=/status"}, b""))
    f = one(check(ID, settings), Status.FAIL)
    # the API server rewrote the host-relative redirect into its proxy path; the check says what the Pod sent
    assert ("answers 302 with `Location: /api/v1/namespaces/shop/pods/web-6c9f7d8b4-abcde:8080/proxy/login?"
            "next=/status`, the API server's rewrite of the Pod's redirect to `/login?next=/status`: the health "
            "endpoint redirects; load-balancer") in f.detail
    assert "(to HTTPS)" not in f.detail
    assert "--insecure" not in f.remedy
    assert "    type: HTTP\n    requestPath: /healthz" in f.remedy
    assert "kubectl annotate service web -n shop cloud.google.com/backend-config='{\"default\": \"web-hc\"}'" \
        in f.remedy


def test_backend_config_health_check_is_what_is_requested(kube, live, settings):
    world = web(kube, annotations={"cloud.google.com/backend-config": json.dumps({"ports": {"80": "web-hc"}})},
                readiness=http_probe("/healthz", 8080),
                handler=lambda path: (200, TEXT, b"ok") if path == "/ready" else (404, TEXT, b"not found"))
    kube.add(backend_config("web-hc", "shop", {"requestPath": "/ready", "port": 8080, "type": "HTTP"}))
    f = one(check(ID, settings), Status.OK)
    assert "`HTTP GET /ready` on port 8080 (from BackendConfig `shop/web-hc`): Pod `web-6c9f7d8b4-abcde` answers 200" \
        in f.detail
    assert world["requests"] == ["/ready"]


def test_no_readiness_probe_warns_that_the_default_is_slash(kube, live, settings):
    world = web(kube)
    f = one(check(ID, settings), Status.WARN)
    assert "`HTTP GET /` on port 8080 (from the default, as container `app`" in f.detail
    assert "has no readinessProbe" in f.detail
    assert "readinessProbe (httpGet) on port 8080" in f.remedy
    assert world["requests"] == ["/"]


def test_default_path_that_is_not_200_fails(kube, live, settings):
    web(kube, handler=lambda path: (404, TEXT, b"404 page not found"))
    f = one(check(ID, settings), Status.FAIL)
    assert "answers 404" in f.detail and "the controller asks for `/`" in f.detail


def test_probe_on_another_port_is_not_used(kube, live, settings):
    web(kube, readiness=http_probe("/healthz", 9090))
    f = one(check(ID, settings), Status.WARN)
    assert "has a readinessProbe on port 9090, not on the serving port 8080" in f.detail


def test_named_ports_and_https_probe(kube, live, settings):
    web(kube, port_name="web", readiness=http_probe("/healthz", "web", "HTTPS"))
    f = one(check(ID, settings), Status.OK)
    assert "`HTTPS GET /healthz` on port 8080" in f.detail
    assert proxied(kube) == ["/api/v1/namespaces/shop/pods/https:web-6c9f7d8b4-abcde:8080/proxy/healthz"]


def test_server_error_fails_with_the_status(kube, live, settings):
    web(kube, readiness=http_probe("/healthz", 8080), handler=lambda path: (500, TEXT, b"db down"))
    f = one(check(ID, settings), Status.FAIL)
    assert "answers 500" in f.detail and "need 200" in f.detail
    assert f.evidence.startswith("`GET /api/v1/namespaces/shop/pods/web-6c9f7d8b4-abcde:8080/proxy/healthz` "
                                 "(redirects not followed) → 500")


def test_nothing_listening_fails_with_the_api_servers_words(kube, live, settings):
    web(kube, readiness=http_probe("/healthz", 8080))
    del kube.proxy_handlers[("shop", "web-6c9f7d8b4-abcde", 8080)]
    f = one(check(ID, settings), Status.FAIL)
    assert "answers 503" in f.detail and "dial tcp 10.8.0.7:8080: connect: connection refused" in f.detail


def test_bot_without_pods_proxy_is_an_error_not_a_verdict(kube, live, settings):
    web(kube, readiness=http_probe("/healthz", 8080))
    kube.fail("GET", r"/proxy/", 403, message='pods "web-6c9f7d8b4-abcde" is forbidden: User "gke-bot" cannot get '
                                              'resource "pods/proxy" in API group "" in the namespace "shop"')
    f = one(check(ID, settings), Status.ERROR)
    assert "get pods/proxy in shop" in f.detail


def test_named_target_port_that_no_container_has(kube, live, settings):
    web(kube, port_name="web")
    kube.add(pod("web-6c9f7d8b4-abcde", "shop", {"app": "web"}, [container(ports=(("http", 8080),))]))
    f = one(check(ID, settings), Status.FAIL)
    assert "has a container port `web`" in f.detail
    assert proxied(kube) == []


def test_app_answering_401_is_the_apps_answer_not_the_bots_error(kube, live, settings):
    web(kube, readiness=http_probe("/healthz", 8080), handler=lambda path: (401, TEXT, b"login required"))
    f = one(check(ID, settings), Status.FAIL)
    assert "answers 401" in f.detail


def test_api_server_throttling_is_the_bots_error_not_the_apps(kube, live, settings):
    web(kube, readiness=http_probe("/healthz", 8080))
    kube.fail("GET", r"/proxy/", 429, message="Too many requests, please try again later.")
    f = one(check(ID, settings), Status.ERROR)
    assert "429" in f.detail


def test_redirect_to_the_pods_own_address_loses_its_scheme_and_is_still_the_https_redirect(google, kube, live,
                                                                                           settings):
    # argocd-server redirecting to https on the Pod's own address: the real API server rewrites that Location
    # into its proxy path and drops "https"; a redirect back to the very path asked for is the scheme change.
    world = argocd(kube, google, location=f"https://{ARGO_IP}:8080/healthz")
    f = one(check(ID, settings), Status.FAIL)
    proxied = f"/api/v1/namespaces/argocd/pods/{ARGO_POD}:8080/proxy/healthz"
    assert f"answers 307 with `Location: {proxied}`, the API server's rewrite of a redirect to `/healthz` on the " \
           "Pod's own address and port" in f.detail
    assert "HTTP → HTTPS" in f.detail and "the health endpoint redirects (to HTTPS)" in f.detail
    assert "--insecure" in f.remedy and "    type: HTTPS\n    requestPath: /healthz" in f.remedy
    assert world["requests"] == ["/healthz"]  # reported, never followed


def test_redirect_to_the_api_servers_host_keeps_its_scheme(google, kube, live, settings):
    argocd(kube, google)
    # the Pod builds its redirect from the Host header it received: the API server's address
    kube.proxy_handlers[("argocd", ARGO_POD, 8080)] = lambda path, headers: (
        307, {"Location": f"https://{headers['Host']}{path}"}, b"")
    f = one(check(ID, settings), Status.FAIL)
    assert f"`Location: https://{kube.endpoint}/api/v1/namespaces/argocd/pods/{ARGO_POD}:8080/proxy/healthz`, " \
           "the API server's rewrite of the Pod's redirect to `https://…/healthz`" in f.detail
    assert "the health endpoint redirects (to HTTPS)" in f.detail


def test_health_check_that_no_longer_follows_the_probe(google, kube, live, settings):
    # the controller created the health check while the probe asked for "/"; the probe now asks for /healthz
    world = argocd(kube, google, hc_path="/")
    kube.proxy_handlers[("argocd", ARGO_POD, 8080)] = lambda path, headers: (
        world["requests"].append(path) or (404, TEXT, b"404 page not found") if path == "/" else (200, TEXT, b"ok"))
    drift, verdict = check(ID, settings)
    assert drift.status is Status.WARN
    assert (f"The load balancer's health check `{ARGO_BACKEND}` asks for `HTTP GET /`, but the readinessProbe of "
            "container `argocd-server`") in drift.detail
    assert "now asks for `HTTP GET /healthz`" in drift.detail and "does not follow later changes" in drift.detail
    assert f"gcloud compute health-checks update http {ARGO_BACKEND} --global" in drift.remedy
    assert "requestPath: /healthz" in drift.remedy
    # what the load balancer really asks for is what is sent to the Pod
    assert verdict.status is Status.FAIL and "answers 404" in verdict.detail
    assert world["requests"] == ["/"]


def test_bot_that_may_not_read_the_health_check_gets_an_error_not_ok(google, kube, live, settings):
    web(kube, readiness=http_probe("/healthz", 8080),
        ingress_annotations={"ingress.kubernetes.io/backends": json.dumps({"k8s1-c10b95be-shop-web-80-aa11bb22":
                                                                           "HEALTHY"})})
    gke_backend(google, GKE1, "k8s1-c10b95be-shop-web-80-aa11bb22", service="shop/web", service_port=80,
                request_path="/healthz", endpoints={ZONE: [("10.8.0.7", 8080, NODE, "HEALTHY")]})
    assert one(check(ID, settings), Status.OK)
    google.deny("GET", r"/healthChecks/", "compute.healthChecks.get")
    f = one(check(ID, settings), Status.ERROR)
    assert "compute.healthChecks.get" in f.detail and "healthChecks.get" in f.detail


def test_probe_path_query_string_reaches_the_pod(kube, live, settings):
    world = web(kube, readiness=http_probe("/healthz?full=1&verbose", 8080))
    f = one(check(ID, settings), Status.OK)
    assert world["requests"] == ["/healthz?full=1&verbose"]
    assert "`HTTP GET /healthz?full=1&verbose`" in f.detail


def test_health_check_request_path_query_string_reaches_the_pod(google, kube, live, settings):
    world = argocd(kube, google, hc_path="/healthz?probe=lb")
    kube.proxy_handlers[("argocd", ARGO_POD, 8080)] = lambda path, headers: (
        world["requests"].append(path) or (200, TEXT, b"ok"))
    found = check(ID, settings)
    assert world["requests"] == ["/healthz?probe=lb"]
    assert [f.status for f in found] == [Status.WARN, Status.OK]  # the probe asks for /healthz, the LB for more


def test_a_load_balancer_still_being_built_uses_the_health_check_the_controller_will_create(google, kube, live,
                                                                                            settings):
    argocd(kube, google)
    st = google.projects[GKE1].compute
    del st.backend_services[("global", ARGO_BACKEND)], st.health_checks[("global", ARGO_BACKEND)]
    f = one(check(ID, settings), Status.FAIL)
    assert "`HTTP GET /healthz` on port 8080 (from the readinessProbe of container `argocd-server`" in f.detail
