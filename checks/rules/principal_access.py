"""The asker holds container.clusters.get on the cluster, so get-credentials and kubectl can start.

`gcloud container clusters get-credentials` (and every kubectl request, through the
gke-gcloud-auth-plugin) first needs the IAM permission `container.clusters.get` on the cluster. Without
it GKE answers: ERROR: (gcloud.container.clusters.get-credentials) ResponseError: code=403,
message=Required "container.clusters.get" permission(s) for "projects/P/locations/L/clusters/C".

The check asks Policy Troubleshooter v3, which also sees group membership, allow policies inherited from
folders and the organization, and IAM deny policies. It has no permission of its own: the bot needs
Security Reviewer (and Deny Reviewer for deny policies) on the organization. When the bot may not use it
(or it is unavailable), the check reads the project IAM policy itself: the bindings that name the asker,
expanded to permissions with each role's definition (predefined, project and organization custom roles;
a custom role marked deleted grants nothing), and says that deny policies were not evaluated.
Conditional bindings are reported, not counted as a grant. The smallest predefined role that grants the
permission is Kubernetes Engine Cluster Viewer (`roles/container.clusterViewer`).
"""
from __future__ import annotations

from checks.access import CLUSTER_GET, LOCAL_LIMITS, NO_PRINCIPAL, SMALLEST_ROLE, cluster_access, describe
from checks.i18n import N_, _, sentences
from checks.iam import grant_command

ID = "gke/principal-cluster-access"
TITLE = N_("You can get the cluster (container.clusters.get)")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors"
COMMANDS = ("why-403", "why-401")
ORDER = 10
CLUSTER_LEVEL = False  # depends on the asker
SEED = "001 エラー 403: 十分な権限がない"


def run(ctx):
    principal = ctx.principal
    if not principal:
        return ctx.skip(ctx.args.get("principal_note") or _(NO_PRINCIPAL))
    v = cluster_access(ctx.gw, ctx.ref, principal)
    names = dict(principal=principal, permission=CLUSTER_GET, cluster=ctx.ref.name, path=ctx.ref.path)
    how = (_("According to {source} ({fallback})").format(source=v.source, fallback=v.fallback.rstrip(".。"))
           if v.fallback else _("According to {source}").format(source=v.source))
    if v.granted:
        return ctx.ok(sentences(
            _("`{principal}` holds `{permission}` on cluster `{cluster}` (`{path}`) through {bindings}. {how}.").format(
                bindings=", ".join(v.via), how=how, **names), v.deny_note))
    if v.denied_by and v.via:
        notes = [_("{how}, it is denied by {policies} (allow bindings that would grant it: {bindings}).").format(
            how=how, policies=", ".join(v.denied_by), bindings=", ".join(v.via))]
    elif v.denied_by:
        notes = [_("{how}, it is denied by {policies}.").format(how=how, policies=", ".join(v.denied_by))]
    else:
        notes = [_("{how}, no binding grants it.").format(how=how)]
    if v.conditional:
        notes.append(_("Conditional bindings that would grant it are not counted: {bindings}.").format(
            bindings=", ".join(v.conditional)))
    if v.local:
        notes += [_("`{principal}` is bound to `{role}`, a role that no longer exists.").format(
            principal=principal, role=r) for r in v.local.missing_roles()]
        notes += [_("`{principal}` is bound to `{role}`, a custom role marked deleted: it grants nothing until "
                    "`gcloud iam roles undelete` restores it (within 7 days).").format(principal=principal, role=r)
                  for r in sorted(v.local.deleted)]
        notes.append(_(LOCAL_LIMITS))
        named = ", ".join(describe(b) for b in v.local.bindings)
        command = f"gcloud projects get-iam-policy {ctx.ref.project}"
        seen = (_("`{command}`: bindings that name `{principal}`: {bindings}; none grants `{permission}` "
                  "unconditionally.") if named else
                _("`{command}`: no binding names `{principal}`.")).format(command=command, bindings=named, **names)
    else:
        seen = _("Policy Troubleshooter: `{access}` for `{principal}`, `{permission}` on `{resource}`.").format(
            access=v.access, resource=v.resource, **names)
    if v.deny_note:
        notes.append(v.deny_note)
    role = SMALLEST_ROLE[CLUSTER_GET]
    remedy = _("Check which account gcloud uses: `gcloud auth list`. Then have a project admin grant the smallest "
               "predefined role that includes `{permission}`, `{role}`:\n```\n{command}\n```").format(
        permission=CLUSTER_GET, role=role, command=grant_command(ctx.ref.project, principal, role))
    if v.denied_by:
        remedy = sentences(remedy, _("A deny policy overrides every allow binding: have its owner exempt the account "
                                     "(`exceptionPrincipals`) first."))
    return ctx.fail(
        sentences(_("`{principal}` lacks `{permission}` on cluster `{cluster}` (`{path}`), so `gcloud container "
                    "clusters get-credentials` and every `kubectl` command are refused with 403.").format(**names),
                  *notes),
        remedy,
        evidence=(f"ERROR: (gcloud.container.clusters.get-credentials) ResponseError: code=403, "
                  f"message=Required \"{CLUSTER_GET}\" permission(s) for \"{ctx.ref.path}\".\n{seen}"))
