import copy
import ipaddress

import pytest

from checks.model import Status
from checks.rules.ingress_firewall import Rule, evaluate
from tests.helpers import GKE1, one
from tests.test_check_ingress_fixtures import argocd, check, live, web  # noqa: F401

ID = "ingress/firewall"
TAG = "gke-gke1-c10b95be-node"  # gke-NAME-first 8 of the cluster id-node
DENY = "gke-gke4-ingress-test-deny"  # recorded: priority 900, deny tcp:1024-10000 from 35.191.0.0/16, all instances
SELF = "https://www.googleapis.com/compute/v1/projects/gcpdiag-gke1-aaaa/global"


def firewalls(google) -> list:
    return google.projects[GKE1].networks["default"]["firewalls"]


def add_rule(google, name, sources, ports, *, deny=False, priority=1000, tags=(TAG,), accounts=()):
    rule = {"kind": "compute#firewall", "id": "1", "name": name, "network": f"{SELF}/networks/default",
            "priority": priority, "sourceRanges": list(sources), "direction": "INGRESS", "disabled": False,
            "denied" if deny else "allowed": [{"IPProtocol": "tcp", "ports": list(ports)}],
            "selfLink": f"{SELF}/firewalls/{name}", "logConfig": {"enable": False}}
    if tags:
        rule["targetTags"] = list(tags)
    if accounts:
        rule["targetServiceAccounts"] = list(accounts)
    firewalls(google).append(rule)


def controller_rule(google, ports=("8080",), **kw):
    """The Ingress controller's own rule (k8s-fw-l7-…): both health-check ranges to the nodes."""
    add_rule(google, "k8s-fw-l7--c10b95be", ["130.211.0.0/22", "35.191.0.0/16"], ports, **kw)


def drop_rule(google, name):
    firewalls(google)[:] = [r for r in firewalls(google) if r["name"] != name]


def by_kind(findings) -> dict:
    return {("no allow" if "No firewall rule allows" in f.detail else "deny"): f for f in findings}


def test_recorded_network_denies_and_does_not_allow(google, kube, live, settings):
    argocd(kube, google)
    found = by_kind(check(ID, settings))
    assert all(f.status is Status.FAIL for f in found.values()) and len(found) == 2
    deny = found["deny"]
    assert (f"from 35.191.0.0/16 to tcp:8080 on the nodes of node pool(s) default-pool are denied by VPC firewall rule "
            f"`{DENY}` (priority 900)") in deny.detail
    assert f"gcloud compute firewall-rules describe {DENY} --project={GKE1}" in deny.remedy
    assert ("gcloud compute firewall-rules create gke-gke1-allow-health-checks --project=gcpdiag-gke1-aaaa \\\n"
            "    --network=default --direction=INGRESS --action=ALLOW --priority=899 \\\n"
            f"    --source-ranges=130.211.0.0/22,35.191.0.0/16 --target-tags={TAG} --rules=tcp:8080") in deny.remedy
    assert deny.resource == f"projects/{GKE1}/global/networks/default"
    assert "serving ports: tcp:8080 for `argocd/argocd-server:80` (NEG)" in deny.evidence
    assert deny.evidence.endswith(f"VPC firewall rule `{DENY}` (priority 900): deny tcp:1024-10000 from "
                                  "35.191.0.0/16 to all instances")
    nothing = found["no allow"]
    assert "from 130.211.0.0/22 to tcp:8080" in nothing.detail and "implied deny-ingress" in nothing.detail
    assert "--priority=1000" in nothing.remedy


def test_allowed_when_the_controllers_rule_is_not_overridden(google, kube, live, settings):
    argocd(kube, google)
    drop_rule(google, DENY)
    controller_rule(google)
    f = one(check(ID, settings), Status.OK)
    assert "130.211.0.0/22 and 35.191.0.0/16 reach tcp:8080" in f.detail
    assert "VPC firewall rule `k8s-fw-l7--c10b95be` (priority 1000)" in f.detail


