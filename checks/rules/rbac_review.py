"""The principal may perform the request: Kubernetes RBAC or IAM allows VERB on RESOURCE.

Inside a GKE cluster every request is authorized twice over: GKE first looks for a Kubernetes RBAC rule
that allows it, then for an IAM permission that does (`container.RESOURCE.VERB`, e.g.
`container.roles.list`, `container.pods.getLogs` for `pods/log`). When neither exists kubectl prints:
Error from server (Forbidden): roles.rbac.authorization.k8s.io is forbidden: User "EMAIL" cannot list
resource "roles" in API group "rbac.authorization.k8s.io" in the namespace "kube-system": requires one
of ["container.roles.list"] permission(s).

The resource is resolved as kubectl resolves it, through the cluster's own discovery (`/api`, `/apis`):
plural, singular, short name or kind, optionally `RESOURCE.GROUP`, with its subresource; `roles` is
`roles.rbac.authorization.k8s.io`. A name several groups serve resolves as kubectl's (core group first)
and the answer says so; an unknown name is answered with the close matches.
The check asks the cluster with a SubjectAccessReview as GKE presents the principal to RBAC (a Google
account's or service account's email as user name, with `system:authenticated`; a Google group as that
group), and IAM (Policy Troubleshooter, else the project policy) for the matching permission, and says
which of the two grants it. With Google Groups for RBAC on, bindings to Google groups are asked about
too: when only such a group (or an IAM grant to a group) would allow it, the bot cannot see the
membership and says so (WARN) instead of "denied". When denied it lists the RoleBindings and
ClusterRoleBindings that name the principal, and proposes the minimal Role + RoleBinding (namespaced
with `-n`, else ClusterRole + ClusterRoleBinding) and, as the IAM alternative, the smallest predefined
Kubernetes Engine role that includes the permission.
"""
from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor

from checks.access import (NO_PRINCIPAL, KubeAsk, cluster_access, email_of, forbidden_message, google_groups_in_bindings,
                           iam_permission, kube_decisions, project_access, rbac_bindings, rbac_yaml, smallest_role)
from checks.gateway import ApiError
from checks.i18n import N_, _, sentences
from checks.iam import grant_command
from checks.kinds import resolve

ID = "rbac/access-review"
TITLE = N_("Kubernetes allows the request (RBAC or IAM)")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication"
COMMANDS = ("rbac",)
ORDER = 10
CLUSTER_LEVEL = False  # depends on the principal
SEED = "002 RBAC と IAM; 認証済みの IAM アカウントでクラスタ内アクションを実行できない"


def naming(bindings: list[dict], kind: str, name: str) -> list[str]:
    """The (Cluster)RoleBindings with a subject `kind` `name`, for people."""
    found = []
    for b in bindings:
        meta, ref = b["metadata"], b.get("roleRef") or {}
        if any((s.get("kind"), s.get("name")) == (kind, name) for s in b.get("subjects") or []):
            where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
            found.append(f"{'RoleBinding' if meta.get('namespace') else 'ClusterRoleBinding'} `{where}` → "
                         f"{ref.get('kind')} `{ref.get('name')}`")  # kinds and names: identifiers
    return found


def _iam_alternative(ctx, principal: str, permission: str) -> str:
    project = ctx.ref.project
    try:
        role = smallest_role(ctx.gw, permission)
    except ApiError as err:
        return _("The IAM alternative could not be looked up ({error}).").format(error=err.explain())
    if not role:
        commands = (f"gcloud iam roles create k8sAccess --project {project} --permissions={permission}\n"
                    + grant_command(project, principal, f"projects/{project}/roles/k8sAccess"))
        return _("No predefined Kubernetes Engine role includes `{permission}`; a custom role can:\n```\n{commands}\n```"
                 ).format(permission=permission, commands=commands)
    return _("Or, through IAM, `{role}`, which includes `{permission}` (it applies to every cluster and namespace of "
             "project `{project}`):\n```\n{command}\n```").format(role=role, permission=permission, project=project,
                                                                   command=grant_command(project, principal, role))


