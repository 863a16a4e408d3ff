"""Shared readers and reasoning for the `ingress` checks (checks/rules/ingress_*.py).

Kubernetes objects are read as plain JSON (camelCase, as `kubectl get -o json` shows them) through
the gateway, whose per-job memo lets every check ask for the same Ingress, Service or Pods and still
send each request once. The facts are fetched in parallel rounds so that the whole `ingress` command
stays within four sequential round trips: the cluster; the Ingresses with the Services they may name
(and the network's firewalls); the Pods, the load balancer's backend services and health checks; the pod
proxy, getHealth and the NEGs' endpoints.

What the GKE Ingress controller does with an Ingress, as far as these checks need it:
- it processes an Ingress only when the annotation `kubernetes.io/ingress.class` is `gce` (external
  Application Load Balancer) or `gce-internal` (internal), or when neither that annotation nor
  `spec.ingressClassName` is set; an Ingress with only `spec.ingressClassName` (any value, `gce` included)
  is ignored by it;
- each backend Service port becomes a backend service of the load balancer: a NEG of Pod IPs
  (container-native load balancing, backend service `k8s1-…`) or, without NEGs, the nodes' instance
  groups on the Service's nodePort (`k8s-be-NODEPORT--…`); it writes their names and health into the
  Ingress annotation `ingress.kubernetes.io/backends`, and a NEG's name into the Service annotation
  `cloud.google.com/neg-status`; each backend service's description names its Service
  (`kubernetes.io/service-name`, `kubernetes.io/service-port`) and its health check has the same name;
- it creates that health check from a BackendConfig's `spec.healthCheck`, else from the serving
  container's readinessProbe (httpGet), else `GET /` on the serving port, and only a 200 is healthy.
  It copies the probe when it creates the health check and does not follow later probe changes, so
  the health check is read from Compute Engine whenever the load balancer exists.
"""
from __future__ import annotations

import functools
import json
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone

from checks import versions
from checks.gateway import ApiError
from checks.gateway import kube as kc
from checks.i18n import _, sentences
from checks.names import is_zone

GCE_CLASSES = ("gce", "gce-internal")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
NEG_ANNOTATION = "cloud.google.com/neg"
NEG_STATUS_ANNOTATION = "cloud.google.com/neg-status"
BACKEND_CONFIG_ANNOTATIONS = ("cloud.google.com/backend-config", "beta.cloud.google.com/backend-config")
BACKENDS_ANNOTATION = "ingress.kubernetes.io/backends"
SERVICE_NAME_KEY, SERVICE_PORT_KEY = "kubernetes.io/service-name", "kubernetes.io/service-port"
AUTO_NEG_VERSION = "1.17.6-gke.7"
HC_RANGES = ("130.211.0.0/22", "35.191.0.0/16")  # Google Cloud health checkers
HC_SPECS = {"HTTP": "httpHealthCheck", "HTTPS": "httpsHealthCheck", "HTTP2": "http2HealthCheck"}
CLASS_DOC = "https://cloud.google.com/kubernetes-engine/docs/how-to/custom-ingress-controller"


def meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def annotations(obj: dict) -> dict:
    return meta(obj).get("annotations") or {}


def ident(obj: dict) -> str:
    return f"{meta(obj).get('namespace', '')}/{meta(obj).get('name', '')}"


def age(obj: dict, now: datetime | None = None) -> float:
    """Seconds since the object was created."""
    return ((now or datetime.now(timezone.utc)) - created(obj)).total_seconds()


def created(obj: dict) -> datetime:
    return datetime.fromisoformat(meta(obj)["creationTimestamp"].replace("Z", "+00:00"))


