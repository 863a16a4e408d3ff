"""NetworkPolicies that select the KSA's pods let them reach the cluster's DNS on port 53.

Some Google Cloud client libraries find the metadata server by resolving `metadata.google.internal`:
in-cluster DNS is then a dependency of Workload Identity, and a pod that cannot resolve reports that
GOOGLE_APPLICATION_CREDENTIALS must be set, or sends requests without credentials. When an egress
NetworkPolicy selects a pod, the pod may only reach what some egress rule of a selecting policy allows,
so DNS must be among it. Where DNS answers depends on the cluster: kube-dns pods in kube-system
(`k8s-app: kube-dns`), reached by a namespaceSelector + podSelector peer or an ipBlock with their pod
IPs; with NodeLocal DNSCache (`addonsConfig.dnsCacheConfig.enabled`) the node-local cache on
169.254.20.10, which only an ipBlock can allow (it runs on the host network); with Cloud DNS for GKE
the metadata server's 169.254.169.254. The check evaluates every selecting policy's rules for UDP port
53 (and says whether TCP 53, used for long answers, is allowed too). `GCE_METADATA_HOST=169.254.169.254`
lets the Python, Java and Node.js libraries skip the lookup meanwhile.
"""
from __future__ import annotations

import json

from checks.gateway import kube as kc
from checks.i18n import N_, _, sentences
from checks.wi import (METADATA_IP, ipblock_allows, ksa_pods, labels_of, name_of, network_policies, port_allows,
                       selecting_egress, selects, system_pods, target)

ID = "wi/dns-network-policy"
TITLE = N_("NetworkPolicies let the KSA's pods reach DNS on port 53")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 21
CLUSTER_LEVEL = False
SEED = "002 DNS 解決に関する問題"
NODELOCAL_IP = "169.254.20.10"
KUBE_DNS = {"k8s-app": "kube-dns"}


def _dns_target(ctx) -> tuple[str, str]:
    """(kind, address): ("kube-dns", ""), ("nodelocal", 169.254.20.10) or ("clouddns", 169.254.169.254)."""
    cluster = ctx.gw.cluster(ctx.ref)
    if cluster.network_config.dns_config.cluster_dns.name == "CLOUD_DNS":
        return "clouddns", METADATA_IP
    if cluster.addons_config.dns_cache_config.enabled:
        return "nodelocal", NODELOCAL_IP
    return "kube-dns", ""


def _peer_reaches(peer: dict, kind: str, address: str, dns_pods: list[dict], ns_labels: dict, policy_ns: str) -> bool:
    if "ipBlock" in peer:
        addresses = [address] if address else [(p.get("status") or {}).get("podIP", "") for p in dns_pods]
        return any(ipblock_allows(peer, a) for a in addresses)
    if kind != "kube-dns" or ("namespaceSelector" not in peer and "podSelector" not in peer):
        return False  # the node-local cache and the metadata server are no pods: selectors never match them
    ns_ok = selects(peer["namespaceSelector"], ns_labels) if "namespaceSelector" in peer else policy_ns == "kube-system"
    labels = [labels_of(p) for p in dns_pods] or [KUBE_DNS]
    return ns_ok and ("podSelector" not in peer or any(selects(peer["podSelector"], lab) for lab in labels))


def _allows(policies, protocol, kind, address, dns_pods, ns_labels) -> bool:
    for q in policies:
        for rule in (q.get("spec") or {}).get("egress") or []:
            peers, ports = rule.get("to") or [], rule.get("ports") or []
            if (not peers or any(_peer_reaches(p, kind, address, dns_pods, ns_labels, q["metadata"].get("namespace", ""))
                                 for p in peers)) and (not ports or any(port_allows(e, 53, protocol) for e in ports)):
                return True
    return False


def dns_rule(kind: str, address: str) -> str:
    if kind == "kube-dns":
        peer = ("  - namespaceSelector:\n      matchLabels:\n        kubernetes.io/metadata.name: kube-system\n"
                "    podSelector:\n      matchLabels:\n        k8s-app: kube-dns\n")
    else:
        peer = f"  - ipBlock:\n      cidr: {address}/32\n"
    return f"egress:\n- to:\n{peer}  ports:\n  - protocol: UDP\n    port: 53\n  - protocol: TCP\n    port: 53"


