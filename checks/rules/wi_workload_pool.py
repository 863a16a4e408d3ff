"""Workload Identity Federation for GKE is enabled: the cluster's workload pool is PROJECT_ID.svc.id.goog.

A cluster uses Workload Identity Federation for GKE when `workloadIdentityConfig.workloadPool` is set
to the workload identity pool of its project, `PROJECT_ID.svc.id.goog`
(`gcloud container clusters describe CLUSTER_NAME --format="value(workloadIdentityConfig.workloadPool)"`).
Without it, pods see the node's service account (or nothing) instead of the IAM service account
their Kubernetes service account is annotated with. Autopilot clusters always have it. The fix is
`gcloud container clusters update CLUSTER_NAME --workload-pool=PROJECT_ID.svc.id.goog`; the node
pools then also need the GKE metadata server (see wi/metadata-server-pools).
"""
from __future__ import annotations

from checks.wi import where

ID = "wi/workload-pool"
TITLE = "Workload Identity is enabled on the cluster"
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 11
CLUSTER_LEVEL = False  # only matters where Workload Identity is used: not part of doctor


def run(ctx):
    ref = ctx.ref
    expected = f"{ref.project}.svc.id.goog"
    pool = ctx.gw.cluster(ref).workload_identity_config.workload_pool
    evidence = (f"`gcloud container clusters describe {ref.name} {where(ctx)} "
                "--format=\"value(workloadIdentityConfig.workloadPool)\"` prints "
                + (f"`{pool}`." if pool else "nothing."))
    if pool == expected:
        return ctx.ok(f"Workload Identity is on: workload pool `{pool}`.", evidence=evidence)
    remedy = (f"Enable Workload Identity with the project's pool (existing node pools keep their metadata mode; "
              f"see wi/metadata-server-pools):\n```\ngcloud container clusters update {ref.name} "
              f"{where(ctx)} --workload-pool={expected}\n```")
    if pool:
        return ctx.warn(f"The workload pool is `{pool}`, not the project's `{expected}`: IAM bindings must name "
                        f"`serviceAccount:{pool}[NAMESPACE/KSA]`, and GKE only creates `{expected}` for this "
                        "project.", remedy, evidence=evidence)
    return ctx.fail(f"Workload Identity is off on cluster `{ref.name}` (no workload pool): pods cannot "
                    "authenticate as an IAM service account.", remedy, evidence=evidence)
