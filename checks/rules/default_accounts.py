"""The Compute Engine default service account is usable and holds roles/editor (or was replaced on purpose), and the Google APIs service agent holds roles/editor.

When the Compute Engine or Kubernetes Engine API is enabled, Google Cloud creates accounts GKE relies
on: the Compute Engine default service account `PROJECT_NUMBER-compute@developer.gserviceaccount.com`,
with the Editor role on the project (the node service account of every pool created without
`--service-account`), and the Google APIs service agent `PROJECT_NUMBER@cloudservices.gserviceaccount.com`,
with the Editor role too (it creates the nodes' managed instance groups). If either account was deleted
or disabled, or its Editor binding was edited away, cluster creation and every management operation
fail with 400/403 ("the account has no edit permission"). A service account deleted less than 30 days
ago can be undeleted by its unique ID; a disabled one can be enabled again; the binding can be granted
back. Removing Editor from the Compute Engine default service account is also a deliberate hardening
step; that is fine where every node service account of the cluster (the default one included, if a
pool still runs as it) holds the permissions of roles/container.defaultNodeServiceAccount instead.
"""
from __future__ import annotations

from checks.accounts import NODE_PERMISSIONS, NODE_ROLE, account_problem, compute_default_sa, node_accounts
from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.iam import grant_command, granted, has_role, prefetch_roles

ID = "gke/default-accounts"
TITLE = N_("Default GKE accounts exist, are enabled and keep their roles")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors"
COMMANDS = ("why-403",)
ORDER = 30
SEED = "001 エラー 400/403: アカウントに編集権限がない"
GCPDIAG = ""
GCPDIAG_API_AGENT = "gke/ERR/2021_008"  # Google APIs service agent has Editor role
GCPDIAG_NODE_SA = "gke/ERR/2021_012"  # node pool service account exists and is not disabled
EDITOR = "roles/editor"


def _no_binding(project: str, member: str, role: str, binding) -> str:
    return (f"`gcloud projects get-iam-policy {project} --flatten=bindings --filter=bindings.role={role}` shows no "
            f"unconditional binding for `{member}`" + (f" (only one with condition '{binding.condition}')"
                                                       if binding else "") + ".")


def _lacking_node_role(ctx, policy, accounts: dict, required: set) -> list[tuple[str, list[str]]]:
    """The node service accounts (with their pools) that hold neither the node role nor its permissions."""
    lacking = []
    for email, pools in accounts.items():
        perms, roles, _ = granted(ctx.gw, policy, f"serviceAccount:{email}")
        if NODE_ROLE not in roles and not required <= perms:
            lacking.append((email, pools))
    return lacking


def run(ctx):
    project, gw = ctx.ref.project, ctx.gw
    number, policy, cluster = gw.parallel(
        lambda: gw.project_number(project), lambda: gw.project_iam_policy(project), lambda: _cluster(ctx))
    compute_sa = compute_default_sa(number)
    compute_member = f"serviceAccount:{compute_sa}"
    accounts = node_accounts(cluster, number) if not isinstance(cluster, ApiError) else {}
    runs_as_default = accounts.get(compute_sa, [])
    out = []  # (an unreadable cluster matters only to tell a deliberate removal of Editor: see _editor_missing)
    problem = account_problem(ctx, compute_sa, project)
    if problem:
        what, remedy, evidence = problem
        used = (" Node pools " + ", ".join(f"`{p}`" for p in runs_as_default) + " of the cluster run as it."
                if runs_as_default else "")
        out.append(ctx.fail(
            f"The Compute Engine default service account {what} Node pools created without `--service-account` "
            f"run as this account; cluster creation and node operations fail with 400/403 "
            f"(\"the account has no edit permission\").{used}",
            remedy, evidence=evidence, resource=f"projects/{project}/serviceAccounts/{compute_sa}",
            gcpdiag=GCPDIAG_NODE_SA if runs_as_default else ""))
    editor = has_role(policy, compute_member, EDITOR)
    if not problem and (not editor or editor.condition):
        out.append(_editor_missing(ctx, project, compute_sa, policy, cluster, accounts, editor))
    member = f"serviceAccount:{number}@cloudservices.gserviceaccount.com"
    binding = has_role(policy, member, EDITOR)
    if not binding or binding.condition:
        out.append(ctx.fail(
            f"The Google APIs service agent `{member}` lacks `{EDITOR}` on project `{project}`: GKE cannot create "
            "or change the nodes' instance groups, so cluster creation and management fail with 400/403 "
            "(\"the account has no edit permission\").",
            f"Grant the role back:\n```\n{grant_command(project, member, EDITOR)}\n```",
            evidence=_no_binding(project, member, EDITOR, binding), resource=f"projects/{project}",
            gcpdiag=GCPDIAG_API_AGENT))
    if out:
        return out
    return ctx.ok(f"`{compute_sa}` exists, is enabled and has `{EDITOR}`; `{member}` has `{EDITOR}` on "
                  f"`projects/{project}`.", resource=f"projects/{project}", gcpdiag=GCPDIAG_API_AGENT)


