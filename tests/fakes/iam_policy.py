"""IAM policy semantics shared by the Google fake's handlers, as the real services apply them.

- `versioned`: what getIamPolicy returns for a requested policy version. Below version 3 IAM never
  returns conditions: each conditional binding comes back with its role renamed `ROLE_withcond_HASH` and
  no `condition` (https://cloud.google.com/iam/docs/policies#versions). gcloud asks for version 3.
- `role_grants`: a role's permissions; a custom role marked `"deleted": true` grants nothing.
- `troubleshoot_v3`: Policy Troubleshooter v3 (`POST /v3/iam:troubleshoot`): allow policies of the
  project (with predefined, project and organization roles) and IAM v2 deny policies
  (`principal://goog/subject/EMAIL`, `principalSet://goog/public:all`, permissions written
  `SERVICE_FQDN/RESOURCE.ACTION`), in the v3 JSON shape (`overallAccessState`, `allowPolicyExplanation`,
  `denyPolicyExplanation`). A caller that may not read deny policies gets `DENY_ACCESS_STATE_UNKNOWN_INFO`.
"""
from __future__ import annotations

import copy
import hashlib

HIGH, NORMAL = "HEURISTIC_RELEVANCE_HIGH", "HEURISTIC_RELEVANCE_NORMAL"


def versioned(policy: dict, requested: int) -> dict:
    """The policy as IAM returns it for `options.requestedPolicyVersion` = requested (0 or absent: 1)."""
    out = copy.deepcopy(policy)
    conditional = any("condition" in b for b in out.get("bindings", []))
    if requested >= 3 or not conditional:
        return out
    for b in out.get("bindings", []):
        cond = b.pop("condition", None)
        if cond is not None:
            digest = hashlib.sha256(str(cond.get("expression", "")).encode()).hexdigest()[:20]
            b["role"] = f"{b['role']}_withcond_{digest}"
    out["version"] = 1
    return out


def role_grants(role: dict | None) -> set | None:
    if role is None:
        return None
    return set() if role.get("deleted") else set(role.get("includedPermissions", []))


def deniable_form(permission: str) -> str:
    """`container.clusters.get` as IAM v2 deny rules write it: `container.googleapis.com/clusters.get`."""
    service, _, rest = permission.partition(".")
    return f"{service}.googleapis.com/{rest}"


def _principal_matches(pattern: str, email: str) -> bool:
    return pattern in (f"principal://goog/subject/{email}", "principalSet://goog/public:all")


def _permission_matches(pattern: str, permission: str) -> bool:
    fqdn = deniable_form(permission)
    if pattern.endswith("*"):  # SERVICE_FQDN/* or SERVICE_FQDN/RESOURCE.*
        return fqdn.startswith(pattern[:-1])
    return pattern == fqdn


def explain_deny(policies: list[dict], resource: str, email: str, permission: str, readable: bool) -> dict:
    """denyPolicyExplanation for the deny policies attached to `resource` (a project's full name)."""
    if not readable:
        return {"denyAccessState": "DENY_ACCESS_STATE_UNKNOWN_INFO", "relevance": HIGH, "permissionDeniable": True,
                "explainedResources": [{"denyAccessState": "DENY_ACCESS_STATE_UNKNOWN_INFO",
                                        "fullResourceName": resource, "relevance": HIGH}]}
    explained, overall = [], "DENY_ACCESS_STATE_NOT_DENIED"
    for policy in policies:
        rules, state = [], "DENY_ACCESS_STATE_NOT_DENIED"
        for rule in policy.get("rules", []):
            deny = rule.get("denyRule") or {}
            principal = any(_principal_matches(p, email) for p in deny.get("deniedPrincipals", [])) and not any(
                _principal_matches(p, email) for p in deny.get("exceptionPrincipals", []))
            perm = any(_permission_matches(p, permission) for p in deny.get("deniedPermissions", [])) and not any(
                _permission_matches(p, permission) for p in deny.get("exceptionPermissions", []))
            rstate = "DENY_ACCESS_STATE_NOT_DENIED"
            if principal and perm:
                rstate = ("DENY_ACCESS_STATE_UNKNOWN_CONDITIONAL" if deny.get("denialCondition")
                          else "DENY_ACCESS_STATE_DENIED")
            rules.append({"denyAccessState": rstate, "relevance": HIGH if principal or perm else NORMAL,
                          "combinedDeniedPermission": {
                              "permissionMatchingState": "PERMISSION_PATTERN_MATCHED" if perm
                              else "PERMISSION_PATTERN_NOT_MATCHED", "relevance": HIGH if perm else NORMAL}})
            if rstate == "DENY_ACCESS_STATE_DENIED" or (
                    rstate == "DENY_ACCESS_STATE_UNKNOWN_CONDITIONAL" and state != "DENY_ACCESS_STATE_DENIED"):
                state = rstate
        explained.append({"denyAccessState": state, "policy": policy, "ruleExplanations": rules,
                          "relevance": HIGH if state != "DENY_ACCESS_STATE_NOT_DENIED" else NORMAL})
        if state == "DENY_ACCESS_STATE_DENIED" or (
                state == "DENY_ACCESS_STATE_UNKNOWN_CONDITIONAL" and overall != "DENY_ACCESS_STATE_DENIED"):
            overall = state
    return {"denyAccessState": overall, "relevance": HIGH if overall != "DENY_ACCESS_STATE_NOT_DENIED" else NORMAL,
            "permissionDeniable": True,
            "explainedResources": [{"denyAccessState": overall, "fullResourceName": resource,
                                    "explainedPolicies": explained, "relevance": HIGH}]}