def test_deny_wins_over_allow_at_the_same_priority_and_higher_priority_allow_wins(google, kube, live, settings):
    argocd(kube, google)
    controller_rule(google, priority=900)
    assert DENY in one(check(ID, settings), Status.FAIL).detail
    add_rule(google, "allow-hc-first", ["130.211.0.0/22", "35.191.0.0/16"], ["8000-8100"], priority=899)
    assert "`allow-hc-first`" in one(check(ID, settings), Status.OK).detail


def test_cidr_containment_and_port_ranges(google, kube, live, settings):
    argocd(kube, google)
    drop_rule(google, DENY)
    add_rule(google, "hc-half", ["35.191.0.0/17", "130.211.0.0/16"], ["8000-9000"])
    add_rule(google, "hc-other-ports", ["35.191.128.0/17"], ["30000-32767"])
    add_rule(google, "hc-other-nodes", ["35.191.0.0/16"], ["8080"], tags=("gke-gke3-15974e23-node",))
    f = one(check(ID, settings), Status.FAIL)
    assert "from 35.191.128.0/17 (of 35.191.0.0/16) to tcp:8080" in f.detail
    assert "130.211.0.0/22 " not in f.detail


def test_node_port_backends_are_checked_on_the_node_port(google, kube, live, settings):
    live["networkPolicy"] = {"enabled": True}  # no automatic NEGs: instance groups on the nodePort
    web(kube, type_="NodePort")
    drop_rule(google, DENY)
    controller_rule(google, ["30000-32767"])
    f = one(check(ID, settings), Status.OK)
    assert "tcp:30080" in f.detail and "`shop/web:80` (nodePort)" in f.evidence


def test_target_service_account_rules_match_the_node_pools_account(google, kube, live, settings):
    argocd(kube, google)
    drop_rule(google, DENY)
    add_rule(google, "hc-by-account", ["130.211.0.0/22", "35.191.0.0/16"], ["8080"], tags=(),
             accounts=["12340002-compute@developer.gserviceaccount.com"])  # gke1's nodes run as "default"
    assert "`hc-by-account`" in one(check(ID, settings), Status.OK).detail
    live["nodePools"][0]["config"]["serviceAccount"] = "nodes@gcpdiag-gke1-aaaa.iam.gserviceaccount.com"
    assert "No firewall rule allows" in one(check(ID, settings), Status.FAIL).detail


def test_hierarchical_policy_deny_comes_first(google, kube, live, settings):
    argocd(kube, google)
    drop_rule(google, DENY)
    controller_rule(google)
    policy = hierarchy(google)
    policy["rules"] = [r for r in policy["rules"] if r["priority"] != 601]  # no goto_next for the health checkers
    f = one(check(ID, settings), Status.FAIL)
    assert "rule 700 of hierarchical firewall policy `default-firewall-policy` (action deny)" in f.detail
    assert f.evidence.endswith("(action deny): deny all from 0.0.0.0/0 to all instances")
    assert "130.211.0.0/22, 35.191.0.0/16" in f.detail
    assert ("gcloud compute firewall-policies rules create 699 --firewall-policy=902824820698 \\\n"
            "    --direction=INGRESS --action=goto_next --src-ip-ranges=130.211.0.0/22,35.191.0.0/16 "
            "--layer4-configs=tcp:8080") in f.remedy


def test_shared_vpc_reads_the_host_projects_network(google, kube, live, settings):
    host = google.add_project("gke-host-aaaa", "12340099")
    host.networks["shared"] = {"firewalls": [dict(r, network="shared") for r in firewalls(google)
                                             if r["name"] != DENY]}
    live["networkConfig"]["network"] = "projects/gke-host-aaaa/global/networks/shared"
    argocd(kube, google)  # annotated for NEGs: a Shared VPC gets no automatic ones
    f = one(check(ID, settings), Status.FAIL)
    assert f.resource == "projects/gke-host-aaaa/global/networks/shared"
    assert "--project=gke-host-aaaa \\\n    --network=shared" in f.remedy


