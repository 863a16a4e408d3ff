"""Every node pool runs the control plane's version.

A node pool whose version differs from `currentMasterVersion` is (or will be) marked for
recreation, and GKE may take hours, days or weeks to recreate it (maintenance windows and
exclusions apply). Until then, control-plane operations that recreate nodes, such as completing a
credential rotation, fail with `ERROR: (gcloud.container.clusters.update) ResponseError: code=400,
message=Node pool "POOL" requires recreation.` Either wait for the recreation, or start it by
upgrading the pool to the control-plane version (`gcloud container clusters upgrade CLUSTER
--node-pool=POOL`), then retry the operation. A pool further behind than Kubernetes supports (more
than 2 minor versions below a control plane older than 1.28, more than 3 from 1.28 on), or ahead of
the control plane, is unsupported: FAIL.
"""
from __future__ import annotations

from checks import versions
from checks.model import Remediation

ID = "gke/node-pool-version-skew"
TITLE = "Node pools run the control-plane version"
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors"
COMMANDS = ("why-400",)
ORDER = 30


def _unsupported(master: str, node: str) -> str:
    """Why the skew is beyond what Kubernetes supports, or ''."""
    try:
        skew, limit = versions.minor_skew(master, node), versions.max_node_skew(master)
    except ValueError:
        return ""
    if skew < 0:
        return "Nodes newer than the control plane are not supported."
    if skew > limit:
        return (f"That is {skew} minor versions behind; Kubernetes supports nodes at most {limit} minor versions "
                f"older than a {versions.parse(master).major}.{versions.parse(master).minor} control plane.")
    return ""


def run(ctx):
    ref = ctx.ref
    cluster = ctx.gw.cluster(ref)
    master = cluster.current_master_version
    out = []
    for pool in cluster.node_pools:
        if not pool.version or pool.version == master:
            continue
        beyond = _unsupported(master, pool.version)
        command = (f"gcloud container clusters upgrade {ref.name} --node-pool={pool.name} "
                   f"--location={ref.location} --project={ref.project}")
        detail = (f"Node pool `{pool.name}` runs `{pool.version}`; the control plane runs `{master}`. Control-plane "
                  "operations that recreate nodes, such as completing a credential rotation, fail with "
                  f"`ResponseError: code=400, message=Node pool \"{pool.name}\" requires recreation.` "
                  "until the pool is recreated." + (f" {beyond}" if beyond else ""))
        remedy = ("Wait for GKE to recreate the pool (hours to weeks, depending on maintenance windows and "
                  "exclusions), or start the recreation now by upgrading it to the control-plane version:\n"
                  f"```\n{command}\n```\nWhen the upgrade is done, retry the operation.")
        report = ctx.fail if beyond else ctx.warn
        out.append(report(
            detail, remedy, resource=f"{ref.path}/nodePools/{pool.name}",
            evidence=f"`currentMasterVersion: {master}`; node pool `{pool.name}`: `version: {pool.version}`.",
            remediation=Remediation(
                kind="upgrade_node_pool", label=f"Upgrade {pool.name} to {master}",
                summary=f"Recreate node pool {pool.name} of {ref.name} at the control-plane version: {command}",
                params={"project": ref.project, "location": ref.location, "cluster": ref.name, "pool": pool.name,
                        "from_version": pool.version, "to_version": master})))
    if out:
        return out
    pools = ", ".join(f"`{p.name}`" for p in cluster.node_pools)
    return ctx.ok(f"Every node pool ({pools}) runs the control-plane version `{master}`." if pools else
                  f"`{ref.name}` lists no node pools (GKE manages its nodes); the control plane runs `{master}`.")
