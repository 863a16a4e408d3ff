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
from checks.i18n import N_, _
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


PLAIN_HTTP = N_("a path that answers 200 to plain HTTP")


def backend_config_fix(b, hc, scheme: str = "HTTP", path: str = "/healthz", comment: str = "") -> str:
    """How to point the health check elsewhere with a BackendConfig (a phrase that follows "or"). `comment`
    (translated) says what the path is; PLAIN_HTTP by default."""
    ns, svc, name = b.ref.namespace, b.ref.service, backend_config_name(b)
    comment = comment or _(PLAIN_HTTP)
    if hc.from_backend_config:
        return _("set `spec.healthCheck` of BackendConfig `{name}` (`{command}`) to `type: {scheme}`, "
                 "`requestPath: {path}` ({comment}).").format(
            name=name, command=f"kubectl edit backendconfig {name} -n {ns}", scheme=scheme, path=path, comment=comment)
    bc = f"{svc}-hc"
    manifest = (f"apiVersion: cloud.google.com/v1\nkind: BackendConfig\nmetadata:\n  name: {bc}\n  namespace: {ns}\n"
                f"spec:\n  healthCheck:\n    type: {scheme}\n    requestPath: {path}   # {comment}\n"
                f"    port: {hc.port}")
    return _("point the health check at a request that answers 200 with a BackendConfig:\n```\n{manifest}\n```\n"
             "```\n{command}\n```").format(
        manifest=manifest,
        command=f"kubectl annotate service {svc} -n {ns} cloud.google.com/backend-config='{{\"default\": \"{bc}\"}}' "
                "--overwrite")


def argocd_fix(pod: dict, container: dict) -> str:
    """The field report's remedy: argocd-server with --insecure (TLS ends at the load balancer)."""
    ns = meta(pod)["namespace"]
    owner = next((o["name"] for o in meta(pod).get("ownerReferences") or [] if o.get("kind") == "ReplicaSet"), "")
    deployment = owner.rsplit("-", 1)[0] if owner else "argocd-server"
    index = [c.get("name") for c in pod["spec"]["containers"]].index(container.get("name"))
    key = "args" if "args" in container else "command" if "command" in container else ""
    flags = "".join(f"\n        - {x}" for x in container.get(key) or [])
    configmap = (f"kubectl -n {ns} patch configmap argocd-cmd-params-cm --type=merge -p "
                 "'{\"data\": {\"server.insecure\": \"true\"}}'\n"
                 f"kubectl -n {ns} rollout restart deployment {deployment}")
    if not key:
        return _("argocd-server serves HTTPS itself and redirects plain HTTP to HTTPS. Behind the load balancer, TLS "
                 "terminates at the load balancer, so argocd-server may serve plain HTTP with `--insecure`.\nArgo CD "
                 "releases with the `argocd-cmd-params-cm` ConfigMap read the same setting from it:\n```\n{commands}\n"
                 "```").format(commands=configmap)
    manifest = (f"spec:\n  template:\n    spec:\n      containers:\n      - name: {container.get('name')}\n"
                f"        {key}:{flags}\n        - --insecure")
    patch = (f"kubectl -n {ns} patch deployment {deployment} --type=json -p "
             f"'[{{\"op\": \"add\", \"path\": \"/spec/template/spec/containers/{index}/{key}/-\", "
             f"\"value\": \"--insecure\"}}]'")
    return _("argocd-server serves HTTPS itself and redirects plain HTTP to HTTPS. Behind the load balancer, TLS "
             "terminates at the load balancer, so argocd-server may serve plain HTTP: add `--insecure` to its {key} "
             "(Deployment `{deployment}`):\n```\n{manifest}\n```\nIn one command:\n```\n{patch}\n```\nArgo CD releases "
             "with the `argocd-cmd-params-cm` ConfigMap read the same setting from it:\n```\n{commands}\n```").format(
        key=key, deployment=f"{ns}/{deployment}", manifest=manifest, patch=patch, commands=configmap)


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
        _("The load balancer's health check `{name}` asks for `{live}`, but {source} now asks for `{probe}`: the Ingress "
          "controller copied the probe when it created the health check and does not follow later changes to it.").format(
            name=name, live=f"{live.scheme} GET {live.path}", source=derived.source,
            probe=f"{derived.scheme} GET {derived.path}"),
        _("Make the load balancer ask for what the probe asks, explicitly: {fix}\nOr change the health check in place "
          "(the controller does not copy the probe again):\n```\n{command}\n```").format(
            fix=backend_config_fix(b, derived, derived.scheme, derived.path, _("as the readinessProbe")),
            command=f"gcloud compute health-checks update {kind} {name} {scope} --project={ctx.ref.project} "
                    f"--request-path={derived.path}"),
        evidence=_("`{describe}`: type {scheme}, requestPath {path}; `{pods}` readinessProbe.httpGet: {probe}").format(
            describe=f"gcloud compute health-checks describe {name} {scope} --project={ctx.ref.project}",
            scheme=live.scheme, path=live.path, pods=f"kubectl get pods -n {ns}",
            probe=f"{derived.scheme} {derived.path}"),
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
        return [ctx.fail(_("No running Pod of Service `{service}` has a container port `{port}` (the Service's "
                           "targetPort): nothing can answer the health check.").format(
                             service=f"{b.ref.namespace}/{b.ref.service}", port=b.target_port),
                         _("Make the Service's `targetPort` name or number a port the Pods' containers declare "
                           "(`{command}`).").format(command=f"kubectl get pods -n {ns} -l {b.selector} -o yaml"),
                         resource=resource)]
    hc, notes, unread = the_health_check(ctx, b, ings)
    if hc.scheme not in HC_SPECS:
        return notes + [ctx.skip(_("The load balancer's health check `{name}` is of type {scheme}, which the bot does not "
                                   "send; it checks HTTP, HTTPS and HTTP2 health checks.").format(
                                       name=(hc.live or {}).get("name"), scheme=hc.scheme), resource=resource)]
    got = answer(ctx, b, pod, container, hc)
    if unread and got.status.value == "OK":
        return notes  # the request the controller would derive answers 200, but the real health check is unknown
    return notes + [got]


