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
                _("`{cluster}` has no IP endpoints: its API server is reached through the DNS endpoint `{endpoint}` "
                  "only (IAM-authorized, from anywhere). `gcloud container clusters get-credentials` writes it into "
                  "your kubeconfig; a 401 there is about credentials, not the network.").format(
                    cluster=name, endpoint=dns.endpoint))
        return ctx.warn(
            _("`{cluster}` has its IP endpoints disabled and its DNS endpoint closed to external traffic "
              "(allowExternalTraffic: false): no client outside Google can reach the API server at all.").format(
                cluster=name),
            _("Open the DNS-based endpoint to IAM-authorized clients:\n```\n{command}\n```").format(
                command=f"gcloud container clusters update {name} \\\n    {flags} --enable-dns-access"),
            evidence="controlPlaneEndpointsConfig.ipEndpointsConfig.enabled: false, "
                     f"dnsEndpointConfig.allowExternalTraffic: {str(bool(dns.allow_external_traffic)).lower()}")
    if pcc.enable_private_endpoint or ("enable_public_endpoint" in ip and not ip.enable_public_endpoint):
        private = pcc.private_endpoint or ip.private_endpoint
        via_dns = "" if not dns.allow_external_traffic else (" " + _(
            "The cluster also has a DNS-based endpoint `{endpoint}` that accepts traffic from anywhere "
            "(IAM-authorized): add `--dns-endpoint` to the command above.").format(endpoint=dns.endpoint))
        facts = dict(cluster=name, network=c.network or "default", address=private)
        out.append(ctx.warn(
            (_("`{cluster}` has a private endpoint only: only clients inside its VPC network `{network}` (or networks "
               "connected to it) and in its authorized networks can reach the API server at `{address}`. From "
               "anywhere else kubectl times out; it never gets as far as a 401.") if man.enabled else
             _("`{cluster}` has a private endpoint only: only clients inside its VPC network `{network}` (or networks "
               "connected to it) can reach the API server at `{address}`. From anywhere else kubectl times out; it "
               "never gets as far as a 401.")).format(**facts),
            _("Run kubectl from a machine inside the VPC network (a VM, or through a bastion or VPN), with credentials "
              "for the private endpoint:\n```\n{command}\n```").format(
                command=f"gcloud container clusters get-credentials {name} \\\n    {flags} --internal-ip") + via_dns,
            evidence=f"privateClusterConfig.enablePrivateEndpoint: {str(pcc.enable_private_endpoint).lower()}, "
                     f"privateEndpoint: {private}"))
    if man.enabled:
        blocks = [b.cidr_block for b in man.cidr_blocks]
        listed = ", ".join(f"`{b.cidr_block}`" + (f" ({b.display_name})" if b.display_name else "")
                           for b in man.cidr_blocks) or _("none")
        facts = dict(cluster=name, ranges=listed)
        out.append(ctx.warn(
            (_("Master authorized networks are enabled on `{cluster}`: only clients whose address is in {ranges} and "
               "Google Cloud's public IP addresses reach the control plane. A client outside these CIDRs gets "
               "connection timeouts, not 401.") if man.gcp_public_cidrs_access_enabled else
             _("Master authorized networks are enabled on `{cluster}`: only clients whose address is in {ranges} "
               "reach the control plane. A client outside these CIDRs gets connection timeouts, not 401.")).format(
                **facts),
            _("Run kubectl from an address in these ranges, or have an admin add yours (the flag replaces the whole "
              "list, so it repeats the current ranges):\n```\n{command}\n```").format(
                command=f"gcloud container clusters update {name} \\\n    {flags} \\\n"
                        "    --enable-master-authorized-networks \\\n"
                        f"    --master-authorized-networks={','.join(blocks + ['YOUR_IP/32'])}"),
            evidence="masterAuthorizedNetworksConfig.enabled: true, cidrBlocks: "
                     + (", ".join(blocks) or "none")))
    return out or ctx.ok(_("The API server of `{cluster}` at `{address}` is public and not limited to authorized "
                           "networks: any client can reach it, so a 401 is about credentials, not the network.").format(
        cluster=name, address=c.endpoint))
