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

from checks.accounts import DELETED, account_problem
from checks.gateway import ApiError
from checks.i18n import N_, _, sentences
from checks.iam import bindings, has_role, sa_project
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
        return ctx.skip(_("`{ksa}` names no valid IAM service account (see wi/ksa-annotation).").format(ksa=f"{ns}/{ksa}"))
    project = sa_project(gsa, ctx.ref.project)
    resource = f"projects/{project}/serviceAccounts/{gsa}"
    problem = account_problem(ctx, gsa, project)
    if problem:
        kind, remedy, evidence = problem
        what = (_("The IAM service account of `{ksa}`, `{account}` does not exist: it was deleted. Pods using the KSA "
                  "cannot get its credentials.") if kind == DELETED else
                _("The IAM service account of `{ksa}`, `{account}` is disabled. Pods using the KSA cannot get its "
                  "credentials."))
        return ctx.fail(what.format(ksa=f"{ns}/{ksa}", account=gsa),
                        remedy + "\n" + _("Or create it:\n```\n{command}\n```").format(
                            command=f"gcloud iam service-accounts create {gsa.partition('@')[0]} --project {project}"),
                        evidence=evidence, resource=resource)
    member = wi_member(ctx)
    policy = ctx.gw.service_account_policy(gsa)
    found = has_role(policy, member, WI_ROLE)
    # Other principals' bindings are summarised, not dumped: only what concerns this KSA is shown.
    shown = [{"role": b.role, "members": [member], **({"condition": b.condition} if b.condition else {})}
             for b in bindings(policy) if b.role == WI_ROLE and member in b.members]
    others = len({m for b in bindings(policy) if b.role == WI_ROLE for m in b.members} - {member})
    if shown:
        listed = json.dumps(shown)
    elif not others:
        listed = _("none")
    else:
        listed = _("none for `{member}`").format(member=member)
    evidence = (_("`{command}`: bindings of `{role}`: {bindings} ({others} other members, not shown)") if others else
                _("`{command}`: bindings of `{role}`: {bindings}")).format(
        command=f"gcloud iam service-accounts get-iam-policy {gsa}", role=WI_ROLE, bindings=listed, others=others)
    if found and not found.condition:
        return ctx.ok(_("`{account}` grants `{role}` to `{member}`.").format(account=gsa, role=WI_ROLE, member=member),
                      evidence=evidence, resource=resource)
    on_project, unreadable = _project_grant(ctx, project, member)
    if on_project and not on_project.condition:
        return ctx.ok(_("`{member}` holds `{role}` on project `{project}` (so on `{account}`).").format(
                          member=member, role=WI_ROLE, project=project, account=gsa),
                      evidence=evidence, resource=resource)
    names = dict(account=gsa, member=member, ksa=f"{ns}/{ksa}")
    if found:
        detail = _("`{account}` does not let `{member}` act as it (only with condition '{condition}', not counted): "
                   "pods using `{ksa}` get \"Permission 'iam.serviceAccounts.getAccessToken' denied\" when they ask "
                   "for Google credentials.").format(condition=found.condition, **names)
    else:
        detail = _("`{account}` does not let `{member}` act as it: pods using `{ksa}` get \"Permission "
                   "'iam.serviceAccounts.getAccessToken' denied\" when they ask for Google credentials.").format(**names)
    # Without the project policy a project-level grant cannot be ruled out: say so, not a plain FAIL.
    if unreadable:
        verdict = ctx.warn
        detail = sentences(detail, _("A grant on project `{project}` could not be checked: {error}").format(
            project=project, error=unreadable.explain()))
    else:
        verdict = ctx.fail
    command = (f"gcloud iam service-accounts add-iam-policy-binding {gsa} \\\n    --project {project} \\\n"
               f"    --role {WI_ROLE} \\\n    --member \"{member}\" \\\n    --condition=None")
    return verdict(
        detail,
        _("Allow the KSA to impersonate the IAM service account:\n```\n{command}\n```").format(command=command),
        evidence=evidence, resource=resource)
