"""Which control-plane endpoint of a cluster the bot connects to, and how it verifies it.

`auto` chooses as `gcloud container clusters get-credentials` does (googlecloudsdk/api_lib/container/
util.py, `_GetClusterEndpoint`): when the cluster's IP endpoints are disabled
(`controlPlaneEndpointsConfig.ipEndpointsConfig.enabled` false), its DNS endpoint
(`controlPlaneEndpointsConfig.dnsEndpointConfig.endpoint`); otherwise `endpoint`. An operator sets
GKE_BOT_ENDPOINT to prefer another one: `private` (the bot runs inside the VPC: the private endpoint, as
`get-credentials --internal-ip`), `public` (the bot runs outside: never a private-only address; the DNS
endpoint where there is no public one), `dns` (always the DNS endpoint, as `--dns-endpoint`).

TLS is verified as gcloud's kubeconfig does: IP endpoints with the cluster's own CA
(`masterAuth.clusterCaCertificate`); the DNS endpoint with the system's trusted roots (no cluster CA; the
standard SSL_CERT_FILE / SSL_CERT_DIR variables are honoured), because Google serves it with a publicly
trusted certificate.

A DNS endpoint that does not allow external traffic (`allowExternalTraffic` false) is never tried: the
answer is a clear refusal saying what to change.
"""
from __future__ import annotations

from dataclasses import dataclass

from checks.gateway.errors import ApiError
from checks.i18n import _

MODES = ("auto", "public", "private", "dns")
DNS_FIELD = "controlPlaneEndpointsConfig.dnsEndpointConfig.endpoint"
SETTING = "GKE_BOT_ENDPOINT"


@dataclass(frozen=True)
class Endpoint:
    address: str  # host[:port], as the cluster resource gives it
    kind: str  # "dns", "private" or "ip" (the cluster's `endpoint`, public or the private-only address)
    source: str  # the cluster field it comes from
    reason: str  # why it was chosen, for people (in the reader's language)

    @property
    def dns(self) -> bool:
        return self.kind == "dns"

    @property
    def verification(self) -> str:
        return (_("the system's trusted root certificates (SSL_CERT_FILE / SSL_CERT_DIR honoured)") if self.dns
                else _("the cluster's CA (masterAuth.clusterCaCertificate)"))

    def describe(self) -> str:
        return _("`{address}` ({source}), chosen because {reason}").format(
            address=self.address, source=self.source, reason=self.reason)


def refused(message: str, hint: str) -> ApiError:
    return ApiError("kubernetes", "connect", 503, "ENDPOINT_REFUSED", message, hint=hint)


def _ip_disabled(cluster) -> bool:
    cpec = cluster.control_plane_endpoints_config
    return "ip_endpoints_config" in cpec and not cpec.ip_endpoints_config.enabled


def _private_only(cluster) -> bool:
    ip = cluster.control_plane_endpoints_config.ip_endpoints_config
    return bool(cluster.private_cluster_config.enable_private_endpoint) or (
        "enable_public_endpoint" in ip and not ip.enable_public_endpoint)


def _flags(ref) -> str:
    return f"--location={ref.location} --project={ref.project}"


def _dns_access(ref) -> str:
    return f"gcloud container clusters update {ref.name} {_flags(ref)} --enable-dns-access"


def _dns(cluster, ref, why: str) -> Endpoint:
    dns = cluster.control_plane_endpoints_config.dns_endpoint_config
    if not dns.endpoint:
        raise refused(
            _("Cluster `{cluster}` has no DNS endpoint ({field} is empty), and {why}, so the bot has no endpoint it "
              "can use.").format(cluster=ref.name, field=DNS_FIELD, why=why),
            _("Enable the DNS-based endpoint (it accepts IAM-authorized clients from anywhere):\n```\n{command}\n```\n"
              "or set {setting}=private and run the bot inside the cluster's VPC network.").format(
                command=_dns_access(ref), setting=SETTING))
    if not dns.allow_external_traffic:
        raise refused(
            _("The DNS endpoint `{endpoint}` of cluster `{cluster}` does not accept traffic "
              "(controlPlaneEndpointsConfig.dnsEndpointConfig.allowExternalTraffic: false), and {why}, so the bot "
              "did not try to connect.").format(endpoint=dns.endpoint, cluster=ref.name, why=why),
            _("Let IAM-authorized clients use the DNS endpoint:\n```\n{command}\n```\n"
              "or, with the bot inside the cluster's VPC network, set {setting}=private.").format(
                command=_dns_access(ref), setting=SETTING))
    return Endpoint(dns.endpoint, "dns", DNS_FIELD, why)