def explain_allow(policy: dict, resource: str, email: str, permission: str, role_permissions) -> dict:
    """allowPolicyExplanation of one allow policy for a Google account or service account email."""
    forms = [f"user:{email}", f"serviceAccount:{email}"]
    explanations, states = [], set()
    for b in policy.get("bindings", []):
        perms = role_permissions(b["role"])
        has_perm = perms is not None and permission in perms
        member = next((f for f in forms if f in b.get("members", [])), None)
        state = "ALLOW_ACCESS_STATE_NOT_GRANTED"
        if has_perm and member:
            state = "ALLOW_ACCESS_STATE_UNKNOWN_CONDITIONAL" if "condition" in b else "ALLOW_ACCESS_STATE_GRANTED"
        states.add(state)
        matched = "MEMBERSHIP_MATCHED" if member else "MEMBERSHIP_NOT_MATCHED"
        exp = {"allowAccessState": state, "role": b["role"],
               "rolePermission": ("ROLE_PERMISSION_UNKNOWN_INFO" if perms is None else
                                  "ROLE_PERMISSION_INCLUDED" if has_perm else "ROLE_PERMISSION_NOT_INCLUDED"),
               "rolePermissionRelevance": HIGH if has_perm else NORMAL,
               "combinedMembership": {"membership": matched, "relevance": HIGH if member else NORMAL},
               "memberships": {member or forms[0]: {"membership": matched, "relevance": HIGH if member else NORMAL}},
               "relevance": HIGH if has_perm or member else NORMAL}
        if "condition" in b:
            exp["condition"] = b["condition"]
        explanations.append(exp)
    overall = next((s for s in ("ALLOW_ACCESS_STATE_GRANTED", "ALLOW_ACCESS_STATE_UNKNOWN_CONDITIONAL")
                    if s in states), "ALLOW_ACCESS_STATE_NOT_GRANTED")
    return {"allowAccessState": overall, "relevance": HIGH, "explainedPolicies": [{
        "allowAccessState": overall, "fullResourceName": resource, "policy": policy,
        "bindingExplanations": explanations, "relevance": HIGH}]}


def troubleshoot_v3(tup: dict, policy: dict | None, deny_policies: list[dict], project_resource: str,
                    role_permissions, deny_readable: bool) -> dict:
    """The v3 answer for an access tuple on a resource of one project (policy None: project unknown)."""
    principal, permission = tup.get("principal", ""), tup.get("permission", "")
    echoed = {k: v for k, v in tup.items() if v} | {"permissionFqdn": deniable_form(permission)}
    if policy is None:
        return {"overallAccessState": "UNKNOWN_INFO", "accessTuple": echoed}
    allow = explain_allow(policy, project_resource, principal, permission, role_permissions)
    deny = explain_deny(deny_policies, project_resource, principal, permission, deny_readable)
    a, d = allow["allowAccessState"], deny["denyAccessState"]
    if d == "DENY_ACCESS_STATE_DENIED":
        overall = "CANNOT_ACCESS"
    elif a == "ALLOW_ACCESS_STATE_NOT_GRANTED":
        overall = "CANNOT_ACCESS"
    elif d == "DENY_ACCESS_STATE_UNKNOWN_INFO":
        overall = "UNKNOWN_INFO"
    elif a == "ALLOW_ACCESS_STATE_UNKNOWN_CONDITIONAL" or d == "DENY_ACCESS_STATE_UNKNOWN_CONDITIONAL":
        overall = "UNKNOWN_CONDITIONAL"
    else:
        overall = "CAN_ACCESS"
    return {"overallAccessState": overall, "accessTuple": echoed, "allowPolicyExplanation": allow,
            "denyPolicyExplanation": deny}
