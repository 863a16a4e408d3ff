"""The access policy file: what it accepts, what it refuses at start (one clear line), and the decisions it
makes. Pure: no Slack, no Google (the end-to-end proof is tests/test_access_e2e.py)."""
from __future__ import annotations

import pytest
import yaml

from bot.policy import DIRECT, Asker, Policy, PolicyError, parse
from tests.test_cli import gke_bot

ISSUE_EXAMPLE = """
bindings:
  - channels: [C0123INCIDENTS, C0456PLATFORM]   # Slack channel ids where the bot answers
    projects: [acme-prod]                       # which of GKE_BOT_PROJECTS these channels may ask about
    approvers: [U0123ALICE, S0456SRE]           # who may click fixes for these projects here (users, user groups)
identities:                                     # optional: Slack user -> Google principal
  U0789DANA: user:dana@corp.example
"""
ALLOWED = ("acme-prod", "acme-dev")


def load(text: str, allowed=ALLOWED) -> Policy:
    return parse(yaml.safe_load(text), allowed, "policy.yaml")


def member(uid: str, **kw) -> Asker:
    return Asker(uid, team_id="T1", email=f"{uid.lower()}@corp.example", **kw)


def no_groups(group: str) -> set[str]:
    return set()


def test_the_issues_example_is_accepted():
    p = load(ISSUE_EXAMPLE)
    b = p.binding_for("C0456PLATFORM")
    assert b and b.projects == ("acme-prod",) and b.approvers == ("U0123ALICE", "S0456SRE")
    assert p.binding_for("C0999ELSEWHERE") is None and p.binding_for("D0123") is None
    assert p.projects == ("acme-prod",) and p.approvers == ("S0456SRE", "U0123ALICE")
    assert p.identities == {"U0789DANA": "user:dana@corp.example"}
    assert not p.implicit


@pytest.mark.parametrize("text, error", [
    ("bindings: []", "`bindings` must be a non-empty list"),
    ("bindngs: []", "unknown key 'bindngs' (known: bindings, identities)"),
    ("bindings: [{channels: [C1AA], projects: [acme-prod], chanels: [C2]}]",
     "bindings[0]: unknown key 'chanels' (known: name, channels, projects, approvers, users, commands, guests, "
     "external"),
    ("bindings: [{channels: [C1AA], projects: [acme-prod], locale: fr-FR}]",
     "bindings[0].locale must be a language the bot speaks: ja-JP, ja, en-US or en"),
    ("bindings: [{projects: [acme-prod]}]", "bindings[0]: `channels` is required"),
    ("bindings: [{channels: [general], projects: [acme-prod]}]", "bindings[0].channels: 'general' is not Slack"),
    ("bindings: [{channels: [C1AA], projects: [other-project]}]",
     "bindings[0].projects: 'other-project' is not in GKE_BOT_PROJECTS (acme-prod, acme-dev)"),
    ("bindings: [{channels: [C1AA], projects: [acme-prod]}, {channels: [C1AA], projects: [acme-dev]}]",
     "bindings[1].channels: 'C1AA' is already bound by binding 1"),
    ("bindings: [{channels: [C1AA], projects: [acme-prod], approvers: [alice]}]", "is not Slack user ids"),
    ("bindings: [{channels: [C1AA], projects: [acme-prod], guests: 'yes'}]", "guests must be true or false"),
    ("bindings: [{channels: [C1AA], projects: [acme-prod], commands: [rm-rf]}]", "commands must be a non-empty list"),
    ("bindings: [{channels: [C1AA], projects: [acme-prod]}]\nidentities: {U1AA: 'not an email'}",
     "identities.U1AA: that principal is not an email address"),
    ("bindings: [{channels: [C1AA], projects: [acme-prod]}]\nidentities: {U1AA: 'serviceAccount:x@p.iam.gserviceaccount.com'}",
     "a person is a `user:EMAIL` principal"),
    ("bindings: [{channels: [C1AA], projects: [acme-prod]}]\nidentities: {alice: 'user:a@b.example'}",
     "'alice' is not a Slack user id"),
    ("- just a list", "the top level must be a mapping"),
])
def test_invalid_policies_are_refused_with_a_clear_reason(text, error):
    with pytest.raises(PolicyError) as exc:
        load(text)
    assert error in str(exc.value) and str(exc.value).startswith("policy.yaml")
    assert "\n" not in str(exc.value)


