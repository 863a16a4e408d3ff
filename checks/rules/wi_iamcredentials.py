"""The IAM Service Account Credentials API is enabled in the cluster's project.

Workload Identity Federation for GKE exchanges a Kubernetes service account's token for a Google
access token of the IAM service account it impersonates; the GKE metadata server does that through
the IAM Service Account Credentials API (`iamcredentials.googleapis.com`) of the project that
contains the cluster. When the API is disabled, pods do not authenticate to Google Cloud. The fix is
to enable it in that project.
"""
from __future__ import annotations

from checks.wi import IAMCREDENTIALS

ID = "wi/iamcredentials-api"
TITLE = "IAM Service Account Credentials API is enabled"
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 10


def run(ctx):
    project = ctx.ref.project
    resource = f"projects/{project}/services/{IAMCREDENTIALS}"
    if ctx.gw.service_enabled(project, IAMCREDENTIALS):
        return ctx.ok(f"`{IAMCREDENTIALS}` is enabled in project `{project}`.", resource=resource)
    return ctx.fail(
        f"`{IAMCREDENTIALS}` (IAM Service Account Credentials API) is not enabled in project `{project}`, which "
        f"contains cluster `{ctx.ref.name}`: the GKE metadata server cannot exchange Kubernetes service account "
        "tokens for Google access tokens, so pods do not authenticate to Google Cloud.",
        f"Enable it:\n```\ngcloud services enable {IAMCREDENTIALS} --project {project}\n```",
        evidence=f"`services.get projects/{project}/services/{IAMCREDENTIALS}`: state is not ENABLED.",
        resource=resource)