def answer(ctx, b, pod, container, hc):
    ns, name, resource = b.ref.namespace, meta(pod)["name"], f"Service {b.ref}"
    target = f"{name}:{hc.port}" if hc.scheme == "HTTP" else f"https:{name}:{hc.port}"
    got = request(ctx, ns, target, hc.path)
    what = _("The health check is `{request}` on port {port} (from {source})").format(
        request=f"{hc.scheme} GET {hc.path}", port=hc.port, source=hc.source)
    asked = f"GET {proxy_prefix(ns, target)}/{hc.path.lstrip('/')}"
    if got.location:
        answered = f"{got.code}, Location: `{got.location}`"
    else:
        answered = f"{got.code}" + (f" {quote(got.text, 160)}" if got.code != 200 else "")
    evidence = _("`{request}` (redirects not followed) → {answer}").format(request=asked, answer=answered)
    say = dict(evidence=evidence, resource=resource)
    if got.code == 200 and hc.default:
        return ctx.warn(_("{what}: with no usable readinessProbe to take it from, the controller asks for `/`, which Pod "
                          "`{pod}` answers with 200 today. If `/` ever needs a login or redirects, the load balancer "
                          "marks the backend UNHEALTHY.").format(what=what, pod=name),
                        _("Give the container a readinessProbe (httpGet) on port {port} with a cheap path that answers "
                          "200 (the controller reads it when it creates the health check), or {fix}").format(
                            port=hc.port, fix=backend_config_fix(b, hc)), **say)
    if got.code == 200:
        return ctx.ok(_("{what}: Pod `{pod}` answers 200.").format(what=what, pod=name), **say)
    if 300 <= got.code < 400:
        moved = got.redirect or Redirect(got.location, got.location, False, False)
        https = moved.https
        alt = (backend_config_fix(b, hc, "HTTPS", hc.path, _("over TLS: load-balancer health checks do not verify the "
                                                             "certificate")) if https else backend_config_fix(b, hc))
        if is_argocd_server(pod, container):
            fix = _("{argocd}\nOr {alternative}").format(argocd=argocd_fix(pod, container), alternative=alt)
        else:
            fix = _("Serve `{path}` as plain HTTP with 200 on port {port}: behind the load balancer TLS terminates at the "
                    "load balancer, so the application need not redirect there. Or {alternative}").format(
                path=hc.path, port=hc.port, alternative=alt)
        facts = dict(what=what, pod=name, code=got.code, location=moved.describe())
        return ctx.fail((_("{what}, and Pod `{pod}` answers {code} with {location}: the health endpoint redirects (to "
                           "HTTPS); load-balancer health checks need 200, so the backend stays UNHEALTHY. (The kubelet's "
                           "readiness probe counts a 3xx as success, which is why the Pod is Ready anyway.)") if https else
                         _("{what}, and Pod `{pod}` answers {code} with {location}: the health endpoint redirects; "
                           "load-balancer health checks need 200, so the backend stays UNHEALTHY. (The kubelet's "
                           "readiness probe counts a 3xx as success, which is why the Pod is Ready anyway.)")).format(
                            **facts), fix, **say)
    facts = dict(what=what, pod=name, code=got.code, text=quote(got.text))
    return ctx.fail((_("{what}, and Pod `{pod}` answers {code} ({text}). Load-balancer health checks need 200, so the "
                       "backend stays UNHEALTHY: without a usable readinessProbe the controller asks for `/`.")
                     if hc.default else
                     _("{what}, and Pod `{pod}` answers {code} ({text}). Load-balancer health checks need 200, so the "
                       "backend stays UNHEALTHY.")).format(**facts),
                    _("Make `{path}` on port {port} answer 200 without authentication, or {fix}").format(
                        path=hc.path, port=hc.port, fix=backend_config_fix(b, hc)), **say)


def run(ctx):
    t = targets(ctx)
    if not t.ingresses:
        return ctx.skip(t.note)
    # the Pods and the load balancer's backend services with their health checks, in one round
    backends, *_lbs = ctx.gw.parallel(lambda: all_backends(ctx, t.ingresses),
                                   *[functools.partial(lb_services, ctx, ing) for ing in t.ingresses])
    usable = [b for b in backends if b.port and b.pods and b.type != "ExternalName"]
    if not usable:
        return ctx.skip(_("No backend Service with running Pods to send the health check to (see "
                          "ingress/backend-services)."))
    mine = {b.ref: [ing for ing in t.ingresses if b.ref in backend_refs(ing)] for b in usable}
    return [f for got in ctx.gw.parallel(*[functools.partial(one, ctx, b, mine[b.ref]) for b in usable]) for f in got]
