"""The load balancer's health check gets a 200 from the serving Pods.

The load balancer's health check is not the kubelet's readiness probe. The GKE Ingress controller
derives it from a BackendConfig (`cloud.google.com/backend-config` on the Service, its
`spec.healthCheck`: requestPath, port, type), else from the serving container's readinessProbe
(httpGet path and scheme, when it probes the serving port), else it is `GET /` on the serving port.
Only a 200 counts as healthy. The kubelet counts any 2xx or 3xx as ready, so a Pod that redirects
plain HTTP to HTTPS is Ready and yet UNHEALTHY for the load balancer: the classic case is
argocd-server, which answers `/healthz` on 8080 with `307 Temporary Redirect` to
`https://…/healthz`. Behind a load balancer that terminates TLS, such a server should serve plain
HTTP (`--insecure` for argocd-server), or the health check should be pointed (BackendConfig) at a
request that answers 200.

Once the load balancer exists, the check reads its health check from Compute Engine (the backend
service's, named like it: path, port, protocol as created). The controller copies the readinessProbe
only when it creates the health check and does not follow later changes, so a health check whose
path or protocol differs from today's probe is reported. Before the load balancer exists, the check
uses the health check the controller will create.

The check sends the health check's request to one serving Pod through the API server's pod proxy
and never follows a redirect: the redirect is the finding. The API server rewrites a redirect to the
Pod's own address (or to a host-relative path) into its proxy path and drops the scheme; a redirect
back to the very path that was asked for, on the Pod's own address, is then the HTTP → HTTPS redirect
of the field report. No readinessProbe is a warning, because the health check then falls back to
`GET /`, which many applications do not answer with 200. Where the bot may not read the health check
from Compute Engine, that is an ERROR naming the permission, never OK.
"""
from __future__ import annotations

from dataclasses import dataclass

import functools

from checks.gateway import ApiError
from checks.i18n import N_, _, sentences
from checks.ingress import (HC_SPECS, Redirect, all_backends, backend_config_name, backend_refs, health_check,
                            lb_backend_for, lb_health_check, lb_services, live_health_check, meta, proxy_prefix,
                            redirect, targets)
from checks.model import inline, quote

ID = "ingress/health-check-path"
TITLE = N_("The load balancer's health check gets 200 from the serving Pods")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/ingress-health-checks"
COMMANDS = ("ingress",)
ORDER = 50
CLUSTER_LEVEL = False
SEED = "000 はまったところ(2) - ヘルスチェック"
GCPDIAG = "lb/unhealthy-backends"


@dataclass
class Answer:
    code: int
    location: str
    text: str
    redirect: Redirect | None = None


def request(ctx, ns: str, target: str, path: str) -> Answer:
    """GET path on Pod target (`POD:PORT` or `https:POD:PORT`) through the pod proxy; no redirect followed."""
    try:
        got = ctx.gw.pod_proxy(ctx.ref, ns, target, path)
        return Answer(got.status, "", inline(got.body))
    except ApiError as err:
        status = err.kube_status  # the API server's own Status: about the bot's request, not the app
        if err.status == "UNREACHABLE" or (status and (err.code in (401, 403, 429) or (
                err.code == 404 and (status.get("details") or {}).get("kind") == "pods"))):
            raise  # the bot's own problem, not the application's answer
        # what the Pod answers is the tenant's text: made safe for code spans here (see checks.model.inline)
        location = inline(next((v for k, v in err.headers.items() if k.lower() == "location"), ""), 300)
        return Answer(err.code, location, inline(err.message),
                      redirect(location, ns, target, path) if location else None)


def backend_config_fix(b, hc, scheme: str = "HTTP", path: str = "/healthz",
                       comment: str = "a path that answers 200 to plain HTTP") -> str:
    """How to point the health check elsewhere with a BackendConfig (a phrase that follows "or")."""
    ns, svc, name = b.ref.namespace, b.ref.service, backend_config_name(b)
    if hc.source.startswith("BackendConfig"):
        return (f"set `spec.healthCheck` of BackendConfig `{name}` (`kubectl edit backendconfig {name} -n {ns}`) to "
                f"`type: {scheme}`, `requestPath: {path}` ({comment}).")
    bc = f"{svc}-hc"
    return (f"point the health check at a request that answers 200 with a BackendConfig:\n```\n"
            f"apiVersion: cloud.google.com/v1\nkind: BackendConfig\nmetadata:\n  name: {bc}\n  namespace: {ns}\n"
            f"spec:\n  healthCheck:\n    type: {scheme}\n    requestPath: {path}   # {comment}\n"
            f"    port: {hc.port}\n```\n```\nkubectl annotate service {svc} -n {ns} "
            f"cloud.google.com/backend-config='{{\"default\": \"{bc}\"}}' --overwrite\n```")


