"""The load balancer reports every endpoint of the Ingress's backends HEALTHY.

The check reads the load balancer itself from Compute Engine: the backend services the GKE Ingress
controller names in the Ingress annotation `ingress.kubernetes.io/backends` (`k8s1-…` with NEGs,
`k8s-be-NODEPORT--…` with instance groups), then for each backend group the load balancer's verdict
(`backendServices.getHealth`) and, for a NEG, its endpoints (`networkEndpointGroups.listNetworkEndpoints`):
Pod IP and port, which the check maps back to the Pod. An UNHEALTHY endpoint gets no traffic; when no
endpoint of a backend is healthy, clients get 502 errors even though the Pods are Ready, because
Kubernetes readiness and the load balancer's health check are different requests (the kubelet counts any
2xx or 3xx as ready, a load balancer health check needs 200) from different places (the health checkers
come from 130.211.0.0/22 and 35.191.0.0/16, through the VPC firewall). A NEG without endpoints means no
Pod was registered (a selector that matches nothing, or Pods that are not ready). The annotation's own
HEALTHY/UNHEALTHY is only the controller's last copy and is not relied on. Where the bot may not read
these objects, the finding is an ERROR that names the permission, never OK.
"""
from __future__ import annotations

from checks.gateway import ApiError
from checks.i18n import N_, _, sentences
from checks.ingress import (BACKENDS_ANNOTATION, all_backends, annotations, each_ingress, lb_backends, meta,
                            region, where)
from checks.model import inline

ID = "ingress/backends-healthy"
TITLE = N_("The load balancer reports the Ingress's backends healthy")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/concepts/ingress#health_checks"
COMMANDS = ("ingress",)
ORDER = 40
CLUSTER_LEVEL = False
SEED = "000 はまったところ(2) - ヘルスチェック"
GCPDIAG = "lb/unhealthy-backends"


def owner(lb, backends) -> str:
    """The backend service and the Service it stands for, for people."""
    svc, port = lb.describes
    if svc:
        return f"`{lb.name}` (Service `{svc}:{port}`)" if port else f"`{lb.name}` (Service `{svc}`)"
    for b in backends:
        p = b.port or {}
        if (str(p.get("nodePort")) == lb.name.split("-")[2] if lb.name.startswith("k8s-be-")
                else p and f"-{b.ref.namespace}-{b.ref.service}-{p.get('port')}-" in lb.name):
            return f"`{lb.name}` (Service `{b.ref}`)"
    return f"`{lb.name}`"


def endpoint_owner(ip: str, instance: str, backends) -> str:
    for b in backends:
        pod = b.pod_at(ip)
        if pod is not None:
            return f"Pod `{meta(pod)['namespace']}/{meta(pod)['name']}`"
    node = instance.rsplit("/", 1)[-1] if instance else ""
    return f"node `{node}`" if node else "no Pod the bot can see"


def group_name(url: str) -> str:
    parts = url.split("/")
    return "/".join(parts[-4:]) if len(parts) >= 4 else url


