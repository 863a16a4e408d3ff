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
from checks.i18n import N_, _
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
            return _("Pod `{pod}`").format(pod=f"{meta(pod)['namespace']}/{meta(pod)['name']}")
    node = instance.rsplit("/", 1)[-1] if instance else ""
    return _("node `{node}`").format(node=node) if node else _("no Pod the bot can see")


def group_name(url: str) -> str:
    parts = url.split("/")
    return "/".join(parts[-4:]) if len(parts) >= 4 else url


def one(ctx, ing: dict):
    found, backends = ctx.gw.parallel(lambda: lb_backends(ctx, ing), lambda: all_backends(ctx, [ing]))
    if found is None:
        return ctx.skip(_("The controller has not reported a load balancer for the Ingress (no `{annotation}` "
                          "annotation): it does not exist yet (see ingress/address).").format(
                              annotation=BACKENDS_ANNOTATION), resource=where(ing))
    if not found:
        return ctx.skip(_("The annotation `{annotation}` names no backend service.").format(
            annotation=BACKENDS_ANNOTATION), resource=where(ing))
    scope = f"--region={region(ctx)}" if found[0].scope != "global" else "--global"
    out, unhealthy, unknown, healthy, empty, lines = [], [], [], 0, [], []
    for lb in found:
        if lb.error is not None:
            if lb.error.not_found:
                out.append(ctx.warn(_("The controller names backend service `{name}` on the Ingress, but Compute Engine "
                                      "has none of that name ({error}): the controller is still building the load "
                                      "balancer, or failed to (see ingress/address).").format(
                                          name=lb.name, error=lb.error.message),
                                    resource=where(ing), evidence=f"`{lb.error.call}` → 404"))
            else:
                out.append(ctx.error(lb.error, resource=where(ing)))
            continue
        if not lb.groups:
            empty.append(_("{backend} has no backend at all").format(backend=owner(lb, backends)))
        for group in lb.groups:
            endpoints = lb.negs.get(group)
            if isinstance(endpoints, ApiError):
                out.append(ctx.error(endpoints, resource=where(ing)))
            elif endpoints is not None and not endpoints:
                empty.append(_("{backend}: NEG `{neg}` has no endpoint").format(backend=owner(lb, backends),
                                                                              neg=group_name(group)))
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
                    lines.append(f"{lb.name} {group_name(group)} {ne.get('ipAddress')}:{ne.get('port')} "
                                 + _("(no verdict)"))
    look = "\n".join(f"gcloud compute backend-services get-health {lb.name} {scope} --project={ctx.ref.project}"
                     for lb in found if lb.service is not None)
    if lines:
        evidence = _("`{call}` per backend group:").format(call="backendServices.getHealth") + \
            "\n```\n" + "\n".join(lines) + "\n```"
    else:
        evidence = f"`{BACKENDS_ANNOTATION}: {inline(annotations(ing).get(BACKENDS_ANNOTATION) or '', 1500)}`"
    remedy = _("See what the health check gets (ingress/health-check-path) and whether the health checkers get through "
               "the firewall (ingress/firewall). The load balancer's own view, per endpoint:\n```\n{commands}\n```").format(
        commands=look)
    if unhealthy:
        by_backend: dict[str, list[str]] = {}
        for lb, who in unhealthy:
            by_backend.setdefault(owner(lb, backends), []).append(who)
        which = "; ".join(f"{name}: {', '.join(whos)}" for name, whos in by_backend.items())
        out.append(ctx.fail(_("The load balancer's health checks fail for {endpoints}. It sends UNHEALTHY endpoints no "
                              "traffic; a backend with no healthy endpoint answers 502.").format(endpoints=which),
                            remedy, evidence=evidence, resource=where(ing)))
    if empty:
        out.append(ctx.fail(_("The load balancer has nowhere to send traffic for some backends: {backends}. Clients get "
                              "502 errors. The NEG controller registers only Pods the Service selects and that are "
                              "running (see ingress/backend-services).").format(backends="; ".join(empty)),
                            remedy, evidence=evidence, resource=where(ing)))
    if unknown:
        which = "; ".join(f"{owner(lb, backends)}: {who}" for lb, who in unknown)
        out.append(ctx.warn(_("The load balancer has no health result yet for {endpoints}: the endpoint was just added, "
                              "or its health checks have not run.").format(endpoints=which),
                            remedy, evidence=evidence, resource=where(ing)))
    if not out:
        return ctx.ok(_("All {healthy} endpoint(s) of {count} backend service(s) are HEALTHY.").format(
            healthy=healthy, count=len(found)), evidence=evidence, resource=where(ing))
    return out


def run(ctx):
    return each_ingress(ctx, one)
