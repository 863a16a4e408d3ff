"""The control plane endpoint is reachable from anywhere: no private-only endpoint, no authorized networks.

Two cluster settings decide which clients reach the Kubernetes API server at all. With a private
endpoint only (`privateClusterConfig.enablePrivateEndpoint`), the API server has no public address:
only clients inside the cluster's VPC network (or networks connected to it), and, with authorized
networks, only those in the listed CIDRs, reach `privateEndpoint`. With master authorized networks
(`masterAuthorizedNetworksConfig.enabled`), only clients whose address is in `cidrBlocks` get
through. Everyone else sees kubectl time out: a connection failure, not a 401, so a 401 means the
client did reach the cluster. Both are deliberate security settings, hence WARN, not FAIL.
"""
from __future__ import annotations

from checks.i18n import N_, _

ID = "gke/control-plane-reachable"
TITLE = N_("Your client can reach the control plane endpoint")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/how-to/authorized-networks"
COMMANDS = ("why-401", "doctor")
ORDER = 35
SEED = "001 問題: 認証 / 認可エラー"


def run(ctx):
    c = ctx.gw.cluster(ctx.ref)
    name, flags = ctx.ref.name, f"--location={ctx.ref.location} --project={ctx.ref.project}"
    pcc, man = c.private_cluster_config, c.master_authorized_networks_config
    ip = c.control_plane_endpoints_config.ip_endpoints_config
    dns = c.control_plane_endpoints_config.dns_endpoint_config
    out = []
    if "ip_endpoints_config" in c.control_plane_endpoints_config and not ip.enabled:
        if dns.endpoint and dns.allow_external_traffic:
            return ctx.ok(
                f"`{name}` has no IP endpoints: its API server is reached through the DNS endpoint `{dns.endpoint}` "
                "only (IAM-authorized, from anywhere). `gcloud container clusters get-credentials` writes it into "
                "your kubeconfig; a 401 there is about credentials, not the network.")
        return ctx.warn(
            f"`{name}` has its IP endpoints disabled and its DNS endpoint closed to external traffic "
            f"(allowExternalTraffic: false): no client outside Google can reach the API server at all.",
            f"Open the DNS-based endpoint to IAM-authorized clients:\n```\ngcloud container clusters update {name} "
            f"\\\n    {flags} --enable-dns-access\n```",
            evidence="controlPlaneEndpointsConfig.ipEndpointsConfig.enabled: false, "
                     f"dnsEndpointConfig.allowExternalTraffic: {str(bool(dns.allow_external_traffic)).lower()}")
    if pcc.enable_private_endpoint or ("enable_public_endpoint" in ip and not ip.enable_public_endpoint):
        private = pcc.private_endpoint or ip.private_endpoint
        via_dns = "" if not dns.allow_external_traffic else (
            f" The cluster also has a DNS-based endpoint `{dns.endpoint}` that accepts traffic from anywhere "
            "(IAM-authorized): add `--dns-endpoint` to the command above.")
        out.append(ctx.warn(
            f"`{name}` has a private endpoint only: only clients inside its VPC network `{c.network or 'default'}` "
            f"(or networks connected to it){' and in its authorized networks' if man.enabled else ''} can reach the "
            f"API server at `{private}`. From anywhere else kubectl times out; it never gets as far as a 401.",
            f"Run kubectl from a machine inside the VPC network (a VM, or through a bastion or VPN), with credentials "
            f"for the private endpoint:\n```\ngcloud container clusters get-credentials {name} \\\n    {flags} "
            f"--internal-ip\n```{via_dns}",
            evidence=f"privateClusterConfig.enablePrivateEndpoint: {str(pcc.enable_private_endpoint).lower()}, "
                     f"privateEndpoint: {private}"))
    if man.enabled:
        blocks = [b.cidr_block for b in man.cidr_blocks]
        listed = ", ".join(f"`{b.cidr_block}`" + (f" ({b.display_name})" if b.display_name else "")
                           for b in man.cidr_blocks) or "none"
        extra = " and Google Cloud's public IP addresses" if man.gcp_public_cidrs_access_enabled else ""
        out.append(ctx.warn(
            f"Master authorized networks are enabled on `{name}`: only clients whose address is in {listed}{extra} "
            "reach the control plane. A client outside these CIDRs gets connection timeouts, not 401.",
            "Run kubectl from an address in these ranges, or have an admin add yours (the flag replaces the whole "
            f"list, so it repeats the current ranges):\n```\ngcloud container clusters update {name} \\\n    {flags} "
            "\\\n    --enable-master-authorized-networks \\\n"
            f"    --master-authorized-networks={','.join(blocks + ['YOUR_IP/32'])}\n```",
            evidence="masterAuthorizedNetworksConfig.enabled: true, cidrBlocks: "
                     + (", ".join(blocks) or "none")))
    return out or ctx.ok(f"The API server of `{name}` at `{c.endpoint}` is public and not limited to authorized "
                         "networks: any client can reach it, so a 401 is about credentials, not the network.")