def choose(cluster, ref, mode: str = "auto") -> Endpoint:
    """The endpoint to connect to for `mode` (see the module docstring); raises ApiError (ENDPOINT_REFUSED,
    with a hint) when the cluster offers none the bot may use."""
    if mode not in MODES:
        raise ValueError(f"{SETTING} is one of {', '.join(MODES)}; got {mode!r}")
    ip_off = _ip_disabled(cluster)
    if mode == "dns":
        return _dns(cluster, ref, _("{setting}=dns asks for the DNS endpoint (as `get-credentials --dns-endpoint`)")
                    .format(setting=SETTING))
    if ip_off:
        return _dns(cluster, ref, _("the cluster's IP endpoints are disabled "
                                    "(controlPlaneEndpointsConfig.ipEndpointsConfig.enabled: false), so gcloud "
                                    "get-credentials uses its DNS endpoint ({setting}={mode})").format(
                                        setting=SETTING, mode=mode))
    if mode == "private":
        private = (cluster.private_cluster_config.private_endpoint
                   or cluster.control_plane_endpoints_config.ip_endpoints_config.private_endpoint)
        if private:
            return Endpoint(private, "private", "privateClusterConfig.privateEndpoint",
                            _("{setting}=private: the bot runs inside the VPC network and uses the private endpoint "
                              "(as `get-credentials --internal-ip`)").format(setting=SETTING))
        mode_note = _("{setting}=private, but the cluster has no private endpoint").format(setting=SETTING)
    elif mode == "public":
        if _private_only(cluster):
            dns = cluster.control_plane_endpoints_config.dns_endpoint_config
            if dns.endpoint and dns.allow_external_traffic:
                return _dns(cluster, ref, _("{setting}=public, and the cluster has no public IP endpoint (private "
                                            "endpoint only), so the bot uses its DNS endpoint").format(setting=SETTING))
            raise refused(
                _("Cluster `{cluster}` has a private endpoint only and no DNS endpoint open to external traffic, and "
                  "{setting}=public says the bot runs outside its VPC network: there is nothing the bot can reach.")
                .format(cluster=ref.name, setting=SETTING),
                _("Enable the DNS-based endpoint:\n```\n{command}\n```\n"
                  "or run the bot inside the VPC network with {setting}=private.").format(
                    command=_dns_access(ref), setting=SETTING))
        mode_note = f"{SETTING}=public"
    elif _private_only(cluster):
        mode_note = _("{setting}=auto: it is the cluster's control-plane address, as `gcloud container clusters "
                      "get-credentials` uses it (the cluster has a private endpoint only, so it is a private address)"
                      ).format(setting=SETTING)
    else:
        mode_note = _("{setting}=auto: it is the cluster's control-plane address, as `gcloud container clusters "
                      "get-credentials` uses it").format(setting=SETTING)
    if not cluster.endpoint:
        raise refused(_("Cluster `{cluster}` has no API server endpoint (status {status}).").format(
                          cluster=ref.name, status=cluster.status.name),
                      _("Wait until the cluster is RUNNING, then ask again."))
    return Endpoint(cluster.endpoint, "ip", "endpoint", mode_note)


def unreachable_hint(cluster, ref, ep: Endpoint, tls: bool) -> str:
    """What to change when the bot could not reach (or verify) the endpoint it chose."""
    flags = _flags(ref)
    if tls:
        if ep.dns:
            return _("The DNS endpoint is verified with the system's trusted roots, not the cluster CA: make sure the "
                     "bot's trust store (SSL_CERT_FILE / SSL_CERT_DIR, or the system bundle) holds Google's root "
                     "certificates, and that no TLS-intercepting proxy sits between the bot and Google.")
        return _("The IP endpoints are verified with the cluster's CA (masterAuth.clusterCaCertificate). If a "
                 "credential rotation is in progress, finish it; if a proxy intercepts TLS, let the bot reach the "
                 "cluster directly or set {setting}=dns to use the DNS endpoint.").format(setting=SETTING)
    man = cluster.master_authorized_networks_config
    dns = cluster.control_plane_endpoints_config.dns_endpoint_config
    blocks = [b.cidr_block for b in man.cidr_blocks]
    lines = []
    if ep.dns:
        lines.append(_("The DNS endpoint is served by Google from anywhere: check the bot's egress (firewall, proxy, "
                       "DNS resolution of the name) to Google."))
    elif ep.kind == "private":
        lines.append(_("The private endpoint is reachable only from inside the cluster's VPC network (or networks "
                       "connected to it): run the bot there, or set {setting}=auto or dns.").format(setting=SETTING))
    else:
        command = (f"gcloud container clusters update {ref.name} {flags} --enable-master-authorized-networks \\\n"
                   f"    --master-authorized-networks={','.join(blocks + ['BOT_EGRESS_IP/32'])}")
        lines.append(_(
            "If master authorized networks keep the bot out, add the bot's egress address (the public or NAT "
            "address its traffic leaves from; the flag replaces the whole list, so it repeats the current "
            "ranges):\n```\n{command}\n```").format(command=command))
        if _private_only(cluster):
            lines.append(_("`{address}` is a private address: a bot outside the VPC network cannot reach it; run the "
                           "bot inside it ({setting}=private), or use the DNS endpoint.").format(
                               address=ep.address, setting=SETTING))
    if not ep.dns:
        if dns.endpoint and dns.allow_external_traffic:
            lines.append(_("Or use the cluster's DNS endpoint `{endpoint}` (IAM-authorized, reachable from "
                           "anywhere): set {setting}=dns.").format(endpoint=dns.endpoint, setting=SETTING))
        else:
            lines.append(_("Or enable the DNS-based endpoint (IAM-authorized, reachable from anywhere) and set "
                           "{setting}=dns:\n```\n{command}\n```").format(setting=SETTING,
                                                                          command=_dns_access(ref)))
    return "\n".join(lines)
