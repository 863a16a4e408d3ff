"""gke-metadata-server logged no Workload Identity errors in the last 24 hours (Cloud Logging).

The seed and gcpdiag name the errors gke-metadata-server writes when Workload Identity fails:
"Unable to find pod: generic::not_found: retry budget exhausted" (the pod's IP matched no pod: gcpdiag
gke/ERR/2023_011, e.g. hostNetwork pods or a workload not compatible with Workload Identity),
`dial tcp …:443: connect: connection refused` (the control plane was unavailable: 002, gcpdiag
gke/WARN/2022_001) and timeouts. Where the bot may read Cloud Logging (`logging.logEntries.list`,
`roles/logging.viewer`) it searches this cluster's gke-metadata-server containers with a tight filter
(resource labels, severity WARNING and worse, the last 24 hours, those messages; the newest 20 entries)
and quotes them. Without the permission it says so, once; clusters without Workload Identity are skipped.
"""
from __future__ import annotations

from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.wi import (CONNECTION_REFUSED, LOG_WINDOW_HOURS, POD_NOT_FOUND, TIMEOUT_TERMS, log_line, log_message,
                       metadata_server_log_filter, metadata_server_logs, wi_enabled)

ID = "wi/metadata-server-logs"
TITLE = N_("gke-metadata-server logs no Workload Identity errors")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 17.5
CLUSTER_LEVEL = True  # doctor too: the logs are the cluster's
SEED = "002 コントロール プレーンが使用できないため GKE 用 Workload Identity 連携が失敗する"
GCPDIAG = "gke/ERR/2023_011"


def run(ctx):
    ref = ctx.ref
    if not wi_enabled(ctx.gw.cluster(ref)):
        return ctx.skip(f"Workload Identity is off on `{ref.name}`: no gke-metadata-server logs to read.")
    query = metadata_server_log_filter(ctx)
    shown = f"Logs Explorer query (project `{ref.project}`):\n```\n{query}\n```"
    try:
        entries = metadata_server_logs(ctx)
    except ApiError as err:
        if not err.denied:
            raise
        return ctx.skip(f"The bot cannot read Cloud Logging in project `{ref.project}` (it needs "
                        "`logging.logEntries.list`, e.g. `roles/logging.viewer`), so gke-metadata-server's logs "
                        "were not searched; the other checks stand on the live state.", evidence=shown)
    if not entries:
        return ctx.ok(f"No gke-metadata-server warning or error about pods, the control plane or timeouts in the last "
                      f"{LOG_WINDOW_HOURS} hours on `{ref.name}`.", evidence=shown)
    messages = [log_message(e) for e in entries]
    pod_ip = [e for e, m in zip(entries, messages) if POD_NOT_FOUND in m]
    refused = [e for e, m in zip(entries, messages) if CONNECTION_REFUSED in m]
    slow = [e for e, m in zip(entries, messages) if any(t in m.lower() for t in TIMEOUT_TERMS)]
    quoted = "```\n" + "\n".join(log_line(e) for e in entries[:8]) + "\n```"
    parts, remedies = [], []
    if pod_ip:
        parts.append(f"{len(pod_ip)} \"{POD_NOT_FOUND}\" error(s): gke-metadata-server could not match a request's "
                     "pod IP to a pod (hostNetwork pods, or a workload not compatible with Workload Identity).")
        remedies.append("Find the pods named in the errors; pods with `hostNetwork: true` cannot use Workload "
                        "Identity. On COS nodes before milestone 109 the legacy logging agent "
                        "(`google-logging-enabled=true` without `google-logging-use-fluentbit=true` in project "
                        "metadata) is not compatible with it either.")
    if refused:
        parts.append(f"{len(refused)} `{CONNECTION_REFUSED}` error(s): the control plane was unavailable, so the "
                     "metadata server answered 500 (see wi/control-plane-availability).")
        remedies.append("A regional cluster keeps its control plane available during maintenance; retry Google "
                        "Cloud calls that fail with 500 meanwhile.")
    if slow:
        parts.append(f"{len(slow)} timeout(s): pods asked before gke-metadata-server could answer them "
                     "(see wi/startup-timeout).")
        remedies.append("Update the client libraries, retry after a few seconds, or wait for the metadata server "
                        "in an initContainer.")
    report, gcpdiag = (ctx.fail, "gke/ERR/2023_011") if pod_ip else (ctx.warn, "gke/WARN/2022_001" if refused else "")
    return report(f"gke-metadata-server logged Workload Identity errors in the last {LOG_WINDOW_HOURS} hours on "
                  f"`{ref.name}` (newest first):\n{quoted}\n" + " ".join(parts),
                  " ".join(remedies), evidence=shown, gcpdiag=gcpdiag)
