"""The GKE service agent holds roles/container.serviceAgent on the project.

When the Kubernetes Engine API is enabled, Google Cloud creates the GKE service agent
`service-PROJECT_NUMBER@container-engine-robot.iam.gserviceaccount.com` and grants it the
Kubernetes Engine Service Agent role on the project. If that binding was edited away or removed,
cluster creation and every management function fail with "400/403: the account has no edit
permission", and Workload Identity fails with "DeployPatch failed". The fix is to grant the role
again; if that is not possible, disable and re-enable the Kubernetes Engine API, which restores
the service account and its permissions.
"""
from __future__ import annotations

from checks.i18n import N_, _
from checks.iam import grant_command, has_role
from checks.model import Remediation

ID = "gke/service-agent-role"
TITLE = N_("GKE service agent has roles/container.serviceAgent")
DOC_URL = ("https://cloud.google.com/kubernetes-engine/docs/troubleshooting/"
           "permission-errors#gke_service_account_deleted")
COMMANDS = ("why-403", "wi", "doctor")
ORDER = 20
SEED = "001 エラー 400/403: アカウントに編集権限がない"
GCPDIAG = "gke/ERR/2021_007"  # GKE service account permissions
ROLE = "roles/container.serviceAgent"


def evidence_command(project: str) -> str:
    """The seed's own check (`gcloud projects get-iam-policy PROJECT_ID`), narrowed to the role."""
    return f"gcloud projects get-iam-policy {project} --flatten=bindings --filter=bindings.role={ROLE}"


def agent_member(number: str) -> str:
    return f"serviceAccount:service-{number}@container-engine-robot.iam.gserviceaccount.com"


def run(ctx):
    project = ctx.ref.project
    number, policy = ctx.gw.parallel(lambda: ctx.gw.project_number(project),
                                      lambda: ctx.gw.project_iam_policy(project))
    member = agent_member(number)
    binding = has_role(policy, member, ROLE)
    resource = f"projects/{project}"
    if binding and not binding.condition:
        return ctx.ok(_("`{member}` has `{role}` on `{resource}`.").format(member=member, role=ROLE, resource=resource),
                      resource=resource, evidence=_("`{command}` lists `{member}`.").format(
                          command=evidence_command(project), member=member))
    if binding:
        evidence = _("`{command}` shows no unconditional binding for `{member}` (only one with condition "
                     "'{condition}').").format(command=evidence_command(project), member=member,
                                                condition=binding.condition)
    else:
        evidence = _("`{command}` shows no unconditional binding for `{member}`.").format(
            command=evidence_command(project), member=member)
    remedy = _("Grant the role back:\n```\n{grant}\n```\nIf that does not restore it, disable and re-enable the "
               "Kubernetes Engine API (`{disable}` then `{enable}`): this recreates the service agent and its "
               "permissions.").format(
        grant=grant_command(project, member, ROLE),
        disable=f"gcloud services disable container.googleapis.com --project {project}",
        enable=f"gcloud services enable container.googleapis.com --project {project}")
    return ctx.fail(
        _("The GKE service agent `{member}` lacks `{role}` on project `{project}` (number {number}). Cluster creation "
          "and every management operation fail with 400/403 (\"the account has no edit permission\"); Workload "
          "Identity fails with \"DeployPatch failed\".").format(member=member, role=ROLE, project=project,
                                                                 number=number),
        remedy, evidence=evidence, resource=resource,
        remediation=Remediation(
            kind="grant_service_agent", label=_("Re-grant {role}").format(role=ROLE),
            summary=_("Add one binding to project {project}: {role} → {member}").format(
                project=project, role=ROLE, member=member),
            params={"project": project, "member": member, "role": ROLE}),
    )
