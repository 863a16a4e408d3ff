"""Google's health checkers (130.211.0.0/22 and 35.191.0.0/16) get through the firewall to the serving ports.

Load-balancer health checks come from 130.211.0.0/22 and 35.191.0.0/16. They reach the Pods
(container-native load balancing: the Pod port) or the nodes (instance groups: the Service's
nodePort), so the cluster's VPC network must allow these ranges in to the nodes on those ports.
The GKE Ingress controller creates such a rule itself (`k8s-fw-l7-…`), but a deny rule of higher
priority (a lower number) wins over it, and in a Shared VPC the controller may lack the
permission to create it. Hierarchical firewall policies are evaluated before the VPC's rules
(`goto_next` hands over to the next level); what no rule allows, the implied deny-ingress rule
drops. The check reads the network's effective firewalls (compute v1
`networks.getEffectiveFirewalls`) and evaluates them for every address of both ranges, every
serving port and every node pool (its network tags and service account), with CIDR containment
and port ranges.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from checks.gateway import ApiError
from checks.ingress import HC_RANGES, all_backends, cluster_network, load_balancer_port, targets

ID = "ingress/firewall"
TITLE = "The firewall lets Google's health checkers reach the serving ports"
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/concepts/firewall-rules#ingress-fws"
COMMANDS = ("ingress",)
ORDER = 60
CLUSTER_LEVEL = False


@dataclass
class Rule:
    label: str
    priority: int
    action: str  # allow, deny or goto_next
    sources: list
    l4: list     # [(protocol, ["80", "1000-2000"])]; no ports: every port
    tags: list = field(default_factory=list)
    accounts: list = field(default_factory=list)
    name: str = ""    # a VPC firewall rule's name
    policy: str = ""  # a firewall policy's name (hierarchical or network)

    def __str__(self) -> str:
        l4 = ", ".join(proto + (":" + ",".join(ports) if ports else "") for proto, ports in self.l4)
        to = (f"tags {', '.join(self.tags)}" if self.tags else f"service accounts {', '.join(self.accounts)}"
              if self.accounts else "all instances")
        return f"{self.label}: {self.action} {l4} from {', '.join(map(str, self.sources))} to {to}"


def _nets(ranges) -> list:
    out = []
    for r in ranges or []:
        try:
            out.append(ipaddress.ip_network(r, strict=False))
        except ValueError:
            pass
    return out


def _span(ports: str) -> tuple[int, int]:
    lo, _, hi = ports.partition("-")
    return int(lo), int(hi or lo)


def _policy(p: dict) -> list[Rule]:
    title = p.get("shortName") or p.get("displayName") or p.get("name")
    rules = [Rule(f"rule {r.get('priority')} of firewall policy `{title}` (action {r.get('action')})",
                  r.get("priority", 0), r.get("action") if r.get("action") in ("deny", "goto_next") else "allow",
                  _nets(m.get("srcIpRanges")), [(c.get("ipProtocol", ""), c.get("ports") or [])
                                                for c in m.get("layer4Configs") or []],
                  accounts=r.get("targetServiceAccounts") or [], policy=p.get("name", ""))
             for r in p.get("rules") or [] for m in [r.get("match") or {}]
             if r.get("direction") == "INGRESS" and not r.get("disabled") and not r.get("targetSecureTags")]
    return sorted(rules, key=lambda r: r.priority)


def stages(fw: dict) -> list[list[Rule]]:
    """Rule lists in evaluation order: hierarchical policies, the VPC's rules, network firewall policies."""
    vpc = [Rule(f"VPC firewall rule `{r['name']}` (priority {r.get('priority', 1000)})", r.get("priority", 1000),
                "allow" if r.get("allowed") else "deny", _nets(r.get("sourceRanges")),
                [(e.get("IPProtocol", ""), e.get("ports") or []) for e in r.get("allowed") or r.get("denied") or []],
                r.get("targetTags") or [], r.get("targetServiceAccounts") or [], name=r["name"])
           for r in fw.get("firewalls") or [] if r.get("direction", "INGRESS") == "INGRESS" and not r.get("disabled")]
    vpc.sort(key=lambda r: (r.priority, r.action != "deny"))  # at one priority, deny wins
    policies = fw.get("firewallPolicys") or []
    return ([_policy(p) for p in policies if p.get("type") != "NETWORK"] + [vpc]
            + [_policy(p) for p in policies if p.get("type") == "NETWORK"])


