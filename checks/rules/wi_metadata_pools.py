"""The node pools that run the KSA's pods use the GKE metadata server (workloadMetadataConfig.mode GKE_METADATA).

Pods get Workload Identity credentials from the GKE metadata server, which runs only on nodes of
pools with `config.workloadMetadataConfig.mode: GKE_METADATA`
(`gcloud container node-pools describe NODEPOOL_NAME --cluster=CLUSTER_NAME
--format="value(config.workloadMetadataConfig.mode)"`). On other pools pods reach the Compute Engine
metadata server and get the node's service account. The check follows the pods that use the
Kubernetes service account to their nodes and the nodes' `cloud.google.com/gke-nodepool` label;
while no such pod is scheduled it checks every pool. Autopilot always runs the GKE metadata server.
The fix is `gcloud container node-pools update NODEPOOL_NAME --workload-metadata=GKE_METADATA`,
which recreates the pool's nodes. Under `doctor` (no KSA) it checks every pool of a cluster with
Workload Identity and WARNs for those without the GKE metadata server (their pods cannot use it).
"""
from __future__ import annotations

from checks.i18n import N_, _, sentences
from checks.wi import NODEPOOL_LABEL, for_ksa, ksa_pods, labels_of, nodes, target, where, wi_enabled

ID = "wi/metadata-server-pools"
TITLE = N_("The KSA's node pools run the GKE metadata server")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 12
CLUSTER_LEVEL = True  # doctor: every pool of a Workload Identity cluster
SEED = "002 GKE 用 Workload Identity 連携; Pod が Google Cloud で認証されない (3)"
GKE_METADATA = "GKE_METADATA"


def pools_in_use(ctx) -> dict[str, list[str]]:
    """Node pool -> names of the KSA's pods on it ({} when none is scheduled on a pool node)."""
    pods = [p for p in ksa_pods(ctx) if (p.get("spec") or {}).get("nodeName")]
    if not pods:
        return {}
    pool_of = {n["metadata"]["name"]: labels_of(n).get(NODEPOOL_LABEL) for n in nodes(ctx)}
    out: dict[str, list[str]] = {}
    for pod in pods:
        pool = pool_of.get(pod["spec"]["nodeName"])
        if pool:
            out.setdefault(pool, []).append(pod["metadata"]["name"])
    return out


def run(ctx):
    ref = ctx.ref
    cluster = ctx.gw.cluster(ref)
    if cluster.autopilot.enabled:
        return ctx.ok(_("`{cluster}` is an Autopilot cluster: every node runs the GKE metadata server.").format(
            cluster=ref.name))
    if not for_ksa(ctx):
        if not wi_enabled(cluster):
            return ctx.skip(_("Workload Identity is off on `{cluster}` (see wi/workload-pool): no pool needs the GKE "
                              "metadata server.").format(cluster=ref.name))
        used, scope = {}, _("every node pool")
    else:
        ns, ksa = target(ctx)
        used = {k: v for k, v in pools_in_use(ctx).items() if k in {p.name for p in cluster.node_pools}}
        scope = (_("the pools running pods of `{ksa}`") if used else
                 _("every node pool (no pod of `{ksa}` is scheduled yet)")).format(ksa=f"{ns}/{ksa}")
    pools = [p for p in cluster.node_pools if not used or p.name in used]
    modes = {p.name: p.config.workload_metadata_config.mode.name for p in pools}
    evidence = "\n".join(
        f"gcloud container node-pools describe {name} --cluster={ref.name} {where(ctx)} "
        f"--format=\"value(config.workloadMetadataConfig.mode)\" → "
        + (mode if mode != "MODE_UNSPECIFIED" else _("(unset)"))
        + ("   " + _("(pods: {pods})").format(pods=", ".join(used[name][:5])) if name in used else "")
        for name, mode in modes.items())
    bad = [name for name, mode in modes.items() if mode != GKE_METADATA]
    if not bad:
        return ctx.ok(_("`{mode}` on {scope}: {pools}.").format(mode=GKE_METADATA, scope=scope,
                                                               pools=", ".join(f"`{n}`" for n in modes)),
                      evidence=f"```\n{evidence}\n```")
    first = "" if cluster.workload_identity_config.workload_pool else \
        _("First enable Workload Identity on the cluster (see wi/workload-pool).")
    report = ctx.fail if for_ksa(ctx) else ctx.warn
    switch = _("Switch each pool to the GKE metadata server (its nodes are recreated):\n```\n{commands}\n```").format(
        commands="\n".join(f"gcloud container node-pools update {n} --cluster={ref.name} {where(ctx)} "
                           f"--workload-metadata={GKE_METADATA}" for n in bad))
    return report(
        _("Node pool(s) {pools} ({scope}) do not run the GKE metadata server: pods there reach the Compute Engine "
          "metadata server and get the node's service account, not the KSA's IAM service account.").format(
            pools=", ".join(f"`{n}`" for n in bad), scope=scope),
        sentences(first, switch),
        evidence=f"```\n{evidence}\n```")
