"""kube-dns (or Cloud DNS for GKE) resolves metadata.google.internal for the KSA's pods.

Some Google Cloud client libraries reach the metadata server by resolving `metadata.google.internal`,
so in-cluster DNS is a dependency of Workload Identity. When it fails, the application reports that
GOOGLE_APPLICATION_CREDENTIALS must be set, or Google Cloud rejects its requests for lack of
credentials. The check reads the kube-dns pods (kube-system, `k8s-app=kube-dns`; CoreDNS uses the same
label) and their Ready condition; clusters using Cloud DNS for GKE do not run them. Setting the
environment variable `GCE_METADATA_HOST=169.254.169.254` makes the Python, Java and Node.js client
libraries skip the DNS lookup (Go already connects by IP); that address always serves the metadata
service on Google Cloud.
"""
from __future__ import annotations

from checks.i18n import N_, _
from checks.wi import METADATA_IP, listed, ready, system_pods, target

ID = "wi/dns"
TITLE = N_("In-cluster DNS answers for metadata.google.internal")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 21
SEED = "002 DNS 解決に関する問題"
CLUSTER_LEVEL = False  # the remedy is written for the KSA


def env_yaml(ns: str, ksa: str) -> str:
    return (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: example-pod\n  namespace: {ns}\nspec:\n"
            f"  serviceAccountName: {ksa}\n  containers:\n  - image: debian\n    name: main\n"
            f"    command: [\"sleep\", \"infinity\"]\n    env:\n    - name: GCE_METADATA_HOST\n"
            f"      value: \"{METADATA_IP}\"")


def run(ctx):
    ns, ksa = target(ctx)
    dns = ctx.gw.cluster(ctx.ref).network_config.dns_config.cluster_dns.name
    if dns == "CLOUD_DNS":
        return ctx.ok(_("The cluster uses Cloud DNS for GKE, which resolves `metadata.google.internal`; kube-dns is not "
                        "involved. If a library still cannot resolve it, set `{setting}`.").format(
                            setting=f"GCE_METADATA_HOST={METADATA_IP}"))
    pods = [p for p in system_pods(ctx) if (p["metadata"].get("labels") or {}).get("k8s-app") == "kube-dns"]
    down = [p for p in pods if not ready(p)]
    if pods and not down:
        return ctx.ok(_("{count} kube-dns pod(s) Ready. If a client library still cannot resolve "
                        "`metadata.google.internal`, set `{setting}` in its container.").format(
                            count=len(pods), setting=f"GCE_METADATA_HOST={METADATA_IP}"))
    remedy = _("Look at kube-dns:\n```\n{commands}\n```\nMeanwhile, let the client libraries (Python, Java, Node.js) "
               "skip DNS with `GCE_METADATA_HOST`, e.g. for `{ksa}`:\n```\n{manifest}\n```").format(
        commands="kubectl get pods -n kube-system -l k8s-app=kube-dns\n"
                 "kubectl logs -n kube-system -l k8s-app=kube-dns -c kubedns --tail=50",
        ksa=f"{ns}/{ksa}", manifest=env_yaml(ns, ksa))
    evidence = "\n".join(_("pod `{pod}` conditions: {conditions}").format(
        pod=p["metadata"]["name"], conditions=", ".join(
            f"{c.get('type')}={c.get('status')}" for c in (p.get("status") or {}).get("conditions") or []))
        for p in down[:5]) or _("`{command}`: no pods.").format(
            command="kubectl get pods -n kube-system -l k8s-app=kube-dns")
    report = ctx.warn if len(down) < len(pods) else ctx.fail
    if pods:
        detail = _("{down} of {count} kube-dns pod(s) are not Ready: {pods}: pods may fail to resolve "
                   "`metadata.google.internal` and then report missing credentials (\"set "
                   "GOOGLE_APPLICATION_CREDENTIALS\") or send requests without them.").format(
            down=len(down), count=len(pods), pods=listed(down))
    else:
        detail = _("No kube-dns pod runs in kube-system: pods may fail to resolve `metadata.google.internal` and then "
                   "report missing credentials (\"set GOOGLE_APPLICATION_CREDENTIALS\") or send requests without "
                   "them.")
    return report(detail, remedy, evidence=evidence)
