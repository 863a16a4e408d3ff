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
from checks.i18n import N_, _
from checks.model import Remediation

ID = "gke/node-pool-version-skew"
TITLE = N_("Node pools run the control-plane version")
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
        return _("Nodes newer than the control plane are not supported.")
    if skew > limit:
        cp = versions.parse(master)
        return _("That is {skew} minor versions behind; Kubernetes supports nodes at most {limit} minor versions older "
                 "than a {minor} control plane.").format(skew=skew, limit=limit, minor=f"{cp.major}.{cp.minor}")
    return ""


def _within(master: str, node: str, auto_upgrade: bool) -> str:
    """The explanation of a supported skew."""
    try:
        skew, limit = versions.minor_skew(master, node), versions.max_node_skew(master)
    except ValueError:
        skew, limit = None, None
    auto = (_("Node auto-upgrade is on for this pool: GKE brings it to the control plane's version in a maintenance "
              "window.") if auto_upgrade else
            _("Node auto-upgrade is off for this pool: it stays behind until someone upgrades it."))
    if skew:
        return _("That is {skew} minor version(s) behind, within the {limit} Kubernetes supports: a supported skew, "
                 "so the pool keeps working. {auto_upgrade}").format(skew=skew, limit=limit, auto_upgrade=auto)
    return _("That is the same minor version, an older patch: a supported skew, so the pool keeps working. "
             "{auto_upgrade}").format(auto_upgrade=auto)


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
            detail = _("Node pool `{pool}` runs `{pool_version}`; the control plane runs `{version}`. {why} Workloads "
                       "on it may break; upgrade it before the control plane moves further ahead.").format(
                pool=pool.name, pool_version=pool.version, version=master, why=beyond)
        else:
            detail = _("Node pool `{pool}` runs `{pool_version}`; the control plane runs `{version}`. {why}").format(
                pool=pool.name, pool_version=pool.version, version=master,
                why=_within(master, pool.version, pool.management.auto_upgrade))
        remedy = _("Upgrade the pool to the control plane's version (its nodes are recreated, respecting its surge "
                   "settings):\n```\n{command}\n```").format(command=command)
        report = ctx.fail if beyond else ctx.warn
        out.append(report(
            detail, remedy, resource=f"{ref.path}/nodePools/{pool.name}",
            gcpdiag=ctx.check.gcpdiag if beyond else "",
            evidence=_("`currentMasterVersion: {version}`; node pool `{pool}`: `version: {pool_version}`.").format(
                version=master, pool=pool.name, pool_version=pool.version),
            remediation=Remediation(
                kind="upgrade_node_pool", label=_("Upgrade {pool} to {version}").format(pool=pool.name, version=master),
                summary=_("Upgrade node pool {pool} of {cluster} from {pool_version} to the control-plane version "
                          "{version}: {command}").format(pool=pool.name, cluster=ref.name, pool_version=pool.version,
                                                         version=master, command=command),
                params={"project": ref.project, "location": ref.location, "cluster": ref.name, "pool": pool.name,
                        "from_version": pool.version, "to_version": master, "mode": "upgrade"})))
    if out:
        return out
    pools = ", ".join(f"`{p.name}`" for p in cluster.node_pools)
    if pools:
        return ctx.ok(_("Every node pool ({pools}) runs the control-plane version `{version}`.").format(
            pools=pools, version=master))
    return ctx.ok(_("`{cluster}` lists no node pools (GKE manages its nodes); the control plane runs `{version}`.")
                  .format(cluster=ref.name, version=master))