def test_without_kubernetes_the_controllers_own_rules_give_the_ports(google, settings):
    # gke1 is not served: Kubernetes cannot be read, the firewall still can.
    controller_rule(google)
    f = one(check(ID, settings), Status.FAIL)
    assert f"`{DENY}`" in f.detail and "to tcp:8080" in f.detail
    assert "could not be read from Kubernetes" in f.evidence and "rule `k8s-fw-l7--c10b95be`" in f.evidence


def test_compute_api_disabled_is_an_error(google, settings):
    google.projects[GKE1].services["compute.googleapis.com"] = "DISABLED"
    f = one(check(ID, settings), Status.ERROR)
    assert ("regionNetworkFirewallPolicies.getEffectiveFirewalls projects/gcpdiag-gke1-aaaa/regions/europe-west4 "
            "network=default") in f.detail
    assert "Compute Engine API has not been used in project 12340002" in f.detail


def test_no_ingress_no_ports(kube, live, settings):
    assert "has no Ingress" in one(check(ID, settings), Status.SKIP).detail


@pytest.mark.parametrize("rules, expect", [
    ([], [("10.0.0.0/8", None)]),
    ([("allow", ["0.0.0.0/0"])], [("10.0.0.0/8", "allow")]),
    ([("deny", ["10.1.0.0/16"]), ("allow", ["10.0.0.0/8"])],
     [("10.1.0.0/16", "deny")] + [(str(n), "allow") for n in ipaddress.ip_network("10.0.0.0/8").address_exclude(
         ipaddress.ip_network("10.1.0.0/16"))]),
    ([("goto_next", ["10.0.0.0/9"]), ("deny", ["0.0.0.0/0"])],
     [("10.128.0.0/9", "deny"), ("10.0.0.0/9", None)]),
    ([("allow", ["::/0", "11.0.0.0/8"])], [("10.0.0.0/8", None)]),
])
def test_evaluate_covers_every_address(rules, expect):
    stage = [Rule(f"r{i}", i, action, [ipaddress.ip_network(s) for s in sources], [("tcp", [])])
             for i, (action, sources) in enumerate(rules)]
    got = evaluate([stage], "10.0.0.0/8", lambda rule: True)
    assert all(certain for _, _, certain in got)
    assert sorted((str(n), r.action if r else None) for n, r, _ in got) == sorted(expect)


# ---- firewall policies beyond the hierarchical one: regional, system, enforcement order, targets ---------------
HC = ["130.211.0.0/22", "35.191.0.0/16"]


def hierarchy(google) -> dict:
    return next(p for p in google.projects[GKE1].networks["default"]["firewallPolicys"] if p["type"] == "HIERARCHY")


def policy_rule(priority: int, action: str, sources=HC, ports=("8080",), **extra) -> dict:
    """A rule shaped as the recorded hierarchical policy's rules are."""
    rule = copy.deepcopy(next(r for r in hierarchy_rules() if r["priority"] == 700))
    rule.update(priority=priority, action=action, **extra)
    rule["match"] = {"srcIpRanges": list(sources), "layer4Configs": [{"ipProtocol": "tcp", "ports": list(ports)}]}
    if not sources:
        del rule["match"]["srcIpRanges"]
    return rule


def hierarchy_rules() -> list:
    from tests.fakes.google import FIXTURES, _read
    return _read(FIXTURES / "gke1" / "compute-effective-firewalls-default.json")["firewallPolicys"][0]["rules"]


def regional_policy(google, *rules, kind="NETWORK_REGIONAL", name="hc-regional") -> None:
    google.projects[GKE1].compute.regional_policies.setdefault(("europe-west4", "default"), []).append(
        {"name": name, "type": kind, "displayName": name, "priority": 1000, "rules": list(rules)})