def human(seconds: float) -> str:
    minutes = int(seconds // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours or days) + [f"{mins}m"]
    return " ".join(parts[:2])


def region(ctx) -> str:
    loc = ctx.ref.location
    return loc.rsplit("-", 1)[0] if is_zone(loc) else loc


# ---- which Ingresses ---------------------------------------------------------------------
def class_annotation(ing: dict) -> str:
    return annotations(ing).get(CLASS_ANNOTATION) or ""


def class_field(ing: dict) -> str | None:
    """spec.ingressClassName, None when unset."""
    return (ing.get("spec") or {}).get("ingressClassName")


def ingress_class(ing: dict) -> str:
    return class_annotation(ing) or class_field(ing) or ""


def is_gce(ing: dict) -> bool:
    """Whether the GKE Ingress controller processes it (its IsGCEIngress)."""
    if class_annotation(ing):
        return class_annotation(ing) in GCE_CLASSES
    return class_field(ing) is None


def class_ignored(ing: dict) -> bool:
    """Only spec.ingressClassName is set: the GKE Ingress controller ignores the Ingress, whatever the value."""
    return not class_annotation(ing) and class_field(ing) is not None


def ignored_detail(ing: dict) -> str:
    return _("Ingress `{ingress}` sets `spec.ingressClassName: {cls}` and no `{annotation}` annotation. The GKE Ingress "
             "controller processes an Ingress only when that annotation is `gce` or `gce-internal`, or when neither the "
             "annotation nor `spec.ingressClassName` is set; it ignores an Ingress with only `spec.ingressClassName` "
             "(any value, `gce` included), so it will never build a load balancer for `{ingress}`.").format(
        ingress=ident(ing), cls=class_field(ing), annotation=CLASS_ANNOTATION)


def class_fix(ing: dict) -> str:
    ns, name = meta(ing).get("namespace", ""), meta(ing).get("name", "")
    cls = class_field(ing) if class_field(ing) in GCE_CLASSES else "gce"
    command = (f"kubectl patch ingress {name} -n {ns} --type=merge -p "
               f"'{{\"spec\": {{\"ingressClassName\": null}}, \"metadata\": {{\"annotations\": "
               f"{{\"{CLASS_ANNOTATION}\": \"{cls}\"}}}}}}'")
    return _("Replace the field with the annotation (one merge patch: the API server refuses an Ingress that sets "
             "both):\n```\n{command}\n```\nIn the manifest: drop `spec.ingressClassName` and set `{setting}`. A default "
             "IngressClass (`ingressclass.kubernetes.io/is-default-class`) fills `spec.ingressClassName` into new "
             "Ingresses that set no class: set the annotation on those.").format(
        command=command, setting=f"metadata.annotations.{CLASS_ANNOTATION}: {cls}")


@dataclass
class Targets:
    ingresses: list[dict]
    note: str = ""         # why there is nothing to diagnose
    missing: bool = False  # the Ingress the user named does not exist
    ignored: list[dict] = field(default_factory=list)  # meant for GKE (ingressClassName gce…), ignored by it
    services: dict = field(default_factory=dict)  # (namespace, name) -> Service, read with the Ingresses
    services_complete: bool = True  # False: the Service list was cut (Items.truncated)


def targets(ctx) -> Targets:
    """The Ingress named in ctx.args (namespace, ingress), else every GCE-class Ingress; read once per job,
    together with the Services of the namespace (or cluster) so that backends need no further round trip."""
    ns, name = ctx.args.get("namespace"), ctx.args.get("ingress")
    return ctx.gw.memo(("ingress-targets", ctx.ref.path, ns or "", name or ""), lambda: _targets(ctx, ns, name))


def _targets(ctx, ns: str | None, name: str | None) -> Targets:
    if name:
        ing, services = ctx.gw.parallel(lambda: ctx.gw.kube_get(ctx.ref, kc.INGRESSES_GET, name, ns),
                                        functools.partial(_services, ctx, ns))
        t = Targets([], services=services, services_complete=not services.truncated)
        if ing is None:
            t.note, t.missing = _("There is no Ingress `{ingress}` in namespace `{namespace}` of `{cluster}` "
                                  "(`{command}` lists them).").format(ingress=name, namespace=ns, cluster=ctx.ref.name,
                                                                      command=f"kubectl get ingress -n {ns}"), True
        elif class_ignored(ing):
            t.note = ignored_detail(ing)
            if class_field(ing) in GCE_CLASSES:
                t.ignored = [ing]
            else:
                t.note = sentences(t.note, _("If another controller serves class `{cls}`, ask whoever runs it.").format(
                    cls=class_field(ing)))
        elif not is_gce(ing):
            t.note = _("Ingress `{ingress}` has class `{cls}`: the GKE Ingress controller ignores it (it handles `gce`, "
                       "`gce-internal` or no class), so these checks do not apply; ask whoever runs that controller.").format(
                ingress=f"{ns}/{name}", cls=ingress_class(ing))
        else:
            t.ingresses = [ing]
        return t
    items, services = ctx.gw.parallel(lambda: ctx.gw.kube_list(ctx.ref, kc.INGRESSES_LIST),
                                      functools.partial(_services, ctx, ""))
    t = Targets([i for i in items if is_gce(i)], services=services, services_complete=not services.truncated)
    t.ignored = [i for i in items if class_ignored(i) and class_field(i) in GCE_CLASSES]
    if not t.ingresses:
        if not items:
            t.note = _("`{cluster}` has no Ingress.").format(cluster=ctx.ref.name)
        else:
            classes = ", ".join(sorted({f"`{ingress_class(i)}`" for i in items}))
            t.note = _("None of the {count} Ingresses of `{cluster}` is processed by the GKE Ingress controller "
                       "(classes: {classes}).").format(count=len(items), cluster=ctx.ref.name, classes=classes)
            if t.ignored:
                t.note = sentences(t.note, *(ignored_detail(i) for i in t.ignored))
    return t


def _services(ctx, ns: str | None):
    items = ctx.gw.kube_list(ctx.ref, kc.SERVICES_LIST, ns or "")
    out = {(meta(s).get("namespace", ""), meta(s).get("name", "")): s for s in items}
    services = _ServiceMap(out)
    services.truncated = items.truncated
    return services


class _ServiceMap(dict):
    truncated: bool = False


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

    def pod_at(self, ip: str) -> dict | None:
        return next((p for p in self.pods if (p.get("status") or {}).get("podIP") == ip), None)


def backend(ctx, ref: BackendRef) -> Backend:
    ns, t = ref.namespace, targets(ctx)
    svc = t.services.get((ns, ref.service))
    if svc is None and not t.services_complete:  # the list was cut: ask for this one
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


def version_at_creation(ctx, svc: dict) -> tuple[bool | None, str]:
    """Whether the control plane ran AUTO_NEG_VERSION or later when the Service was created (None: cannot
    tell), and why, for people. GKE gives automatic NEGs to a Service when it is created, so what counts is
    the version then, not today's."""
    c = ctx.gw.cluster(ctx.ref)
    initial, current = c.initial_cluster_version, c.current_master_version
    when = meta(svc).get("creationTimestamp", "?")
    try:
        if initial and versions.compare(initial, AUTO_NEG_VERSION) >= 0:
            return True, _("the cluster was created at {initial}, so every Service was created under {since} or "
                           "later").format(initial=initial, since=AUTO_NEG_VERSION)
        if current and versions.compare(current, AUTO_NEG_VERSION) < 0:
            return False, _("the control plane runs {current}, older than {since}").format(current=current,
                                                                                         since=AUTO_NEG_VERSION)
    except ValueError:
        return None, _("the cluster's versions ({initial}, {current}) cannot be compared").format(
            initial=initial or "?", current=current or "?")
    return None, _("the Service was created ({created}) in a cluster created at {initial} and upgraded since (it runs "
                   "{current} now); GKE gives automatic NEGs only to Services created while the control plane ran "
                   "{since} or later, and then writes `{annotation}` onto the Service, which this one does not have: "
                   "it was created before the upgrade").format(created=when, initial=initial or "?", current=current,
                                                                since=AUTO_NEG_VERSION, annotation=NEG_ANNOTATION)


def auto_neg_blockers(ctx, svc: dict) -> list[str]:
    """Why GKE did not give this Service NEGs automatically ([] when it did)."""
    c = ctx.gw.cluster(ctx.ref)
    if c.autopilot.enabled:
        return []
    out = []
    recent, why = version_at_creation(ctx, svc)
    if not recent:
        out.append(why)
    if not c.ip_allocation_policy.use_ip_aliases:
        out.append(_("the cluster is not VPC-native (`ipAllocationPolicy.useIpAliases` is not true: routes-based)"))
    net_project, network = cluster_network(ctx)
    if net_project != ctx.ref.project:
        out.append(_("the cluster uses a Shared VPC network (`{network}`)").format(
            network=f"projects/{net_project}/global/networks/{network}"))
    if c.network_policy.enabled:
        out.append(_("GKE network policy is enabled (`networkPolicy.enabled: true`)"))
    return out


def uses_neg(ctx, svc: dict) -> tuple[bool, str]:
    ann = annotations(svc)
    if NEG_STATUS_ANNOTATION in ann:
        return True, _("its NEGs exist (`{annotation}`)").format(
            annotation=f"{NEG_STATUS_ANNOTATION}: {ann[NEG_STATUS_ANNOTATION]}")
    raw = ann.get(NEG_ANNOTATION)
    if raw is not None:
        shown = f"{NEG_ANNOTATION}: {raw}"
        try:
            wanted = json.loads(raw).get("ingress")
        except (ValueError, AttributeError):
            return False, _("its annotation `{annotation}` is not valid JSON").format(annotation=shown)
        if wanted is True and not ctx.gw.cluster(ctx.ref).ip_allocation_policy.use_ip_aliases:
            return False, _("it has `{annotation}`, but the cluster is not VPC-native: container-native load balancing "
                            "needs alias IPs").format(annotation=shown)
        if wanted is True:
            return True, _("annotation `{annotation}`").format(annotation=shown)
        if wanted is False:
            return False, _("its annotation `{annotation}` turns NEGs off").format(annotation=shown)
    blockers = auto_neg_blockers(ctx, svc)
    if not blockers:
        return True, _("automatic NEGs (created under GKE ≥ {since}, VPC-native, no Shared VPC, no network policy)").format(
            since=AUTO_NEG_VERSION)
    return False, _("it has no `{annotation}` annotation and got no automatic NEGs: {reasons}").format(
        annotation=NEG_ANNOTATION, reasons="; ".join(blockers))


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


def all_backends(ctx, ingresses: list[dict]) -> list[Backend]:
    """The Backend of every Service port the Ingresses name, read in parallel (one round trip)."""
    refs: list[BackendRef] = []
    for ing in ingresses:
        refs += [r for r in backend_refs(ing) if r not in refs]
    return ctx.gw.parallel(*[functools.partial(backend, ctx, r) for r in refs])


# ---- the load balancer, read from Compute Engine -------------------------------------------
@dataclass
class LbBackend:
    """One backend service of an Ingress's load balancer, as Compute Engine has it."""
    name: str
    scope: str                        # "global", or the region of an internal load balancer
    service: dict | None = None       # backendServices.get
    error: ApiError | None = None     # … when it could not be read
    hc: dict | None = None            # the health check of the same name (read with the backend service)
    hc_error: ApiError | None = None
    health: dict = field(default_factory=dict)  # backend group URL -> getHealth answer, or ApiError
    negs: dict = field(default_factory=dict)    # NEG URL -> listNetworkEndpoints items, or ApiError

    @property
    def describes(self) -> tuple[str, str]:
        """(namespace/service, service port) from the controller's description of the backend service."""
        for obj in (self.service, self.hc):
            try:
                d = json.loads((obj or {}).get("description") or "{}")
            except ValueError:
                continue
            if isinstance(d, dict) and d.get(SERVICE_NAME_KEY):
                return d[SERVICE_NAME_KEY], str(d.get(SERVICE_PORT_KEY, ""))
        return "", ""

    @property
    def groups(self) -> list[str]:
        return [g["group"] for g in (self.service or {}).get("backends") or [] if g.get("group")]

    @property
    def hc_link(self) -> str:
        return next(iter((self.service or {}).get("healthChecks") or []), "")


def backend_names(ing: dict) -> list[str] | None:
    """The backend services the controller reports for the Ingress; None when it reports none (yet)."""
    raw = annotations(ing).get(BACKENDS_ANNOTATION)
    if not raw:
        return None
    try:
        states = json.loads(raw)
    except ValueError:
        return None
    return sorted(states) if isinstance(states, dict) else None


def lb_scope(ctx, ing: dict) -> str:
    return region(ctx) if class_annotation(ing) == "gce-internal" else "global"


def _scope_of(url: str, default: str) -> str:
    parts = url.split("/")
    return parts[parts.index("regions") + 1] if "regions" in parts else ("global" if "global" in parts else default)


def lb_services(ctx, ing: dict) -> list[LbBackend] | None:
    """The Ingress's backend services, each read together with the health check of its name (the controller
    gives both one name): one parallel round. None when the controller has not reported a load balancer."""
    names = backend_names(ing)
    if names is None:
        return None
    gw, project, scope = ctx.gw, ctx.ref.project, lb_scope(ctx, ing)

    def read() -> list[LbBackend]:
        out = [LbBackend(n, scope) for n in names]

        def attempt(b: LbBackend, attr: str, fn, *args):
            try:
                setattr(b, attr, fn(*args))
            except ApiError as err:
                setattr(b, "error" if attr == "service" else "hc_error", err)
        gw.parallel(*[functools.partial(attempt, b, "service", gw.backend_service, project, scope, b.name)
                      for b in out],
                    *[functools.partial(attempt, b, "hc", gw.health_check, project, scope, b.name) for b in out])
        return out
    return gw.memo(("ingress-lb", ctx.ref.path, ident(ing)), read)


def lb_health_check(ctx, lb: LbBackend) -> tuple[dict | None, ApiError | None]:
    """The health check the backend service really uses: the one of its own name (already read), else the one
    it links to (one more read, for load balancers not made by the controller's naming)."""
    link = lb.hc_link
    if lb.service is None or not link or link.rsplit("/", 1)[-1] == lb.name:
        return (lb.hc, lb.hc_error) if lb.service is None or link else (None, None)
    try:
        return ctx.gw.health_check(ctx.ref.project, _scope_of(link, lb.scope), link.rsplit("/", 1)[-1]), None
    except ApiError as err:
        return None, err


def lb_backends(ctx, ing: dict) -> list[LbBackend] | None:
    """lb_services, then in one more parallel round the load balancer's verdict per backend group (getHealth)
    and every NEG's endpoints."""
    found = lb_services(ctx, ing)
    if found is None:
        return None
    gw, project = ctx.gw, ctx.ref.project

    def read() -> list[LbBackend]:
        def into(mapping: dict, key: str, fn, *args):
            try:
                mapping[key] = fn(*args)
            except ApiError as err:
                mapping[key] = err
        tasks = []
        for b in found:
            for group in b.groups:
                tasks.append(functools.partial(into, b.health, group, gw.backend_health, project, b.scope, b.name,
                                               group))
                if "/networkEndpointGroups/" in group:
                    parts = group.split("/")
                    zone = parts[parts.index("zones") + 1] if "zones" in parts else ""
                    tasks.append(functools.partial(into, b.negs, group, gw.neg_endpoints, project, zone, parts[-1]))
        gw.parallel(*tasks)
        return found
    return gw.memo(("ingress-lb-health", ctx.ref.path, ident(ing)), read)


def lb_backend_for(ctx, ing: dict, b: Backend) -> LbBackend | None:
    """The backend service the controller made for this Service port, when the load balancer exists."""
    found = lb_services(ctx, ing) or []
    port = b.port or {}
    wanted = {str(x) for x in (b.ref.port, port.get("port"), port.get("name")) if x not in (None, "")}
    for lb in found:
        svc, svc_port = lb.describes
        if svc == f"{b.ref.namespace}/{b.ref.service}" and (not svc_port or svc_port in wanted):
            return lb
    for lb in found:  # the names, when the backend service could not be read
        if lb.name.startswith("k8s-be-") and str(port.get("nodePort")) == lb.name.split("-")[2]:
            return lb
        if port and f"-{b.ref.namespace}-{b.ref.service}-{port.get('port')}-" in lb.name:
            return lb
    return None


# ---- the load balancer's health check --------------------------------------------------------
@dataclass
class HealthCheck:
    path: str
    port: int | None
    scheme: str     # HTTP, HTTPS or HTTP2 (TCP, SSL, GRPC… for health checks the bot does not send)
    source: str     # where it comes from, for people
    default: bool   # no BackendConfig and no usable readinessProbe: GET / on the serving port
    live: dict | None = None  # the Compute Engine health check it was read from
    from_probe: bool = False  # derived from the serving container's readinessProbe
    from_backend_config: bool = False  # derived from a BackendConfig's spec.healthCheck


def health_check(ctx, b: Backend) -> HealthCheck:
    """The health check the controller derives (creates) for this backend from the cluster's objects."""
    pod, container, number = b.serving()
    bc = backend_config(ctx, b)
    hc = ((bc or {}).get("spec") or {}).get("healthCheck")
    if hc:
        return HealthCheck(hc.get("requestPath") or "/", hc.get("port") or number, (hc.get("type") or "HTTP").upper(),
                           f"BackendConfig `{ident(bc)}`", False, from_backend_config=True)
    probe = (container or {}).get("readinessProbe") or {}
    get = probe.get("httpGet")
    names = dict(container=(container or {}).get("name", "?"), pod=meta(pod or {}).get("name", "?"))
    if get and container_port(pod, get.get("port"))[1] == number:
        return HealthCheck(get.get("path") or "/", number, (get.get("scheme") or "HTTP").upper(),
                           _("the readinessProbe of container `{container}` of Pod `{pod}`").format(**names), False,
                           from_probe=True)
    if not probe:
        why = _("the default, as container `{container}` of Pod `{pod}` has no readinessProbe")
    elif not get:
        why = _("the default, as container `{container}` of Pod `{pod}` has a readinessProbe that is not httpGet")
    else:
        why = _("the default, as container `{container}` of Pod `{pod}` has a readinessProbe on port {port}, not on the "
                "serving port {serving}")
    return HealthCheck("/", number, "HTTP", why.format(port=get.get("port") if get else "", serving=number, **names),
                       True)


def live_health_check(hc: dict | None, b: Backend) -> HealthCheck | None:
    """The load balancer's health check as Compute Engine has it, with the Pod port it reaches."""
    if not hc:
        return None
    kind = (hc.get("type") or "").upper()
    spec = hc.get(HC_SPECS.get(kind, "")) or {}
    *_unused, serving = b.serving()
    port = serving if isinstance(serving, int) else (b.target_port if isinstance(b.target_port, int) else None)
    if spec.get("portSpecification") == "USE_FIXED_PORT" and spec.get("port") and b.neg:
        port = spec["port"]  # NEG endpoints are Pods: a fixed port is a Pod port; for instance groups a nodePort
    return HealthCheck(spec.get("requestPath") or "/", port, kind or "?",
                       _("health check `{name}` of the load balancer").format(name=hc.get("name")), False, live=hc)


def load_balancer_port(ctx, b: Backend, hc: HealthCheck | None = None) -> int | None:
    """The port the health checkers connect to: the Pod port with NEGs, else the Service's nodePort."""
    if not b.neg:
        return (b.port or {}).get("nodePort")
    if hc is not None and hc.port:
        return hc.port
    return health_check(ctx, b).port if b.pods else (b.target_port if isinstance(b.target_port, int) else None)


# ---- the pod proxy ------------------------------------------------------------------------------
def proxy_prefix(namespace: str, target: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{target}/proxy"


@dataclass
class Redirect:
    """A redirect the Pod answered, as the API server's proxy passed it on.

    kube-apiserver's proxy transport (k8s.io/apimachinery/pkg/util/proxy, Transport.rewriteURL) rewrites a
    Location that points at the Pod's own address, or that is a host-relative path, into the proxy path
    (`/api/v1/namespaces/NS/pods/POD:PORT/proxy/…`): the scheme and host are dropped. One that points at the
    API server's own host keeps its scheme and gets the proxy path too; any other host is passed on as it is.
    """
    location: str       # the Location header as received
    pod_location: str   # what the Pod redirected to, as far as it can be told
    rewritten: bool     # the API server rewrote it into its proxy path
    https: bool         # the redirect goes to HTTPS (stated, or inferred: same path, scheme dropped)
    inferred: bool = False  # https was inferred from a same-path redirect whose scheme the rewrite dropped

    def describe(self) -> str:
        if not self.rewritten:
            return f"`Location: {self.location}`"
        if self.inferred:
            return _("`Location: {location}`, the API server's rewrite of a redirect to `{target}` on the Pod's own "
                     "address and port (the rewrite drops the scheme; a redirect to the very path that was asked for, on "
                     "the same address, can only change the scheme: HTTP → HTTPS)").format(location=self.location,
                                                                                          target=self.pod_location)
        return _("`Location: {location}`, the API server's rewrite of the Pod's redirect to `{target}`").format(
            location=self.location, target=self.pod_location)


def redirect(location: str, namespace: str, target: str, asked: str) -> Redirect:
    u = urllib.parse.urlsplit(location)
    prefix = proxy_prefix(namespace, target)
    if u.path == prefix or u.path.startswith(prefix + "/"):
        rest = u.path[len(prefix):] or "/"
        pod_location = rest + (f"?{u.query}" if u.query else "")
        if u.scheme:  # to the API server's own host: the scheme is the Pod's
            return Redirect(location, f"{u.scheme}://…{pod_location}", True, u.scheme.lower() == "https")
        same = pod_location == "/" + asked.lstrip("/")
        return Redirect(location, pod_location, True, same, inferred=same)
    return Redirect(location, location, False, u.scheme.lower() == "https")
