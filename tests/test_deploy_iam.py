"""deploy/iam/setup.sh, run with --dry-run (it prints the gcloud commands it would run): what it grants,
where, and with which condition; and the role files it uses are valid gcloud role definitions."""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy import DEPLOY, kubectl

IAM = DEPLOY / "iam"
SETUP = IAM / "setup.sh"
ROLES = {p.stem: yaml.safe_load(p.read_text()) for p in (IAM / "roles").glob("*.yaml")}
CONDITION = "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly(['roles/container.serviceAgent'])"


def setup(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(["bash", str(SETUP), *args], capture_output=True, text=True, timeout=60)
    assert (out.returncode == 0) is ok, out.stdout + out.stderr
    return out


def commands(out: subprocess.CompletedProcess) -> list[list[str]]:
    return [shlex.split(line[2:]) for line in out.stdout.splitlines() if line.startswith("+ gcloud")]


def flag(cmd: list[str], name: str) -> str | None:
    return next((a.split("=", 1)[1] for a in cmd if a.startswith(f"--{name}=")), None)


def grants(cmds) -> list[tuple[str, str, str, str | None]]:
    """(project, member, role, condition flag) of every add-iam-policy-binding on a project."""
    return [(c[3], flag(c, "member"), flag(c, "role"), flag(c, "condition") or flag(c, "condition-from-file"))
            for c in cmds if c[1:3] == ["projects", "add-iam-policy-binding"]]


def test_role_files_are_gcloud_role_definitions():
    assert set(ROLES) == {"gkeBotReader", "gkeBotServiceAgentFixer", "gkeBotClusterFixer"}
    for name, role in ROLES.items():
        assert set(role) == {"title", "description", "stage", "includedPermissions"}, name
        assert role["stage"] == "GA" and len(role["title"]) <= 100 and len(role["description"]) <= 256
        perms = role["includedPermissions"]
        assert perms == sorted(set(perms)), f"{name}: sorted, no duplicates"
        assert all(re.fullmatch(r"[a-z]+\.[a-zA-Z]+\.[a-zA-Z]+", p) for p in perms), name
    assert not [p for p in ROLES["gkeBotReader"]["includedPermissions"]
                if re.search(r"\.(set|create|update|delete|patch|undelete)", p)], "the reader role only reads"


def test_fix_permissions_are_only_in_the_fix_roles():
    reader = set(ROLES["gkeBotReader"]["includedPermissions"])
    assert "resourcemanager.projects.setIamPolicy" not in reader and "container.clusters.update" not in reader
    assert "resourcemanager.projects.setIamPolicy" in ROLES["gkeBotServiceAgentFixer"]["includedPermissions"]
    assert "container.clusters.update" in ROLES["gkeBotClusterFixer"]["includedPermissions"]


def test_the_condition_allows_only_the_service_agent_role():
    cond = yaml.safe_load((IAM / "conditions" / "only-container-service-agent.yaml").read_text())
    assert cond["expression"] == CONDITION
    assert set(cond) == {"title", "description", "expression"} and len(cond["title"]) <= 100


def test_reads_everywhere_fixes_only_where_allowed():
    out = setup("--host-project", "bot-host", "--projects", "proj-aaaa,proj-bbbb", "--fix-projects", "proj-aaaa",
                "--dry-run")
    cmds = commands(out)
    sa = "serviceAccount:gke-bot@bot-host.iam.gserviceaccount.com"
    assert sorted(grants(cmds)) == sorted([
        ("proj-aaaa", sa, "projects/proj-aaaa/roles/gkeBotReader", "None"),
        ("proj-bbbb", sa, "projects/proj-bbbb/roles/gkeBotReader", "None"),
        ("proj-aaaa", sa, "projects/proj-aaaa/roles/gkeBotServiceAgentFixer",
         str(IAM / "conditions" / "only-container-service-agent.yaml")),
        ("proj-aaaa", sa, "projects/proj-aaaa/roles/gkeBotClusterFixer", "None"),
    ])
    created = sorted((c[4], flag(c, "project"), flag(c, "file")) for c in cmds if c[1:4] == ["iam", "roles", "create"])
    assert created == sorted([
        ("gkeBotReader", "proj-aaaa", str(IAM / "roles" / "gkeBotReader.yaml")),
        ("gkeBotServiceAgentFixer", "proj-aaaa", str(IAM / "roles" / "gkeBotServiceAgentFixer.yaml")),
        ("gkeBotClusterFixer", "proj-aaaa", str(IAM / "roles" / "gkeBotClusterFixer.yaml")),
        ("gkeBotReader", "proj-bbbb", str(IAM / "roles" / "gkeBotReader.yaml")),
    ])
    wi = next(c for c in cmds if c[1:4] == ["iam", "service-accounts", "add-iam-policy-binding"])
    assert c_args(wi) == ("gke-bot@bot-host.iam.gserviceaccount.com", "roles/iam.workloadIdentityUser",
                          "serviceAccount:bot-host.svc.id.goog[gke-bot/gke-bot]")
    assert "GOOGLE_SERVICE_ACCOUNT=gke-bot@bot-host.iam.gserviceaccount.com" in out.stdout
    # no predefined role is granted anywhere: only the custom roles above (and WI on the account itself)
    assert not [g for g in grants(cmds) if g[2].startswith("roles/")]


def c_args(cmd):
    return cmd[4], flag(cmd, "role"), flag(cmd, "member")


def test_read_only_variant_grants_no_fix_role():
    cmds = commands(setup("--host-project", "bot-host", "--projects", "proj-aaaa", "--read-only", "--dry-run"))
    assert {g[2] for g in grants(cmds)} == {"projects/proj-aaaa/roles/gkeBotReader"}
    assert not [c for c in cmds if "Fixer" in " ".join(c)]
    out = setup("--host-project", "bot-host", "--projects", "proj-aaaa", "--read-only", "--fix-projects", "proj-aaaa",
                ok=False)
    assert "exclude each other" in out.stderr


def test_organization_roles_are_created_once():
    cmds = commands(setup("--host-project", "bot-host", "--projects", "proj-aaaa,proj-bbbb", "--organization", "1234",
                          "--fix-projects", "proj-bbbb", "--dry-run"))
    created = [(c[4], flag(c, "organization")) for c in cmds if c[1:4] == ["iam", "roles", "create"]]
    assert sorted(created) == [("gkeBotClusterFixer", "1234"), ("gkeBotReader", "1234"),
                               ("gkeBotServiceAgentFixer", "1234")]
    assert ("proj-aaaa", "serviceAccount:gke-bot@bot-host.iam.gserviceaccount.com",
            "organizations/1234/roles/gkeBotReader", "None") in grants(cmds)


@pytest.mark.parametrize("args, message", [
    (["--projects", "proj-aaaa"], "--host-project is required"),
    (["--host-project", "bot-host"], "--projects is required"),
    (["--host-project", "bot-host", "--projects", "proj-aaaa", "--fix-projects", "proj-cccc"], "not one of --projects"),
    (["--host-project", "bot-host", "--projects", "Proj;rm -rf /"], "not a project id"),
    (["--host-project", "bot-host", "--projects", "proj-aaaa", "--organization", "acme"], "numeric"),
    (["--host-project", "bot-host", "--projects"], "needs a value"),
])
def test_bad_arguments_change_nothing(args, message):
    out = setup(*args, "--dry-run", ok=False)
    assert message in out.stderr and "+ gcloud" not in out.stdout


def test_apply_rbac_binds_this_account_in_each_cluster():
    kubectl()
    out = setup("--host-project", "bot-host", "--projects", "proj-aaaa", "--apply-rbac", "--dry-run")
    rendered = out.stdout.split("(rendered by kubectl kustomize", 1)[1].split(")", 1)[1]
    docs = [d for d in yaml.safe_load_all(rendered.split("\n+ ", 1)[0]) if d]
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == "gke-bot@bot-host.iam.gserviceaccount.com"
    assert any(d["kind"] == "ClusterRole" for d in docs)


def test_setup_help_is_the_header():
    out = setup("--help")
    assert "--fix-projects" in out.stdout and "set -euo" not in out.stdout
    assert Path(SETUP).stat().st_mode & 0o111, "setup.sh is executable"
