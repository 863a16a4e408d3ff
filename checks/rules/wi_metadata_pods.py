"""The gke-metadata-server pods in kube-system are healthy (no CrashLoopBackOff, no OOMKilled).

The gke-metadata-server DaemonSet provides Workload Identity on each node. Its memory grows with the
number of Kubernetes service accounts in the cluster; beyond about 3,000 the kubelet kills it for
exceeding its memory limit (OOMKilled) and it crash-loops (`kubectl get pods -n=kube-system | grep
CrashLoopBackOff`, then `kubectl describe pod POD_NAME --namespace=kube-system | grep OOMKilled`).
Pods on those nodes then cannot authenticate. The fix is fewer than 3,000 service accounts (see
wi/ksa-count). The containers' statuses are quoted as the API server reports them.
"""
from __future__ import annotations

import json

from checks.i18n import N_, _
from checks.wi import service_account_count, system_pods, workload_pool

ID = "wi/metadata-server-pods"
TITLE = N_("gke-metadata-server pods are not crashing")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 17
SEED = "002 gke-metadata-server Pod がクラッシュしている"
APP = "gke-metadata-server"


def crash(pod: dict) -> str:
    """CrashLoopBackOff / OOMKilled ('' when neither)."""
    found = []
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        for state in (cs.get("state") or {}, cs.get("lastState") or {}):
            reason = (state.get("waiting") or state.get("terminated") or {}).get("reason", "")
            if reason in ("CrashLoopBackOff", "OOMKilled") and reason not in found:
                found.append(reason)
    return ", ".join(found)


def run(ctx):
    pods = [p for p in system_pods(ctx) if p["metadata"]["name"].startswith(APP + "-")
            or ((p["metadata"].get("labels") or {}).get("k8s-app") == APP)]
    if not pods:
        cluster = ctx.gw.cluster(ctx.ref)
        if cluster.workload_identity_config.workload_pool:
            return ctx.warn(f"No `{APP}` pod runs in kube-system although Workload Identity is on "
                            f"(pool `{workload_pool(ctx)}`): no node serves Workload Identity credentials.",
                            "Check the node pools' metadata mode (see wi/metadata-server-pools) and the DaemonSet:"
                            f"\n```\nkubectl get daemonset {APP} -n kube-system\n```")
        return ctx.skip(f"No `{APP}` pod: Workload Identity is off (see wi/workload-pool).")
    bad = [(p, crash(p)) for p in pods if crash(p)]
    if not bad:
        return ctx.ok(f"{len(pods)} `{APP}` pod(s) in kube-system, none in CrashLoopBackOff or OOMKilled.")
    oom = [p for p, why in bad if "OOMKilled" in why]
    count = ""
    if oom:
        count = (f" The cluster has {service_account_count(ctx):,} Kubernetes service accounts; the metadata server's "
                 "memory grows with that number and it is killed beyond about 3,000.")
    return ctx.fail(
        f"{len(bad)} of {len(pods)} `{APP}` pod(s) are crashing: " + ", ".join(
            f"`{p['metadata']['name']}` on `{p['spec'].get('nodeName', '?')}` ({why})" for p, why in bad[:5])
        + ". Pods on those nodes cannot get Workload Identity credentials." + count,
        "Reduce the number of Kubernetes service accounts in the cluster below 3,000 (the memory of "
        f"{APP} grows with it). Inspect:\n```\nkubectl get pods -n=kube-system | grep CrashLoopBackOff\n"
        + "".join(f"kubectl describe pod {p['metadata']['name']} --namespace=kube-system | grep OOMKilled\n"
                  for p, _why in bad[:3])
        + "kubectl get serviceaccounts --all-namespaces --no-headers | wc -l\n```",
        evidence="\n".join(f"{p['metadata']['name']} containerStatuses: "
                           + json.dumps((p.get("status") or {}).get("containerStatuses"), sort_keys=True)
                           for p, _why in bad[:5]))
