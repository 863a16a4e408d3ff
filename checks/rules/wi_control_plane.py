"""The control plane is regional, so the GKE metadata server keeps answering during cluster maintenance.

When the cluster's control plane is unavailable the GKE metadata server cannot issue Workload
Identity credentials: calls to it return HTTP 500 and Logs Explorer shows entries like
`dial tcp 35.232.136.58:443: connect: connection refused`. A zonal cluster has a single control-plane
replica, unavailable during maintenance: IP rotation, control-plane upgrades, cluster or node-pool
resizing. A regional cluster keeps replicas in several zones and avoids this. The check reports a
zonal control plane, and control-plane operations in flight right now. Under `doctor` it runs for
clusters with Workload Identity (gcpdiag gke/WARN/2022_001: "GKE clusters with workload identity are
regional") and skips the others.
"""
from __future__ import annotations

from checks.fixes import in_flight
from checks.gateway import ApiError
from checks.i18n import N_, _, sentences
from checks.names import is_zone
from checks.wi import CONNECTION_REFUSED, for_ksa, log_line, log_message, metadata_server_logs, wi_enabled

ID = "wi/control-plane-availability"
TITLE = N_("Control plane stays available for the metadata server")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 19
CLUSTER_LEVEL = True  # doctor: clusters with Workload Identity
SEED = "002 コントロール プレーンが使用できないため GKE 用 Workload Identity 連携が失敗する"
GCPDIAG = "gke/WARN/2022_001"
# Operations during which a zonal control plane may be unreachable.
DISRUPTIVE = {"UPGRADE_MASTER", "UPDATE_CLUSTER", "REPAIR_CLUSTER", "SET_MASTER_AUTH", "SET_NODE_POOL_SIZE",
              "RESIZE_CLUSTER", "SET_NETWORK_POLICY", "CREATE_NODE_POOL", "DELETE_NODE_POOL"}


def run(ctx):
    ref = ctx.ref
    cluster = ctx.gw.cluster(ref)
    if not for_ksa(ctx) and not wi_enabled(cluster):
        return ctx.skip(_("Workload Identity is off on `{cluster}`: the GKE metadata server does not depend on its "
                          "control plane.").format(cluster=ref.name))

    def operations():
        try:
            return in_flight(ctx.gw.operations(ref.project, ref.location), ref.name), None
        except ApiError as err:  # the zonal/regional verdict stands without them
            return [], err

    def refused_logs():  # the same (memoised) read as wi/metadata-server-logs, which reports a missing permission
        try:
            return [e for e in metadata_server_logs(ctx) if CONNECTION_REFUSED in log_message(e)]
        except ApiError:
            return []
    (ops, unread), refused = ctx.gw.parallel(operations, refused_logs)
    running = "; ".join(_("`{operation}` {type} {status} since {start}").format(
        operation=o.name, type=o.operation_type.name, status=o.status.name, start=o.start_time) for o in ops)
    if unread is not None:
        evidence = _("Operations in flight on `{cluster}`: {operations} (operations could not be read: {error}).")
    else:
        evidence = _("Operations in flight on `{cluster}`: {operations}.")
    evidence = evidence.format(cluster=ref.name, operations=running or _("none"),
                               error=unread.explain() if unread is not None else "")
    if refused:
        evidence += "\n" + _("gke-metadata-server logged:") + "\n```\n" + "\n".join(log_line(e) for e in refused[:5]) + "\n```"
    if not is_zone(ref.location):
        return ctx.ok(_("`{cluster}` has a regional control plane (`{location}`): it stays available during "
                        "maintenance.").format(cluster=ref.name, location=ref.location), evidence=evidence)
    message = f"dial tcp {cluster.endpoint or 'CONTROL_PLANE_IP'}:443: connect: connection refused"
    detail = _("`{cluster}` has a zonal control plane (`{location}`): during maintenance (IP rotation, control-plane "
               "upgrade, cluster or node-pool resize) it is unavailable, the GKE metadata server answers 500 and Logs "
               "Explorer shows `{message}`.").format(cluster=ref.name, location=ref.location, message=message)
    remedy = _("A regional cluster avoids this; a cluster's location cannot change in place, so create a regional "
               "cluster (`{command}`) and move the workloads. Until then, retry Google Cloud calls that fail with 500 "
               "during maintenance.").format(
        command=f"gcloud container clusters create NAME --location={ref.location.rsplit('-', 1)[0]} "
                f"--project={ref.project} --workload-pool={ref.project}.svc.id.goog")
    now = [o for o in ops if o.operation_type.name in DISRUPTIVE]
    if now:
        return ctx.fail(sentences(detail, _("Maintenance is running right now: {operations}.").format(
                            operations=running)),
                        remedy + "\n```\n" + "\n".join(f"gcloud container operations wait {o.name} "
                                                      f"--location={ref.location} --project={ref.project}"
                                                      for o in now) + "\n```", evidence=evidence)
    return ctx.warn(detail, remedy, evidence=evidence)
