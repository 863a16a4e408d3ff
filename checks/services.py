"""Shared finding for "API X is enabled in the project" checks."""
from __future__ import annotations

from checks.i18n import _


def service_enabled_finding(ctx, service: str, why_it_matters: str, extra_remedy: str = ""):
    """OK when `service` is enabled in the cluster's project; else a FAIL with the enable command."""
    project = ctx.ref.project
    resource = f"projects/{project}/services/{service}"
    if ctx.gw.service_enabled(project, service):
        return ctx.ok(_("`{service}` is enabled in project `{project}`.").format(service=service, project=project),
                      resource=resource)
    return ctx.fail(
        _("`{service}` is disabled in project `{project}`: {why}").format(service=service, project=project,
                                                                         why=why_it_matters),
        _("Enable it:\n```\n{command}\n```").format(command=f"gcloud services enable {service} --project {project}")
        + extra_remedy,
        evidence=_("`{call}` answered `state: DISABLED`.").format(call=f"services.get {resource}"),
        resource=resource)
