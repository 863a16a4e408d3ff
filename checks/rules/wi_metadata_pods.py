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

from checks.i18n import N_, _, sentences
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
            return ctx.warn(_("No `{app}` pod runs in kube-system although Workload Identity is on (pool `{pool}`): no "
                              "node serves Workload Identity credentials.").format(app=APP, pool=workload_pool(ctx)),
                            _("Check the node pools' metadata mode (see wi/metadata-server-pools) and the DaemonSet:"
                              "\n```\n{command}\n```").format(command=f"kubectl get daemonset {APP} -n kube-system"))
        return ctx.skip(_("No `{app}` pod: Workload Identity is off (see wi/workload-pool).").format(app=APP))
    bad = [(p, crash(p)) for p in pods if crash(p)]
    if not bad:
        return ctx.ok(_("{count} `{app}` pod(s) in kube-system, none in CrashLoopBackOff or OOMKilled.").format(
            count=len(pods), app=APP))
    oom = [p for p, why in bad if "OOMKilled" in why]
    count = ""
    if oom:
        count = _("The cluster has {count} Kubernetes service accounts; the metadata server's memory grows with that "
                  "number and it is killed beyond about 3,000.").format(count=f"{service_account_count(ctx):,}")
    commands = ("kubectl get pods -n=kube-system | grep CrashLoopBackOff\n"
                + "".join(f"kubectl describe pod {p['metadata']['name']} --namespace=kube-system | grep OOMKilled\n"
                          for p, _why in bad[:3])
                + "kubectl get serviceaccounts --all-namespaces --no-headers | wc -l")
    return ctx.fail(
        sentences(_("{bad} of {count} `{app}` pod(s) are crashing: {pods}. Pods on those nodes cannot get Workload "
                    "Identity credentials.").format(
                      bad=len(bad), count=len(pods), app=APP,
                      pods=", ".join(_("`{pod}` on `{node}` ({why})").format(
                          pod=p["metadata"]["name"], node=p["spec"].get("nodeName", "?"), why=why)
                          for p, why in bad[:5])), count),
        _("Reduce the number of Kubernetes service accounts in the cluster below 3,000 (the memory of {app} grows with "
          "it). Inspect:\n```\n{commands}\n```").format(app=APP, commands=commands),
        evidence="\n".join(f"{p['metadata']['name']} containerStatuses: "
                           + json.dumps((p.get("status") or {}).get("containerStatuses"), sort_keys=True)
                           for p, _why in bad[:5]))
