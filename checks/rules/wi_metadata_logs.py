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
from checks.i18n import N_, _, sentences
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
        return ctx.skip(_("Workload Identity is off on `{cluster}`: no gke-metadata-server logs to read.").format(
            cluster=ref.name))
    query = metadata_server_log_filter(ctx)
    shown = _("Logs Explorer query (project `{project}`):\n```\n{query}\n```").format(project=ref.project, query=query)
    try:
        entries = metadata_server_logs(ctx)
    except ApiError as err:
        if not err.denied:
            raise
        return ctx.skip(_("The bot cannot read Cloud Logging in project `{project}` (it needs `logging.logEntries.list`, "
                          "e.g. `roles/logging.viewer`), so gke-metadata-server's logs were not searched; the other "
                          "checks stand on the live state.").format(project=ref.project), evidence=shown)
    if not entries:
        return ctx.ok(_("No gke-metadata-server warning or error about pods, the control plane or timeouts in the last "
                        "{hours} hours on `{cluster}`.").format(hours=LOG_WINDOW_HOURS, cluster=ref.name),
                      evidence=shown)
    messages = [log_message(e) for e in entries]
    pod_ip = [e for e, m in zip(entries, messages) if POD_NOT_FOUND in m]
    refused = [e for e, m in zip(entries, messages) if CONNECTION_REFUSED in m]
    slow = [e for e, m in zip(entries, messages) if any(t in m.lower() for t in TIMEOUT_TERMS)]
    quoted = "```\n" + "\n".join(log_line(e) for e in entries[:8]) + "\n```"
    parts, remedies = [], []
    if pod_ip:
        parts.append(_("{count} \"{error}\" error(s): gke-metadata-server could not match a request's pod IP to a pod "
                       "(hostNetwork pods, or a workload not compatible with Workload Identity).").format(
            count=len(pod_ip), error=POD_NOT_FOUND))
        remedies.append(_("Find the pods named in the errors; pods with `hostNetwork: true` cannot use Workload "
                          "Identity. On COS nodes before milestone 109 the legacy logging agent "
                          "(`google-logging-enabled=true` without `google-logging-use-fluentbit=true` in project "
                          "metadata) is not compatible with it either."))
    if refused:
        parts.append(_("{count} `{error}` error(s): the control plane was unavailable, so the metadata server answered "
                       "500 (see wi/control-plane-availability).").format(count=len(refused), error=CONNECTION_REFUSED))
        remedies.append(_("A regional cluster keeps its control plane available during maintenance; retry Google Cloud "
                          "calls that fail with 500 meanwhile."))
    if slow:
        parts.append(_("{count} timeout(s): pods asked before gke-metadata-server could answer them (see "
                       "wi/startup-timeout).").format(count=len(slow)))
        remedies.append(_("Update the client libraries, retry after a few seconds, or wait for the metadata server in "
                          "an initContainer."))
    report, gcpdiag = (ctx.fail, "gke/ERR/2023_011") if pod_ip else (ctx.warn, "gke/WARN/2022_001" if refused else "")
    return report(_("gke-metadata-server logged Workload Identity errors in the last {hours} hours on `{cluster}` "
                    "(newest first):\n{entries}\n{meaning}").format(hours=LOG_WINDOW_HOURS, cluster=ref.name,
                                                                    entries=quoted, meaning=sentences(*parts)),
                  sentences(*remedies), evidence=shown, gcpdiag=gcpdiag)