def test_deny_by_default_and_what_a_binding_grants():
    p = load("""
bindings:
  - name: incidents
    channels: [C1INC]
    projects: [acme-prod]
    approvers: [U1OLGA, S1SRE]
  - name: dev
    channels: [C1DEV, direct]
    projects: [acme-dev]
    users: [S1DEVS]
    commands: [why-403, why-404]
    guests: true
""")
    groups = {"S1SRE": {"U1GUS"}, "S1DEVS": {"U1DEV", "U1GUEST"}}.get
    members = lambda g: groups(g) or set()  # noqa: E731
    ask = lambda channel, asker, command="why-403", **kw: p.may_ask(channel, asker, command, members=members,  # noqa
                                                                    team_id="T1", **kw)
    assert ask("C1INC", member("U1ANY")).allowed
    assert ask("C1NOPE", member("U1ANY")).reason == "unbound"
    assert "<#C1INC>" in ask("C1NOPE", member("U1ANY")).message and "<#C1DEV>" in ask("C1NOPE", member("U1ANY")).message
    assert ask("C1INC", member("U1ANY"), project="acme-dev").reason == "foreign_project"
    assert ask("C1INC", member("U1ANY"), project="acme-prod").allowed
    assert ask("C1INC", member("U1G", is_restricted=True)).reason == "guest"
    assert ask("C1INC", member("U1G", is_ultra_restricted=True)).reason == "guest"
    assert ask("C1INC", Asker("U1EXT", team_id="T2OTHER")).reason == "external"
    assert ask("C1INC", member("U1EXT", is_stranger=True)).reason == "external"
    assert ask("C1INC", member("U1OLD", deleted=True)).reason == "deleted"
    assert ask("C1INC", member("U1BOT", is_bot=True)).reason == "bot"
    assert ask("C1INC", None).reason == "unknown_user"
    # --as: the asker themself, or approvers (users and group members) only
    assert ask("C1INC", member("U1ANY"), principal="user:u1any@corp.example").allowed
    assert ask("C1INC", member("U1ANY"), principal="user:boss@corp.example").reason == "as_other"
    d = ask("C1INC", member("U1GUS"), principal="user:boss@corp.example")
    assert d.allowed and d.identity.principal == "user:boss@corp.example" and d.identity.source == "as"
    # the dev binding: only its users, only its commands, guests allowed, direct messages included
    assert ask("C1DEV", member("U1ANY")).reason == "not_a_user"
    assert ask("C1DEV", member("U1DEV")).allowed
    assert ask("C1DEV", member("U1DEV"), "why-400").reason == "command"
    assert ask("C1DEV", member("U1GUEST", is_restricted=True)).allowed
    assert ask("D0ANYDM", member("U1DEV")).binding.name == "dev"
    assert p.binding_for("D0ANYDM").channels == ("C1DEV", DIRECT)
    assert [b.name for b in p.bindings_of(member("U1DEV"), members, "T1")] == ["incidents", "dev"]
    assert [b.name for b in p.bindings_of(member("U1ANY"), members, "T1")] == ["incidents"]
    # where one may ask is decided about the person as a command is: guests only where guests may ask, …
    assert [b.name for b in p.bindings_of(member("U1GUEST", is_restricted=True), members, "T1")] == ["dev"]
    assert p.bindings_of(member("U1ANY", is_ultra_restricted=True), members, "T1") == []
    for outsider in (Asker("U1DEV", team_id="T2OTHER"), member("U1DEV", is_stranger=True),
                     member("U1DEV", deleted=True), member("U1DEV", is_bot=True)):
        assert p.bindings_of(outsider, members, "T1") == []
    # askable without being in one of its channels: direct messages, or askers named in `users:`
    assert p.binding_for("C1DEV").without_channel and not p.binding_for("C1INC").without_channel
    assert p.is_approver(p.binding_for("C1INC"), "U1GUS", members)
    assert not p.is_approver(p.binding_for("C1DEV"), "U1OLGA", members)
    assert not p.is_approver(None, "U1OLGA", members)