def enforcement(google, order: str) -> None:
    from tests.fakes.compute import network_resource
    st = google.projects[GKE1]
    st.compute.networks["default"] = dict(network_resource(st, "default"), networkFirewallPolicyEnforcementOrder=order)


@pytest.fixture
def allowed(google, kube, live):
    """argocd behind NEGs, the recorded network without its deny, the controller's own allow rule: OK."""
    argocd(kube, google)
    drop_rule(google, DENY)
    controller_rule(google)


def test_regional_network_policy_is_read_and_ordered_by_the_networks_enforcement_order(google, allowed, settings):
    regional_policy(google, policy_rule(100, "deny"))
    # AFTER_CLASSIC_FIREWALL (the default): the VPC's own allow decides first
    assert "`k8s-fw-l7--c10b95be`" in one(check(ID, settings), Status.OK).detail
    enforcement(google, "BEFORE_CLASSIC_FIREWALL")
    f = one(check(ID, settings), Status.FAIL)
    assert "denied by rule 100 of regional network firewall policy `hc-regional` (action deny), evaluated before " \
           "the VPC's own rules" in f.detail
    assert "network firewall policy enforcement order BEFORE_CLASSIC_FIREWALL" in f.evidence
    assert ("gcloud compute network-firewall-policies rules create 99 --firewall-policy=hc-regional "
            "--firewall-policy-region=europe-west4 --project=gcpdiag-gke1-aaaa") in f.remedy
    assert any("/regions/europe-west4/firewallPolicies/getEffectiveFirewalls" in c.path for c in google.calls)


def test_regional_deny_after_the_vpc_rules_blocks_what_no_vpc_rule_decides(google, kube, live, settings):
    argocd(kube, google)
    drop_rule(google, DENY)  # no VPC rule decides the health checkers
    regional_policy(google, policy_rule(100, "deny"))
    f = one(check(ID, settings), Status.FAIL)
    assert "rule 100 of regional network firewall policy `hc-regional`" in f.detail
    assert "evaluated after the VPC's own rules" in f.detail


def test_system_policies_come_after_the_hierarchical_ones(google, allowed, settings):
    # listed first, but a system policy is evaluated after every hierarchical policy, which allows here
    hierarchy(google)["rules"].insert(0, policy_rule(0, "allow", ports=()))
    google.projects[GKE1].networks["default"]["firewallPolicys"].insert(
        0, {"name": "gke-system-1", "type": "SYSTEM", "rules": [policy_rule(10, "deny", ports=())]})
    assert "rule 0 of hierarchical firewall policy `default-firewall-policy`" in one(check(ID, settings),
                                                                                   Status.OK).detail
    del hierarchy(google)["rules"][0]
    f = one(check(ID, settings), Status.FAIL)
    assert "rule 10 of global system firewall policy `gke-system-1`" in f.detail
    assert "managed by Google" in f.remedy and "firewall-policies rules create" not in f.remedy


def test_target_secure_tags_apply_to_the_node_pools_bound_to_them(google, allowed, live, settings):
    tag = [{"name": "tagValues/281484795098710", "state": "EFFECTIVE"}]
    regional_policy(google, policy_rule(100, "deny", targetSecureTags=tag))
    enforcement(google, "BEFORE_CLASSIC_FIREWALL")
    assert one(check(ID, settings), Status.OK)  # the nodes do not carry that tag
    live["nodePools"][0]["config"]["resourceManagerTags"] = {"tags": {"tagKeys/281479010254963":
                                                                      "tagValues/281484795098710"}}
    assert "rule 100 of regional network firewall policy" in one(check(ID, settings), Status.FAIL).detail
    tag[0]["state"] = "INEFFECTIVE"  # a tag that is not in effect targets nothing
    assert one(check(ID, settings), Status.OK)


