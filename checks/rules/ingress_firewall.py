"""Google's health checkers (130.211.0.0/22 and 35.191.0.0/16) get through the firewall to the serving ports.

Load-balancer health checks come from 130.211.0.0/22 and 35.191.0.0/16. They reach the Pods
(container-native load balancing: the Pod port) or the nodes (instance groups: the Service's
nodePort), so the cluster's VPC network must allow these ranges in to the nodes on those ports.
The GKE Ingress controller creates such a rule itself (`k8s-fw-l7-…`), but a deny rule of higher
priority (a lower number) wins over it, a firewall policy can deny before the VPC's rules are even
looked at, and in a Shared VPC the controller may lack the permission to create it.

The check reads every rule in effect in the nodes' region (compute v1
`regionNetworkFirewallPolicies.getEffectiveFirewalls`: VPC firewall rules, hierarchical, system, global
network and regional network firewall policies) and the network's
`networkFirewallPolicyEnforcementOrder` (`networks.get`), and evaluates them in Cloud NGFW's order:
hierarchical policies (organization, then folders), system policies, then the VPC's rules and the
network policies (global, then regional) in the order the network sets (`AFTER_CLASSIC_FIREWALL`, the
default, or `BEFORE_CLASSIC_FIREWALL`), then the implied deny. `goto_next` hands over to the next
level. It honours each rule's targets (network tags and service accounts of the node pools, secure
tags bound to them, the networks a hierarchical rule is limited to, and rules meant for managed proxies
only), for every address of both ranges, every serving port and every node pool, with CIDR
containment and port ranges. Source tags, source service accounts and source secure tags never match
the health checkers (they are not VMs). A rule that matches on what the bot does not evaluate (address groups,
FQDNs, geolocations, threat intelligence lists, source network types, destination ranges) makes the
answer "cannot tell" for the addresses that reach it, never OK or FAIL.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.ingress import (HC_RANGES, all_backends, cluster_network, lb_backend_for, lb_health_check, lb_services,
                            live_health_check, load_balancer_port, region, targets)

ID = "ingress/firewall"
TITLE = N_("The firewall lets Google's health checkers reach the serving ports")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/concepts/firewall-rules#ingress-fws"
COMMANDS = ("ingress",)
ORDER = 60
CLUSTER_LEVEL = False
SEED = "000 はまったところ(2) - ヘルスチェック"
GCPDIAG = "gke/ERR/2022_003"

# Words for people (N_: translated where a rule is read, in the reader's language).
KINDS = {"HIERARCHY": N_("hierarchical firewall policy"), "SYSTEM": N_("system firewall policy"),
         "SYSTEM_GLOBAL": N_("global system firewall policy"), "SYSTEM_REGIONAL": N_("regional system firewall policy"),
         "NETWORK": N_("global network firewall policy"), "NETWORK_REGIONAL": N_("regional network firewall policy")}
ANY_POLICY = N_("firewall policy")
# What a rule can match on that the bot does not evaluate: (field, words for people).
UNKNOWN_SOURCES = (("srcAddressGroups", N_("address groups")), ("srcFqdns", N_("FQDNs")),
                   ("srcRegionCodes", N_("geolocations")), ("srcThreatIntelligences", N_("threat intelligence lists")))
DEST_RANGES = N_("destination ranges")
UNKNOWN_CONDITIONS = (("srcNetworks", N_("source networks")), ("srcNetworkType", N_("a source network type")),
                      ("srcNetworkContext", N_("a source network context")), ("destIpRanges", DEST_RANGES),
                      ("destAddressGroups", N_("destination address groups")))


@dataclass
class Rule:
    label: str
    priority: int
    action: str  # allow, deny or goto_next
    sources: list
    l4: list     # [(protocol, ["80", "1000-2000"])]; no ports: every port
    tags: list = field(default_factory=list)      # VPC rule: target network tags
    accounts: list = field(default_factory=list)  # target service accounts
    name: str = ""    # a VPC firewall rule's name
    policy: str = ""  # a firewall policy's name
    kind: str = ""    # the policy's type (HIERARCHY, NETWORK, …); "" for a VPC rule
    secure_tags: list = field(default_factory=list)  # target secure tags (tagValues/…) in effect
    no_targets: bool = False   # target secure tags were given, none in effect: the rule applies to no VM
    resources: list = field(default_factory=list)    # networks a hierarchical rule is limited to
    proxies_only: bool = False  # targetType INTERNAL_MANAGED_LB: Envoy proxies, not the nodes
    unknown_sources: list = field(default_factory=list)    # OR-ed sources the bot does not evaluate
    unknown_conditions: list = field(default_factory=list)  # AND-ed conditions the bot does not evaluate

    @property
    def uncertain(self) -> str:
        """Why the bot cannot tell whether this rule matches (empty: it can)."""
        return ", ".join(self.unknown_sources + self.unknown_conditions)

    def __str__(self) -> str:
        l4 = ", ".join(proto + (":" + ",".join(ports) if ports else "") for proto, ports in self.l4)
        to = (_("tags {tags}").format(tags=", ".join(self.tags)) if self.tags else
              _("service accounts {accounts}").format(accounts=", ".join(self.accounts)) if self.accounts else
              _("secure tags {tags}").format(tags=", ".join(self.secure_tags)) if self.secure_tags else
              _("all instances"))
        sources = [*map(str, self.sources), *self.unknown_sources]
        facts = dict(label=self.label, action=self.action, l4=l4, sources=", ".join(sources), targets=to,
                     conditions=", ".join(self.unknown_conditions))
        if self.unknown_conditions:
            return _("{label}: {action} {l4} from {sources} to {targets} (also matching on {conditions})").format(**facts)
        return _("{label}: {action} {l4} from {sources} to {targets}").format(**facts)


def _nets(ranges) -> list:
    out = []
    for r in ranges or []:
        try:
            out.append(ipaddress.ip_network(r, strict=False))
        except ValueError:
            pass
    return out


def _span(ports: str) -> tuple[int, int]:
    lo, _sep, hi = ports.partition("-")
    return int(lo), int(hi or lo)


def _network_path(url: str) -> str:
    """projects/P/global/networks/N of any form of a network reference."""
    return url[url.index("projects/"):] if "projects/" in url else url


def _policy(p: dict) -> list[Rule]:
    kind = p.get("type") or ""
    title = p.get("shortName") or p.get("displayName") or p.get("name")
    rules = []
    for r in p.get("rules") or []:
        m = r.get("match") or {}
        if r.get("direction") != "INGRESS" or r.get("disabled"):
            continue
        tags = r.get("targetSecureTags") or []
        effective = [t.get("name", "") for t in tags if t.get("state", "EFFECTIVE") == "EFFECTIVE"]
        action = r.get("action") if r.get("action") in ("deny", "goto_next") else "allow"
        rules.append(Rule(
            _("rule {priority} of {kind} `{policy}` (action {action})").format(
                priority=r.get("priority"), kind=_(KINDS.get(kind, ANY_POLICY)), policy=title, action=r.get("action")),
            r.get("priority", 0), action, _nets(m.get("srcIpRanges")),
            [(c.get("ipProtocol", ""), c.get("ports") or []) for c in m.get("layer4Configs") or []],
            accounts=r.get("targetServiceAccounts") or [], policy=p.get("name", ""), kind=kind,
            secure_tags=effective, no_targets=bool(tags) and not effective,
            resources=[_network_path(u) for u in r.get("targetResources") or []],
            proxies_only=r.get("targetType") == "INTERNAL_MANAGED_LB",
            unknown_sources=[_(words) for key, words in UNKNOWN_SOURCES if m.get(key)],
            unknown_conditions=[_(words) for key, words in UNKNOWN_CONDITIONS
                                if m.get(key) and not (key == "destIpRanges" and _covers_all(m[key]))]))
    return sorted(rules, key=lambda r: r.priority)


def _covers_all(ranges) -> bool:
    return any(n.prefixlen == 0 for n in _nets(ranges))


def _vpc(fw: dict) -> list[Rule]:
    vpc = [Rule(_("VPC firewall rule `{name}` (priority {priority})").format(name=r["name"],
                                                                           priority=r.get("priority", 1000)),
                r.get("priority", 1000),
                "allow" if r.get("allowed") else "deny", _nets(r.get("sourceRanges")),
                [(e.get("IPProtocol", ""), e.get("ports") or []) for e in r.get("allowed") or r.get("denied") or []],
                r.get("targetTags") or [], r.get("targetServiceAccounts") or [], name=r["name"],
                unknown_conditions=[_(DEST_RANGES)] if r.get("destinationRanges") and not _covers_all(
                    r.get("destinationRanges")) else [])
           for r in fw.get("firewalls") or [] if r.get("direction", "INGRESS") == "INGRESS" and not r.get("disabled")]
    vpc.sort(key=lambda r: (r.priority, r.action != "deny"))  # at one priority, deny wins
    return vpc


TYPE_ORDER = {"HIERARCHY": 0, "SYSTEM": 1, "SYSTEM_GLOBAL": 1, "SYSTEM_REGIONAL": 2, "NETWORK": 3,
              "NETWORK_REGIONAL": 4}


def stages(fw: dict, order: str = "AFTER_CLASSIC_FIREWALL") -> list[list[Rule]]:
    """Rule lists in Cloud NGFW's evaluation order: hierarchical policies (as listed: organization, then
    folders), system policies, then the VPC's rules after (AFTER_CLASSIC_FIREWALL, the default) or before
    (BEFORE_CLASSIC_FIREWALL) the global and regional network policies."""
    policies = sorted(enumerate(fw.get("firewallPolicys") or []),
                      key=lambda ip: (TYPE_ORDER.get(ip[1].get("type"), 5), ip[1].get("priority") or 0, ip[0]))
    first = [_policy(p) for _i, p in policies if TYPE_ORDER.get(p.get("type"), 5) <= 2]
    network = [_policy(p) for _i, p in policies if TYPE_ORDER.get(p.get("type"), 5) > 2]
    if order == "BEFORE_CLASSIC_FIREWALL":
        return first + network + [_vpc(fw)]
    return first + [_vpc(fw)] + network


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
    """[(network, deciding Rule or None for the implied deny, certain)] covering every address of source.

    certain is False for addresses that reached a rule the bot cannot fully evaluate (see Rule.uncertain):
    that rule may or may not have decided them."""
    pending, decided = [ipaddress.ip_network(source)], []
    for stage in rule_stages:
        handed_on = []
        for rule in stage:
            if not pending:
                break
            if not (rule.sources or rule.unknown_sources) or not applies(rule):
                continue
            inside, outside = _split(pending, rule.sources)
            if rule.unknown_conditions:  # whether it matches these addresses at all is unknown
                maybe, pending = (inside + outside, []) if rule.unknown_sources else (inside, outside)
                decided += [(n, rule, False) for n in maybe]
                continue
            pending = outside
            if rule.action == "goto_next":
                handed_on += inside
            else:
                decided += [(n, rule, True) for n in inside]
            if rule.unknown_sources and pending:  # the rest may be in its address groups, FQDNs, regions…
                decided += [(n, rule, False) for n in pending]
                pending = []
        pending += handed_on
    return decided + [(n, None, True) for n in pending]


@dataclass(frozen=True)
class Nodes:
    tags: frozenset
    account: str
    pools: tuple
    secure: frozenset = frozenset()  # secure tag values bound to the nodes (resourceManagerTags)


def node_groups(cluster) -> list[Nodes]:
    base = f"gke-{cluster.name}-{cluster.id[:8]}-node"
    groups: dict[tuple, list[str]] = {}
    for pool in cluster.node_pools or [None]:
        config = pool.config if pool else cluster.node_config
        secure = dict(config.resource_manager_tags.tags) or (
            {} if pool else dict(cluster.node_pool_auto_config.resource_manager_tags.tags))
        key = (frozenset([base, *config.tags]), config.service_account or "default", frozenset(secure.values()))
        groups.setdefault(key, []).append(pool.name if pool else "(Autopilot nodes)")
    return [Nodes(tags, account, tuple(pools), secure) for (tags, account, secure), pools in groups.items()]


def serving_ports(ctx, fw: dict, base_tag: str) -> tuple[dict, str]:
    """{port: [what is served there]} and a note; the controller's own rules' ports when Kubernetes is not readable.
    The load balancer's own health checks give the ports when they can be read."""
    ports: dict[int, list[str]] = {}
    try:
        t = targets(ctx)
        if not t.ingresses:
            return {}, t.note
        backends, *lbs = ctx.gw.parallel(lambda: all_backends(ctx, t.ingresses),
                                         *[lambda ing=ing: lb_services(ctx, ing) for ing in t.ingresses])
        for b in backends:
            if not b.port or b.type == "ExternalName":
                continue
            live = None
            for ing in t.ingresses:
                lb = lb_backend_for(ctx, ing, b)
                if lb is not None:
                    live = live_health_check(lb_health_check(ctx, lb)[0], b)
                    break
            port = load_balancer_port(ctx, b, live)
            if port:
                ports.setdefault(port, []).append(f"`{b.ref}` ({'NEG' if b.neg else 'nodePort'})")  # identifiers
        return ports, ""
    except ApiError as err:
        for r in fw.get("firewalls") or []:
            if r["name"].startswith("k8s-fw-l7-") and base_tag in (r.get("targetTags") or []):
                for spec in (p for e in r.get("allowed") or [] for p in e.get("ports") or []):
                    for port in sorted(set(_span(spec))):
                        ports.setdefault(port, []).append(_("rule `{name}`").format(name=r["name"]))
        return ports, _("The serving ports could not be read from Kubernetes ({error}); checked the ports of the Ingress "
                        "controller's own `k8s-fw-l7-*` rules instead.").format(error=err.explain())


