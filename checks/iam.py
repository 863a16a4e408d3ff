"""Helpers to read IAM policies (protobuf Policy from resourcemanager, or REST dicts)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Binding:
    role: str
    members: tuple[str, ...]
    condition: str = ""  # the condition's expression (title when present), "" when unconditional


def bindings(policy) -> list[Binding]:
    """Bindings of a protobuf Policy or a REST JSON policy dict."""
    out = []
    if isinstance(policy, dict):
        for b in policy.get("bindings", []):
            cond = b.get("condition") or {}
            out.append(Binding(b["role"], tuple(b.get("members", [])), cond.get("title") or cond.get("expression", "")))
    else:
        for b in policy.bindings:
            cond = b.condition.title or b.condition.expression if b.HasField("condition") else ""
            out.append(Binding(b.role, tuple(b.members), cond))
    return out


def has_role(policy, member: str, role: str) -> Binding | None:
    """The unconditional binding granting `role` to `member`, else a conditional one, else None."""
    found = [b for b in bindings(policy) if b.role == role and member in b.members]
    found.sort(key=lambda b: bool(b.condition))
    return found[0] if found else None


def roles_of(policy, members: Iterable[str]) -> list[Binding]:
    wanted = set(members)
    return [b for b in bindings(policy) if wanted.intersection(b.members)]


def grant_command(project: str, member: str, role: str) -> str:
    """The gcloud command that adds one unconditional binding. `--condition=None` is always there: on a
    policy that already holds conditional bindings, gcloud otherwise prompts (or, unattended, refuses)."""
    return (f"gcloud projects add-iam-policy-binding {project} \\\n"
            f"    --member \"{member}\" \\\n    --role {role} \\\n    --condition=None")


def sa_project(email: str, default: str = "-") -> str:
    """The project that owns a user-managed service account (`NAME@PROJECT.iam.gserviceaccount.com`),
    else `default` (e.g. the cluster's project for Google-managed accounts)."""
    domain = email.partition("@")[2]
    return domain.removesuffix(".iam.gserviceaccount.com") if domain.endswith(".iam.gserviceaccount.com") else default
