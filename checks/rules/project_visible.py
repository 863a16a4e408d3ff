"""The cluster's project exists and is ACTIVE.

A project that was deleted (`state: DELETE_REQUESTED`, restorable for 30 days with `gcloud projects
undelete`) has no clusters any more: every call about them answers 404 or 403. When Resource
Manager answers 403 PERMISSION_DENIED to `projects.get`, the bot cannot tell whether the project
does not exist or the bot may not see it: Google answers 403 for both, so the finding says so and
shows how to tell them apart, instead of guessing.
"""
from __future__ import annotations

from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.iam import grant_command
from checks.model import Status

ID = "gke/project-visible"
TITLE = N_("Project exists and is ACTIVE")
DOC_URL = "https://cloud.google.com/resource-manager/docs/creating-managing-projects"
COMMANDS = ("why-404",)
ORDER = 30
SEED = "001 エラー 404: リソースが見つからない"


def run(ctx):
    project = ctx.ref.project
    if not project:
        return ctx.skip("No single project was named, so the cluster was searched in every project of "
                        "GKE_BOT_PROJECTS; name it as `PROJECT/LOCATION/NAME` to check the project itself.",
                        resource=ctx.ref.name)
    resource = f"projects/{project}"
    try:
        state = ctx.gw.project(project).state.name
    except ApiError as err:
        if err.not_found:
            return ctx.fail(f"Project `{project}` does not exist.",
                            "Check the project id: `gcloud projects list --filter='projectId:" + project + "'`.",
                            evidence=err.explain(), resource=resource)
        if not err.denied:
            raise
        bot = getattr(ctx.gw.credentials, "service_account_email", "") or "BOT_SERVICE_ACCOUNT"
        return ctx.finding(
            Status.ERROR,
            f"The bot cannot tell whether project `{project}` does not exist or the bot may not see it: Resource "
            "Manager answers 403 PERMISSION_DENIED for both. The bot's own identity needs "
            f"`{err.permission or 'resourcemanager.projects.get'}` on it (`roles/browser`).",
            f"Check as yourself: `gcloud projects describe {project}`. If it exists, let the bot see it:\n```\n"
            f"{grant_command(project, f'serviceAccount:{bot}', 'roles/browser')}\n```",
            evidence=err.explain(), resource=resource)
    if state == "ACTIVE":
        return ctx.ok(f"Project `{project}` exists and is `ACTIVE`.", resource=resource)
    remedy = (f"If it was deleted by mistake, restore it within 30 days of the deletion:\n```\n"
              f"gcloud projects undelete {project}\n```" if state == "DELETE_REQUESTED" else
              f"Check the project: `gcloud projects describe {project}`.")
    return ctx.fail(f"Project `{project}` is `{state}`: it is being deleted, so its clusters are gone and every "
                    "call about them answers 404 or 403.", remedy,
                    evidence=f"`projects.get {resource}` answered `state: {state}`.", resource=resource)