def test_target_resources_limit_a_hierarchical_rule_to_its_networks(google, allowed, settings):
    other = "https://www.googleapis.com/compute/v1/projects/gcpdiag-gke1-aaaa/global/networks/other"
    hierarchy(google)["rules"].insert(0, policy_rule(1, "deny", targetResources=[other]))
    assert one(check(ID, settings), Status.OK)
    hierarchy(google)["rules"][0]["targetResources"] = [other.replace("/other", "/default")]
    assert "rule 1 of hierarchical firewall policy" in one(check(ID, settings), Status.FAIL).detail


def test_target_service_accounts_of_a_policy_rule(google, allowed, live, settings):
    hierarchy(google)["rules"].insert(0, policy_rule(1, "deny", targetServiceAccounts=[
        "nodes@gcpdiag-gke1-aaaa.iam.gserviceaccount.com"]))
    assert one(check(ID, settings), Status.OK)  # gke1's nodes run as the default compute account
    live["nodePools"][0]["config"]["serviceAccount"] = "nodes@gcpdiag-gke1-aaaa.iam.gserviceaccount.com"
    assert "rule 1 of hierarchical firewall policy" in one(check(ID, settings), Status.FAIL).detail


@pytest.mark.parametrize("field, value, words", [
    ("srcAddressGroups", ["projects/gcpdiag-gke1-aaaa/locations/global/addressGroups/scanners"], "address groups"),
    ("srcFqdns", ["probe.example.com"], "FQDNs"),
    ("srcRegionCodes", ["US"], "geolocations"),
])
def test_what_the_bot_does_not_evaluate_is_cannot_tell(google, allowed, settings, field, value, words):
    rule = policy_rule(1, "deny", sources=())
    rule["match"][field] = value
    hierarchy(google)["rules"].insert(0, rule)
    f = one(check(ID, settings), Status.WARN)
    assert f.detail.startswith("Cannot tell whether Google's health checks from 130.211.0.0/22, 35.191.0.0/16 to "
                               "tcp:8080")
    assert f"rule 1 of hierarchical firewall policy `default-firewall-policy` (action deny) (`deny`) matches on " \
           f"{words}, which the bot does not evaluate" in f.detail


def test_ip_ranges_still_decide_beside_what_the_bot_does_not_evaluate(google, allowed, settings):
    rule = policy_rule(1, "deny", sources=["35.191.0.0/16"])
    rule["match"]["srcFqdns"] = ["probe.example.com"]
    hierarchy(google)["rules"].insert(0, rule)
    found = {f.status: f for f in check(ID, settings)}
    assert set(found) == {Status.FAIL, Status.WARN}
    assert "from 35.191.0.0/16 to tcp:8080" in found[Status.FAIL].detail
    assert "Cannot tell whether Google's health checks from 130.211.0.0/22 to tcp:8080" in found[Status.WARN].detail


def test_regional_answer_has_the_real_shape(google, settings):
    """regionNetworkFirewallPolicies.getEffectiveFirewalls through the real client: no shortName in its policy type,
    SYSTEM as SYSTEM_GLOBAL, the region's own policies only."""
    from google.cloud import compute_v1
    from tests.helpers import gateway
    regional_policy(google, policy_rule(100, "deny"))
    google.projects[GKE1].compute.regional_policies[("us-east1", "default")] = [
        {"name": "elsewhere", "type": "NETWORK_REGIONAL", "rules": []}]
    gw = gateway(settings)
    got = gw.region_effective_firewalls(GKE1, "europe-west4", "default")
    assert [(p["name"], p["type"]) for p in got["firewallPolicys"]] == [("902824820698", "HIERARCHY"),
                                                                         ("hc-regional", "NETWORK_REGIONAL")]
    assert "shortName" not in got["firewallPolicys"][0] and got["firewalls"]
    assert compute_v1.RegionNetworkFirewallPoliciesGetEffectiveFirewallsResponse.from_json(
        __import__("json").dumps(got), ignore_unknown_fields=False)
    assert gw.network(GKE1, "default")["networkFirewallPolicyEnforcementOrder"] == "AFTER_CLASSIC_FIREWALL"