def argocd_fix(pod: dict, container: dict) -> str:
    """The field report's remedy: argocd-server with --insecure (TLS ends at the load balancer)."""
    ns = meta(pod)["namespace"]
    owner = next((o["name"] for o in meta(pod).get("ownerReferences") or [] if o.get("kind") == "ReplicaSet"), "")
    deployment = owner.rsplit("-", 1)[0] if owner else "argocd-server"
    index = [c.get("name") for c in pod["spec"]["containers"]].index(container.get("name"))
    key = "args" if "args" in container else "command" if "command" in container else ""
    flags = "".join(f"\n        - {x}" for x in container.get(key) or [])
    edit = (f": add `--insecure` to its {key} (Deployment `{ns}/{deployment}`):\n```\nspec:\n  template:\n"
            f"    spec:\n      containers:\n      - name: {container.get('name')}\n        {key}:{flags}\n"
            "        - --insecure\n```"
            f"\nIn one command:\n```\nkubectl -n {ns} patch deployment {deployment} --type=json -p "
            f"'[{{\"op\": \"add\", \"path\": \"/spec/template/spec/containers/{index}/{key}/-\", "
            f"\"value\": \"--insecure\"}}]'\n```\n" if key else " with `--insecure`.\n")
    return ("argocd-server serves HTTPS itself and redirects plain HTTP to HTTPS. Behind the load balancer, TLS "
            f"terminates at the load balancer, so argocd-server may serve plain HTTP{edit}"
            "Argo CD releases with the `argocd-cmd-params-cm` ConfigMap read the same setting from it:\n```\n"
            f"kubectl -n {ns} patch configmap argocd-cmd-params-cm --type=merge -p "
            "'{\"data\": {\"server.insecure\": \"true\"}}'\n"
            f"kubectl -n {ns} rollout restart deployment {deployment}\n```")


def is_argocd_server(pod: dict, container: dict | None) -> bool:
    if not container:
        return False
    labels = meta(pod).get("labels") or {}
    return "argocd-server" in (labels.get("app.kubernetes.io/name"), container.get("name")) or \
        "argocd" in container.get("image", "") and "argocd-server" in " ".join(container.get("command", []) +
                                                                              container.get("args", []))


def probe_drift(ctx, b, live, derived, lb):
    """A WARN when the load balancer's health check no longer matches the readinessProbe it was copied from."""
    if not derived.from_probe or (live.path, live.scheme) == (derived.path, derived.scheme):
        return None
    ns, name = b.ref.namespace, live.live.get("name")
    scope = "--global" if lb.scope == "global" else f"--region={lb.scope}"
    kind = {"HTTP": "http", "HTTPS": "https", "HTTP2": "http2"}.get(live.scheme, live.scheme.lower())
    return ctx.warn(
        f"The load balancer's health check `{name}` asks for `{live.scheme} GET {live.path}`, but {derived.source} "
        f"now asks for `{derived.scheme} GET {derived.path}`: the Ingress controller copied the probe when it "
        "created the health check and does not follow later changes to it.",
        "Make the load balancer ask for what the probe asks, explicitly: "
        + backend_config_fix(b, derived, derived.scheme, derived.path, "as the readinessProbe")
        + f"\nOr change the health check in place (the controller does not copy the probe again):\n```\n"
          f"gcloud compute health-checks update {kind} {name} {scope} --project={ctx.ref.project} "
          f"--request-path={derived.path}\n```",
        evidence=(f"`gcloud compute health-checks describe {name} {scope} --project={ctx.ref.project}`: type "
                  f"{live.scheme}, requestPath {live.path}; `kubectl get pods -n {ns}` readinessProbe.httpGet: "
                  f"{derived.scheme} {derived.path}"),
        resource=f"Service {b.ref}", gcpdiag="")


def the_health_check(ctx, b, ings) -> tuple:
    """(health check, findings about reading it): the load balancer's own when it exists, else the one the
    controller will create; findings: an ERROR for what the bot may not read, a WARN for probe drift."""
    derived = health_check(ctx, b)
    for ing in ings:
        lb = lb_backend_for(ctx, ing, b)
        if lb is None:
            continue
        hc, err = lb_health_check(ctx, lb)
        err = lb.error if err is None and hc is None and lb.error is not None else err
        if err is not None and err.not_found:  # not built (yet): the controller will create `derived`
            return derived, [], False
        if err is not None:
            return derived, [ctx.error(err, resource=f"Service {b.ref}")], True
        live = live_health_check(hc, b)
        if live is None:
            return derived, [], False
        drift = probe_drift(ctx, b, live, derived, lb)
        return live, [drift] if drift else [], False
    return derived, [], False


