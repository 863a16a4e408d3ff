"""Every backend Service of the Ingress exists, has the port it names, selects running Pods and can be load balanced.

Each Service that an Ingress names (`spec.defaultBackend`, `rules[].http.paths[].backend.service`)
becomes a backend service of the load balancer. It must exist and have the named port; its
selector must match running Pods, or the load balancer has no endpoint and answers 502. A
NodePort (or LoadBalancer) Service works without NEGs: the load balancer sends traffic to the
nodes' instance groups on the nodePort. A ClusterIP Service has no nodePort, so it needs network
endpoint groups (container-native load balancing): the Service annotation
`cloud.google.com/neg: '{"ingress": true}'`, or automatic NEGs, which GKE gives Services only when
all of these hold: the Service was created while the control plane ran GKE 1.17.6-gke.7 or later
(what counts is the version when the Service was created, not today's: GKE decides when it creates the
Service, and then writes the annotation onto it), a VPC-native cluster (`ipAllocationPolicy.useIpAliases`),
no Shared VPC, and no GKE network policy. NEGs themselves always need a VPC-native cluster. A Service
that names a BackendConfig (`cloud.google.com/backend-config`) that does not exist is refused as well.
"""
from __future__ import annotations

import json

from checks.i18n import N_, _
from checks.ingress import (NEG_ANNOTATION, all_backends, annotations, backend_config, backend_config_name,
                            each_ingress, where)
from checks.model import quote

ID = "ingress/backend-services"
TITLE = N_("The Ingress's backend Services exist and can be load balanced")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/how-to/container-native-load-balancing"
COMMANDS = ("ingress",)
ORDER = 30
CLUSTER_LEVEL = False
SEED = "000 コンテナネイティブ負荷分散について"


def problem(ctx, b) -> tuple[str, str, str] | None:
    """(detail, remedy, evidence[, gcpdiag rule]) of what keeps this backend from working, or None."""
    ns, svc, port = b.ref.namespace, b.ref.service, b.ref.port
    shown = f"`kubectl get service {svc} -n {ns} -o yaml`"
    names = dict(service=f"{ns}/{svc}", namespace=ns)
    if b.service is None:
        return (_("Service `{service}`, a backend of the Ingress, does not exist: the controller cannot build the load "
                  "balancer (its events say \"Translation failed\").").format(**names),
                _("Create the Service, or point the Ingress at one that exists (`{command}`).").format(
                    command=f"kubectl get services -n {ns}"),
                f"`kubectl get service {svc} -n {ns}`: NotFound")
    ports = (b.service.get("spec") or {}).get("ports") or []
    listed = ", ".join(f"{p.get('port')}" + (f" ({p['name']})" if p.get("name") else "") for p in ports) or _("none")
    evidence = _("{command}: type {type}, ports {ports}, annotations {annotations}").format(
        command=shown, type=b.type, ports=listed, annotations=quote(json.dumps(annotations(b.service)), 1500))
    if b.port is None:
        return (_("Service `{service}` has no port `{port}`, which the Ingress names (its ports: {ports}).").format(
                    port=port, ports=listed, **names),
                _("Name one of the Service's ports in the Ingress backend, or add the port to the Service."), evidence)
    if b.type == "ExternalName":
        return (_("Service `{service}` is of type ExternalName, which a GCE Ingress cannot use as a backend.").format(
                    **names),
                _("Use a Service that selects the Pods: ClusterIP with NEGs, or NodePort."), evidence)
    bc = backend_config_name(b)
    if bc and backend_config(ctx, b) is None:
        return (_("Service `{service}` names BackendConfig `{backend_config}`, which does not exist in namespace "
                  "`{namespace}`: the controller refuses the backend.").format(backend_config=bc, **names),
                _("Create BackendConfig `{backend_config}` in `{namespace}`, or remove the reference:\n```\n{command}\n```"
                  ).format(backend_config=bc, namespace=ns,
                           command=f"kubectl annotate service {svc} -n {ns} cloud.google.com/backend-config-"),
                evidence)
    if b.type == "ClusterIP" and not b.neg:
        node_port = f"kubectl patch service {svc} -n {ns} -p '{{\"spec\": {{\"type\": \"NodePort\"}}}}'"
        native = ctx.gw.cluster(ctx.ref).ip_allocation_policy.use_ip_aliases
        if native:
            remedy = _("Give it NEGs (container-native load balancing):\n```\n{command}\n```\nor make it a NodePort "
                       "Service:\n```\n{node_port}\n```").format(
                command=f"kubectl annotate service {svc} -n {ns} {NEG_ANNOTATION}='{{\"ingress\": true}}' --overwrite",
                node_port=node_port)
        else:
            remedy = _("NEGs need a VPC-native cluster, which `{cluster}` is not: make it a NodePort Service:\n```\n"
                       "{node_port}\n```").format(cluster=ctx.ref.name, node_port=node_port)
        return (_("Service `{service}` is ClusterIP but gets no NEGs: {why}. Without NEGs the load balancer can reach a "
                  "Service only on a nodePort, which a ClusterIP Service does not have, so the controller refuses this "
                  "backend.").format(why=b.neg_why, **names), remedy, evidence, "" if native else "gke/BP/2023_004")
    if b.selector and not b.pods:
        return (_("Service `{service}` selects no running Pod (selector `{selector}`): the load balancer has no endpoint "
                  "to send traffic to and answers 502.").format(selector=b.selector, **names),
                _("Make the selector match the Pods' labels: `{command}` lists none running; `{labels}` shows what "
                  "there is.").format(command=f"kubectl get pods -n {ns} -l {b.selector}",
                                      labels=f"kubectl get pods -n {ns} --show-labels"), evidence)
    return None


def describe(b) -> str:
    how = (_("NEGs: {why}").format(why=b.neg_why) if b.neg else
           _("instance groups on nodePort {port}").format(port=(b.port or {}).get("nodePort")))
    return _("`{backend}` ({type}, {how}, {count} running Pod(s))").format(backend=b.ref, type=b.type, how=how,
                                                                          count=len(b.pods))


def one(ctx, ing: dict):
    backends = all_backends(ctx, [ing])
    if not backends:
        return ctx.skip(_("The Ingress names no Service backend (only the cluster's default backend)."),
                        resource=where(ing))
    found = [(b, problem(ctx, b)) for b in backends]
    failed = [ctx.fail(p[0], p[1], evidence=p[2], resource=f"{where(ing)} → Service {b.ref}",
                       gcpdiag=p[3] if len(p) > 3 else None)
              for b, p in found if p]
    return failed or ctx.ok(_("Every backend can be load balanced: {backends}.").format(
        backends="; ".join(map(describe, backends))), resource=where(ing))


def run(ctx):
    return each_ingress(ctx, one)
