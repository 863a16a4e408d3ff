"""Your gcloud credentials and configuration point at the cluster (guidance: the bot cannot see your machine).

When a `gcloud container` command answers 404 (resource not found) for a cluster that exists, the
local Google Cloud CLI is usually to blame: stale credentials (re-authenticate with `gcloud auth
login`), another project in `gcloud config` than the cluster's, or a location that is not the
cluster's (a zonal cluster is not found under its region, a regional one not under a zone). This
finding is always shown, with the cluster's real names filled in where they are known.
"""
from __future__ import annotations

from checks.i18n import N_, _
from checks.names import is_zone

ID = "gke/stale-credentials"
TITLE = N_("gcloud credentials and configuration (check on your machine)")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors"
COMMANDS = ("why-404",)
ORDER = 50
SEED = "001 エラー 404: リソースが見つからない"
CLUSTER_LEVEL = False


def run(ctx):
    res = ctx.args.get("resolution")
    target = ctx.ref
    if res is not None:  # the cluster found, else the one suggestion (or the one of the asked name)
        exact = [c for c in res.candidates if c.name == ctx.ref.name]
        target = res.ref or next((c[0] for c in (exact, res.candidates) if len(c) == 1), target)
    project, location = target.project or "PROJECT_ID", target.location or "LOCATION"
    where = ""
    if target.location:
        where = "\n" + (_("`{location}` is a zone: the same name under a region is another cluster (or none), so always "
                          "pass `--location` (gcloud's default zone or region may differ).") if is_zone(location) else
                        _("`{location}` is a region: the same name under a zone is another cluster (or none), so always "
                          "pass `--location` (gcloud's default zone or region may differ).")).format(location=location)
    commands = ("gcloud auth login\n"
                + "gcloud config get-value project    # " + _("should print {project}; else: {command}").format(
                    project=project, command=f"gcloud config set project {project}") + "\n"
                f"gcloud container clusters get-credentials {target.name} --location={location} --project={project}")
    return ctx.skip(
        _("If `gcloud container …` answers 404 (resource not found) for a cluster that exists, re-authenticate the "
          "Google Cloud CLI and check which project and location it uses."),
        remedy=f"```\n{commands}\n```" + where,
        resource=target.path if target.project and target.location else target.name)