def _show(nets: list, source: str) -> str:
    whole = ipaddress.ip_network(source)
    parts = list(ipaddress.collapse_addresses(nets))
    if parts == [whole]:
        return source
    return _("{ranges} (of {source})").format(ranges=", ".join(map(str, parts[:3])) + (" …" if len(parts) > 3 else ""),
                                              source=source)


def create_command(ctx, net_project: str, network: str, tag: str, ports, priority: int) -> str:
    name = f"gke-{ctx.ref.name}-allow-health-checks"[:63]
    rules = ",".join(f"tcp:{p}" for p in sorted(ports))
    return (f"gcloud compute firewall-rules create {name} --project={net_project} \\\n    --network={network} "
            f"--direction=INGRESS --action=ALLOW --priority={priority} \\\n    --source-ranges={','.join(HC_RANGES)} "
            f"--target-tags={tag} --rules={rules}")


def policy_fix(ctx, rule: Rule, port_list, net_project: str) -> str:
    layer4 = ",".join(f"tcp:{p}" for p in port_list)
    before = max(rule.priority - 1, 0)
    ranges = ",".join(HC_RANGES)
    if rule.kind == "HIERARCHY":
        return _("Ask your organization's network admins to let the health checkers through that policy before "
                 "priority {priority}, for example:\n```\n{command}\n```").format(
            priority=rule.priority,
            command=f"gcloud compute firewall-policies rules create {before} --firewall-policy={rule.policy} \\\n"
                    f"    --direction=INGRESS --action=goto_next --src-ip-ranges={ranges} --layer4-configs={layer4}")
    if rule.kind in ("NETWORK", "NETWORK_REGIONAL"):
        scope = "--global-firewall-policy" if rule.kind == "NETWORK" else f"--firewall-policy-region={region(ctx)}"
        return _("Allow the health checkers in that policy before priority {priority}:\n```\n{command}\n```").format(
            priority=rule.priority,
            command=f"gcloud compute network-firewall-policies rules create {before} --firewall-policy={rule.policy} "
                    f"{scope} --project={net_project} \\\n    --direction=INGRESS --action=allow "
                    f"--src-ip-ranges={ranges} --layer4-configs={layer4}")
    return _("That policy is managed by Google (a system firewall policy); it cannot be edited. Open a support case "
             "with the rule quoted below.")


