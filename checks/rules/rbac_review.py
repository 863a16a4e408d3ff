"""The principal may perform the request: Kubernetes RBAC or IAM allows VERB on RESOURCE.

Inside a GKE cluster every request is authorized twice over: GKE first looks for a Kubernetes RBAC rule
that allows it, then for an IAM permission that does (`container.RESOURCE.VERB`, e.g.
`container.roles.list`, `container.pods.getLogs` for `pods/log`). When neither exists kubectl prints:
Error from server (Forbidden): roles.rbac.authorization.k8s.io is forbidden: User "EMAIL" cannot list
resource "roles" in API group "rbac.authorization.k8s.io" in the namespace "kube-system": requires one
of ["container.roles.list"] permission(s).

The check asks the cluster with a SubjectAccessReview (a Google account's or service account's
Kubernetes user name is its email; a Google group is asked as the group, which RBAC alone decides, and
whose bindings reach its members only when Google Groups for RBAC is on: else a WARN).
When allowed it says by what, as the API server words it, or which IAM binding grants the permission.
When denied it lists the RoleBindings and ClusterRoleBindings that name the principal, and proposes
the minimal Role + RoleBinding (namespaced with `-n`, else ClusterRole + ClusterRoleBinding) and, as
the IAM alternative, the smallest predefined Kubernetes Engine role that includes the permission.
"""
from __future__ import annotations

from checks.access import (cluster_access, email_of, forbidden_message, iam_permission, rbac_yaml,
                           smallest_role)
from checks.gateway import ApiError
from checks.gateway import kube as kc
from checks.iam import grant_command

ID = "rbac/access-review"
TITLE = "Kubernetes allows the request (RBAC or IAM)"
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication"
COMMANDS = ("rbac",)
ORDER = 10
CLUSTER_LEVEL = False  # depends on the principal
CLUSTER_SCOPED = {"nodes", "namespaces", "persistentvolumes", "clusterroles", "clusterrolebindings", "storageclasses",
                  "customresourcedefinitions", "priorityclasses", "csidrivers", "csinodes", "volumeattachments",
                  "runtimeclasses", "mutatingwebhookconfigurations", "validatingwebhookconfigurations",
                  "certificatesigningrequests", "apiservices", "ingressclasses", "componentstatuses"}
BINDINGS = (kc.CLUSTERROLEBINDINGS_LIST, kc.ROLEBINDINGS_LIST)


def naming(ctx, kind: str, name: str) -> tuple[list[str], str]:
    """The (Cluster)RoleBindings with a subject `kind` `name`, for people; and a note when they are unreadable."""
    found, notes = [], []

    def listing(decl):
        try:
            return ctx.gw.kube_list(ctx.ref, decl)
        except ApiError as err:
            return err
    for items in ctx.gw.parallel(*[lambda b=b: listing(b) for b in BINDINGS]):
        if isinstance(items, ApiError):
            notes.append(f"Bindings could not be listed: {items.explain()}")
            continue
        for b in items:
            meta, ref = b["metadata"], b.get("roleRef") or {}
            if any((s.get("kind"), s.get("name")) == (kind, name) for s in b.get("subjects") or []):
                where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
                found.append(f"{'RoleBinding' if meta.get('namespace') else 'ClusterRoleBinding'} `{where}` → "
                             f"{ref.get('kind')} `{ref.get('name')}`")
    return found, " ".join(notes)


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


def _allowed_by(ctx, principal: str, permission: str, review: dict) -> str:
    if review["reason"]:
        return f"the API server says: {review['reason']}"
    if principal.startswith("group:"):
        return "the API server did not say by what"
    try:
        verdict = cluster_access(ctx.gw, ctx.ref, principal, permission)
    except ApiError as err:
        return f"the API server did not say by what, and IAM could not be read ({err.explain()})"
    if verdict.granted:
        return f"IAM grants `{permission}` through {', '.join(verdict.via)} (according to {verdict.source})"
    return "the API server did not say by what (no RBAC reason, and no IAM binding that shows locally)"


