"""Shared readers and reasoning for the `ingress` checks (checks/rules/ingress_*.py).

Kubernetes objects are read as plain JSON (camelCase, as `kubectl get -o json` shows them) through
the gateway, whose per-job memo lets every check ask for the same Ingress, Service or Pods and still
send each request once.

What the GKE Ingress controller does with an Ingress, as far as these checks need it:
- it handles Ingresses of class `gce` (external Application Load Balancer), `gce-internal`
  (internal) or no class at all (the annotation `kubernetes.io/ingress.class` or
  `spec.ingressClassName`);
- each backend Service port becomes a backend service of the load balancer: a NEG of Pod IPs
  (container-native load balancing) or, without NEGs, the nodes' instance groups on the Service's
  nodePort;
- its health check comes from a BackendConfig's `spec.healthCheck`, else from the serving
  container's readinessProbe (httpGet), else `GET /` on the serving port; only a 200 is healthy.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from checks import versions
from checks.gateway import kube as kc

GCE_CLASSES = ("gce", "gce-internal")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
NEG_ANNOTATION = "cloud.google.com/neg"
NEG_STATUS_ANNOTATION = "cloud.google.com/neg-status"
BACKEND_CONFIG_ANNOTATIONS = ("cloud.google.com/backend-config", "beta.cloud.google.com/backend-config")
BACKENDS_ANNOTATION = "ingress.kubernetes.io/backends"
AUTO_NEG_VERSION = "1.17.6-gke.7"
HC_RANGES = ("130.211.0.0/22", "35.191.0.0/16")  # Google Cloud health checkers


def meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def annotations(obj: dict) -> dict:
    return meta(obj).get("annotations") or {}


def ident(obj: dict) -> str:
    return f"{meta(obj).get('namespace', '')}/{meta(obj).get('name', '')}"


def age(obj: dict, now: datetime | None = None) -> float:
    """Seconds since the object was created."""
    created = datetime.fromisoformat(meta(obj)["creationTimestamp"].replace("Z", "+00:00"))
    return ((now or datetime.now(timezone.utc)) - created).total_seconds()


def human(seconds: float) -> str:
    minutes = int(seconds // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours or days) + [f"{mins}m"]
    return " ".join(parts[:2])


# ---- which Ingresses ---------------------------------------------------------------------
def ingress_class(ing: dict) -> str:
    return annotations(ing).get(CLASS_ANNOTATION) or (ing.get("spec") or {}).get("ingressClassName") or ""


def is_gce(ing: dict) -> bool:
    return ingress_class(ing) in ("",) + GCE_CLASSES


@dataclass
class Targets:
    ingresses: list[dict]
    note: str = ""        # why there is nothing to diagnose
    missing: bool = False  # the Ingress the user named does not exist


def targets(ctx) -> Targets:
    """The Ingress named in ctx.args (namespace, ingress), else every GCE-class Ingress."""
    ns, name = ctx.args.get("namespace"), ctx.args.get("ingress")
    if name:
        ing = ctx.gw.kube_get(ctx.ref, kc.INGRESSES_GET, name, ns)
        if ing is None:
            return Targets([], f"There is no Ingress `{name}` in namespace `{ns}` of `{ctx.ref.name}` "
                               f"(`kubectl get ingress -n {ns}` lists them).", missing=True)
        if not is_gce(ing):
            return Targets([], f"Ingress `{ns}/{name}` has class `{ingress_class(ing)}`: the GKE Ingress controller "
                               "ignores it (it handles `gce`, `gce-internal` or no class), so these checks do not "
                               "apply; ask whoever runs that controller.")
        return Targets([ing])
    items = ctx.gw.kube_list(ctx.ref, kc.INGRESSES_LIST)
    gce = [i for i in items if is_gce(i)]
    if gce or not items:
        return Targets(gce, "" if gce else f"`{ctx.ref.name}` has no Ingress.")
    classes = ", ".join(sorted({f"`{ingress_class(i)}`" for i in items}))
    return Targets([], f"None of the {len(items)} Ingresses of `{ctx.ref.name}` is a GCE Ingress (classes: {classes}).")


def each_ingress(ctx, one) -> list:
    """Findings of one(ctx, ingress) for every target Ingress; a SKIP saying why when there is none."""
    t = targets(ctx)
    if not t.ingresses:
        return [ctx.skip(t.note)]
    out = []
    for ing in t.ingresses:
        got = one(ctx, ing)
        out += got if isinstance(got, list) else [got]
    return out


def where(ing: dict) -> str:
    return f"Ingress {ident(ing)}"


# ---- backends ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackendRef:
    namespace: str
    service: str
    port: int | str  # the Service port the Ingress names: number or name

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service}:{self.port}"


def backend_refs(ing: dict) -> list[BackendRef]:
    """spec.defaultBackend and every rules[].http.paths[].backend that names a Service, once each."""
    spec, ns = ing.get("spec") or {}, meta(ing).get("namespace", "")
    found = [spec.get("defaultBackend")] + [p.get("backend") for r in spec.get("rules") or []
                                            for p in (r.get("http") or {}).get("paths") or []]
    out: list[BackendRef] = []
    for b in found:
        svc = (b or {}).get("service")
        if svc:
            port = svc.get("port") or {}
            ref = BackendRef(ns, svc["name"], port.get("number") or port.get("name") or "")
            if ref not in out:
                out.append(ref)
    return out


def container_port(pod: dict, target) -> tuple[dict | None, int | None]:
    """The container serving `target` (a port number or a named container port) and the number."""
    containers = (pod.get("spec") or {}).get("containers") or []
    if target in (None, ""):
        return None, None
    for c in containers:
        for p in c.get("ports") or []:
            if target in (p.get("containerPort"), p.get("name") or None):
                return c, p["containerPort"]
    if isinstance(target, int):
        return (containers[0] if len(containers) == 1 else None), target
    return None, None


@dataclass
class Backend:
    ref: BackendRef
    service: dict | None = None
    port: dict | None = None                        # the Service's ports[] entry
    pods: list[dict] = field(default_factory=list)  # running Pods the selector matches
    neg: bool = False
    neg_why: str = ""                               # how it gets NEGs, or why it gets none

    @property
    def type(self) -> str:
        return ((self.service or {}).get("spec") or {}).get("type", "ClusterIP")

    @property
    def selector(self) -> str:
        sel = ((self.service or {}).get("spec") or {}).get("selector") or {}
        return ",".join(f"{k}={v}" for k, v in sorted(sel.items()))

    @property
    def target_port(self):
        port = self.port or {}
        return port.get("targetPort") or port.get("port")

    def serving(self) -> tuple[dict | None, dict | None, int | None]:
        """(pod, container, port number) of the first running Pod that serves the target port."""
        for pod in self.pods:
            c, number = container_port(pod, self.target_port)
            if number:
                return pod, c, number
        return None, None, None


def backend(ctx, ref: BackendRef) -> Backend:
    ns = ref.namespace
    svc = ctx.gw.kube_get(ctx.ref, kc.SERVICES_GET, ref.service, ns)
    b = Backend(ref, svc)
    if svc is None:
        return b
    b.port = next((p for p in (svc.get("spec") or {}).get("ports") or []
                   if ref.port in (p.get("port"), p.get("name") or None)), None)
    if b.selector:
        pods = ctx.gw.kube_list(ctx.ref, kc.PODS_LIST, ns, label_selector=b.selector)
        b.pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"
                  and not meta(p).get("deletionTimestamp")]
    b.neg, b.neg_why = uses_neg(ctx, svc)
    return b


def auto_neg_blockers(ctx) -> list[str]:
    """Why GKE does not give Services NEGs automatically ([] when it does)."""
    c = ctx.gw.cluster(ctx.ref)
    if c.autopilot.enabled:
        return []
    out = []
    version = c.current_master_version
    if version and versions.compare(version, AUTO_NEG_VERSION) < 0:
        out.append(f"the control plane runs {version}, older than {AUTO_NEG_VERSION}")
    if not c.ip_allocation_policy.use_ip_aliases:
        out.append("the cluster is not VPC-native (`ipAllocationPolicy.useIpAliases` is not true: routes-based)")
    net_project, network = cluster_network(ctx)
    if net_project != ctx.ref.project:
        out.append(f"the cluster uses a Shared VPC network (`projects/{net_project}/global/networks/{network}`)")
    if c.network_policy.enabled:
        out.append("GKE network policy is enabled (`networkPolicy.enabled: true`)")
    return out


def uses_neg(ctx, svc: dict) -> tuple[bool, str]:
    ann = annotations(svc)
    if NEG_STATUS_ANNOTATION in ann:
        return True, f"its NEGs exist (`{NEG_STATUS_ANNOTATION}: {ann[NEG_STATUS_ANNOTATION]}`)"
    raw = ann.get(NEG_ANNOTATION)
    if raw is not None:
        try:
            wanted = json.loads(raw).get("ingress")
        except (ValueError, AttributeError):
            return False, f"its annotation `{NEG_ANNOTATION}: {raw}` is not valid JSON"
        if wanted is True and not ctx.gw.cluster(ctx.ref).ip_allocation_policy.use_ip_aliases:
            return False, (f"it has `{NEG_ANNOTATION}: {raw}`, but the cluster is not VPC-native: container-native "
                           "load balancing needs alias IPs")
        if wanted is True:
            return True, f"annotation `{NEG_ANNOTATION}: {raw}`"
        if wanted is False:
            return False, f"its annotation `{NEG_ANNOTATION}: {raw}` turns NEGs off"
    blockers = auto_neg_blockers(ctx)
    if not blockers:
        return True, (f"automatic NEGs (GKE ≥ {AUTO_NEG_VERSION}, VPC-native, no Shared VPC, no network policy)")
    return False, f"it has no `{NEG_ANNOTATION}` annotation and automatic NEGs are off: " + "; ".join(blockers)


def cluster_network(ctx) -> tuple[str, str]:
    """(project, network) of the cluster's VPC network; another project means Shared VPC."""
    c = ctx.gw.cluster(ctx.ref)
    parts = c.network_config.network.split("/")
    if len(parts) == 5 and parts[0] == "projects":
        return parts[1], parts[4]
    return ctx.ref.project, c.network or "default"