def run(ctx):
    cluster = ctx.gw.cluster(ctx.ref)
    net_project, network = cluster_network(ctx)
    fw, net = ctx.gw.parallel(lambda: ctx.gw.region_effective_firewalls(net_project, region(ctx), network),
                              lambda: ctx.gw.network(net_project, network))
    base_tag = f"gke-{cluster.name}-{cluster.id[:8]}-node"
    ports, note = serving_ports(ctx, fw, base_tag)
    if not ports:
        return ctx.skip(note or _("No serving port to check (no backend Service could be resolved; see "
                                  "ingress/backend-services)."))
    order = net.get("networkFirewallPolicyEnforcementOrder") or "AFTER_CLASSIC_FIREWALL"
    rule_stages, resource = stages(fw, order), f"projects/{net_project}/global/networks/{network}"
    net_path = resource

    def account(nodes: Nodes) -> str:  # "default": the project's Compute Engine default service account
        return nodes.account if nodes.account != "default" else \
            f"{ctx.gw.project_number(ctx.ref.project)}-compute@developer.gserviceaccount.com"

    blocked: dict[str, dict] = {}    # rule label (or "" for no allow) -> {"rule", "ports", "nets", "pools"}
    uncertain: dict[str, dict] = {}  # rule label -> same shape
    allowed_by: set[str] = set()
    for nodes in node_groups(cluster):
        for port in ports:
            def applies(rule: Rule) -> bool:
                return (not rule.proxies_only and not rule.no_targets
                        and (not rule.resources or net_path in rule.resources)
                        and (not rule.tags or bool(set(rule.tags) & nodes.tags))
                        and (not rule.accounts or account(nodes) in rule.accounts)
                        and (not rule.secure_tags or bool(set(rule.secure_tags) & nodes.secure))
                        and any(proto.lower() in ("tcp", "all", "6") and (not specs or any(
                            lo <= port <= hi for lo, hi in map(_span, specs))) for proto, specs in rule.l4))
            for source in HC_RANGES:
                for net_, rule, certain in evaluate(rule_stages, source, applies):
                    if certain and rule is not None and rule.action == "allow":
                        allowed_by.add(rule.label)
                        continue
                    into = blocked if certain else uncertain
                    entry = into.setdefault(rule.label if rule else "", {"rule": rule, "ports": set(), "nets": {},
                                                                         "pools": set()})
                    entry["ports"].add(port)
                    entry["nets"].setdefault(source, []).append(net_)
                    entry["pools"].update(nodes.pools)
    served = "; ".join(_("tcp:{port} for {backends}").format(port=p, backends=", ".join(what))
                       for p, what in sorted(ports.items()))
    command = (f"gcloud compute network-firewall-policies get-effective-firewalls --network={network} "
               f"--region={region(ctx)} --project={net_project}")
    evidence = (_("`{command}`; network firewall policy enforcement order {order}; serving ports: {ports}. {note}") if note
                else _("`{command}`; network firewall policy enforcement order {order}; serving ports: {ports}")).format(
        command=command, order=order, ports=served, note=note)
    if not blocked and not uncertain:
        return ctx.ok(_("{ranges} reach {ports} on the nodes, allowed by {rules}.").format(
            ranges=_("{first} and {second}").format(first=HC_RANGES[0], second=HC_RANGES[1]),
            ports="tcp:" + ", tcp:".join(map(str, sorted(ports))), rules=", ".join(sorted(allowed_by))),
            evidence=evidence, resource=resource)
    out = []
    for label, entry in sorted(blocked.items(), key=lambda kv: (kv[0] == "", kv[0])):
        rule, port_list = entry["rule"], sorted(entry["ports"])
        seen = evidence + (f"\n{rule}" if rule else "")
        reach = dict(sources=", ".join(_show(nets, src) for src, nets in entry["nets"].items()),
                     ports="tcp:" + ", tcp:".join(map(str, port_list)), pools=", ".join(sorted(entry["pools"])),
                     rule=label)
        if rule is None:
            out.append(ctx.fail(_("No firewall rule allows Google's health checks from {sources} to {ports} on the nodes "
                                  "of node pool(s) {pools}: the implied deny-ingress rule drops them; the load balancer "
                                  "then marks those backends UNHEALTHY and answers 502.").format(**reach),
                                _("Allow the health checkers in:\n```\n{command}\n```").format(
                                    command=create_command(ctx, net_project, network, base_tag, port_list, 1000)),
                                evidence=seen, resource=resource))
        elif rule.policy:
            before = rule.kind not in ("NETWORK", "NETWORK_REGIONAL") or order == "BEFORE_CLASSIC_FIREWALL"
            text = (_("Google's health checks from {sources} to {ports} on the nodes of node pool(s) {pools} are denied "
                      "by {rule}, evaluated before the VPC's own rules, so no VPC rule can allow them; the load balancer "
                      "then marks those backends UNHEALTHY and answers 502.") if before else
                    _("Google's health checks from {sources} to {ports} on the nodes of node pool(s) {pools} are denied "
                      "by {rule}, evaluated after the VPC's own rules (none of which decided these addresses); the load "
                      "balancer then marks those backends UNHEALTHY and answers 502."))
            out.append(ctx.fail(text.format(**reach), policy_fix(ctx, rule, port_list, net_project), evidence=seen,
                                resource=resource))
        else:
            out.append(ctx.fail(
                _("Google's health checks from {sources} to {ports} on the nodes of node pool(s) {pools} are denied by "
                  "{rule}: a deny of higher priority (a lower number) wins over any allow, including the Ingress "
                  "controller's own `k8s-fw-l7-*` rule; the load balancer then marks those backends UNHEALTHY and "
                  "answers 502.").format(**reach),
                _("Narrow or delete `{name}` (`{command}`), or allow the health checkers at a higher priority than "
                  "{priority}:\n```\n{create}\n```").format(
                    name=rule.name, command=f"gcloud compute firewall-rules describe {rule.name} --project={net_project}",
                    priority=rule.priority,
                    create=create_command(ctx, net_project, network, base_tag, port_list, max(rule.priority - 1, 0))),
                evidence=seen, resource=resource))
    for label, entry in sorted(uncertain.items()):
        rule, port_list = entry["rule"], sorted(entry["ports"])
        out.append(ctx.warn(
            _("Cannot tell whether Google's health checks from {sources} to {ports} on the nodes of node pool(s) {pools} "
              "get through: {rule} (`{action}`) matches on {matches}, which the bot does not evaluate, and it is reached "
              "before any rule that decides these addresses.").format(
                sources=", ".join(_show(nets, src) for src, nets in entry["nets"].items()),
                ports="tcp:" + ", tcp:".join(map(str, port_list)), pools=", ".join(sorted(entry["pools"])),
                rule=label, action=rule.action, matches=rule.uncertain),
            _("Check that rule by hand: if it can match the health checkers' ranges, make sure it allows them; the "
              "firewall insights of Network Intelligence Center (`{command}`) also show which rule decides.").format(
                command="gcloud recommender insights list --insight-type=google.compute.firewall.Insight"),
            evidence=evidence + f"\n{rule}", resource=resource))
    return out
