"""The Compute Engine default service account is usable and the Google APIs service agent holds roles/editor.

When the Compute Engine or Kubernetes Engine API is enabled, Google Cloud creates accounts GKE relies
on: the Compute Engine default service account `PROJECT_NUMBER-compute@developer.gserviceaccount.com`
(the node service account of every pool created without `--service-account`) and the Google APIs
service agent `PROJECT_NUMBER@cloudservices.gserviceaccount.com`, which holds the Editor role on the
project and creates the nodes' managed instance groups. If either account was deleted or disabled,
or the agent's role binding was removed, cluster creation and every management operation fail with
400/403 ("the account has no edit permission"). A service account deleted less than 30 days ago can
be undeleted by its unique ID; a disabled one can be enabled again; the binding can be granted back.
"""
from __future__ import annotations

from checks.gateway import ApiError
from checks.iam import grant_command, has_role

ID = "gke/default-accounts"
TITLE = "Default GKE accounts exist, are enabled and keep their roles"
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors"
COMMANDS = ("why-403",)
ORDER = 30
EDITOR = "roles/editor"


def compute_default_sa(number: str) -> str:
    return f"{number}-compute@developer.gserviceaccount.com"


def account_problem(ctx, email: str, project: str) -> tuple[str, str, str] | None:
    """(what is wrong, remedy, evidence) for a deleted or disabled service account; None when it is usable.

    `project` is the project that owns the account (for the gcloud commands).
    """
    try:
        sa = ctx.gw.service_account(email, project)
    except ApiError as err:
        if not err.denied:
            raise
        raise ApiError(err.api, err.call, err.code, err.status,
                       f"{err.message} (IAM also answers 403 for an account that does not exist; check with "
                       f"`gcloud iam service-accounts describe {email} --project {project}`)", err.permission) from err
    if sa is None:
        return (f"`{email}` does not exist: it was deleted.",
                "If it was deleted less than 30 days ago, find its unique ID in the deletion's audit log and "
                "undelete it:\n```\n"
                f"gcloud logging read 'protoPayload.methodName=\"google.iam.admin.v1.DeleteServiceAccount\" AND "
                f"resource.labels.email_id=\"{email}\"' --project {project} --freshness=30d "
                "--format='value(resource.labels.unique_id)'\n"
                f"gcloud iam service-accounts undelete UNIQUE_ID --project {project}\n```",
                f"`serviceAccounts.get {email}` answered 404 NOT_FOUND.")
    if sa.get("disabled"):
        return (f"`{email}` is disabled.",
                f"Enable it:\n```\ngcloud iam service-accounts enable {email} --project {project}\n```",
                f"`serviceAccounts.get {email}` shows `disabled: true` (uniqueId `{sa.get('uniqueId', '?')}`).")
    return None


def run(ctx):
    project = ctx.ref.project
    number, policy = ctx.gw.parallel(lambda: ctx.gw.project_number(project),
                                      lambda: ctx.gw.project_iam_policy(project))
    compute_sa = compute_default_sa(number)
    out = []
    problem = account_problem(ctx, compute_sa, project)
    if problem:
        what, remedy, evidence = problem
        out.append(ctx.fail(
            f"The Compute Engine default service account {what} Node pools created without `--service-account` "
            "run as this account; cluster creation and node operations fail with 400/403 "
            "(\"the account has no edit permission\").",
            remedy, evidence=evidence, resource=f"projects/{project}/serviceAccounts/{compute_sa}"))
    member = f"serviceAccount:{number}@cloudservices.gserviceaccount.com"
    binding = has_role(policy, member, EDITOR)
    if not binding or binding.condition:
        out.append(ctx.fail(
            f"The Google APIs service agent `{member}` lacks `{EDITOR}` on project `{project}`: GKE cannot create "
            "or change the nodes' instance groups, so cluster creation and management fail with 400/403 "
            "(\"the account has no edit permission\").",
            f"Grant the role back:\n```\n{grant_command(project, member, EDITOR)}\n```",
            evidence=f"`gcloud projects get-iam-policy {project}` shows no unconditional binding of `{EDITOR}` for "
                     f"`{member}`" + (f" (only one with condition '{binding.condition}')" if binding else "") + ".",
            resource=f"projects/{project}"))
    return out or ctx.ok(f"`{compute_sa}` exists and is enabled; `{member}` has `{EDITOR}` on `projects/{project}`.",
                         resource=f"projects/{project}")
