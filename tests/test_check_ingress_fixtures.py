"""Kubernetes objects for the `ingress` check tests (shared by tests/test_check_ingress_*.py), and proof
that they are complete enough for the kubernetes client's own models."""
from __future__ import annotations

import datetime
import json

import pytest

from checks.model import ClusterRef
from tests.conftest import serve_cluster
from tests.fakes.compute import gke_backend
from tests.helpers import GKE1, run_check

REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
ARGO = "argocd"
ARGO_POD = "argocd-server-7d4f8b9c5d-x2x9k"
ARGO_BACKEND = "k8s1-c10b95be-argocd-argocd-server-80-6e3f1a2b"
REDIRECT = "https://localhost:8080/healthz"  # the seed's Location; never fetched by anyone
ZONE = "europe-west4-a"
NODE = "gke-gke1-default-pool-671518f6-x7k2"
ARGO_IP = "10.8.0.7"


def ago(seconds: int) -> str:
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def container(name="app", image="nginx:1.27", ports=((None, 8080),), readiness=None, **extra) -> dict:
    out = {"name": name, "image": image, **extra,
           "ports": [{"containerPort": n, "protocol": "TCP", **({"name": p} if p else {})} for p, n in ports]}
    if readiness:
        out["readinessProbe"] = readiness
    return out


def http_probe(path: str, port, scheme: str = "HTTP") -> dict:
    return {"httpGet": {"path": path, "port": port, "scheme": scheme}, "initialDelaySeconds": 3, "periodSeconds": 30,
            "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}


def pod(name: str, ns: str, labels: dict, containers: list, ip: str = "10.8.0.7", replica_set: str = "") -> dict:
    meta = {"name": name, "namespace": ns, "labels": labels}
    if replica_set:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replica_set,
                                    "uid": "5b1c3f0e-8d7a-4f7e-9c55-2f1f4b8e6a10", "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": "gke-gke1-default-pool-671518f6-x7k2", "containers": containers},
            "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}}


def service(name: str, ns: str, selector: dict, ports: list, type_: str = "ClusterIP",
            annotations: dict | None = None) -> dict:
    spec = {"type": type_, "selector": selector, "clusterIP": "192.168.2.17",
            "ports": [{"protocol": "TCP", **p} for p in ports]}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}}, "spec": spec}


def ingress(name: str, ns: str, svc: str, port, *, age: int = 3600, address: str = "", cls: str | None = None,
            annotations: dict | None = None, rules: list | None = None) -> dict:
    ann = dict(annotations or {})
    if cls is not None:
        ann["kubernetes.io/ingress.class"] = cls
    key = "number" if isinstance(port, int) else "name"
    spec = {"defaultBackend": {"service": {"name": svc, "port": {key: port}}}}
    if rules:
        spec["rules"] = rules
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns, "annotations": ann, "creationTimestamp": ago(age)},
            "spec": spec, "status": {"loadBalancer": {"ingress": [{"ip": address}] if address else []}}}


def event(ns: str, ingress_name: str, reason: str, message: str, type_: str = "Warning", count: int = 1,
          age: int = 60) -> dict:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{ingress_name}.17a{reason.lower()}{count}", "namespace": ns},
            "involvedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": ingress_name,
                               "namespace": ns},
            "reason": reason, "message": message, "type": type_, "count": count,
            "source": {"component": "loadbalancer-controller"}, "firstTimestamp": ago(age + 600),
            "lastTimestamp": ago(age)}


def backend_config(name: str, ns: str, health_check: dict) -> dict:
    return {"apiVersion": "cloud.google.com/v1", "kind": "BackendConfig", "metadata": {"name": name, "namespace": ns},
            "spec": {"healthCheck": health_check}}


