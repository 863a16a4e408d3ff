"""Every GCE Ingress has an address (`status.loadBalancer.ingress`) a few minutes after it is created.

The GKE Ingress controller builds a load balancer for each GCE Ingress and writes its IP address into
`status.loadBalancer.ingress`; that takes a few minutes. An Ingress still without an address after
five minutes is stuck. The controller says why in events on the Ingress (`kubectl describe
ingress`): "Translation failed: …" for a Service or port it cannot find or use, sync errors from the
Compute Engine API, quota errors. When the HTTP load balancing add-on is off, there is no controller
and so no event at all. The check quotes the events verbatim.

An Ingress that sets only `spec.ingressClassName` is never processed by the GKE Ingress controller,
whatever the value (`gce` included): it processes an Ingress only when the annotation
`kubernetes.io/ingress.class` is `gce` or `gce-internal`, or when neither is set. Such an Ingress meant
for GKE (class `gce` or `gce-internal` in the field) fails here, with the patch that fixes it.
"""
from __future__ import annotations

from checks.gateway import kube as kc
from checks.i18n import N_, _, doc_url, sentences
from checks.ingress import CLASS_DOC, age, class_fix, human, ident, ignored_detail, meta, targets, where

ID = "ingress/address"
TITLE = N_("The Ingress has an address")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/how-to/load-balance-ingress"
COMMANDS = ("ingress",)
ORDER = 20
CLUSTER_LEVEL = False
SEED = "000 はまったところ(1) - HTTP 負荷分散の有効化"
GCPDIAG = "gke/ERR/2023_004"
GRACE = 300  # seconds a new Ingress may take to get its address


def events(ctx, ing: dict) -> list[dict]:
    ns, name = meta(ing)["namespace"], meta(ing)["name"]
    selector = f"involvedObject.kind=Ingress,involvedObject.name={name}"
    items = ctx.gw.kube_list(ctx.ref, kc.EVENTS_LIST, ns, field_selector=selector)
    return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or
                  meta(e).get("creationTimestamp") or "")[-10:]


def line(e: dict) -> str:
    """One event as evidence: type, reason, count, source and the controller's message (verbatim)."""
    count = e.get("count") or 1
    source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
    head = f"{e.get('type', '')} {e.get('reason', '')}" + (f" (x{count})" if count > 1 else "")
    if source:
        head = _("{event} from {source}").format(event=head, source=source)
    return f"{head}: {e.get('message', '')}"


def one(ctx, ing: dict):
    name, ns = meta(ing)["name"], meta(ing)["namespace"]
    lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    addresses = [a.get("ip") or a.get("hostname") for a in lb if a.get("ip") or a.get("hostname")]
    if addresses:
        return ctx.ok(_("`{ingress}` has the address {addresses}.").format(ingress=ident(ing),
                                                                         addresses=", ".join(addresses)),
                      resource=where(ing))
    seconds, found = age(ing), events(ctx, ing)
    warnings = [e for e in found if e.get("type") == "Warning"]
    if seconds < GRACE and not warnings:
        return ctx.skip(_("`{ingress}` was created {age} ago and has no address yet: building the load balancer takes a "
                          "few minutes.").format(ingress=ident(ing), age=human(seconds)), resource=where(ing))
    detail = _("`{ingress}` has had no address for {age} (created {created}).").format(
        ingress=ident(ing), age=human(seconds), created=meta(ing)["creationTimestamp"])
    describe = f"kubectl describe ingress {name} -n {ns}"
    if ctx.gw.cluster(ctx.ref).addons_config.http_load_balancing.disabled:
        detail = sentences(detail, _(
            "HTTP load balancing is disabled on the cluster (see ingress/http-lb-addon): the controller that would give "
            "it one does not run, which is also why nothing logs anything.") if not found else _(
            "HTTP load balancing is disabled on the cluster (see ingress/http-lb-addon): the controller that would give "
            "it one does not run."))
        remedy = _("Enable HTTP load balancing on the cluster (ingress/http-lb-addon has the command and a button).")
    elif warnings:
        detail = sentences(detail, _("The Ingress controller reports why in its events (below)."))
        remedy = _("Fix what the controller's events say; the other `ingress/…` findings name the usual causes (a "
                   "missing Service or port, a ClusterIP Service without NEGs, a missing BackendConfig). The controller "
                   "retries by itself; watch it with `{command}`.").format(command=describe)
    else:
        detail = sentences(detail, _("The Ingress controller has recorded no warning on it."))
        remedy = _("Look at `{command}` again in a few minutes; if it stays empty, check the other `ingress/…` findings "
                   "and the project's Compute Engine quotas (forwarding rules, backend services).").format(
            command=describe)
    evidence = (_("`{command}` events:").format(command=describe) + "\n```\n" + "\n".join(map(line, found)) + "\n```"
                if found else _("`{command}` shows no events.").format(command=describe))
    return ctx.warn(detail, remedy, evidence=evidence, resource=where(ing))


def ignored(ctx, ing: dict):
    return ctx.fail(ignored_detail(ing), class_fix(ing), resource=where(ing), gcpdiag="",
                    evidence=_("`{command}`: spec.ingressClassName: {cls}, no kubernetes.io/ingress.class annotation. "
                               "See {doc}").format(command=f"kubectl get ingress {meta(ing)['name']} -n "
                                                           f"{meta(ing)['namespace']} -o yaml",
                                                   cls=(ing.get("spec") or {}).get("ingressClassName"),
                                                   doc=doc_url(CLASS_DOC)))


def run(ctx):
    t = targets(ctx)
    if t.missing:
        return ctx.fail(t.note, _("Name an Ingress that exists: `{command}` lists them.").format(
            command="kubectl get ingress --all-namespaces"))
    out = [ignored(ctx, ing) for ing in t.ignored]
    if not t.ingresses:
        return out or [ctx.skip(t.note)]
    return out + [one(ctx, ing) for ing in t.ingresses]
