"""No operation on the cluster failed in the last days.

A failed GKE operation (status DONE with an `error`) is often the clearest evidence of why a later
request is refused: its error is quoted verbatim, with what the seeds say it means, for example
`Node pool "POOL" requires recreation.` (a pool marked for recreation, 001 エラー 400), `DeployPatch
failed` (the GKE service agent lost its role, 001 エラー 400/403), `Retry budget exhausted: Google
Compute Engine: Required permission 'PERMISSION' for 'RESOURCE'` (the node service account lacks a
permission, 001 エラー 403), or "Cluster is running incompatible operation". Operations of the last
RECENT_DAYS days are read (running and finished, failed included); identical errors are grouped.
"""
from __future__ import annotations

from datetime import datetime, timezone

from checks import operations as opsmod

from checks.i18n import N_, _

ID = "gke/recent-failed-operations"
TITLE = N_("No recent operation on the cluster failed")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors"
COMMANDS = ("why-400", "why-403", "doctor")
ORDER = 15
SEED = "001 エラー 400: ノードプールの再作成が必要; エラー 403: リトライ バジェットが残っていない"
SHOWN = 5  # distinct errors shown at most (newest first)


def run(ctx):
    ref = ctx.ref
    now = datetime.now(timezone.utc)
    recent = opsmod.recent(ctx.gw.operations(ref.project, ref.location), ref, now)
    groups: dict[str, list] = {}
    for op in recent:
        if opsmod.failed(op):
            groups.setdefault(opsmod.error_text(op), []).append(op)
    where = f"--location={ref.location} --project={ref.project}"
    if not groups:
        return ctx.ok(_("No operation on `{cluster}` failed in the last {days} days ({count} operation(s) read).")
                      .format(cluster=ref.name, days=opsmod.RECENT_DAYS, count=len(recent)))
    out = []
    for error, ops in list(groups.items())[:SHOWN]:
        latest = ops[0]
        what = opsmod.meaning(error) or _("GKE gave no more detail; `gcloud container operations describe` shows "
                                          "the whole operation.")
        pool = opsmod.pool_of(latest)
        facts = dict(cluster=ref.name, count=len(ops), operation=latest.name, type=latest.operation_type.name,
                     pool=pool, end=latest.end_time or "?", error=opsmod.quoted(error), meaning=what)
        if len(ops) > 1 and pool:
            detail = _("An operation on `{cluster}` failed ({count} times, last `{operation}`, {type} on node pool "
                       "`{pool}`, ended {end}):\n```\n{error}\n```\n{meaning}")
        elif len(ops) > 1:
            detail = _("An operation on `{cluster}` failed ({count} times, last `{operation}`, {type}, ended {end}):"
                       "\n```\n{error}\n```\n{meaning}")
        elif pool:
            detail = _("An operation on `{cluster}` failed (once, `{operation}`, {type} on node pool `{pool}`, ended "
                       "{end}):\n```\n{error}\n```\n{meaning}")
        else:
            detail = _("An operation on `{cluster}` failed (once, `{operation}`, {type}, ended {end}):\n```\n"
                       "{error}\n```\n{meaning}")
        out.append(ctx.warn(
            detail.format(**facts),
            _("See the whole operation:\n```\n{command}\n```").format(
                command=f"gcloud container operations describe {latest.name} {where}"),
            evidence="\n".join(opsmod.describe_op(o) for o in ops),
            resource=f"projects/{ref.project}/locations/{ref.location}/operations/{latest.name}"))
    if len(groups) > SHOWN:
        out[-1].detail += "\n" + _("({count} more distinct error(s) not shown: `{command}`.)").format(
            count=len(groups) - SHOWN,
            command=f"gcloud container operations list {where} --filter=\"status=DONE AND error:*\"")
    return out