def _editor_missing(ctx, project, compute_sa, policy, cluster, accounts, editor):
    """The Compute Engine default account lacks Editor: replaced on purpose (OK), or not (FAIL)."""
    compute_member = f"serviceAccount:{compute_sa}"
    evidence = _no_binding(project, compute_member, EDITOR, editor)
    give_back = f"Give it back the role Google Cloud granted it:\n```\n{grant_command(project, compute_member, EDITOR)}\n```"
    if isinstance(cluster, ApiError):
        return ctx.warn(
            f"The Compute Engine default service account `{compute_sa}` lacks `{EDITOR}` on project `{project}`. "
            "The bot could not read the cluster, so it cannot tell whether its node service accounts replace it on "
            "purpose (with the node role); if not, cluster creation and node management fail with 400/403.",
            give_back, evidence=evidence, resource=f"projects/{project}/serviceAccounts/{compute_sa}")
    node_role, _ = ctx.gw.parallel(lambda: ctx.gw.role(NODE_ROLE),
                                   lambda: prefetch_roles(ctx.gw, policy, [f"serviceAccount:{e}" for e in accounts]))
    required = set((node_role or {}).get("includedPermissions") or NODE_PERMISSIONS)
    lacking = _lacking_node_role(ctx, policy, accounts, required)
    if not lacking:
        return ctx.ok(
            f"`{compute_sa}` no longer holds `{EDITOR}`: replaced on purpose, since every node service account of "
            f"`{ctx.ref.name}` (" + ", ".join(f"`{e}`" for e in accounts) + f") holds the permissions of "
            f"`{NODE_ROLE}`. New node pools or clusters created without `--service-account` would run as it: "
            "always pass a least-privilege account.", evidence=evidence, resource=f"projects/{project}")
    listed = "; ".join(f"`{e}` (" + ", ".join(f"`{p}`" for p in pools) + ")" for e, pools in lacking)
    grants = "\n".join(grant_command(project, f"serviceAccount:{e}", NODE_ROLE) for e, _ in lacking)
    return ctx.fail(
        f"The Compute Engine default service account `{compute_sa}` lacks `{EDITOR}` on project `{project}` (it was "
        f"removed or edited), and these node service accounts do not hold the node role's permissions instead: "
        f"{listed}. Cluster creation and node management fail with 400/403 (\"the account has no edit "
        "permission\").",
        f"Either: {give_back}\nor, least privilege, grant the node role to the node service accounts:\n```\n"
        f"{grants}\n```", evidence=evidence, resource=f"projects/{project}/serviceAccounts/{compute_sa}")


def _cluster(ctx):
    try:
        return ctx.gw.cluster(ctx.ref)
    except ApiError as err:
        return err