def _split(nets: list, sources: list) -> tuple[list, list]:
    """(the parts of nets inside any of sources, the parts outside all of them)."""
    inside, outside = [], list(nets)
    for s in sources:
        rest = []
        for n in outside:
            if n.version != s.version or not n.overlaps(s):
                rest.append(n)
            elif n.subnet_of(s):
                inside.append(n)
            else:  # s is inside n
                inside.append(s)
                rest.extend(n.address_exclude(s))
        outside = rest
    return inside, outside


def evaluate(rule_stages: list[list[Rule]], source: str, applies) -> list[tuple]:
    """[(network, deciding Rule or None for the implied deny)] covering every address of source."""
    pending, decided = [ipaddress.ip_network(source)], []
    for stage in rule_stages:
        handed_on = []
        for rule in stage:
            if not pending:
                break
            if not rule.sources or not applies(rule):
                continue
            inside, pending = _split(pending, rule.sources)
            if rule.action == "goto_next":
                handed_on += inside
            else:
                decided += [(n, rule) for n in inside]
        pending += handed_on
    return decided + [(n, None) for n in pending]


@dataclass(frozen=True)
class Nodes:
    tags: frozenset
    account: str
    pools: tuple


def node_groups(cluster) -> list[Nodes]:
    base = f"gke-{cluster.name}-{cluster.id[:8]}-node"
    groups: dict[tuple, list[str]] = {}
    for pool in cluster.node_pools or [None]:
        config = pool.config if pool else cluster.node_config
        key = (frozenset([base, *config.tags]), config.service_account or "default")
        groups.setdefault(key, []).append(pool.name if pool else "(Autopilot nodes)")
    return [Nodes(tags, account, tuple(pools)) for (tags, account), pools in groups.items()]


def serving_ports(ctx, fw: dict, base_tag: str) -> tuple[dict, str]:
    """{port: [what is served there]} and a note; the controller's own rules' ports when Kubernetes is not readable."""
    ports: dict[int, list[str]] = {}
    try:
        t = targets(ctx)
        if not t.ingresses:
            return {}, t.note
        for b in all_backends(ctx, t.ingresses):
            port = load_balancer_port(ctx, b) if b.port and b.type != "ExternalName" else None
            if port:
                ports.setdefault(port, []).append(f"`{b.ref}` ({'NEG' if b.neg else 'nodePort'})")
        return ports, ""
    except ApiError as err:
        for r in fw.get("firewalls") or []:
            if r["name"].startswith("k8s-fw-l7-") and base_tag in (r.get("targetTags") or []):
                for spec in (p for e in r.get("allowed") or [] for p in e.get("ports") or []):
                    for port in sorted(set(_span(spec))):
                        ports.setdefault(port, []).append(f"rule `{r['name']}`")
        return ports, (f"The serving ports could not be read from Kubernetes ({err.explain()}); checked the ports of "
                       "the Ingress controller's own `k8s-fw-l7-*` rules instead.")


def _show(nets: list, source: str) -> str:
    whole = ipaddress.ip_network(source)
    parts = list(ipaddress.collapse_addresses(nets))
    if parts == [whole]:
        return source
    return ", ".join(map(str, parts[:3])) + (" …" if len(parts) > 3 else "") + f" (of {source})"


def create_command(ctx, net_project: str, network: str, tag: str, ports, priority: int) -> str:
    name = f"gke-{ctx.ref.name}-allow-health-checks"[:63]
    rules = ",".join(f"tcp:{p}" for p in sorted(ports))
    return (f"gcloud compute firewall-rules create {name} --project={net_project} \\\n    --network={network} "
            f"--direction=INGRESS --action=ALLOW --priority={priority} \\\n    --source-ranges={','.join(HC_RANGES)} "
            f"--target-tags={tag} --rules={rules}")


