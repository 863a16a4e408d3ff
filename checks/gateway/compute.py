"""Compute Engine (REST transport): networks, firewalls."""
from __future__ import annotations

import json

from checks.gateway.core import GatewayCore
from checks.gateway.permissions import google

EFFECTIVE_FIREWALLS = google("networks.getEffectiveFirewalls", "compute.googleapis.com",
                             "compute.networks.getEffectiveFirewalls",
                             purpose="firewall rules that let Google's health checkers reach the nodes")


class ComputeMixin(GatewayCore):
    # ---- Compute ------------------------------------------------------------------------------
    def effective_firewalls(self, project: str, network: str) -> dict:
        """compute v1 networks.getEffectiveFirewalls as JSON (camelCase)."""
        from google.cloud import compute_v1

        client = self._client("networks", compute_v1.NetworksClient)
        resp = self._fact(("firewalls", project, network), EFFECTIVE_FIREWALLS,
                          f"projects/{project}/global/networks/{network}",
                          lambda: client.get_effective_firewalls(project=project, network=network))
        return json.loads(type(resp).to_json(resp))
