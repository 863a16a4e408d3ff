"""Every node pool runs the control plane's version.

A node pool whose version lags `currentMasterVersion` is version skew, not a pool marked for
recreation: Kubernetes supports nodes up to 2 minor versions older than a control plane older than
1.28, and up to 3 from 1.28 on, so such a pool keeps working and GKE's node auto-upgrade (when on)
brings it level within its maintenance windows. Skew within that limit is a WARN (upgrade the pool to
the control-plane version, `gcloud container clusters upgrade CLUSTER --node-pool=POOL`, to get the
control plane's fixes and features on the nodes); a pool beyond it, or newer than the control plane,
is unsupported: FAIL. (Pools that wait for recreation after a rotation are gke/node-pool-recreation.)
"""
from __future__ import annotations

from checks import versions
from checks.model import Remediation

ID = "gke/node-pool-version-skew"
TITLE = "Node pools run the control-plane version"
DOC_URL = "https://cloud.google.com/kubernetes-engine/versioning"
COMMANDS = ("why-400",)
ORDER = 30
SEED = "001 エラー 400: ノードプールの再作成が必要"  # what skew is not: a pool that requires recreation
GCPDIAG = "gke/ERR/2021_009"  # version skew between cluster and node pool


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


def _within(master: str, node: str, auto_upgrade: bool) -> str:
    """The explanation of a supported skew."""
    try:
        skew, limit = versions.minor_skew(master, node), versions.max_node_skew(master)
    except ValueError:
        skew, limit = None, None
    behind = (f"{skew} minor version(s) behind, within the {limit} Kubernetes supports" if skew else
              "the same minor version, an older patch")
    auto = ("Node auto-upgrade is on for this pool: GKE brings it to the control plane's version in a maintenance "
            "window." if auto_upgrade else
            "Node auto-upgrade is off for this pool: it stays behind until someone upgrades it.")
    return f"That is {behind}: a supported skew, so the pool keeps working. {auto}"


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
        if beyond:
            detail = (f"Node pool `{pool.name}` runs `{pool.version}`; the control plane runs `{master}`. {beyond} "
                      "Workloads on it may break; upgrade it before the control plane moves further ahead.")
        else:
            detail = (f"Node pool `{pool.name}` runs `{pool.version}`; the control plane runs `{master}`. "
                      + _within(master, pool.version, pool.management.auto_upgrade))
        remedy = ("Upgrade the pool to the control plane's version (its nodes are recreated, respecting its surge "
                  f"settings):\n```\n{command}\n```")
        report = ctx.fail if beyond else ctx.warn
        out.append(report(
            detail, remedy, resource=f"{ref.path}/nodePools/{pool.name}",
            gcpdiag=ctx.check.gcpdiag if beyond else "",
            evidence=f"`currentMasterVersion: {master}`; node pool `{pool.name}`: `version: {pool.version}`.",
            remediation=Remediation(
                kind="upgrade_node_pool", label=f"Upgrade {pool.name} to {master}",
                summary=f"Upgrade node pool {pool.name} of {ref.name} from {pool.version} to the control-plane "
                        f"version {master}: {command}",
                params={"project": ref.project, "location": ref.location, "cluster": ref.name, "pool": pool.name,
                        "from_version": pool.version, "to_version": master, "mode": "upgrade"})))
    if out:
        return out
    pools = ", ".join(f"`{p.name}`" for p in cluster.node_pools)
    return ctx.ok(f"Every node pool ({pools}) runs the control-plane version `{master}`." if pools else
                  f"`{ref.name}` lists no node pools (GKE manages its nodes); the control plane runs `{master}`.")