def run(ctx):
    ns, ksa = target(ctx)
    kind, address = _dns_target(ctx)
    policies, pods = ctx.gw.parallel(lambda: network_policies(ctx), lambda: ksa_pods(ctx))
    subjects = [(_("pod `{pod}`").format(pod=name_of(p)), selecting_egress(policies, p)) for p in pods] or \
        [(_("any pod of `{ksa}`").format(ksa=f"{ns}/{ksa}"), selecting_egress(policies, None))]
    where = {"kube-dns": _("the kube-dns pods in kube-system"),
             "nodelocal": _("NodeLocal DNSCache on `{address}`").format(address=NODELOCAL_IP),
             "clouddns": _("Cloud DNS for GKE on `{address}`").format(address=METADATA_IP)}[kind]
    if not any(selecting for _subject, selecting in subjects):
        return ctx.ok(_("No egress NetworkPolicy selects the pods of `{ksa}`: they reach {dns} on port 53.").format(
            ksa=f"{ns}/{ksa}", dns=where))
    dns_pods, ns_obj = [], None
    if kind == "kube-dns":
        dns_pods, ns_obj = ctx.gw.parallel(
            lambda: [p for p in system_pods(ctx) if selects({"matchLabels": KUBE_DNS}, labels_of(p))],
            lambda: ctx.gw.kube_get(ctx.ref, kc.NAMESPACES_GET, "kube-system"))
    ns_labels = labels_of(ns_obj or {}) or {"kubernetes.io/metadata.name": "kube-system"}
    blocked, tcp_only_missing, culprits = [], [], {}
    for subject, selecting in subjects:
        if not selecting:
            continue
        if not _allows(selecting, "UDP", kind, address, dns_pods, ns_labels):
            blocked.append(subject)
            culprits.update({name_of(q): q for q in selecting})
        elif not _allows(selecting, "TCP", kind, address, dns_pods, ns_labels):
            tcp_only_missing.append(subject)
    rule = dns_rule(kind, address)
    policy = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: allow-dns\n"
              f"  namespace: {ns}\nspec:\n  podSelector: {{}}\n  policyTypes:\n  - Egress\n"
              + "\n".join("  " + line for line in rule.splitlines()))
    if not blocked:
        tcp = (_("TCP 53 (long answers) is not allowed for {pods}: large DNS answers may fail.").format(
            pods=", ".join(tcp_only_missing[:5])) if tcp_only_missing else "")
        return ctx.ok(sentences(_("The egress NetworkPolicies of `{ksa}` allow {dns} on UDP port 53.").format(
            ksa=f"{ns}/{ksa}", dns=where), tcp))
    evidence = "\n".join(f"kubectl describe networkpolicy {n} -n {ns}: spec {json.dumps(q['spec'], sort_keys=True)}"
                         for n, q in sorted(culprits.items()))
    return ctx.fail(
        _("{pods}: NetworkPolicy {policies} allow(s) no egress to {dns} on UDP port 53, so `metadata.google.internal` "
          "does not resolve: client libraries that look it up report missing credentials (\"set "
          "GOOGLE_APPLICATION_CREDENTIALS\") or send requests without them.").format(
            pods=", ".join(blocked[:5]), policies=", ".join(f"`{ns}/{n}`" for n in sorted(culprits)), dns=where),
        _("Add this egress rule to {policies} (`{command}`):\n```\n{rule}\n```\nor apply one more policy (egress rules "
          "of all policies that select a pod add up):\n```\n{policy}\n```\nMeanwhile `{setting}` lets the Python, "
          "Java and Node.js client libraries skip the lookup.").format(
            policies=", ".join(f"`{n}`" for n in sorted(culprits)), command=f"kubectl edit networkpolicy NAME -n {ns}",
            rule=rule, policy=policy, setting=f"GCE_METADATA_HOST={METADATA_IP}"),
        evidence=f"```\n{evidence}\n```")
