"""No node pool waits to be recreated.

When an action recreates the control plane and the nodes, such as completing a credential rotation,
it fails with `ERROR: (gcloud.container.clusters.update) ResponseError: code=400, message=Node pool
"POOL" requires recreation.` The pool has been marked for recreation in GKE's backend, but the actual
recreation can take time to start: GKE recreates it itself, respecting maintenance windows and
exclusions, which can take hours, days or even weeks. A pool can need this while it already runs the
control plane's version. The check reads it from live state: a credential or IP rotation in progress
(the cluster's CA bundle, `masterAuth.clusterCaCertificate`, holds the old and the new CA) whose pools
have not been recreated since it started (no successful node-pool upgrade since, in the cluster's
operations), and recent failed operations whose error names the pool. Either wait for the recreation,
or start it by hand with an upgrade to the version the control plane runs:
`gcloud container clusters upgrade CLUSTER --node-pool=POOL`, then retry the operation.
"""
from __future__ import annotations

from datetime import datetime, timezone

from checks import operations as opsmod
from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.model import Remediation

ID = "gke/node-pool-recreation"
TITLE = N_("No node pool waits for recreation")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors"
COMMANDS = ("why-400",)
ORDER = 28
SEED = "001 エラー 400: ノードプールの再作成が必要"
GCPDIAG = "gke/ERR/2026_002"  # credential rotation initiated but not completed


def run(ctx):
    ref = ctx.ref
    gw = ctx.gw
    cluster, ops = gw.parallel(lambda: gw.cluster(ref), lambda: _ops(gw, ref))
    out = []
    if isinstance(ops, ApiError):
        out.append(ctx.error(ops, gcpdiag=""))
        ops = []
    now = datetime.now(timezone.utc)
    mine = [o for o in ops if opsmod.targets(o, ref)]
    recent = opsmod.recent(mine, ref, now)
    bundle = opsmod.ca_bundle(cluster)
    master = cluster.current_master_version
    pools = {p.name: p for p in cluster.node_pools}
    waiting: dict[str, dict] = {}  # pool -> {"since": datetime, "why": [...], "gcpdiag": str}

    if bundle.rotating and bundle.newest:
        started = bundle.newest
        for name in pools:
            if not opsmod.recreated_since(mine, name, started):
                entry = waiting.setdefault(name, {"since": started, "why": [], "evidence": [], "gcpdiag": GCPDIAG})
                entry["why"].append(_("a credential or IP rotation started {when} and the pool has not been "
                                      "recreated since").format(when=opsmod.when(started)))
                entry["evidence"].append(_(
                    "`masterAuth.clusterCaCertificate` holds {count} CA certificates (a rotation in progress): "
                    "{certificates}. No operation upgraded or recreated `{pool}` since.").format(
                        count=len(bundle.certificates), certificates=bundle.evidence(), pool=name))
    for op in recent:
        if not opsmod.failed(op):
            continue
        error = opsmod.error_text(op)
        m = opsmod.RECREATION_RE.search(error)
        if not m or m.group(1) not in pools:
            continue
        at = opsmod.parse_time(op.end_time) or opsmod.parse_time(op.start_time) or now
        if opsmod.recreated_since(mine, m.group(1), at):
            continue
        entry = waiting.setdefault(m.group(1), {"since": at, "why": [], "evidence": [], "gcpdiag": ""})
        entry["since"] = min(entry["since"], at)
        entry["why"].append(_("operation `{operation}` failed with `{error}`").format(operation=op.name,
                                                                                       error=opsmod.quoted(error)))
        entry["evidence"].append(f"{opsmod.describe_op(op)}: `{opsmod.quoted(error)}`")

    where = f"--location={ref.location} --project={ref.project}"
    window = opsmod.maintenance_note(cluster, now)
    for name, entry in waiting.items():
        pool = pools[name]
        flat = f"gcloud container clusters upgrade {ref.name} --node-pool={name} {where}"
        command = f"gcloud container clusters upgrade {ref.name} \\\n    --node-pool={name} {where}"
        same = pool.version == master
        if same:
            version_note = _("It already runs the control plane's version `{version}`: the upgrade to that same "
                             "version only recreates its nodes.").format(version=master)
        else:
            version_note = _("It runs `{pool_version}`; the upgrade to the control plane's `{version}` recreates its "
                             "nodes as well.").format(pool_version=pool.version, version=master)
        if bundle.rotating:
            retry = "\n" + _("When the upgrade is done, retry the operation, e.g. complete the rotation:\n```\n"
                             "{command}\n```").format(
                command=f"gcloud container clusters update {ref.name} {where} --complete-credential-rotation")
        else:
            retry = "\n" + _("When the upgrade is done, retry the operation.")
        out.append(ctx.fail(
            _("Node pool `{pool}` requires recreation: {reasons}. Until GKE recreates it, operations that recreate "
              "the control plane and the nodes, such as completing the credential rotation, fail with `{error}` "
              "{version_note}").format(
                pool=name, reasons=_("; and ").join(entry["why"]), version_note=version_note,
                error=f"ERROR: (gcloud.container.clusters.update) ResponseError: code=400, message=Node pool "
                      f"\"{name}\" requires recreation."),
            _("Either wait: GKE recreates the pool itself, which can take hours, days or even weeks depending on "
              "maintenance windows and exclusions. {window}\nOr start the recreation now with an upgrade to the "
              "control plane's version:\n```\n{command}\n```").format(window=window, command=command) + retry,
            evidence="\n".join(entry["evidence"]),
            resource=f"{ref.path}/nodePools/{name}", gcpdiag=entry["gcpdiag"],
            remediation=Remediation(
                kind="upgrade_node_pool",
                label=(_("Recreate {pool} at {version}") if same else _("Upgrade {pool} to {version}")).format(
                    pool=name, version=master)[:75],
                summary=(_("Recreate node pool {pool} of {cluster} with an upgrade to the version it already runs "
                           "({version}): {command}") if same else
                         _("Upgrade node pool {pool} of {cluster} from {pool_version} to {version}, which recreates "
                           "it: {command}")).format(pool=name, cluster=ref.name, version=master,
                                                    pool_version=pool.version, command=flat),
                params={"project": ref.project, "location": ref.location, "cluster": ref.name, "pool": name,
                        "from_version": pool.version, "to_version": master, "mode": "recreate",
                        "since": entry["since"].isoformat()})))
    if waiting:
        return out
    if bundle.rotating:
        return out + [ctx.warn(
            _("A credential or IP rotation of `{cluster}` is in progress (its CA bundle holds {count} CA "
              "certificates) and every node pool has been recreated since it started: it only waits to be "
              "completed.").format(cluster=ref.name, count=len(bundle.certificates)),
            _("Complete it (clients must use the new credentials first):\n```\n{command}\n```").format(
                command=f"gcloud container clusters update {ref.name} {where} --complete-credential-rotation"),
            evidence=bundle.evidence())]
    return out + [ctx.ok(
        _("No node pool of `{cluster}` waits for recreation: no rotation is in progress and no recent operation "
          "failed with \"requires recreation\" ({count} operation(s) of the last {days} days read).").format(
            cluster=ref.name, count=len(recent), days=opsmod.RECENT_DAYS),
        gcpdiag=GCPDIAG if bundle.readable else "")]


def _ops(gw, ref):
    try:
        return gw.operations(ref.project, ref.location)
    except ApiError as err:
        return err
