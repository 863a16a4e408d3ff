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

from checks.accounts import DELETED, NODE_PERMISSIONS, NODE_ROLE, RETRY_BUDGET, account_problem, node_accounts
from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.iam import grant_command, granted, roles_of, sa_project

ID = "gke/node-service-account"
TITLE = N_("Node service accounts are usable and hold the node permissions")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/how-to/service-accounts"
COMMANDS = ("why-403",)
ORDER = 35
SEED = "001 エラー 403: リトライ バジェットが残っていない"
GCPDIAG = "gke/ERR/2024_003"  # node service account permissions fit roles/container.defaultNodeServiceAccount
GCPDIAG_USABLE = "gke/ERR/2021_012"  # node pool service account exists and is not disabled


def _quietly(fn, *args):
    try:
        return fn(*args)
    except ApiError:
        return None


def run(ctx):
    project = ctx.ref.project
    gw = ctx.gw
    cluster, number, policy = gw.parallel(
        lambda: gw.cluster(ctx.ref), lambda: gw.project_number(project), lambda: gw.project_iam_policy(project))
    accounts = node_accounts(cluster, number)
    # The node role, every account and every role its bindings name, fetched at once (memoised for the loop
    # below). (Errors are memoised too and surface per account below, so one unreadable account hides no other.)
    gw.parallel(lambda: _quietly(gw.role, NODE_ROLE),
                *[lambda e=e: _quietly(gw.service_account, e, sa_project(e, project)) for e in accounts],
                *[lambda r=b.role: _quietly(gw.role, r)
                  for b in roles_of(policy, [f"serviceAccount:{e}" for e in accounts]) if not b.condition])
    node_role = gw.role(NODE_ROLE)  # memoised: its error (if any) makes this check an ERROR, as before
    required = set((node_role or {}).get("includedPermissions") or NODE_PERMISSIONS)
    out, fine = [], []
    for email, pools in accounts.items():
        member, used_by = f"serviceAccount:{email}", ", ".join(f"`{p}`" for p in pools)
        resource = f"projects/{sa_project(email, project)}/serviceAccounts/{email}"
        try:
            problem = account_problem(ctx, email, sa_project(email, project))
            perms, roles, notes = granted(ctx.gw, policy, member)
        except ApiError as err:
            out.append(ctx.error(err, resource=resource))
            continue
        if problem:
            kind, remedy, evidence = problem
            what = (_("The node service account of {pools} `{account}` does not exist: it was deleted. Nodes cannot "
                      "be created or repaired; GKE reports `{error}`.") if kind == DELETED else
                    _("The node service account of {pools} `{account}` is disabled. Nodes cannot be created or "
                      "repaired; GKE reports `{error}`."))
            out.append(ctx.fail(what.format(pools=used_by, account=email, error=RETRY_BUDGET), remedy,
                                evidence=evidence, resource=resource, gcpdiag=GCPDIAG_USABLE))
            continue
        missing = sorted(required - perms)
        if NODE_ROLE in roles or not missing:
            fine.append(f"`{email}` ({used_by})")
            continue
        held = ", ".join(f"`{r}`" for r in roles) or _("no unconditional role")
        command = f"gcloud projects get-iam-policy {project}"
        evidence = (_("`{command}` gives `{member}`: {roles}; also {notes}.") if notes else
                    _("`{command}` gives `{member}`: {roles}.")).format(command=command, member=member, roles=held,
                                                                       notes=", ".join(notes))
        out.append(ctx.fail(
            _("The node service account `{account}` of {pools} lacks {missing} of the {required} permissions of "
              "`{role}`: {permissions}. Node creation fails with `{error}`, and nodes cannot write logs and metrics. "
              "(Grants inherited from folders, the organization or groups are not visible to the bot.)").format(
                account=email, pools=used_by, missing=len(missing), required=len(required), role=NODE_ROLE,
                permissions=", ".join(f"`{p}`" for p in missing), error=RETRY_BUDGET),
            _("Grant the node role:\n```\n{command}\n```").format(command=grant_command(project, member, NODE_ROLE)),
            evidence=evidence, resource=resource))
    if not out:
        out.append(ctx.ok(_("These node service accounts exist, are enabled and hold the node permissions: "
                            "{accounts}.").format(accounts=", ".join(fine))))
    return out