def backend_config_name(b: Backend) -> str:
    """The BackendConfig the Service names for this port ({"default": X} or {"ports": {PORT: X}})."""
    ann = annotations(b.service or {})
    raw = next((ann[a] for a in BACKEND_CONFIG_ANNOTATIONS if a in ann), "")
    try:
        spec = json.loads(raw) if raw else {}
    except ValueError:
        return ""
    ports = spec.get("ports") or {}
    keys = [str(k) for k in ((b.port or {}).get("port"), (b.port or {}).get("name"), b.ref.port) if k]
    return next((ports[k] for k in keys if k in ports), spec.get("default") or "")


def backend_config(ctx, b: Backend) -> dict | None:
    name, ns = backend_config_name(b), b.ref.namespace
    if not name:
        return None
    return ctx.gw.kube_get(ctx.ref, kc.BACKENDCONFIGS_GET, name, ns)


# ---- the load balancer's health check --------------------------------------------------------
@dataclass
class HealthCheck:
    path: str
    port: int | None
    scheme: str     # HTTP, HTTPS or HTTP2
    source: str     # where the controller takes it from, for people
    default: bool   # no BackendConfig and no usable readinessProbe: GET / on the serving port


def health_check(ctx, b: Backend) -> HealthCheck:
    pod, container, number = b.serving()
    bc = backend_config(ctx, b)
    hc = ((bc or {}).get("spec") or {}).get("healthCheck")
    if hc:
        return HealthCheck(hc.get("requestPath") or "/", hc.get("port") or number, (hc.get("type") or "HTTP").upper(),
                           f"BackendConfig `{ident(bc)}`", False)
    probe = (container or {}).get("readinessProbe") or {}
    get = probe.get("httpGet")
    where_ = f"container `{(container or {}).get('name', '?')}` of Pod `{meta(pod or {}).get('name', '?')}`"
    if get and container_port(pod, get.get("port"))[1] == number:
        return HealthCheck(get.get("path") or "/", number, (get.get("scheme") or "HTTP").upper(),
                           f"the readinessProbe of {where_}", False)
    why = ("has no readinessProbe" if not probe else "has a readinessProbe that is not httpGet" if not get
           else f"has a readinessProbe on port {get.get('port')}, not on the serving port {number}")
    return HealthCheck("/", number, "HTTP", f"the default, as {where_} {why}", True)


def load_balancer_port(ctx, b: Backend) -> int | None:
    """The port the health checkers connect to: the Pod port with NEGs, else the Service's nodePort."""
    if not b.neg:
        return (b.port or {}).get("nodePort")
    return health_check(ctx, b).port if b.pods else (b.target_port if isinstance(b.target_port, int) else None)


def all_backends(ctx, ingresses: list[dict]) -> list[Backend]:
    seen: dict[BackendRef, Backend] = {}
    for ing in ingresses:
        for ref in backend_refs(ing):
            if ref not in seen:
                seen[ref] = backend(ctx, ref)
    return list(seen.values())