def run(ctx):
    principal = ctx.principal
    if not principal:
        return ctx.skip(ctx.args.get("principal_note") or
                        "I do not know which Google account is yours: add `--as user:EMAIL`.")
    verb, resource, group = ctx.args["verb"], ctx.args["resource"], ctx.args.get("group", "")
    base, _, sub = resource.partition("/")
    ns = ctx.args.get("namespace", "")
    ignored = ""
    if ns and base in CLUSTER_SCOPED and not group:
        ns, ignored = "", f" `{base}` are cluster-scoped, so `-n {ctx.args['namespace']}` does not apply."
    email, is_group = email_of(principal), principal.startswith("group:")
    user, groups = ("", (email,)) if is_group else (email, ("system:authenticated",))
    kind = "Group" if is_group else "User"
    # The review, and what a denial would need (the bindings naming the principal, the IAM alternative),
    # at once: a denial then costs no further round trips.
    review, (found, unread), iam_alternative = ctx.gw.parallel(
        lambda: ctx.gw.subject_access_review(ctx.ref, user=user, verb=verb, resource=base, namespace=ns,
                                             group=group, subresource=sub, groups=groups),
        lambda: naming(ctx, kind, email),
        lambda: _iam_alternative(ctx, principal, iam_permission(resource, verb)))
    permission = iam_permission(resource, verb)
    scope = f"in namespace `{ns}`" if ns else "cluster-wide"
    what = f"`{verb} {resource}{'.' + group if group else ''}` {scope}"
    asked = (f"SubjectAccessReview {'groups' if is_group else 'user'}={email} {what}: "
             f"allowed={str(review['allowed']).lower()}"
             + "".join(f", {k}={review[k]!r}" for k in ("reason", "evaluationError") if review[k]))
    groups_off = is_group and not ctx.gw.cluster(ctx.ref).authenticator_groups_config.enabled
    enable_groups = (f"Google Groups for RBAC is off on `{ctx.ref.name}`, so bindings to Google groups do not reach "
                     "their members. Nest the group in `gke-security-groups@YOUR_DOMAIN` and turn it on:\n```\n"
                     f"gcloud container clusters update {ctx.ref.name} --location={ctx.ref.location} "
                     f"--project={ctx.ref.project} --security-group=gke-security-groups@YOUR_DOMAIN\n```")
    if review["allowed"]:
        by = _allowed_by(ctx, principal, permission, review)
        if groups_off:
            return ctx.warn(f"RBAC lets group `{email}` {what} on `{ctx.ref.name}` ({by}), but its members do not "
                            f"get it.{ignored}", enable_groups, evidence=asked)
        return ctx.ok(f"`{principal}` may {what} on `{ctx.ref.name}`: {by}.{ignored}", evidence=asked)
    bound = (f"Bindings that name {kind} `{email}` (none allows this): " + "; ".join(found) + "."
             if found else f"No RoleBinding or ClusterRoleBinding names {kind} `{email}`.")
    caveat = (" A Google group is asked as the group alone: RBAC decides; IAM roles granted to the group apply to "
              "its members." if is_group else
              " Memberships of Google Groups (Google Groups for RBAC) are not expanded here: ask again with "
              "`--as group:EMAIL` for a group you belong to.")
    message = forbidden_message("MEMBER_EMAIL" if is_group else email, verb, resource, ns, group, permission)
    return ctx.fail(
        f"`{principal}` may not {what} on `{ctx.ref.name}`: neither Kubernetes RBAC nor IAM grants it "
        f"(`{permission}`). kubectl says:\n```\n{message}\n```\n{bound}{(' ' + unread) if unread else ''}{caveat}"
        + ignored,
        f"Grant it with Kubernetes RBAC (a cluster admin runs `kubectl apply -f rbac.yaml` on `{ctx.ref.name}`):\n"
        f"```\n{rbac_yaml(email, resource, [verb], ns, group, kind)}\n```\n"
        + iam_alternative + (f"\n{enable_groups}" if groups_off else ""),
        evidence=asked)
