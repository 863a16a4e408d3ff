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
    argocd(kube)
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
    argocd(kube)
    drop_rule(google, DENY)
    controller_rule(google)
    f = one(check(ID, settings), Status.OK)
    assert "130.211.0.0/22 and 35.191.0.0/16 reach tcp:8080" in f.detail
    assert "VPC firewall rule `k8s-fw-l7--c10b95be` (priority 1000)" in f.detail


def test_deny_wins_over_allow_at_the_same_priority_and_higher_priority_allow_wins(google, kube, live, settings):
    argocd(kube)
    controller_rule(google, priority=900)
    assert DENY in one(check(ID, settings), Status.FAIL).detail
    add_rule(google, "allow-hc-first", ["130.211.0.0/22", "35.191.0.0/16"], ["8000-8100"], priority=899)
    assert "`allow-hc-first`" in one(check(ID, settings), Status.OK).detail


def test_cidr_containment_and_port_ranges(google, kube, live, settings):
    argocd(kube)
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
    argocd(kube)
    drop_rule(google, DENY)
    add_rule(google, "hc-by-account", ["130.211.0.0/22", "35.191.0.0/16"], ["8080"], tags=(),
             accounts=["12340002-compute@developer.gserviceaccount.com"])  # gke1's nodes run as "default"
    assert "`hc-by-account`" in one(check(ID, settings), Status.OK).detail
    live["nodePools"][0]["config"]["serviceAccount"] = "nodes@gcpdiag-gke1-aaaa.iam.gserviceaccount.com"
    assert "No firewall rule allows" in one(check(ID, settings), Status.FAIL).detail


def test_hierarchical_policy_deny_comes_first(google, kube, live, settings):
    argocd(kube)
    drop_rule(google, DENY)
    controller_rule(google)
    policy = google.projects[GKE1].networks["default"]["firewallPolicys"][0]
    policy["rules"] = [r for r in policy["rules"] if r["priority"] != 601]  # no goto_next for the health checkers
    f = one(check(ID, settings), Status.FAIL)
    assert "rule 700 of firewall policy `default-firewall-policy` (action deny)" in f.detail
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
    argocd(kube)  # annotated for NEGs: a Shared VPC gets no automatic ones
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
    assert "networks.getEffectiveFirewalls projects/gcpdiag-gke1-aaaa/global/networks/default" in f.detail
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
    assert sorted((str(n), r.action if r else None) for n, r in got) == sorted(expect)