def one(ctx, b, ings):
    pod, container, number = b.serving()
    resource, ns = f"Service {b.ref}", b.ref.namespace
    if pod is None:
        return [ctx.fail(f"No running Pod of Service `{b.ref.namespace}/{b.ref.service}` has a container port "
                         f"`{b.target_port}` (the Service's targetPort): nothing can answer the health check.",
                         "Make the Service's `targetPort` name or number a port the Pods' containers declare "
                         f"(`kubectl get pods -n {ns} -l {b.selector} -o yaml`).", resource=resource)]
    hc, notes, unread = the_health_check(ctx, b, ings)
    if hc.scheme not in HC_SPECS:
        return notes + [ctx.skip(f"The load balancer's health check `{(hc.live or {}).get('name')}` is of type "
                                 f"{hc.scheme}, which the bot does not send; it checks HTTP, HTTPS and HTTP2 health "
                                 "checks.", resource=resource)]
    got = answer(ctx, b, pod, container, hc)
    if unread and got.status.value == "OK":
        return notes  # the request the controller would derive answers 200, but the real health check is unknown
    return notes + [got]


def answer(ctx, b, pod, container, hc):
    ns, name, resource = b.ref.namespace, meta(pod)["name"], f"Service {b.ref}"
    target = f"{name}:{hc.port}" if hc.scheme == "HTTP" else f"https:{name}:{hc.port}"
    got = request(ctx, ns, target, hc.path)
    what = f"The health check is `{hc.scheme} GET {hc.path}` on port {hc.port} (from {hc.source})"
    asked = f"GET {proxy_prefix(ns, target)}/{hc.path.lstrip('/')}"
    evidence = (f"`{asked}` (redirects not followed) → "
                + (f"{got.code}, Location: `{got.location}`" if got.location else
                   f"{got.code}" + (f" {quote(got.text, 160)}" if got.code != 200 else "")))
    say = dict(evidence=evidence, resource=resource)
    if got.code == 200 and hc.default:
        return ctx.warn(f"{what}: with no usable readinessProbe to take it from, the controller asks for `/`, "
                        f"which Pod `{name}` answers with 200 today. If `/` ever needs a login or redirects, the "
                        "load balancer marks the backend UNHEALTHY.",
                        f"Give the container a readinessProbe (httpGet) on port {hc.port} with a cheap path that "
                        "answers 200 (the controller reads it when it creates the health check), or "
                        + backend_config_fix(b, hc), **say)
    if got.code == 200:
        return ctx.ok(f"{what}: Pod `{name}` answers 200.", **say)
    if 300 <= got.code < 400:
        moved = got.redirect or Redirect(got.location, got.location, False, False)
        https = moved.https
        fix = (argocd_fix(pod, container) + "\nOr " if is_argocd_server(pod, container) else
               f"Serve `{hc.path}` as plain HTTP with 200 on port {hc.port}: behind the load balancer TLS terminates "
               "at the load balancer, so the application need not redirect there. Or ")
        alt = (backend_config_fix(b, hc, "HTTPS", hc.path, "over TLS: load-balancer health checks do not verify "
                                  "the certificate") if https else backend_config_fix(b, hc))
        return ctx.fail(f"{what}, and Pod `{name}` answers {got.code} with {moved.describe()}: the "
                        f"health endpoint redirects{' (to HTTPS)' if https else ''}; load-balancer health checks need "
                        "200, so the backend stays UNHEALTHY. (The kubelet's readiness probe counts a 3xx as "
                        "success, which is why the Pod is Ready anyway.)", fix + alt, **say)
    return ctx.fail(f"{what}, and Pod `{name}` answers {got.code} ({quote(got.text)}). Load-balancer "
                    "health checks need 200, so the backend stays UNHEALTHY"
                    + (": without a usable readinessProbe the controller asks for `/`." if hc.default else "."),
                    f"Make `{hc.path}` on port {hc.port} answer 200 without authentication, or "
                    + backend_config_fix(b, hc), **say)


def run(ctx):
    t = targets(ctx)
    if not t.ingresses:
        return ctx.skip(t.note)
    # the Pods and the load balancer's backend services with their health checks, in one round
    backends, *_lbs = ctx.gw.parallel(lambda: all_backends(ctx, t.ingresses),
                                   *[functools.partial(lb_services, ctx, ing) for ing in t.ingresses])
    usable = [b for b in backends if b.port and b.pods and b.type != "ExternalName"]
    if not usable:
        return ctx.skip("No backend Service with running Pods to send the health check to (see "
                        "ingress/backend-services).")
    mine = {b.ref: [ing for ing in t.ingresses if b.ref in backend_refs(ing)] for b in usable}
    return [f for got in ctx.gw.parallel(*[functools.partial(one, ctx, b, mine[b.ref]) for b in usable]) for f in got]