def test_identity_from_the_policy_else_the_slack_email():
    p = load(ISSUE_EXAMPLE)
    assert p.identity(Asker("U0789DANA", email="dana@home.example")).principal == "user:dana@corp.example"
    assert p.identity(Asker("U0789DANA", email="dana@home.example")).source == "policy"
    assert p.identity(Asker("U1X", email="x@corp.example")).describe() == \
        "Diagnosed as `user:x@corp.example` (the email of your Slack profile)."
    assert p.identity(Asker("U1X")).principal == ""


def test_the_implicit_binding_is_every_channel_gke_bot_projects_and_approvers(settings):
    from bot.policy import load as load_policy
    p = load_policy(settings)
    assert p.implicit and p.binding_for("CANYTHING").projects == settings.projects
    assert p.binding_for("D0DM").approvers == settings.approvers
    assert p.may_ask("C1", member("U1X"), "why-403", project="elsewhere-project").reason == "foreign_project"
    assert p.may_ask("C1", member("U1X", is_restricted=True), "why-403").reason == "guest"


def test_a_bad_policy_file_stops_every_process_with_one_line(env, tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("bindings:\n  - channels: [C1AA]\n    projects: [nope-project]\n")
    for cmd in (["serve", "--port", "1"], ["socket"]):
        out = gke_bot(dict(env, GKE_BOT_POLICY=str(bad)), *cmd)
        assert out.returncode == 2
        assert out.stderr.strip().splitlines()[-1] == (
            f"gke-bot: {bad}: bindings[0].projects: 'nope-project' is not in GKE_BOT_PROJECTS (gcpdiag-gke1-aaaa); "
            "a binding may only narrow it")
    bad.write_text("bindings: [\n")
    out = gke_bot(dict(env, GKE_BOT_POLICY=str(bad)), "serve", "--port", "1")
    assert out.returncode == 2 and out.stderr.strip().endswith("not valid YAML at line 2")
    out = gke_bot(dict(env, GKE_BOT_POLICY=str(tmp_path / "missing.yaml")), "serve", "--port", "1")
    assert out.returncode == 2 and "GKE_BOT_POLICY: cannot read" in out.stderr


def test_redis_needs_a_plan_key_of_some_length(env):
    no_key = {k: v for k, v in env.items() if k != "GKE_BOT_PLAN_KEY"}
    out = gke_bot(dict(no_key, REDIS_URL="redis://127.0.0.1:9/0"), "worker")
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith(
        "gke-bot: GKE_BOT_PLAN_KEY is not set: with REDIS_URL, jobs and fix plans are signed with it")
    out = gke_bot(dict(env, GKE_BOT_PLAN_KEY="short", REDIS_URL="redis://127.0.0.1:9/0"), "worker")
    assert out.returncode == 2 and "GKE_BOT_PLAN_KEY must be at least 32 characters" in out.stderr


def test_the_deploy_sample_policy_is_valid():
    from pathlib import Path
    sample = Path(__file__).resolve().parents[1] / "deploy" / "components" / "policy" / "policy.yaml"
    p = parse(yaml.safe_load(sample.read_text()), ("my-project-a", "my-project-b"), str(sample))
    assert p.binding_for("C0789TEAMB").projects == ("my-project-b",)
