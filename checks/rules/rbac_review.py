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

from checks.access import (KubeAsk, cluster_access, email_of, forbidden_message, google_groups_in_bindings,
                           iam_permission, kube_decisions, project_access, rbac_bindings, rbac_yaml, smallest_role)
from checks.gateway import ApiError
from checks.i18n import N_, _
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
                         f"{ref.get('kind')} `{ref.get('name')}`")
    return found


def _iam_alternative(ctx, principal: str, permission: str) -> str:
    project = ctx.ref.project
    try:
        role = smallest_role(ctx.gw, permission)
    except ApiError as err:
        return f"The IAM alternative could not be looked up ({err.explain()})."
    if not role:
        return (f"No predefined Kubernetes Engine role includes `{permission}`; a custom role can:\n```\n"
                f"gcloud iam roles create k8sAccess --project {project} --permissions={permission}\n"
                f"{grant_command(project, principal, f'projects/{project}/roles/k8sAccess')}\n```")
    return (f"Or, through IAM, `{role}`, which includes `{permission}` (it applies to every cluster and namespace "
            f"of project `{project}`):\n```\n{grant_command(project, principal, role)}\n```")


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
        return ctx.skip(ctx.args.get("principal_note") or
                        "I do not know which Google account is yours: add `--as user:EMAIL`.")
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
    evidence_disc = f"`kubectl api-resources` (discovery) for `{spelled}`"
    if found.served is None:
        return ctx.skip(f"{found.problem} kubectl would warn \"the server doesn't have a resource type\" and RBAC "
                        "has nothing to match.", evidence=evidence_disc + ": no match.")
    res, group, served = found.resource, found.served.group, found.served
    evidence_disc += f": `{served.qualified}` (API group `{group}`, {'namespaced' if served.namespaced else 'cluster-scoped'})"
    notes = []
    if found.others:
        notes.append(f"`{typed}` also names " + ", ".join(f"`{o.qualified}`" for o in found.others)
                     + f"; kubectl takes `{served.qualified}`, as here: write `RESOURCE.GROUP` for another.")
    if spelled.partition("/")[0] not in (served.resource, served.qualified):
        notes.append(f"`{spelled.partition('/')[0]}` is `{served.qualified}`.")
    ns = ns_given
    if ns and not served.namespaced:
        ns = ""
        notes.append(f"`{served.resource}` are cluster-scoped, so `-n {ns_given}` does not apply.")
    permission = iam_permission(res, verb, group)
    groups_on = ctx.gw.cluster(ctx.ref).authenticator_groups_config.enabled
    candidates = google_groups_in_bindings(bindings) if groups_on and not is_group else ()
    ask = KubeAsk(verb, res, ns, group)
    decision, iam_alternative = ctx.gw.parallel(
        lambda: kube_decisions(ctx.gw, ctx.ref, principal, [ask], candidates)[0],
        lambda: _iam_alternative(ctx, principal, permission))
    review = decision.review
    scope = f"in namespace `{ns}`" if ns else "cluster-wide"
    what = f"`{verb} {res}{'.' + group if group else ''}` {scope}"
    subject = f"groups={email},system:authenticated" if is_group else f"user={email} groups=system:authenticated"
    asked = (f"{evidence_disc}\nSubjectAccessReview {subject} {what}: allowed={str(review['allowed']).lower()}"
             + "".join(f", {k}={review[k]!r}" for k in ("reason", "evaluationError") if review[k]))
    if decision.group_review is not None:
        asked += (f"\nSubjectAccessReview with the Google groups bindings name ({', '.join(decision.groups)}): "
                  f"allowed={str(decision.group_review['allowed']).lower()}")
    if not isinstance(decision.iam, ApiError) and decision.iam is not None:
        asked += f"\nIAM `{permission}` on the cluster: {decision.iam.access} (according to {decision.iam.source})"
    extra = (" " + " ".join(notes)) if notes else ""
    groups_off = is_group and not groups_on
    enable_groups = (f"Google Groups for RBAC is off on `{ctx.ref.name}`, so bindings to Google groups do not reach "
                     "their members. Nest the group in `gke-security-groups@YOUR_DOMAIN` and turn it on:\n```\n"
                     f"gcloud container clusters update {ctx.ref.name} --location={ctx.ref.location} "
                     f"--project={ctx.ref.project} --security-group=gke-security-groups@YOUR_DOMAIN\n```")
    if decision.allowed:
        by = decision.explain()
        if groups_off and decision.by_rbac:
            return ctx.warn(f"RBAC lets group `{email}` {what} on `{ctx.ref.name}` ({by}), but its members do not "
                            f"get it.{extra}", enable_groups, evidence=asked)
        return ctx.ok(f"`{principal}` may {what} on `{ctx.ref.name}`: {by}.{extra}", evidence=asked)
    bound = naming(bindings, kind, email)
    bound_text = (f"Bindings that name {kind} `{email}` (none allows this): " + "; ".join(bound) + "."
                  if bound else f"No RoleBinding or ClusterRoleBinding names {kind} `{email}`.")
    caveat = (" A Google group is asked as the group (with `system:authenticated`): RBAC decides; IAM roles granted "
              "to the group apply to its members." if is_group else "")
    message = forbidden_message("MEMBER_EMAIL" if is_group else email, verb, res, ns, group, permission)
    fix = (f"Grant it with Kubernetes RBAC (a cluster admin runs `kubectl apply -f rbac.yaml` on `{ctx.ref.name}`):\n"
           f"```\n{rbac_yaml(email, res, [verb], ns, group, kind)}\n```\n"
           + iam_alternative + (f"\n{enable_groups}" if groups_off else ""))
    if decision.unknown:
        return ctx.warn(
            f"`{principal}` may {what} on `{ctx.ref.name}` only through a Google group: {decision.explain()}. "
            f"If the membership is missing, kubectl says:\n```\n{message}\n```\n{bound_text}"
            + (f" {unread}" if unread else "") + extra,
            "Check the membership (`gcloud identity groups memberships check-transitive-membership`), or " +
            fix[0].lower() + fix[1:], evidence=asked)
    return ctx.fail(
        f"`{principal}` may not {what} on `{ctx.ref.name}`: {decision.explain()}. kubectl says:\n```\n{message}\n```\n"
        f"{bound_text}{(' ' + unread) if unread else ''}{caveat}" + extra, fix, evidence=asked)
