"""NetworkPolicies that select the KSA's pods allow egress to the GKE metadata server.

When a NetworkPolicy with policyType Egress selects a pod, the pod may only reach what some egress
rule of a selecting policy allows; the GKE metadata server must be among it or Workload Identity
fails. It listens on `169.254.169.252/32` port 988 from GKE 1.21.0-gke.1000 and on `127.0.0.1/32`
port 988 before; clusters with GKE Dataplane V2 (`networkConfig.datapathProvider:
ADVANCED_DATAPATH`) also need `169.254.169.254/32` port 80. The check reads the namespace's
policies, matches their podSelector (matchLabels and matchExpressions) against the pods that use
the KSA (with no such pod yet, only policies that select every pod), and evaluates each rule:
ipBlock CIDRs with their exceptions, protocols, ports, port ranges (`endPort`) and empty lists
(all destinations, all ports). Pod and namespace selectors never match the metadata server.
"""
from __future__ import annotations

import ipaddress
import json

from checks.i18n import N_, _, sentences
from checks.versions import Version
from checks.wi import (ipblock_allows, ksa_pods, labels_of, name_of, network_policies, port_allows, restricts_egress,
                       selects, target)

ID = "wi/network-policy-egress"
TITLE = N_("NetworkPolicies let the KSA's pods reach the GKE metadata server")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 15
CLUSTER_LEVEL = False
SEED = "002 GKE 用 Workload Identity 連携; Pod が Google Cloud で認証されない (6)"
NEW_METADATA = "1.21.0-gke.1000"


def destinations(cluster) -> list[tuple[str, int, str]]:
    """(CIDR, TCP port, why) the pods must reach on this cluster."""
    try:
        new = Version.parse(cluster.current_master_version) >= Version.parse(NEW_METADATA)
    except ValueError:
        new = True
    version = cluster.current_master_version or "?"
    out = [("169.254.169.252/32", 988, _("GKE {version} is {since} or later").format(version=version, since=NEW_METADATA))
           if new else
           ("127.0.0.1/32", 988, _("GKE {version} is older than {since}").format(version=version, since=NEW_METADATA))]
    if cluster.network_config.datapath_provider.name == "ADVANCED_DATAPATH":
        out.append(("169.254.169.254/32", 80, _("the cluster runs GKE Dataplane V2")))
    return out


def rule_allows(rule: dict, cidr: str, port: int) -> bool:
    ip = str(ipaddress.ip_network(cidr).network_address)
    peers, ports = rule.get("to") or [], rule.get("ports") or []
    return (not peers or any(ipblock_allows(p, ip) for p in peers)) and (
        not ports or any(port_allows(p, port) for p in ports))


def _selects_all(policy: dict) -> bool:
    sel = policy["spec"].get("podSelector") or {}
    return not sel.get("matchLabels") and not sel.get("matchExpressions")


def egress_yaml(dests) -> str:
    return "egress:\n" + "".join(f"- to:\n  - ipBlock:\n      cidr: {cidr}\n  ports:\n  - protocol: TCP\n"
                                 f"    port: {port}\n" for cidr, port, _why in dests)


def run(ctx):
    ns, ksa = target(ctx)
    cluster = ctx.gw.cluster(ctx.ref)
    dests = destinations(cluster)
    policies = [p for p in network_policies(ctx) if restricts_egress(p)]
    pods = ksa_pods(ctx)
    # Each pod (or, before any pod runs, "every pod") with the egress policies that select it.
    if pods:
        subjects = [(_("pod `{pod}`").format(pod=name_of(p)), [q for q in policies if selects(q["spec"].get("podSelector"),
                                                                                           labels_of(p))]) for p in pods]
    else:
        subjects = [(_("any pod of `{ksa}`").format(ksa=f"{ns}/{ksa}"), [q for q in policies if _selects_all(q)])]
    blocked: dict[tuple, dict] = {}  # (cidr, port, why) -> {policy name: policy}
    who: dict[tuple, list[str]] = {}
    for subject, selecting in subjects:
        for dest in dests:
            if selecting and not any(rule_allows(r, dest[0], dest[1]) for q in selecting
                                     for r in q["spec"].get("egress") or []):
                blocked.setdefault(dest, {}).update({name_of(q): q for q in selecting})
                who.setdefault(dest, []).append(subject)
    need = ", ".join(_("`{cidr}` port {port} ({why})").format(cidr=c, port=p, why=why) for c, p, why in dests)
    unknown = "" if pods else _("No pod uses `{ksa}` yet, so only policies that select every pod were evaluated.").format(
        ksa=f"{ns}/{ksa}")
    if not blocked:
        return ctx.ok(sentences(_("Egress to the GKE metadata server is allowed for the pods of `{ksa}`: {needed}. "
                                  "{count} egress NetworkPolicy(ies) in `{namespace}`.").format(
                                      ksa=f"{ns}/{ksa}", needed=need, count=len(policies), namespace=ns), unknown))
    culprits = {n: q for d in blocked.values() for n, q in d.items()}
    lines = [_("{pods}: NetworkPolicy {policies} allow(s) no egress to `{cidr}` port {port}/TCP ({why})").format(
        pods=", ".join(who[d][:5]), policies=", ".join(f"`{ns}/{n}`" for n in sorted(blocked[d])), cidr=d[0],
        port=d[1], why=d[2]) for d in blocked]
    evidence = "\n".join(f"kubectl describe networkpolicy {n} -n {ns}: spec {json.dumps(q['spec'], sort_keys=True)}"
                         for n, q in sorted(culprits.items()))
    rule = egress_yaml(list(blocked))
    allow_all = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
                 f"  name: allow-gke-metadata-server\n  namespace: {ns}\n"
                 "spec:\n  podSelector: {}\n  policyTypes:\n  - Egress\n"
                 + "\n".join("  " + line for line in rule.rstrip().splitlines()))
    return ctx.fail(
        sentences(_("Workload Identity cannot reach the GKE metadata server: {blocked}.").format(blocked="; ".join(lines)),
                  unknown),
        _("Add these egress rules to {policies} (`{command}`):\n```\n{rule}\n```\nor apply one more policy (egress rules "
          "of all policies that select a pod add up):\n```\n{policy}\n```").format(
            policies=", ".join(f"`{n}`" for n in sorted(culprits)), command=f"kubectl edit networkpolicy NAME -n {ns}",
            rule=rule.rstrip(), policy=allow_all),
        evidence=f"```\n{evidence}\n```")
