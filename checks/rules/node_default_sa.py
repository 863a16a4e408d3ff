"""GKE nodes don't run as the Compute Engine default service account.

A node pool created without `--service-account` runs as the Compute Engine default service account
`PROJECT_NUMBER-compute@developer.gserviceaccount.com`, which Google Cloud grants the Editor role on the
whole project: far more than nodes need, and every Pod that can reach the metadata server without
Workload Identity gets it too. The least-privilege alternative is a dedicated service account holding
roles/container.defaultNodeServiceAccount (the permissions nodes need to write logs and metrics), given
to new node pools with `--service-account` (a pool's service account cannot be changed in place: create
a new pool, move the workloads, delete the old one). It is a hardening finding (WARN), matching
gcpdiag's gke/SEC/2021_001; the seed's "Retry budget exhausted" section names both options: a
least-privilege account with `--service-account`, or the default account.
"""
from __future__ import annotations

from checks.accounts import compute_default_sa, least_privilege_commands, least_privilege_sa, node_accounts
from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.iam import has_role

ID = "gke/node-default-service-account"
TITLE = N_("Node pools do not run as the Compute Engine default service account")
DOC_URL = ("https://cloud.google.com/kubernetes-engine/docs/how-to/hardening-your-cluster"
           "#use_least_privilege_sa")
COMMANDS = ("why-403",)
ORDER = 38
SEED = "001 エラー 403: リトライ バジェットが残っていない"
GCPDIAG = "gke/SEC/2021_001"


def run(ctx):
    ref = ctx.ref
    cluster, number, policy = ctx.gw.parallel(lambda: ctx.gw.cluster(ref), lambda: ctx.gw.project_number(ref.project),
                                              lambda: _policy(ctx))
    default = compute_default_sa(number)
    pools = node_accounts(cluster, number).get(default, [])
    if not pools:
        return ctx.ok(_("No node pool of `{cluster}` runs as the Compute Engine default service account `{account}`.")
                      .format(cluster=ref.name, account=default))
    where = f"--location={ref.location} --project={ref.project}"
    configured = {p.name: p.config.service_account for p in cluster.node_pools}
    named = [p for p in pools if p in configured]  # the others stand for the auto-provisioning defaults
    new_pools = "\n".join(
        f"gcloud container node-pools create {p}-lp --cluster={ref.name} {where} \\\n"
        f"    --service-account={least_privilege_sa(ref.project)}" for p in named)
    auto = ("\n" + _("For node auto-provisioning (and Autopilot) set the default account:\n```\n{command}\n```").format(
        command=f"gcloud container clusters update {ref.name} {where} \\\n"
                f"    --autoprovisioning-service-account={least_privilege_sa(ref.project)}")
            if len(named) < len(pools) else "")
    listed = ", ".join(f"`{p}`" for p in pools)
    editor = has_role(policy, f"serviceAccount:{default}", "roles/editor") if policy is not None else None
    if editor and not editor.condition:
        detail = _("{pools} of `{cluster}` run(s) as the Compute Engine default service account `{account}`, which "
                   "holds the Editor role on the project: far more than nodes need, and, without Workload Identity, "
                   "every Pod that reaches the metadata server acts with it.")
    elif policy is not None:
        detail = _("{pools} of `{cluster}` run(s) as the Compute Engine default service account `{account}`, to which "
                   "Google Cloud grants the Editor role on the project (not held here now): far more than nodes "
                   "need, and, without Workload Identity, every Pod that reaches the metadata server acts with it.")
    else:
        detail = _("{pools} of `{cluster}` run(s) as the Compute Engine default service account `{account}`, to which "
                   "Google Cloud grants the Editor role on the project: far more than nodes need, and, without "
                   "Workload Identity, every Pod that reaches the metadata server acts with it.")
    if named:
        remedy = _("Use a least-privilege node service account instead. Create it with the node role:\n```\n"
                   "{commands}\n```\nthen create replacement node pools that run as it (a pool's service account "
                   "cannot be changed in place), move the workloads over and delete the old pools:\n```\n"
                   "{pool_commands}\n```")
    else:
        remedy = _("Use a least-privilege node service account instead. Create it with the node role:\n```\n"
                   "{commands}\n```\n")
    auto_sa = cluster.autoscaling.autoprovisioning_node_pool_defaults.service_account or "default"
    return ctx.warn(
        detail.format(pools=listed, cluster=ref.name, account=default),
        remedy.format(commands=least_privilege_commands(ref.project), pool_commands=new_pools) + auto,
        evidence="; ".join(_("node pool `{pool}`: `config.serviceAccount: {account}`").format(
                               pool=p, account=configured.get(p) or "default") if p in configured else
                           _("{pool}: `autoprovisioningNodePoolDefaults.serviceAccount: {account}`").format(
                               pool=p, account=auto_sa)
                           for p in pools),
        resource=ref.path)


def _policy(ctx):
    try:
        return ctx.gw.project_iam_policy(ctx.ref.project)
    except ApiError:
        return None  # only a detail of the wording: the finding stands without it
