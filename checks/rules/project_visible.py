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
        return ctx.skip(_("No single project was named, so the cluster was searched in every project of "
                          "GKE_BOT_PROJECTS; name it as `PROJECT/LOCATION/NAME` to check the project itself."),
                        resource=ctx.ref.name)
    resource = f"projects/{project}"
    try:
        state = ctx.gw.project(project).state.name
    except ApiError as err:
        if err.not_found:
            return ctx.fail(_("Project `{project}` does not exist.").format(project=project),
                            _("Check the project id: `{command}`.").format(
                                command=f"gcloud projects list --filter='projectId:{project}'"),
                            evidence=err.explain(), resource=resource)
        if not err.denied:
            raise
        bot = getattr(ctx.gw.credentials, "service_account_email", "") or "BOT_SERVICE_ACCOUNT"
        return ctx.finding(
            Status.ERROR,
            _("The bot cannot tell whether project `{project}` does not exist or the bot may not see it: Resource "
              "Manager answers 403 PERMISSION_DENIED for both. The bot's own identity needs `{permission}` on it "
              "(`roles/browser`).").format(project=project,
                                           permission=err.permission or "resourcemanager.projects.get"),
            _("Check as yourself: `{command}`. If it exists, let the bot see it:\n```\n{grant}\n```").format(
                command=f"gcloud projects describe {project}",
                grant=grant_command(project, f"serviceAccount:{bot}", "roles/browser")),
            evidence=err.explain(), resource=resource)
    if state == "ACTIVE":
        return ctx.ok(_("Project `{project}` exists and is `ACTIVE`.").format(project=project), resource=resource)
    if state == "DELETE_REQUESTED":
        remedy = _("If it was deleted by mistake, restore it within 30 days of the deletion:\n```\n{command}\n```").format(
            command=f"gcloud projects undelete {project}")
    else:
        remedy = _("Check the project: `{command}`.").format(command=f"gcloud projects describe {project}")
    return ctx.fail(_("Project `{project}` is `{state}`: it is being deleted, so its clusters are gone and every call "
                      "about them answers 404 or 403.").format(project=project, state=state), remedy,
                    evidence=_("`{call}` answered `state: {state}`.").format(call=f"projects.get {resource}",
                                                                           state=state),
                    resource=resource)