def argocd(kube, google, *, backends: str = "UNHEALTHY", location: str = REDIRECT, hc_path: str = "/healthz",
           command=("/argocd-server", "--staticassets", "/shared/app", "--repo-server", "argocd-repo-server:8081"),
           lb: bool = True) -> dict:
    """The field report's Argo CD: argocd-server behind a GCE Ingress, readinessProbe /healthz on 8080,
    answering plain HTTP with 307 to https://localhost:8080/healthz (`location`). With `lb`, the load
    balancer the controller built for it exists in Compute Engine: backend service, health check and NEG
    `ARGO_BACKEND`, the Pod its one endpoint, in the state `backends` (HEALTHY, UNHEALTHY or Unknown), the
    health check asking for `hc_path` as the controller copied it from the probe."""
    kube.add(pod(ARGO_POD, ARGO, {"app.kubernetes.io/name": "argocd-server"}, [container(
        "argocd-server", "quay.io/argoproj/argocd:v2.1.2", ((None, 8080), (None, 8083)),
        http_probe("/healthz", 8080), command=list(command))], ip=ARGO_IP, replica_set="argocd-server-7d4f8b9c5d"))
    neg = {"cloud.google.com/neg": '{"ingress": true}'}
    if lb:
        neg["cloud.google.com/neg-status"] = json.dumps({"network_endpoint_groups": {"80": ARGO_BACKEND},
                                                         "zones": [ZONE]}, separators=(",", ":"))
    kube.add(service("argocd-server", ARGO, {"app.kubernetes.io/name": "argocd-server"},
                     [{"name": "http", "port": 80, "targetPort": 8080},
                      {"name": "https", "port": 443, "targetPort": 8080}], annotations=neg))
    kube.add(ingress("argocd-server-ingress", ARGO, "argocd-server", 80, address="34.120.1.2" if lb else "",
                     annotations={"ingress.kubernetes.io/backends": json.dumps({ARGO_BACKEND: backends}),
                                  "ingress.kubernetes.io/url-map": "k8s2-um-c10b95be-argocd-argocd-server-ingr-9x1z"}
                     if lb else {}))
    if lb:
        health = {"HEALTHY": "HEALTHY", "UNHEALTHY": "UNHEALTHY"}.get(backends.upper())
        gke_backend(google, GKE1, ARGO_BACKEND, service="argocd/argocd-server", service_port=80,
                    endpoints={ZONE: [(ARGO_IP, 8080, NODE, health)]}, request_path=hc_path)
    seen = []

    def argocd_server(path, headers):
        seen.append(path)
        return (307, {"Location": location, "Content-Type": "text/html; charset=utf-8"},
                f'<a href="{location}">Temporary Redirect</a>.\n\n'.encode())
    kube.proxy_handlers[(ARGO, ARGO_POD, 8080)] = argocd_server
    return {"requests": seen}


def web(kube, ns="shop", *, type_="ClusterIP", annotations=None, readiness=None, port_name=None,
        handler=None, ingress_annotations=None) -> dict:
    """A plain web app: Deployment Pod `web-…` on 8080 behind Service `web` port 80 and Ingress `web`."""
    kube.add(pod("web-6c9f7d8b4-abcde", ns, {"app": "web"}, [container(ports=((port_name, 8080),),
                                                                         readiness=readiness)]))
    ports = [{"name": "http", "port": 80, "targetPort": port_name or 8080, **({"nodePort": 30080}
                                                                             if type_ == "NodePort" else {})}]
    kube.add(service("web", ns, {"app": "web"}, ports, type_, annotations))
    kube.add(ingress("web", ns, "web", 80, address="34.120.9.9", annotations=ingress_annotations))
    seen = []
    kube.proxy_handlers[(ns, "web-6c9f7d8b4-abcde", 8080)] = lambda path, headers: (
        seen.append(path) or (handler(path) if handler else (200, {"Content-Type": "text/plain"}, b"ok")))
    return {"requests": seen}


@pytest.fixture
def live(google, kube):
    """The recorded gke1 (HTTP load balancing off, VPC-native, 1.25) served by the fake Kubernetes API."""
    return serve_cluster(google, kube, GKE1, "gke1")


def check(check_id: str, settings, **args):
    return run_check(check_id, settings, REF, args=args)


def test_objects_fit_the_kubernetes_client_models(google, kube):
    from kubernetes import client
    argocd(kube, google)
    web(kube, type_="NodePort")
    kube.add(event("shop", "web", "Sync", "Translation failed: invalid ingress spec"))
    cfg = client.Configuration()
    cfg.host, cfg.ca_cert_data = "https://" + kube.endpoint, kube.ca_pem.decode()
    cfg.api_key, cfg.api_key_prefix = {"authorization": "t"}, {"authorization": "Bearer"}
    kube.token_ok = lambda token: token == "t"
    api = client.ApiClient(cfg)
    core, net = client.CoreV1Api(api), client.NetworkingV1Api(api)
    assert {p.metadata.name for p in core.list_pod_for_all_namespaces().items} == {ARGO_POD, "web-6c9f7d8b4-abcde"}
    pod_ = core.read_namespaced_pod(ARGO_POD, ARGO)
    assert pod_.spec.containers[0].readiness_probe.http_get.path == "/healthz"
    assert core.read_namespaced_service("web", "shop").spec.ports[0].node_port == 30080
    ing = net.read_namespaced_ingress("argocd-server-ingress", ARGO)
    assert ing.spec.default_backend.service.port.number == 80
    assert ing.status.load_balancer.ingress[0].ip == "34.120.1.2"
    assert core.list_namespaced_event("shop").items[0].involved_object.kind == "Ingress"
