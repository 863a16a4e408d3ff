"""The HTTP load balancing add-on is enabled, so the GKE Ingress controller runs.

GCE Ingresses (class `gce`, `gce-internal` or none) are implemented by the GKE Ingress controller,
which GKE runs only while the HTTP load balancing add-on is on
(`addonsConfig.httpLoadBalancing.disabled` not true). With the add-on off, the controller and its
default backend (`l7-default-backend` in kube-system) do not run: an Ingress is accepted by the
API server but never gets an address, and nothing (no event, no log line) says why. Teams lose
hours to it. Enabling the add-on starts the controller, which then creates the load balancers of
the Ingresses that already exist.
"""
from __future__ import annotations

from checks.i18n import N_, _
from checks.model import Remediation

ID = "ingress/http-lb-addon"
TITLE = N_("HTTP load balancing (the GKE Ingress controller) is enabled")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/how-to/load-balance-ingress"
COMMANDS = ("ingress", "doctor")
ORDER = 10
SEED = "000 はまったところ(1) - HTTP 負荷分散の有効化"
GCPDIAG = "gke/BP/2022_004"


def run(ctx):
    ref = ctx.ref
    if not ctx.gw.cluster(ref).addons_config.http_load_balancing.disabled:
        return ctx.ok(_("HTTP load balancing is enabled on `{cluster}`: the GKE Ingress controller runs.").format(
            cluster=ref.name))
    command = (f"gcloud container clusters update {ref.name} --location={ref.location} --project={ref.project} "
               "\\\n    --update-addons=HttpLoadBalancing=ENABLED")
    return ctx.fail(
        _("HTTP load balancing is disabled on `{cluster}`, so the GKE Ingress controller and its default backend "
          "(`l7-default-backend` in `kube-system`) do not run: no GCE Ingress will ever get an address, and nothing "
          "logs why (no events on the Ingress, no controller logs).").format(cluster=ref.name),
        _("Enable the add-on (the controller then builds the load balancers of the Ingresses that exist):\n```\n"
          "{command}\n```").format(command=command),
        evidence=f"`clusters.get {ref.path}`: addonsConfig.httpLoadBalancing.disabled: true",
        remediation=Remediation(
            kind="enable_http_load_balancing", label=_("Enable HTTP load balancing"),
            summary=_("Enable the HTTP load balancing add-on on cluster {cluster} ({project}, {location})").format(
                cluster=ref.name, project=ref.project, location=ref.location),
            params={"project": ref.project, "location": ref.location, "cluster": ref.name}))
