"""The cluster has fewer than 3,000 Kubernetes service accounts, so gke-metadata-server stays within its memory.

The memory of the gke-metadata-server DaemonSet pods grows with the number of Kubernetes service
accounts in the cluster; with more than 3,000 the kubelet evicts them for exceeding their memory
limit and Workload Identity stops working on those nodes (see wi/metadata-server-pods). The seed's
target is "3,000 未満" (fewer than 3,000), so 3,000 itself fails. Only clusters with Workload Identity
run gke-metadata-server: elsewhere the check skips without counting. It counts every service
account in every namespace, page by page.
"""
from __future__ import annotations

from checks.i18n import N_, _
from checks.wi import service_account_count, wi_enabled

ID = "wi/ksa-count"
TITLE = N_("Fewer than 3,000 Kubernetes service accounts")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 18
SEED = "002 gke-metadata-server Pod がクラッシュしている"
GCPDIAG = "gke/WARN/2024_002"
LIMIT = 3000


def run(ctx):
    if not wi_enabled(ctx.gw.cluster(ctx.ref)):
        return ctx.skip(_("Workload Identity is off on `{cluster}`: no gke-metadata-server runs, so the number of "
                          "Kubernetes service accounts does not matter here.").format(cluster=ctx.ref.name))
    count = service_account_count(ctx)
    evidence = f"`kubectl get serviceaccounts --all-namespaces --no-headers | wc -l` → {count}"
    if count < LIMIT:
        return ctx.ok(_("{count} Kubernetes service accounts in the cluster, fewer than {limit} (gke-metadata-server is "
                        "OOMKilled from about {limit}).").format(count=f"{count:,}", limit=f"{LIMIT:,}"),
                      evidence=evidence)
    return ctx.fail(
        _("The cluster has {count} Kubernetes service accounts, not fewer than {limit}: gke-metadata-server pods use "
          "memory in proportion to that number and are killed (OOMKilled, then CrashLoopBackOff), so pods cannot "
          "authenticate with Workload Identity.").format(count=f"{count:,}", limit=f"{LIMIT:,}"),
        _("Delete unused Kubernetes service accounts until fewer than {limit} remain (at least {excess}). List them by "
          "namespace:\n```\n{command}\n```").format(
            limit=f"{LIMIT:,}", excess=f"{count - LIMIT + 1:,}",
            command="kubectl get serviceaccounts --all-namespaces --no-headers | awk '{print $1}' | sort | uniq -c | "
                    "sort -rn | head"),
        evidence=evidence)
