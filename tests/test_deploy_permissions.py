"""The bot's own permissions are derived from the calls the code declares (checks.gateway.permissions):
the custom roles (deploy/iam/roles/) and the ClusterRole (deploy/cluster-rbac/) hold exactly what the
declared calls need, no more, no less; and the README's tables say the same thing.

When a change adds a Google call, its permission goes into gkeBotReader.yaml (a read) or into the
fix role of its fix kind (a write); a new fix kind gets a role file, an entry in FIX_ROLES below
and in deploy/iam/setup.sh. A new Kubernetes call goes into deploy/cluster-rbac/clusterrole.yaml.
The README's permission tables follow (test_readme_*)."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

import checks.gateway  # noqa: F401 - imports every gateway module, so every call is declared
from checks.fixes import EXECUTORS
from checks.gateway import permissions
from tests.deploy import DEPLOY, kustomize, named

READER = "gkeBotReader"
# fix role file -> the fix kinds (checks.gateway.permissions `fix`) whose writes it grants
FIX_ROLES = {"gkeBotServiceAgentFixer": {"grant_service_agent"},
             "gkeBotClusterFixer": {"upgrade_node_pool", "enable_http_load_balancing"}}

ROOT = Path(__file__).resolve().parents[1]
ROLES = {p.stem: set(yaml.safe_load(p.read_text())["includedPermissions"]) for p in (DEPLOY / "iam" / "roles").glob("*.yaml")}
PERMISSION = re.compile(r"`([a-z]+\.[a-zA-Z]+\.[a-zA-Z]+)`")


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("### The bot's own permissions")
    return text[start:text.index("\n## ", start)]


def _table_after(section: str, heading: str) -> list[list[str]]:
    block = section[section.index(heading):]
    rows = []
    for line in block.splitlines()[1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # past the header and the |---| line


def cluster_role_rules() -> set[tuple[str, str, str]]:
    """(verb, group, resource) the ClusterRole grants."""
    role = named(kustomize(DEPLOY / "cluster-rbac"), "ClusterRole", "gke-bot-reader")
    return {(v, g, r) for rule in role["rules"] if "resources" in rule for v in rule["verbs"]
            for g in rule["apiGroups"] for r in rule["resources"]}


def cluster_role_nonresource_rules() -> set[tuple[str, str]]:
    """(non-resource URL, verb) the ClusterRole grants."""
    role = named(kustomize(DEPLOY / "cluster-rbac"), "ClusterRole", "gke-bot-reader")
    return {(u, v) for rule in role["rules"] for u in rule.get("nonResourceURLs") or [] for v in rule["verbs"]}


def _callers(permission: str) -> str:
    return ", ".join(sorted(c.name for c in permissions.GOOGLE_CALLS.values() if permission in c.permissions))


def role_diff(needed: set[str], held: set[str], role: str) -> list[str]:
    """What is wrong between the permissions the declared calls need and those a role file holds."""
    return ([f"{role}: missing {p} (needed by {_callers(p) or 'a declared call'})" for p in sorted(needed - held)]
            + [f"{role}: holds {p}, which no declared call needs" for p in sorted(held - needed)])


def test_every_role_file_is_derived():
    assert set(ROLES) == {READER, *FIX_ROLES}, "a role file that no derivation covers (or a missing one)"


def test_reader_role_is_exactly_the_declared_reads():
    assert role_diff(permissions.read_permissions(), ROLES[READER], READER) == []


def test_fix_roles_are_exactly_the_declared_writes():
    fixes = permissions.fix_permissions()
    covered = set().union(*FIX_ROLES.values())
    assert set(fixes) <= covered, f"fix kinds with no role file: {sorted(set(fixes) - covered)}"
    assert covered <= set(fixes), f"FIX_ROLES names fix kinds no call declares: {sorted(covered - set(fixes))}"
    assert set(EXECUTORS) == covered, "every fix button's executor has its declared writes, and no more"
    problems = []
    for role, kinds in FIX_ROLES.items():
        problems += role_diff(set().union(*(fixes[k] for k in kinds)), ROLES[role], role)
        assert not ROLES[role] & ROLES[READER], f"{role} repeats reads of {READER}"
    assert problems == []
    assert not {p for ps in fixes.values() for p in ps} & ROLES[READER], "a write permission in the read role"


def test_role_diff_names_what_is_missing_and_what_is_extra():
    """The derivation can fail: a new call's permission missing from the role, an unneeded one in it."""
    needed = permissions.read_permissions()
    assert role_diff(needed | {"monitoring.timeSeries.list"}, ROLES[READER], READER) == [
        f"{READER}: missing monitoring.timeSeries.list (needed by a declared call)"]
    extra = role_diff(needed, ROLES[READER] | {"container.pods.list"}, READER)
    assert extra == [f"{READER}: holds container.pods.list, which no declared call needs"]
    gone = sorted(needed)[0]
    assert f"{READER}: missing {gone} (needed by {_callers(gone)})" in role_diff(needed, ROLES[READER] - {gone}, READER)


def test_cluster_role_is_exactly_the_declared_kubernetes_calls():
    declared = {(verb, group, resource) for group, resource, verb in permissions.kube_rules()}
    granted = cluster_role_rules()
    missing = sorted(declared - granted)
    extra = sorted(granted - declared)
    assert not missing and not extra, (
        "ClusterRole gke-bot-reader (deploy/cluster-rbac/clusterrole.yaml) differs from the declared Kubernetes "
        f"calls: missing {missing}, not needed {extra}")
    assert cluster_role_nonresource_rules() == permissions.kube_nonresource_rules()
    # namespaced calls are made in any namespace and cluster-scoped ones exist: a cluster-wide binding
    docs = kustomize(DEPLOY / "cluster-rbac")
    assert named(docs, "ClusterRoleBinding", "gke-bot-reader")["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "gke-bot-reader"}


def test_readme_lists_exactly_the_reader_role():
    rows = _table_after(readme_section(), "Custom role `gkeBotReader`")
    listed = {PERMISSION.search(r[0]).group(1) for r in rows}
    assert listed == ROLES["gkeBotReader"]


def test_readme_lists_exactly_the_fix_roles():
    rows = _table_after(readme_section(), "Fix roles")
    for row in rows:
        role = re.match(r"`(\w+)`", row[0]).group(1)
        assert set(PERMISSION.findall(row[1])) == ROLES[role], role
    assert {re.match(r"`(\w+)`", r[0]).group(1) for r in rows} == set(ROLES) - {"gkeBotReader"}
    assert "hasOnly(['roles/container.serviceAgent'])" in readme_section()


def test_readme_lists_exactly_the_cluster_role():
    rows = _table_after(readme_section(), "ClusterRole `gke-bot-reader`")
    listed = set()
    for verbs, resources, _ in rows:
        group = re.search(r"\(([a-z0-9.]+)\)", resources)
        for v in re.findall(r"`([a-z]+)`", verbs):
            for r in re.findall(r"`([a-z/]+)`", resources.split("(")[0]):
                listed.add((v, group.group(1) if group else "", r))
    assert listed == cluster_role_rules()


def test_no_predefined_role_is_recommended():
    """The old advice (broad predefined roles) is gone: the README names only the custom roles."""
    section = readme_section()
    predefined = set(re.findall(r"`(roles/[a-zA-Z.]+)`", section)) - {"roles/container.serviceAgent",
                                                                       "roles/iam.workloadIdentityUser"}
    assert not predefined, predefined
