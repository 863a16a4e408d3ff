"""The Compute Engine API (compute.googleapis.com) is enabled in the cluster's project.

GKE builds every cluster out of Compute Engine resources (instances, instance groups, disks, networks)
and enabling the Compute Engine API is what creates the Compute Engine default service account (with
the Editor role on the project) that nodes run as by default. With the API disabled, cluster creation
and every management operation fail with 400/403, whatever the Kubernetes Engine API says: "If at any
point these permissions are edited, bindings removed, service accounts deleted or the API disabled,
cluster creation and all management functions fail." Enable it again.
"""
from __future__ import annotations

from checks.i18n import N_, _
from checks.services import service_enabled_finding

ID = "gke/compute-api-enabled"
TITLE = N_("Compute Engine API is enabled")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors"
COMMANDS = ("why-403",)
ORDER = 26
SEED = "001 エラー 400/403: アカウントに編集権限がない"
SERVICE = "compute.googleapis.com"


def run(ctx):
    return service_enabled_finding(
        ctx, SERVICE, _("GKE cannot create or manage the nodes, disks and networks of its clusters, so cluster "
                        "creation and every management operation fail with 400/403 (\"the account has no edit "
                        "permission\"), even with the Kubernetes Engine API enabled."))
