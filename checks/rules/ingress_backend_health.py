"""The load balancer reports every backend of the Ingress HEALTHY.

The GKE Ingress controller copies the load balancer's view of each backend service into the
Ingress annotation `ingress.kubernetes.io/backends` (a JSON map from backend service name to
HEALTHY, UNHEALTHY or Unknown). An UNHEALTHY backend gets no traffic: clients see 502 errors,
even when the Pods are Ready, because Kubernetes readiness and the load balancer's health check
are different requests (the kubelet counts any 2xx or 3xx as ready; a load balancer health check
needs 200), from different places (the health checkers come from 130.211.0.0/22 and
35.191.0.0/16, through the VPC firewall). Unknown means the load balancer has no result yet, or no
endpoint. The backend names map to Services: `k8s1-…-NAMESPACE-SERVICE-PORT-…` with NEGs,
`k8s-be-NODEPORT--…` with instance groups.
"""
from __future__ import annotations

import json

from checks.ingress import (BACKENDS_ANNOTATION, all_backends, annotations, each_ingress, ingress_class, where)
from checks.model import inline
from checks.names import is_zone

ID = "ingress/backends-healthy"
TITLE = "The load balancer reports the Ingress's backends healthy"
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/concepts/ingress#health_checks"
COMMANDS = ("ingress",)
ORDER = 40
CLUSTER_LEVEL = False


def owner(name: str, backends) -> str:
    """The Service a load-balancer backend name stands for, for people."""
    for b in backends:
        port = b.port or {}
        if (str(port.get("nodePort")) == name.split("-")[2] if name.startswith("k8s-be-")
                else port and f"-{b.ref.namespace}-{b.ref.service}-{port.get('port')}-" in name):
            return f"`{name}` (Service `{b.ref}`)"
    return f"`{name}`"


def one(ctx, ing: dict):
    raw = annotations(ing).get(BACKENDS_ANNOTATION)
    if not raw:
        return ctx.skip(f"The controller has not reported backend health on the Ingress (no `{BACKENDS_ANNOTATION}` "
                        "annotation): its load balancer does not exist yet (see ingress/address).",
                        resource=where(ing))
    try:
        states = json.loads(raw)
    except ValueError:
        return ctx.skip(f"The annotation `{BACKENDS_ANNOTATION}` is not JSON: `{inline(raw)}`.", resource=where(ing))
    evidence = f"`{BACKENDS_ANNOTATION}: {inline(raw, 1500)}`"
    bad = {s: sorted(n for n, v in states.items() if str(v).upper() == s) for s in ("UNHEALTHY", "UNKNOWN")}
    if not bad["UNHEALTHY"] and not bad["UNKNOWN"]:
        return ctx.ok(f"All {len(states)} backend(s) are HEALTHY.", evidence=evidence, resource=where(ing))
    backends = all_backends(ctx, [ing])
    scope = f"--region={ctx.ref.location.rsplit('-', 1)[0] if is_zone(ctx.ref.location) else ctx.ref.location}" \
        if ingress_class(ing) == "gce-internal" else "--global"
    names = bad["UNHEALTHY"] or bad["UNKNOWN"]
    look = "\n".join(f"gcloud compute backend-services get-health {n} {scope} --project={ctx.ref.project}"
                     for n in names)
    remedy = ("See what the health check gets (ingress/health-check-path) and whether the health checkers get "
              f"through the firewall (ingress/firewall). The load balancer's own view, per endpoint:\n```\n{look}\n```")
    if bad["UNHEALTHY"]:
        return ctx.fail(f"The load balancer's health checks fail for {', '.join(owner(n, backends) for n in names)}: "
                        "it sends these backends no traffic, and clients get 502 errors.", remedy,
                        evidence=evidence, resource=where(ing))
    return ctx.warn(f"The load balancer has no health result yet for {', '.join(owner(n, backends) for n in names)} "
                    "(Unknown): it was just created, or it has no endpoint.", remedy,
                    evidence=evidence, resource=where(ing))


def run(ctx):
    return each_ingress(ctx, one)
