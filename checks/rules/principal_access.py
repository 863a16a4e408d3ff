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

from checks.access import CLUSTER_GET, LOCAL_LIMITS, SMALLEST_ROLE, cluster_access, describe
from checks.i18n import N_, _
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
        return ctx.skip(ctx.args.get("principal_note") or
                        "I do not know which Google account is yours: add `--as user:EMAIL`.")
    v = cluster_access(ctx.gw, ctx.ref, principal)
    where = f"cluster `{ctx.ref.name}` (`{ctx.ref.path}`)"
    how = f"According to {v.source}" + (f" ({v.fallback.rstrip('.')})" if v.fallback else "")
    deny = f" {v.deny_note}" if v.deny_note else ""
    if v.granted:
        return ctx.ok(f"`{principal}` holds `{CLUSTER_GET}` on {where} through {', '.join(v.via)}. {how}.{deny}")
    if v.denied_by:
        notes = [f"{how}, it is denied by " + ", ".join(v.denied_by) + (
            f" (allow bindings that would grant it: {', '.join(v.via)})" if v.via else "") + "."]
    else:
        notes = [f"{how}, no binding grants it."]
    if v.conditional:
        notes.append("Conditional bindings that would grant it are not counted: " + ", ".join(v.conditional) + ".")
    if v.local:
        notes += [f"`{principal}` is bound to `{r}`, a role that no longer exists." for r in v.local.missing_roles()]
        notes += [f"`{principal}` is bound to `{r}`, a custom role marked deleted: it grants nothing until "
                  f"`gcloud iam roles undelete` restores it (within 7 days)." for r in sorted(v.local.deleted)]
        notes.append(LOCAL_LIMITS)
        named = ", ".join(describe(b) for b in v.local.bindings)
        seen = f"`gcloud projects get-iam-policy {ctx.ref.project}`: " + (
            f"bindings that name `{principal}`: {named}; none grants `{CLUSTER_GET}` unconditionally." if named
            else f"no binding names `{principal}`.")
    else:
        seen = f"Policy Troubleshooter: `{v.access}` for `{principal}`, `{CLUSTER_GET}` on `{v.resource}`."
    if v.deny_note:
        notes.append(v.deny_note)
    role = SMALLEST_ROLE[CLUSTER_GET]
    unblock = (" A deny policy overrides every allow binding: have its owner exempt the account "
               "(`exceptionPrincipals`) first." if v.denied_by else "")
    return ctx.fail(
        f"`{principal}` lacks `{CLUSTER_GET}` on {where}, so `gcloud container clusters get-credentials` and every "
        "`kubectl` command are refused with 403. " + " ".join(notes),
        f"Check which account gcloud uses: `gcloud auth list`. Then have a project admin grant the smallest "
        f"predefined role that includes `{CLUSTER_GET}`, `{role}`:\n"
        f"```\n{grant_command(ctx.ref.project, principal, role)}\n```{unblock}",
        evidence=(f"ERROR: (gcloud.container.clusters.get-credentials) ResponseError: code=403, "
                  f"message=Required \"{CLUSTER_GET}\" permission(s) for \"{ctx.ref.path}\".\n{seen}"))
