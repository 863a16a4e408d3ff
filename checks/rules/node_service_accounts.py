"""Every node service account exists, is enabled and has the permissions of roles/container.defaultNodeServiceAccount.

Nodes run as their pool's service account (`config.serviceAccount`; `default` means the Compute
Engine default service account `PROJECT_NUMBER-compute@developer.gserviceaccount.com`; Autopilot and
node auto-provisioning use `autoscaling.autoprovisioningNodePoolDefaults.serviceAccount`). When that
account was deleted or disabled, or lacks the minimum node permissions, creating the cluster or its
nodes fails with "Error 403: Retry budget exhausted: Google Compute Engine: Required permission
'PERMISSION_NAME' for 'RESOURCE_NAME'", and running nodes cannot write logs and metrics. The fix is
a service account with every permission GKE nodes need: grant it
roles/container.defaultNodeServiceAccount (a node pool's account cannot be changed in place; to use
another account, create a new pool with `--service-account`).

The check expands the account's project-level role bindings (predefined and custom
`projects/P/roles/X` roles) into permissions. Conditional bindings are not counted, and grants
inherited from folders or the organization, or made to a group the account belongs to, are not
visible to it.
"""
from __future__ import annotations

from checks.gateway import ApiError
from checks.iam import grant_command, roles_of, sa_project
from checks.rules.default_accounts import account_problem, compute_default_sa

ID = "gke/node-service-account"
TITLE = "Node service accounts are usable and hold the node permissions"
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/how-to/service-accounts"
COMMANDS = ("why-403",)
ORDER = 35
NODE_ROLE = "roles/container.defaultNodeServiceAccount"
# The role's permissions as documented, should its definition be unreadable.
NODE_PERMISSIONS = ("autoscaling.sites.writeMetrics", "logging.logEntries.create",
                    "monitoring.metricDescriptors.create", "monitoring.metricDescriptors.list",
                    "monitoring.timeSeries.create", "monitoring.timeSeries.list")
RETRY_BUDGET = ("Error 403: Retry budget exhausted: Google Compute Engine: "
                "Required permission 'PERMISSION_NAME' for 'RESOURCE_NAME'")


def node_accounts(cluster, number: str) -> dict[str, list[str]]:
    """Node service account email -> the pools (or autoprovisioning defaults) that run as it."""
    users = [(p.name, p.config.service_account) for p in cluster.node_pools]
    if cluster.autopilot.enabled or cluster.autoscaling.enable_node_autoprovisioning or not users:
        users.append(("autoprovisioning defaults" + (" (Autopilot)" if cluster.autopilot.enabled else ""),
                      cluster.autoscaling.autoprovisioning_node_pool_defaults.service_account))
    out: dict[str, list[str]] = {}
    for who, email in users:
        out.setdefault(email if email and email != "default" else compute_default_sa(number), []).append(who)
    return out


def _permissions(ctx, policy, member: str) -> tuple[set[str], list[str], list[str]]:
    """(granted permissions, unconditional roles, notes) of `member`'s project-level bindings."""
    perms: set[str] = set()
    roles, notes = [], []
    for b in roles_of(policy, [member]):
        if b.condition:
            notes.append(f"`{b.role}` (only with condition '{b.condition}', not counted)")
            continue
        role = ctx.gw.role(b.role)
        if role is None:
            notes.append(f"`{b.role}` (the role no longer exists)")
            continue
        roles.append(b.role)
        perms.update(role.get("includedPermissions", []))
    return perms, roles, notes


def _quietly(fn, *args):
    try:
        return fn(*args)
    except ApiError:
        return None


def run(ctx):
    project = ctx.ref.project
    gw = ctx.gw
    cluster, number, policy, node_role = gw.parallel(
        lambda: gw.cluster(ctx.ref), lambda: gw.project_number(project), lambda: gw.project_iam_policy(project),
        lambda: gw.role(NODE_ROLE))
    required = set((node_role or {}).get("includedPermissions") or NODE_PERMISSIONS)
    accounts = node_accounts(cluster, number)
    # Every account and every role its bindings name, fetched at once (memoised for the loop below).
    # (Errors are memoised too and surface per account below, so one unreadable account hides no other.)
    gw.parallel(*[lambda e=e: _quietly(gw.service_account, e, sa_project(e, project)) for e in accounts],
                *[lambda r=b.role: _quietly(gw.role, r)
                  for b in roles_of(policy, [f"serviceAccount:{e}" for e in accounts]) if not b.condition])
    out, fine = [], []
    for email, pools in accounts.items():
        member, used_by = f"serviceAccount:{email}", ", ".join(f"`{p}`" for p in pools)
        resource = f"projects/{sa_project(email, project)}/serviceAccounts/{email}"
        try:
            problem = account_problem(ctx, email, sa_project(email, project))
            perms, roles, notes = _permissions(ctx, policy, member)
        except ApiError as err:
            out.append(ctx.error(err, resource=resource))
            continue
        if problem:
            what, remedy, evidence = problem
            out.append(ctx.fail(
                f"The node service account of {used_by} {what} Nodes cannot be created or repaired; GKE reports "
                f"`{RETRY_BUDGET}`.", remedy, evidence=evidence, resource=resource))
            continue
        missing = sorted(required - perms)
        if NODE_ROLE in roles or not missing:
            fine.append(f"`{email}` ({used_by})")
            continue
        held = ", ".join(f"`{r}`" for r in roles) or "no unconditional role"
        out.append(ctx.fail(
            f"The node service account `{email}` of {used_by} lacks {len(missing)} of the {len(required)} "
            f"permissions of `{NODE_ROLE}`: " + ", ".join(f"`{p}`" for p in missing) + ". Node creation fails with "
            f"`{RETRY_BUDGET}`, and nodes cannot write logs and metrics. (Grants inherited from folders, the "
            "organization or groups are not visible to the bot.)",
            f"Grant the node role:\n```\n{grant_command(project, member, NODE_ROLE)}\n```",
            evidence=f"`gcloud projects get-iam-policy {project}` gives `{member}`: {held}"
                     + (f"; also {', '.join(notes)}" if notes else "") + ".",
            resource=resource))
    if not out:
        out.append(ctx.ok("These node service accounts exist, are enabled and hold the node permissions: "
                          + ", ".join(fine) + "."))
    return out
