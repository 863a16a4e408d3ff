"""Helpers to read IAM policies (protobuf Policy from resourcemanager, or REST dicts)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from checks.i18n import _


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


def granted(gw, policy, member: str) -> tuple[set[str], list[str], list[str]]:
    """(permissions, unconditional roles, notes) that `member`'s bindings in `policy` grant, the roles
    expanded through their definitions (predefined and custom; cached by the gateway). Conditional
    bindings are not counted; grants inherited from folders, the organization or groups are not visible."""
    perms: set[str] = set()
    roles, notes = [], []
    for b in roles_of(policy, [member]):
        if b.condition:
            notes.append(_("`{role}` (only with condition '{condition}', not counted)").format(role=b.role,
                                                                                           condition=b.condition))
            continue
        role = gw.role(b.role)
        if role is None:
            notes.append(_("`{role}` (the role no longer exists)").format(role=b.role))
            continue
        roles.append(b.role)
        perms.update(role.get("includedPermissions", []))
    return perms, roles, notes


def prefetch_roles(gw, policy, members) -> None:
    """Fetch the definitions of every role bound unconditionally to `members`, at once (one round trip);
    errors are left for the callers that need the roles to meet (memoised)."""
    from checks.gateway import ApiError

    def quietly(role):
        try:
            gw.role(role)
        except ApiError:
            pass
    names = sorted({b.role for b in roles_of(policy, members) if not b.condition})
    gw.parallel(*[lambda r=r: quietly(r) for r in names])