def run(ctx):
    cluster = ctx.gw.cluster(ctx.ref)
    net_project, network = cluster_network(ctx)
    fw = ctx.gw.effective_firewalls(net_project, network)
    base_tag = f"gke-{cluster.name}-{cluster.id[:8]}-node"
    ports, note = serving_ports(ctx, fw, base_tag)
    if not ports:
        return ctx.skip(note or "No serving port to check (no backend Service could be resolved; see "
                                "ingress/backend-services).")
    rule_stages, resource = stages(fw), f"projects/{net_project}/global/networks/{network}"

    def account(nodes: Nodes) -> str:  # "default": the project's Compute Engine default service account
        return nodes.account if nodes.account != "default" else \
            f"{ctx.gw.project_number(ctx.ref.project)}-compute@developer.gserviceaccount.com"

    blocked: dict[str, dict] = {}  # rule label (or "" for no allow) -> {"rule", "ports", "nets", "pools"}
    allowed_by: set[str] = set()
    for nodes in node_groups(cluster):
        for port in ports:
            def applies(rule: Rule) -> bool:
                return ((not rule.tags or bool(set(rule.tags) & nodes.tags))
                        and (not rule.accounts or account(nodes) in rule.accounts)
                        and any(proto.lower() in ("tcp", "all", "6") and (not specs or any(
                            lo <= port <= hi for lo, hi in map(_span, specs))) for proto, specs in rule.l4))
            for source in HC_RANGES:
                for net, rule in evaluate(rule_stages, source, applies):
                    if rule is not None and rule.action == "allow":
                        allowed_by.add(rule.label)
                        continue
                    entry = blocked.setdefault(rule.label if rule else "", {"rule": rule, "ports": set(), "nets": {},
                                                                            "pools": set()})
                    entry["ports"].add(port)
                    entry["nets"].setdefault(source, []).append(net)
                    entry["pools"].update(nodes.pools)
    served = "; ".join(f"tcp:{p} for {', '.join(what)}" for p, what in sorted(ports.items()))
    evidence = (f"`gcloud compute networks get-effective-firewalls {network} --project={net_project}`; serving ports: "
                f"{served}" + (f". {note}" if note else ""))
    if not blocked:
        return ctx.ok(f"{' and '.join(HC_RANGES)} reach tcp:{', tcp:'.join(map(str, sorted(ports)))} on the nodes, "
                      f"allowed by {', '.join(sorted(allowed_by))}.", evidence=evidence, resource=resource)
    out = []
    for label, entry in sorted(blocked.items(), key=lambda kv: (kv[0] == "", kv[0])):
        rule, port_list = entry["rule"], sorted(entry["ports"])
        seen = evidence + (f"\n{rule}" if rule else "")
        sources = ", ".join(_show(nets, src) for src, nets in entry["nets"].items())
        reach = (f"Google's health checks from {sources} to tcp:{', tcp:'.join(map(str, port_list))} on the nodes of "
                 f"node pool(s) {', '.join(sorted(entry['pools']))}")
        consequence = "; the load balancer then marks those backends UNHEALTHY and answers 502."
        if rule is None:
            out.append(ctx.fail(f"No firewall rule allows {reach}: the implied deny-ingress rule drops them"
                                + consequence, "Allow the health checkers in:\n```\n"
                                + create_command(ctx, net_project, network, base_tag, port_list, 1000) + "\n```",
                                evidence=seen, resource=resource))
        elif rule.policy:
            layer4 = ",".join(f"tcp:{p}" for p in port_list)
            out.append(ctx.fail(
                f"{reach[0].upper()}{reach[1:]} are denied by {label}, a firewall policy evaluated before the VPC's "
                f"own rules, so no VPC rule can allow them" + consequence,
                "Ask your organization's network admins to let the health checkers through that policy before "
                f"priority {rule.priority}, for example:\n```\ngcloud compute firewall-policies rules create "
                f"{max(rule.priority - 1, 0)} --firewall-policy={rule.policy} \\\n    --direction=INGRESS "
                f"--action=goto_next --src-ip-ranges={','.join(HC_RANGES)} --layer4-configs={layer4}\n```",
                evidence=seen, resource=resource))
        else:
            out.append(ctx.fail(
                f"{reach[0].upper()}{reach[1:]} are denied by {label}: a deny of higher priority (a lower number) "
                "wins over any allow, including the Ingress controller's own `k8s-fw-l7-*` rule" + consequence,
                f"Narrow or delete `{rule.name}` (`gcloud compute firewall-rules describe {rule.name} "
                f"--project={net_project}`), or allow the health checkers at a higher priority than {rule.priority}:"
                "\n```\n" + create_command(ctx, net_project, network, base_tag, port_list, max(rule.priority - 1, 0))
                + "\n```", evidence=seen, resource=resource))
    return out
