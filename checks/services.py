"""Shared finding for "API X is enabled in the project" checks."""
from __future__ import annotations


def service_enabled_finding(ctx, service: str, why_it_matters: str, extra_remedy: str = ""):
    """OK when `service` is enabled in the cluster's project; else a FAIL with the enable command."""
    project = ctx.ref.project
    resource = f"projects/{project}/services/{service}"
    if ctx.gw.service_enabled(project, service):
        return ctx.ok(f"`{service}` is enabled in project `{project}`.", resource=resource)
    return ctx.fail(
        f"`{service}` is disabled in project `{project}`: {why_it_matters}",
        f"Enable it:\n```\ngcloud services enable {service} --project {project}\n```" + extra_remedy,
        evidence=f"`services.get {resource}` answered `state: DISABLED`.", resource=resource)
