"""The cluster and its node pools are RUNNING, with no operation in flight.

GKE runs one control-plane operation at a time per cluster: while an upgrade, node-pool
recreation or update is RUNNING or PENDING, a new one is refused with 400 ("Cluster is running
incompatible operation …"), and a cluster that is RECONCILING is in the middle of one. A cluster
in ERROR or DEGRADED, or a node pool that is not RUNNING, says why in its `statusMessage` and
`conditions` (for example `[IP_SPACE_EXHAUSTED]`), quoted here verbatim. ERROR is a FAIL; the other
states are warnings: wait for the operations to finish (`gcloud container operations wait`), or fix
the quoted cause, then retry.
"""
from __future__ import annotations

from google.rpc import code_pb2

from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.operations import IN_FLIGHT, targets

ID = "gke/cluster-operations"
TITLE = N_("Cluster and node pools are RUNNING, no operation in flight")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors"
COMMANDS = ("why-400",)
ORDER = 35
SEED = "001 エラー 400: ノードプールの再作成が必要"  # a recreation (or any operation) waits while another runs


def _why(obj) -> str:
    """statusMessage and conditions, verbatim."""
    lines = [f"statusMessage: {obj.status_message}"] if obj.status_message else []
    lines += [f"{code_pb2.Code.Name(c.canonical_code)}: {c.message}" if c.canonical_code else c.message
              for c in obj.conditions]
    return "\n".join(lines)


def _status(ctx, what: str, status: str, obj, resource: str, describe: str):
    """`what` is the translated "Cluster `X`" or "Node pool `X`"."""
    why = _why(obj)
    report = ctx.fail if status == "ERROR" else ctx.warn
    if why:
        return report(
            _("{what} is `{status}`: its status says why (see evidence). Control-plane operations on it fail or wait "
              "until it is RUNNING again.").format(what=what, status=status),
            _("Fix the cause quoted in the evidence, then retry. Current state:\n```\n{command}\n```").format(
                command=describe),
            evidence=f"```\nstatus: {status}\n{why}\n```", resource=resource)
    return report(
        _("{what} is `{status}`. Control-plane operations on it fail or wait until it is RUNNING again.").format(
            what=what, status=status),
        _("Wait for it to become RUNNING, then retry. Current state:\n```\n{command}\n```").format(command=describe),
        evidence=f"`status: {status}`", resource=resource)


def run(ctx):
    ref = ctx.ref
    cluster = ctx.gw.cluster(ref)
    where = f"--location={ref.location} --project={ref.project}"
    out = []
    if cluster.status.name != "RUNNING":
        out.append(_status(ctx, _("Cluster `{cluster}`").format(cluster=ref.name), cluster.status.name, cluster,
                           ref.path, f"gcloud container clusters describe {ref.name} {where} "
                                     "--format='yaml(status,statusMessage,conditions)'"))
    for pool in cluster.node_pools:
        if pool.status.name != "RUNNING":
            out.append(_status(ctx, _("Node pool `{pool}`").format(pool=pool.name), pool.status.name, pool,
                               f"{ref.path}/nodePools/{pool.name}",
                               f"gcloud container node-pools describe {pool.name} --cluster={ref.name} {where} "
                               "--format='yaml(status,statusMessage,conditions)'"))
    try:
        ops = [o for o in ctx.gw.operations(ref.project, ref.location)
               if o.status.name in IN_FLIGHT and targets(o, ref)]
    except ApiError as err:
        out.append(ctx.error(err))
        ops = []
    if ops:
        listed = "\n".join(_("{name}  {type}  {status}  started {start}  {target}").format(
            name=o.name, type=o.operation_type.name, status=o.status.name, start=o.start_time, target=o.target_link)
            for o in ops)
        out.append(ctx.warn(
            _("{count} operation(s) in flight on `{cluster}`: {operations}. New control-plane operations fail "
              "(\"Cluster is running incompatible operation …\") until they finish.").format(
                count=len(ops), cluster=ref.name,
                operations=", ".join(_("`{type}` since {start}").format(type=o.operation_type.name, start=o.start_time)
                                     for o in ops)),
            _("Wait for them, then retry:\n```\n{commands}\n```").format(
                commands="\n".join(f"gcloud container operations wait {o.name} {where}" for o in ops)),
            evidence=f"```\n{listed}\n```"))
    return out or ctx.ok(_("`{cluster}` and its node pools are RUNNING; no operation in flight.").format(
        cluster=ref.name))
