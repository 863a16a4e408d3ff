"""The IAM service account exists, is enabled, and lets the KSA impersonate it (roles/iam.workloadIdentityUser).

The IAM service account named by the KSA's annotation must exist and be enabled, and its IAM policy
(`gcloud iam service-accounts get-iam-policy GSA_NAME@GSA_PROJECT.iam.gserviceaccount.com`) must
bind `roles/iam.workloadIdentityUser` to `serviceAccount:PROJECT_ID.svc.id.goog[NAMESPACE/KSA_NAME]`
(PROJECT_ID: the cluster's project, whose workload pool it is). A binding of that role to the member
on the service account's project also works. Conditional bindings are reported, not counted. The fix
is `gcloud iam service-accounts add-iam-policy-binding` with the member and role filled in.
"""
from __future__ import annotations

import json

from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.iam import bindings, has_role, sa_project
from checks.rules.default_accounts import account_problem
from checks.wi import WI_ROLE, gsa_of, is_gsa_email, target, wi_member

ID = "wi/gsa-binding"
TITLE = N_("The IAM service account lets the KSA act as it")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 14
SEED = "002 GKE 用 Workload Identity 連携; Pod が Google Cloud で認証されない (5)"
CLUSTER_LEVEL = False


def _project_grant(ctx, project: str, member: str):
    """(project-level binding of the role to the member or None, the ApiError when unreadable or None)."""
    try:
        return has_role(ctx.gw.project_iam_policy(project), member, WI_ROLE), None
    except ApiError as err:
        return None, err


def run(ctx):
    ns, ksa = target(ctx)
    gsa = gsa_of(ctx)
    if not is_gsa_email(gsa):
        return ctx.skip(f"`{ns}/{ksa}` names no valid IAM service account (see wi/ksa-annotation).")
    project = sa_project(gsa, ctx.ref.project)
    resource = f"projects/{project}/serviceAccounts/{gsa}"
    problem = account_problem(ctx, gsa, project)
    if problem:
        what, remedy, evidence = problem
        return ctx.fail(f"The IAM service account of `{ns}/{ksa}`, {what} Pods using the KSA cannot get its "
                        "credentials.", remedy + f"\nOr create it:\n```\ngcloud iam service-accounts create "
                        f"{gsa.partition('@')[0]} --project {project}\n```", evidence=evidence, resource=resource)
    member = wi_member(ctx)
    policy = ctx.gw.service_account_policy(gsa)
    found = has_role(policy, member, WI_ROLE)
    # Other principals' bindings are summarised, not dumped: only what concerns this KSA is shown.
    shown = [{"role": b.role, "members": [member], **({"condition": b.condition} if b.condition else {})}
             for b in bindings(policy) if b.role == WI_ROLE and member in b.members]
    others = len({m for b in bindings(policy) if b.role == WI_ROLE for m in b.members} - {member})
    evidence = (f"`gcloud iam service-accounts get-iam-policy {gsa}`: bindings of `{WI_ROLE}`: "
                + (json.dumps(shown) if shown else "none" if not others else f"none for `{member}`")
                + (f" ({others} other members, not shown)" if others else ""))
    if found and not found.condition:
        return ctx.ok(f"`{gsa}` grants `{WI_ROLE}` to `{member}`.", evidence=evidence, resource=resource)
    on_project, unreadable = _project_grant(ctx, project, member)
    if on_project and not on_project.condition:
        return ctx.ok(f"`{member}` holds `{WI_ROLE}` on project `{project}` (so on `{gsa}`).",
                      evidence=evidence, resource=resource)
    cond = f" (only with condition '{found.condition}', not counted)" if found else ""
    # Without the project policy a project-level grant cannot be ruled out: say so, not a plain FAIL.
    verdict, caveat = (ctx.warn, f" A grant on project `{project}` could not be checked: {unreadable.explain()}") \
        if unreadable else (ctx.fail, "")
    return verdict(
        f"`{gsa}` does not let `{member}` act as it{cond}: pods using `{ns}/{ksa}` get "
        "\"Permission 'iam.serviceAccounts.getAccessToken' denied\" when they ask for Google credentials."
        + caveat,
        f"Allow the KSA to impersonate the IAM service account:\n```\n"
        f"gcloud iam service-accounts add-iam-policy-binding {gsa} \\\n    --project {project} \\\n"
        f"    --role {WI_ROLE} \\\n    --member \"{member}\" \\\n    --condition=None\n```",
        evidence=evidence, resource=resource)