def _warm_iam(ctx, principal: str, permission: str) -> None:
    """Start the IAM facts the answer will need while the cluster is being reached (memoised, so the
    decision later reuses them): the project policy and role definitions, and the troubleshooter's verdict."""
    def quiet(fn):
        try:
            fn()
        except ApiError:
            pass
    ctx.gw.parallel(*[lambda fn=fn: quiet(fn) for fn in (
        lambda: project_access(ctx.gw, ctx.ref.project, principal),
        lambda: cluster_access(ctx.gw, ctx.ref, principal, permission),
        lambda: smallest_role(ctx.gw, permission))])


def run(ctx):
    principal = ctx.principal
    if not principal:
        return ctx.skip(ctx.args.get("principal_note") or _(NO_PRINCIPAL))
    verb, typed, typed_group = ctx.args["verb"], ctx.args["resource"], ctx.args.get("group", "")
    ns_given = ctx.args.get("namespace", "")
    email, is_group = email_of(principal), principal.startswith("group:")
    kind = "Group" if is_group else "User"
    # The IAM side does not need the cluster: it runs while discovery and the bindings are read (its facts
    # are memoised, so the decision below reuses them; the pool is not waited for here).
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iam-warm")
    pool.submit(contextvars.copy_context().run, _warm_iam, ctx, principal, iam_permission(typed, verb, typed_group))
    pool.shutdown(wait=False)
    entries, (bindings, unread) = ctx.gw.parallel(lambda: ctx.gw.discovery(ctx.ref),
                                                  lambda: rbac_bindings(ctx.gw, ctx.ref))
    spelled = typed + (f".{typed_group}" if typed_group else "")
    found = resolve(entries, typed, typed_group)
    evidence_disc = _("`kubectl api-resources` (discovery) for `{resource}`").format(resource=spelled)
    if found.served is None:
        return ctx.skip(sentences(found.problem, _("kubectl would warn \"the server doesn't have a resource type\" and "
                                                   "RBAC has nothing to match.")),
                        evidence=_("{discovery}: no match.").format(discovery=evidence_disc))
    res, group, served = found.resource, found.served.group, found.served
    evidence_disc = (_("{discovery}: `{resource}` (API group `{group}`, namespaced)") if served.namespaced else
                     _("{discovery}: `{resource}` (API group `{group}`, cluster-scoped)")).format(
        discovery=evidence_disc, resource=served.qualified, group=group)
    notes = []
    if found.others:
        notes.append(_("`{typed}` also names {others}; kubectl takes `{resource}`, as here: write `RESOURCE.GROUP` for "
                       "another.").format(typed=typed, others=", ".join(f"`{o.qualified}`" for o in found.others),
                                          resource=served.qualified))
    if spelled.partition("/")[0] not in (served.resource, served.qualified):
        notes.append(_("`{typed}` is `{resource}`.").format(typed=spelled.partition("/")[0], resource=served.qualified))
    ns = ns_given
    if ns and not served.namespaced:
        ns = ""
        notes.append(_("`{resource}` are cluster-scoped, so `-n {namespace}` does not apply.").format(
            resource=served.resource, namespace=ns_given))
    permission = iam_permission(res, verb, group)
    groups_on = ctx.gw.cluster(ctx.ref).authenticator_groups_config.enabled
    candidates = google_groups_in_bindings(bindings) if groups_on and not is_group else ()
    ask = KubeAsk(verb, res, ns, group)
    decision, iam_alternative = ctx.gw.parallel(
        lambda: kube_decisions(ctx.gw, ctx.ref, principal, [ask], candidates)[0],
        lambda: _iam_alternative(ctx, principal, permission))
    review = decision.review
    request = f"{verb} {res}{'.' + group if group else ''}"
    what = (_("`{request}` in namespace `{namespace}`").format(request=request, namespace=ns) if ns else
            _("`{request}` cluster-wide").format(request=request))
    subject = f"groups={email},system:authenticated" if is_group else f"user={email} groups=system:authenticated"
    asked = (f"{evidence_disc}\nSubjectAccessReview {subject} {what}: allowed={str(review['allowed']).lower()}"
             + "".join(f", {k}={review[k]!r}" for k in ("reason", "evaluationError") if review[k]))
    if decision.group_review is not None:
        asked += "\n" + _("SubjectAccessReview with the Google groups bindings name ({groups}): allowed={allowed}").format(
            groups=", ".join(decision.groups), allowed=str(decision.group_review["allowed"]).lower())
    if not isinstance(decision.iam, ApiError) and decision.iam is not None:
        asked += "\n" + _("IAM `{permission}` on the cluster: {access} (according to {source})").format(
            permission=permission, access=decision.iam.access, source=decision.iam.source)
    extra = sentences(*notes)
    groups_off = is_group and not groups_on
    enable_groups = _("Google Groups for RBAC is off on `{cluster}`, so bindings to Google groups do not reach their "
                      "members. Nest the group in `gke-security-groups@YOUR_DOMAIN` and turn it on:\n```\n{command}\n"
                      "```").format(cluster=ctx.ref.name,
                                    command=f"gcloud container clusters update {ctx.ref.name} --location={ctx.ref.location} "
                                            f"--project={ctx.ref.project} --security-group=gke-security-groups@YOUR_DOMAIN")
    names = dict(principal=principal, what=what, cluster=ctx.ref.name)
    if decision.allowed:
        by = decision.explain()
        if groups_off and decision.by_rbac:
            return ctx.warn(sentences(_("RBAC lets group `{group}` {what} on `{cluster}` ({by}), but its members do not "
                                        "get it.").format(group=email, by=by, **names), extra),
                            enable_groups, evidence=asked)
        return ctx.ok(sentences(_("`{principal}` may {what} on `{cluster}`: {by}.").format(by=by, **names), extra),
                      evidence=asked)
    bound = naming(bindings, kind, email)
    bound_text = (_("Bindings that name {kind} `{subject}` (none allows this): {bindings}.").format(
        kind=kind, subject=email, bindings="; ".join(bound)) if bound else
        _("No RoleBinding or ClusterRoleBinding names {kind} `{subject}`.").format(kind=kind, subject=email))
    caveat = (_("A Google group is asked as the group (with `system:authenticated`): RBAC decides; IAM roles granted to "
                "the group apply to its members.") if is_group else "")
    message = forbidden_message("MEMBER_EMAIL" if is_group else email, verb, res, ns, group, permission)
    fix = (_("Grant it with Kubernetes RBAC (a cluster admin runs `kubectl apply -f rbac.yaml` on `{cluster}`):\n```\n"
             "{yaml}\n```").format(cluster=ctx.ref.name, yaml=rbac_yaml(email, res, [verb], ns, group, kind))
           + "\n" + iam_alternative + (f"\n{enable_groups}" if groups_off else ""))
    if decision.unknown:
        return ctx.warn(
            sentences(_("`{principal}` may {what} on `{cluster}` only through a Google group: {by}. If the membership "
                        "is missing, kubectl says:\n```\n{message}\n```\n{bindings}").format(
                          by=decision.explain(), message=message, bindings=bound_text, **names), unread, extra),
            _("Check the membership (`{command}`), or {fix}").format(
                command="gcloud identity groups memberships check-transitive-membership", fix=fix[0].lower() + fix[1:]),
            evidence=asked)
    return ctx.fail(
        sentences(_("`{principal}` may not {what} on `{cluster}`: {by}. kubectl says:\n```\n{message}\n```\n"
                    "{bindings}").format(by=decision.explain(), message=message, bindings=bound_text, **names),
                  unread, caveat, extra),
        fix, evidence=asked)
