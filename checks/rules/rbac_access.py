"""Inside the cluster, the asker may get and list namespaces and pods (Kubernetes RBAC or IAM allows it).

Getting into a GKE cluster takes two permissions: IAM `container.clusters.get` to obtain credentials
(see gke/principal-cluster-access), then, for every request, authorization inside the cluster. GKE
first looks for a Kubernetes RBAC rule that allows the request, then for an IAM permission that does
(`container.pods.list` for `kubectl get pods`). When neither exists kubectl prints, for example:
Error from server (Forbidden): pods is forbidden: User "EMAIL" cannot list resource "pods" in API
group "" in the namespace "default": requires one of ["container.pods.list"] permission(s).

The check asks the cluster with SubjectAccessReviews as GKE presents the user to RBAC (the email as
user name, with the group every signed-in Google identity carries, `system:authenticated`) for `get`
and `list` on namespaces (cluster-wide) and on pods (in `default`, or the namespace given), and asks
IAM (Policy Troubleshooter, else the project policy) for the matching `container.*` permission. It
says which of the two grants each request. Where only a Google group the bot cannot see into would
grant it (Google Groups for RBAC, or an IAM grant to a group), it says so instead of "denied". When
something is denied it proposes the minimal Role + RoleBinding (ClusterRole + ClusterRoleBinding for
namespaces), and, as the IAM alternative, Kubernetes Engine Viewer (`roles/container.viewer`), which
reads every object in every cluster of the project.
"""
from __future__ import annotations

from checks.access import (CLUSTER_GET, NO_PRINCIPAL, VIEWER_ROLE, KubeAsk, cluster_access, email_of,
                           forbidden_message, google_groups_in_bindings, kube_decisions, rbac_bindings, rbac_yaml)
from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.iam import grant_command

ID = "gke/principal-rbac"
TITLE = N_("Kubernetes lets you get and list namespaces and pods")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication"
COMMANDS = ("why-403",)
ORDER = 60
CLUSTER_LEVEL = False  # depends on the asker
SEED = "002 RBAC と IAM; 認証済みの IAM アカウントでクラスタ内アクションを実行できない"
VERBS = ("get", "list")


def _iam(ctx):
    try:
        return cluster_access(ctx.gw, ctx.ref, ctx.principal)
    except ApiError as err:  # gke/principal-cluster-access reports it; here it only shapes the advice
        return err


def _google_groups(ctx) -> tuple[str, ...]:
    """Google groups RBAC bindings name, when Google Groups for RBAC lets GKE add them to users."""
    if not ctx.gw.cluster(ctx.ref).authenticator_groups_config.enabled:
        return ()
    return google_groups_in_bindings(rbac_bindings(ctx.gw, ctx.ref)[0])


def run(ctx):
    principal = ctx.principal
    if not principal:
        return ctx.skip(ctx.args.get("principal_note") or _(NO_PRINCIPAL))
    if principal.startswith("group:"):
        return ctx.skip(_("Kubernetes authorizes users, not `{principal}` as such: ask again with `--as user:EMAIL` for "
                          "one of its members.").format(principal=principal))
    user, ns = email_of(principal), ctx.args.get("namespace") or "default"
    asks = [KubeAsk(verb, "namespaces") for verb in VERBS] + [KubeAsk(verb, "pods", ns) for verb in VERBS]
    iam, decisions = ctx.gw.parallel(
        lambda: _iam(ctx), lambda: kube_decisions(ctx.gw, ctx.ref, principal, asks, _google_groups(ctx)))
    evidence = "\n".join(
        f"SubjectAccessReview {user} groups=system:authenticated {d.ask.verb} {d.ask.resource} "
        f"{_scope(d.ask.namespace)}: allowed={str(d.review['allowed']).lower()}"
        + "".join(f", {k}={d.review[k]!r}" for k in ("reason", "evaluationError") if d.review[k])
        + f"; IAM `{d.permission}`: " + (d.iam.access if not isinstance(d.iam, ApiError) else _("unreadable"))
        for d in decisions)
    by = "\n".join(f"• `{d.ask.verb} {d.ask.resource}` {_scope(d.ask.namespace, '`')}: {d.explain()}" for d in decisions)
    denied = [d for d in decisions if not d.allowed and not d.unknown]
    unknown = [d for d in decisions if d.unknown]
    if not denied and not unknown:
        return ctx.ok(_("`{user}` may get and list namespaces (cluster-wide) and pods in `{namespace}`:\n{requests}")
                      .format(user=user, namespace=ns, requests=by), evidence=evidence)
    if isinstance(iam, ApiError):
        iam_note = _("Whether IAM lets `{principal}` get the cluster at all could not be read ({error}).").format(
            principal=principal, error=iam.explain())
    elif iam.granted:
        iam_note = _("IAM lets `{principal}` into the cluster (`{permission}` through {bindings}), but inside it "
                     "neither an RBAC rule nor an IAM permission allows these requests.").format(
            principal=principal, permission=CLUSTER_GET, bindings=", ".join(iam.via))
    else:
        iam_note = _("IAM does not even grant `{principal}` `{permission}` (see gke/principal-cluster-access): "
                     "`{role}` below fixes both.").format(principal=principal, permission=CLUSTER_GET, role=VIEWER_ROLE)
    missing = denied or unknown
    by_res: dict[tuple[str, str], list[str]] = {}
    for d in missing:
        by_res.setdefault((d.ask.resource, d.ask.namespace), []).append(d.ask.verb)
    messages = "\n".join(forbidden_message(user, d.ask.verb, d.ask.resource, d.ask.namespace) for d in missing)
    yaml = "\n---\n".join(rbac_yaml(user, res, verbs, n) for (res, n), verbs in by_res.items())
    fix = _("Grant it with Kubernetes RBAC (a cluster admin runs `kubectl apply -f rbac.yaml` on cluster `{cluster}`):"
            "\n```\n{yaml}\n```\nOr, through IAM, `{role}` (read access to every object in every cluster of project "
            "`{project}`):\n```\n{command}\n```").format(
        cluster=ctx.ref.name, yaml=yaml, role=VIEWER_ROLE, project=ctx.ref.project,
        command=grant_command(ctx.ref.project, principal, VIEWER_ROLE))
    if not denied:
        return ctx.warn(
            _("As far as the bot can see, `{user}` is refused some of these requests; only a Google group it cannot "
              "see into would allow them:\n{requests}\nIf `{user}` is not a member, kubectl says:\n```\n{messages}\n"
              "```").format(user=user, requests=by, messages=messages),
            _("Check the membership (`{command}`), or {fix}").format(
                command="gcloud identity groups memberships check-transitive-membership", fix=fix[0].lower() + fix[1:]),
            evidence=evidence)
    return ctx.fail(
        _("`{user}` is refused {requests}. {iam_note} kubectl then says:\n```\n{messages}\n```\nThe `container.*` "
          "permission it names is the IAM alternative to an RBAC rule. Each request:\n{each}").format(
            user=user, iam_note=iam_note, messages=messages, each=by,
            requests=", ".join(f"`{d.ask.verb} {d.ask.resource}` {_scope(d.ask.namespace, '`')}" for d in denied)),
        fix, evidence=evidence)


def _scope(namespace: str, quote: str = "") -> str:
    if namespace:
        return _("in {namespace}").format(namespace=f"{quote}{namespace}{quote}")
    return _("cluster-wide")
