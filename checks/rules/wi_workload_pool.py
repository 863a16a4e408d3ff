"""Workload Identity Federation for GKE is enabled: the cluster's workload pool is PROJECT_ID.svc.id.goog.

A cluster uses Workload Identity Federation for GKE when `workloadIdentityConfig.workloadPool` is set
to the workload identity pool of its project, `PROJECT_ID.svc.id.goog`
(`gcloud container clusters describe CLUSTER_NAME --format="value(workloadIdentityConfig.workloadPool)"`).
Without it, pods see the node's service account (or nothing) instead of the IAM service account
their Kubernetes service account is annotated with. Autopilot clusters always have it. The fix is
`gcloud container clusters update CLUSTER_NAME --workload-pool=PROJECT_ID.svc.id.goog`; the node
pools then also need the GKE metadata server (see wi/metadata-server-pools). Under `doctor` (no
Kubernetes service account asked about) a cluster without it gets a WARN, as gcpdiag's gke/SEC/2023_001
recommends it; under `wi` it is a FAIL.
"""
from __future__ import annotations

from checks.i18n import N_, _
from checks.wi import for_ksa, where

ID = "wi/workload-pool"
TITLE = N_("Workload Identity is enabled on the cluster")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 11
CLUSTER_LEVEL = True  # doctor: a WARN when off
SEED = "002 GKE 用 Workload Identity 連携; Pod が Google Cloud で認証されない (2)"
GCPDIAG = "gke/SEC/2023_001"


def run(ctx):
    ref = ctx.ref
    expected = f"{ref.project}.svc.id.goog"
    cluster = ctx.gw.cluster(ref)
    pool = cluster.workload_identity_config.workload_pool
    command = f"gcloud container clusters describe {ref.name} {where(ctx)} --format=\"value(workloadIdentityConfig.workloadPool)\""
    evidence = (_("`{command}` prints `{pool}`.") if pool else _("`{command}` prints nothing.")).format(
        command=command, pool=pool)
    if pool == expected:
        return ctx.ok(_("Workload Identity is on: workload pool `{pool}`.").format(pool=pool), evidence=evidence)
    remedy = _("Enable Workload Identity with the project's pool (existing node pools keep their metadata mode; see "
               "wi/metadata-server-pools):\n```\n{command}\n```").format(
        command=f"gcloud container clusters update {ref.name} {where(ctx)} --workload-pool={expected}")
    if not pool and cluster.autopilot.enabled:
        return ctx.ok(_("Autopilot clusters always run Workload Identity Federation for GKE."), evidence=evidence)
    if pool:
        return ctx.warn(_("The workload pool is `{pool}`, not the project's `{expected}`: IAM bindings must name "
                          "`{member}`, and GKE only creates `{expected}` for this project.").format(
                            pool=pool, expected=expected, member=f"serviceAccount:{pool}[NAMESPACE/KSA]"),
                        remedy, evidence=evidence)
    report = ctx.fail if for_ksa(ctx) else ctx.warn
    return report(_("Workload Identity is off on cluster `{cluster}` (no workload pool): pods cannot authenticate as an "
                    "IAM service account.").format(cluster=ref.name), remedy, evidence=evidence)
