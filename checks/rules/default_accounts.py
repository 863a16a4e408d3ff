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

from checks.accounts import DELETED, NODE_PERMISSIONS, NODE_ROLE, account_problem, compute_default_sa, node_accounts
from checks.gateway import ApiError
from checks.i18n import N_, _, sentences
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
    command = f"gcloud projects get-iam-policy {project} --flatten=bindings --filter=bindings.role={role}"
    if binding:
        return _("`{command}` shows no unconditional binding for `{member}` (only one with condition "
                 "'{condition}').").format(command=command, member=member, condition=binding.condition)
    return _("`{command}` shows no unconditional binding for `{member}`.").format(command=command, member=member)


def _lacking_node_role(ctx, policy, accounts: dict, required: set) -> list[tuple[str, list[str]]]:
    """The node service accounts (with their pools) that hold neither the node role nor its permissions."""
    lacking = []
    for email, pools in accounts.items():
        perms, roles, _notes = granted(ctx.gw, policy, f"serviceAccount:{email}")
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
        kind, remedy, evidence = problem
        what = (_("The Compute Engine default service account `{email}` does not exist: it was deleted. Node pools "
                  "created without `--service-account` run as this account; cluster creation and node operations fail "
                  "with 400/403 (\"the account has no edit permission\").") if kind == DELETED else
                _("The Compute Engine default service account `{email}` is disabled. Node pools created without "
                  "`--service-account` run as this account; cluster creation and node operations fail with 400/403 "
                  "(\"the account has no edit permission\")."))
        used = (_("Node pools {pools} of the cluster run as it.").format(
            pools=", ".join(f"`{p}`" for p in runs_as_default)) if runs_as_default else "")
        out.append(ctx.fail(
            sentences(what.format(email=compute_sa), used),
            remedy, evidence=evidence, resource=f"projects/{project}/serviceAccounts/{compute_sa}",
            gcpdiag=GCPDIAG_NODE_SA if runs_as_default else ""))
    editor = has_role(policy, compute_member, EDITOR)
    if not problem and (not editor or editor.condition):
        out.append(_editor_missing(ctx, project, compute_sa, policy, cluster, accounts, editor))
    member = f"serviceAccount:{number}@cloudservices.gserviceaccount.com"
    binding = has_role(policy, member, EDITOR)
    if not binding or binding.condition:
        out.append(ctx.fail(
            _("The Google APIs service agent `{member}` lacks `{role}` on project `{project}`: GKE cannot create or "
              "change the nodes' instance groups, so cluster creation and management fail with 400/403 (\"the "
              "account has no edit permission\").").format(member=member, role=EDITOR, project=project),
            _("Grant the role back:\n```\n{command}\n```").format(command=grant_command(project, member, EDITOR)),
            evidence=_no_binding(project, member, EDITOR, binding), resource=f"projects/{project}",
            gcpdiag=GCPDIAG_API_AGENT))
    if out:
        return out
    return ctx.ok(_("`{account}` exists, is enabled and has `{role}`; `{member}` has `{role}` on `{resource}`.").format(
        account=compute_sa, role=EDITOR, member=member, resource=f"projects/{project}"),
        resource=f"projects/{project}", gcpdiag=GCPDIAG_API_AGENT)


def _editor_missing(ctx, project, compute_sa, policy, cluster, accounts, editor):
    """The Compute Engine default account lacks Editor: replaced on purpose (OK), or not (FAIL)."""
    compute_member = f"serviceAccount:{compute_sa}"
    evidence = _no_binding(project, compute_member, EDITOR, editor)
    give_back = _("Give it back the role Google Cloud granted it:\n```\n{command}\n```").format(
        command=grant_command(project, compute_member, EDITOR))
    if isinstance(cluster, ApiError):
        return ctx.warn(
            _("The Compute Engine default service account `{account}` lacks `{role}` on project `{project}`. The bot "
              "could not read the cluster, so it cannot tell whether its node service accounts replace it on purpose "
              "(with the node role); if not, cluster creation and node management fail with 400/403.").format(
                account=compute_sa, role=EDITOR, project=project),
            give_back, evidence=evidence, resource=f"projects/{project}/serviceAccounts/{compute_sa}")
    node_role, _roles = ctx.gw.parallel(lambda: ctx.gw.role(NODE_ROLE),
                                   lambda: prefetch_roles(ctx.gw, policy, [f"serviceAccount:{e}" for e in accounts]))
    required = set((node_role or {}).get("includedPermissions") or NODE_PERMISSIONS)
    lacking = _lacking_node_role(ctx, policy, accounts, required)
    if not lacking:
        return ctx.ok(
            _("`{account}` no longer holds `{role}`: replaced on purpose, since every node service account of "
              "`{cluster}` ({accounts}) holds the permissions of `{node_role}`. New node pools or clusters created "
              "without `--service-account` would run as it: always pass a least-privilege account.").format(
                account=compute_sa, role=EDITOR, cluster=ctx.ref.name, node_role=NODE_ROLE,
                accounts=", ".join(f"`{e}`" for e in accounts)),
            evidence=evidence, resource=f"projects/{project}")
    listed = "; ".join(f"`{e}` (" + ", ".join(f"`{p}`" for p in pools) + ")" for e, pools in lacking)
    grants = "\n".join(grant_command(project, f"serviceAccount:{e}", NODE_ROLE) for e, _pools in lacking)
    return ctx.fail(
        _("The Compute Engine default service account `{account}` lacks `{role}` on project `{project}` (it was "
          "removed or edited), and these node service accounts do not hold the node role's permissions instead: "
          "{accounts}. Cluster creation and node management fail with 400/403 (\"the account has no edit "
          "permission\").").format(account=compute_sa, role=EDITOR, project=project, accounts=listed),
        _("Either: {give_back}\nor, least privilege, grant the node role to the node service accounts:\n```\n"
          "{commands}\n```").format(give_back=give_back, commands=grants),
        evidence=evidence, resource=f"projects/{project}/serviceAccounts/{compute_sa}")


def _cluster(ctx):
    try:
        return ctx.gw.cluster(ctx.ref)
    except ApiError as err:
        return err
