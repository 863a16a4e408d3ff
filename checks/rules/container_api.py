"""The Kubernetes Engine API (container.googleapis.com) is enabled in the cluster's project.

With the API disabled, every `gcloud container` command and every cluster management call answers
403 SERVICE_DISABLED ("Kubernetes Engine API has not been used in project N before or it is
disabled"), and the project loses the GKE service agent's permissions. Enabling the API creates the
GKE service agent `service-PROJECT_NUMBER@container-engine-robot.iam.gserviceaccount.com` and grants
it roles/container.serviceAgent. When that binding is missing as well, the fix is the one of the
"account has no edit permission" (400/403) guide: grant the role back, and if that is not possible,
disable and re-enable the Kubernetes Engine API, which restores the service agent and its
permissions.
"""
from __future__ import annotations

from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.iam import grant_command, has_role
from checks.rules.service_agent import ROLE as AGENT_ROLE, agent_member
from checks.services import service_enabled_finding

ID = "gke/container-api-enabled"
TITLE = N_("Kubernetes Engine API is enabled")
DOC_URL = ("https://cloud.google.com/kubernetes-engine/docs/troubleshooting/"
           "permission-errors#gke_service_account_deleted")
COMMANDS = ("why-403",)
ORDER = 25
SEED = "001 エラー 400/403: アカウントに編集権限がない"
SERVICE = "container.googleapis.com"


def _agent_remedy(ctx, project: str) -> str:
    """What to do about the GKE service agent once the API is back ('' when its binding is intact)."""
    try:
        member = agent_member(ctx.gw.project_number(project))
        binding = has_role(ctx.gw.project_iam_policy(project), member, AGENT_ROLE)
    except ApiError as err:
        return "\n" + _("The bot could not check the GKE service agent's binding: {error}").format(error=err.explain())
    if binding and not binding.condition:
        return ""
    return "\n" + _("The GKE service agent `{member}` has no `{role}` binding either. Enabling the API should restore "
                    "it; if it does not, grant the role back:\n```\n{grant}\n```\nIf that does not restore it, "
                    "disable and re-enable the API (`{disable}` then `{enable}`).").format(
        member=member, role=AGENT_ROLE, grant=grant_command(project, member, AGENT_ROLE),
        disable=f"gcloud services disable {SERVICE} --project {project}",
        enable=f"gcloud services enable {SERVICE} --project {project}")


def run(ctx):
    return service_enabled_finding(
        ctx, SERVICE, _("every `gcloud container` command and cluster management call answers 403 (\"Kubernetes "
                        "Engine API has not been used in project … before or it is disabled\"), and the GKE service "
                        "agent loses its permissions."), _agent_remedy(ctx, ctx.ref.project))
