"""The IAM Service Account Credentials API is enabled in the cluster's project.

Workload Identity Federation for GKE exchanges a Kubernetes service account's token for a Google
access token of the IAM service account it impersonates; the GKE metadata server does that through
the IAM Service Account Credentials API (`iamcredentials.googleapis.com`) of the project that
contains the cluster. When the API is disabled, pods do not authenticate to Google Cloud. The fix is
to enable it in that project.
"""
from __future__ import annotations

from checks.i18n import N_, _
from checks.wi import IAMCREDENTIALS
from checks.services import service_enabled_finding

ID = "wi/iamcredentials-api"
TITLE = N_("IAM Service Account Credentials API is enabled")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 10
SEED = "002 GKE 用 Workload Identity 連携; Pod が Google Cloud で認証されない (1)"
CLUSTER_LEVEL = False  # only matters where Workload Identity is used: not part of doctor


def run(ctx):
    return service_enabled_finding(
        ctx, IAMCREDENTIALS, _("it is the IAM Service Account Credentials API, and project `{project}` contains "
                               "cluster `{cluster}`: the GKE metadata server cannot exchange Kubernetes service "
                               "account tokens for Google access tokens, so pods do not authenticate to Google "
                               "Cloud.").format(project=ctx.ref.project, cluster=ctx.ref.name))
