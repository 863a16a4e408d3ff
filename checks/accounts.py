"""Shared reasoning about the service accounts GKE relies on: the Compute Engine default service account,
node service accounts, their usability, and the least-privilege alternative (Slack-free helpers)."""
from __future__ import annotations

from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.iam import grant_command

NODE_ROLE = "roles/container.defaultNodeServiceAccount"
# The role's permissions as documented, should its definition be unreadable.
NODE_PERMISSIONS = ("autoscaling.sites.writeMetrics", "logging.logEntries.create",
                    "monitoring.metricDescriptors.create", "monitoring.metricDescriptors.list",
                    "monitoring.timeSeries.create", "monitoring.timeSeries.list")
RETRY_BUDGET = ("Error 403: Retry budget exhausted: Google Compute Engine: "
                "Required permission 'PERMISSION_NAME' for 'RESOURCE_NAME'")
LEAST_PRIVILEGE_SA = "gke-nodes"  # the name suggested for a least-privilege node service account
# node_accounts' name for the node auto-provisioning defaults (not a node pool), translated where it is made
AUTOPROVISIONING, AUTOPROVISIONING_AUTOPILOT = N_("autoprovisioning defaults"), N_("autoprovisioning defaults (Autopilot)")
DELETED, DISABLED = "deleted", "disabled"  # what account_problem finds


def compute_default_sa(number: str) -> str:
    return f"{number}-compute@developer.gserviceaccount.com"


def account_problem(ctx, email: str, project: str) -> tuple[str, str, str] | None:
    """(DELETED or DISABLED, remedy, evidence) for a deleted or disabled service account; None when it is usable.
    Callers say what it means in a whole sentence of their own, one per kind.

    `project` is the project that owns the account (for the gcloud commands).
    """
    try:
        sa = ctx.gw.service_account(email, project)
    except ApiError as err:
        if not err.denied:
            raise
        raise ApiError(err.api, err.call, err.code, err.status,
                       _("{message} (IAM also answers 403 for an account that does not exist; check with "
                         "`{command}`)").format(message=err.message,
                                                command=f"gcloud iam service-accounts describe {email} "
                                                        f"--project {project}"), err.permission) from err
    if sa is None:
        commands = (f"gcloud logging read 'protoPayload.methodName=\"google.iam.admin.v1.DeleteServiceAccount\" AND "
                    f"resource.labels.email_id=\"{email}\"' --project {project} --freshness=30d "
                    "--format='value(resource.labels.unique_id)'\n"
                    f"gcloud iam service-accounts undelete UNIQUE_ID --project {project}")
        return (DELETED,
                _("If it was deleted less than 30 days ago, find its unique ID in the deletion's audit log and "
                  "undelete it:\n```\n{commands}\n```").format(commands=commands),
                _("`serviceAccounts.get {email}` answered 404 NOT_FOUND.").format(email=email))
    if sa.get("disabled"):
        return (DISABLED,
                _("Enable it:\n```\n{command}\n```").format(
                    command=f"gcloud iam service-accounts enable {email} --project {project}"),
                _("`serviceAccounts.get {email}` shows `disabled: true` (uniqueId `{id}`).").format(
                    email=email, id=sa.get("uniqueId", "?")))
    return None


def node_accounts(cluster, number: str) -> dict[str, list[str]]:
    """Node service account email -> the pools (or autoprovisioning defaults) that run as it."""
    users = [(p.name, p.config.service_account) for p in cluster.node_pools]
    if cluster.autopilot.enabled or cluster.autoscaling.enable_node_autoprovisioning or not users:
        users.append((_(AUTOPROVISIONING_AUTOPILOT if cluster.autopilot.enabled else AUTOPROVISIONING),
                      cluster.autoscaling.autoprovisioning_node_pool_defaults.service_account))
    out: dict[str, list[str]] = {}
    for who, email in users:
        out.setdefault(email if email and email != "default" else compute_default_sa(number), []).append(who)
    return out


def least_privilege_sa(project: str) -> str:
    return f"{LEAST_PRIVILEGE_SA}@{project}.iam.gserviceaccount.com"


def least_privilege_commands(project: str, extra_role: str = "") -> str:
    """Create a least-privilege node service account holding the node role (and `extra_role`)."""
    member = f"serviceAccount:{least_privilege_sa(project)}"
    lines = [f"gcloud iam service-accounts create {LEAST_PRIVILEGE_SA} --project {project} \\\n"
             "    --display-name \"GKE nodes (least privilege)\"",
             grant_command(project, member, NODE_ROLE)]
    if extra_role:
        lines.append(grant_command(project, member, extra_role))
    return "\n".join(lines)