def one(ctx, ing: dict):
    found, backends = ctx.gw.parallel(lambda: lb_backends(ctx, ing), lambda: all_backends(ctx, [ing]))
    if found is None:
        return ctx.skip(f"The controller has not reported a load balancer for the Ingress (no `{BACKENDS_ANNOTATION}` "
                        "annotation): it does not exist yet (see ingress/address).", resource=where(ing))
    if not found:
        return ctx.skip(f"The annotation `{BACKENDS_ANNOTATION}` names no backend service.", resource=where(ing))
    scope = f"--region={region(ctx)}" if found[0].scope != "global" else "--global"
    out, unhealthy, unknown, healthy, empty, lines = [], [], [], 0, [], []
    for lb in found:
        if lb.error is not None:
            if lb.error.not_found:
                out.append(ctx.warn(f"The controller names backend service `{lb.name}` on the Ingress, but Compute "
                                    f"Engine has none of that name ({lb.error.message}): the controller is still "
                                    "building the load balancer, or failed to (see ingress/address).",
                                    resource=where(ing), evidence=f"`{lb.error.call}` → 404"))
            else:
                out.append(ctx.error(lb.error, resource=where(ing)))
            continue
        if not lb.groups:
            empty.append(f"{owner(lb, backends)} has no backend at all")
        for group in lb.groups:
            endpoints = lb.negs.get(group)
            if isinstance(endpoints, ApiError):
                out.append(ctx.error(endpoints, resource=where(ing)))
            elif endpoints is not None and not endpoints:
                empty.append(f"{owner(lb, backends)}: NEG `{group_name(group)}` has no endpoint")
            health = lb.health.get(group)
            if isinstance(health, ApiError):
                out.append(ctx.error(health, resource=where(ing)))
                continue
            statuses = (health or {}).get("healthStatus") or []
            seen = {(s.get("ipAddress"), s.get("port")) for s in statuses}
            for s in statuses:
                state = (s.get("healthState") or "").upper()
                who = (f"{s.get('ipAddress')}:{s.get('port')} "
                       f"({endpoint_owner(s.get('ipAddress', ''), s.get('instance', ''), backends)})")
                lines.append(f"{lb.name} {group_name(group)} {s.get('ipAddress')}:{s.get('port')} {state or '-'}")
                if state == "HEALTHY":
                    healthy += 1
                elif state == "UNHEALTHY":
                    unhealthy.append((lb, who))
                else:
                    unknown.append((lb, who))
            for e in endpoints if isinstance(endpoints, list) else []:
                ne = e.get("networkEndpoint") or {}
                if (ne.get("ipAddress"), ne.get("port")) not in seen:
                    who = endpoint_owner(ne.get("ipAddress", ""), ne.get("instance", ""), backends)
                    unknown.append((lb, f"{ne.get('ipAddress')}:{ne.get('port')} ({who})"))
                    lines.append(f"{lb.name} {group_name(group)} {ne.get('ipAddress')}:{ne.get('port')} (no verdict)")
    look = "\n".join(f"gcloud compute backend-services get-health {lb.name} {scope} --project={ctx.ref.project}"
                     for lb in found if lb.service is not None)
    evidence = ("`backendServices.getHealth` per backend group:\n```\n" + "\n".join(lines) + "\n```") if lines else \
        f"`{BACKENDS_ANNOTATION}: {inline(annotations(ing).get(BACKENDS_ANNOTATION) or '', 1500)}`"
    remedy = ("See what the health check gets (ingress/health-check-path) and whether the health checkers get "
              f"through the firewall (ingress/firewall). The load balancer's own view, per endpoint:\n```\n{look}\n```")
    if unhealthy:
        by_backend: dict[str, list[str]] = {}
        for lb, who in unhealthy:
            by_backend.setdefault(owner(lb, backends), []).append(who)
        which = "; ".join(f"{name}: {', '.join(whos)}" for name, whos in by_backend.items())
        out.append(ctx.fail(f"The load balancer's health checks fail for {which}. It sends UNHEALTHY endpoints no "
                            "traffic; a backend with no healthy endpoint answers 502.", remedy,
                            evidence=evidence, resource=where(ing)))
    if empty:
        out.append(ctx.fail("The load balancer has nowhere to send traffic for some backends: " + "; ".join(empty)
                            + ". Clients get 502 errors. The NEG controller registers only Pods the Service selects "
                              "and that are running (see ingress/backend-services).", remedy,
                            evidence=evidence, resource=where(ing)))
    if unknown:
        which = "; ".join(f"{owner(lb, backends)}: {who}" for lb, who in unknown)
        out.append(ctx.warn(f"The load balancer has no health result yet for {which}: the endpoint was just added, "
                            "or its health checks have not run.", remedy, evidence=evidence, resource=where(ing)))
    if not out:
        return ctx.ok(f"All {healthy} endpoint(s) of {len(found)} backend service(s) are HEALTHY.",
                      evidence=evidence, resource=where(ing))
    return out


def run(ctx):
    return each_ingress(ctx, one)
