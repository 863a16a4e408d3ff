"""The bot's own permissions, in one place each: the role files (deploy/iam/roles/), the ClusterRole
(deploy/cluster-rbac/), and the README's tables must say the same thing."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.deploy import DEPLOY, kustomize, named

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
    return {(v, g, r) for rule in role["rules"] for v in rule["verbs"] for g in rule["apiGroups"]
            for r in rule["resources"]}


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
