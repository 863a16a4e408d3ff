"""Safe fixes that approvers may run: Slack-neutral executors that write to Google Cloud.

Each executor re-checks live state first (already fixed → nothing done; drifted from the plan →
nothing done) and changes exactly one thing:
- grant_service_agent: one IAM binding, read-modify-write with the policy etag and
  requestedPolicyVersion 3, retried on 409 concurrent-change conflicts, every other binding,
  condition, auditConfig and the policy version kept exactly as read;
- upgrade_node_pool: one node pool to the control-plane version (recreates it), refused while
  another operation runs on the cluster, the operation polled and its error reported verbatim. Its
  params say which case it is: mode "upgrade" (the pool lags: nothing to do once it runs the target
  version) or mode "recreate" (the pool waits for recreation, e.g. after a credential rotation, and may
  already run the target version: an upgrade to that same version, as the seed's
  `gcloud container clusters upgrade CLUSTER --node-pool=POOL`; nothing to do once the pool has been
  recreated after `since`);
- enable_http_load_balancing: the HTTP load balancing addon, with the cluster etag.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable

from google.cloud import container_v1

from checks.gateway import ApiError, Gateway
from checks.i18n import _
from checks.iam import has_role
from checks.model import ClusterRef
from checks.operations import parse_time, recreated_since, targets, when

DONE, ALREADY, DRIFTED, REFUSED, FAILED = "done", "already_fixed", "drifted", "refused", "failed"
RUNNING = "still_running"
IAM_RETRIES = 6


@dataclass
class Outcome:
    status: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status in (DONE, ALREADY)


Progress = Callable[[str], None]


def in_flight(ops, cluster: str) -> list:
    """Operations PENDING or RUNNING on the named cluster (or its node pools)."""
    live = (container_v1.Operation.Status.PENDING, container_v1.Operation.Status.RUNNING)
    return [op for op in ops if op.status in live and
            (f"/clusters/{cluster}/" in op.target_link + "/" or op.target_link.endswith(f"/clusters/{cluster}"))]


def _describe(ops) -> str:
    return ", ".join(_("`{operation}` ({type}, started {start})").format(
        operation=op.name, type=op.operation_type.name, start=op.start_time or "?") for op in ops)


def grant_service_agent(gw: Gateway, params: dict, progress: Progress, poll: float) -> Outcome:
    project, member, role = params["project"], params["member"], params["role"]
    resource = f"projects/{project}"
    for attempt in range(IAM_RETRIES):
        policy = gw.live_project_iam_policy(project)
        found = has_role(policy, member, role)
        if found and not found.condition:
            names = dict(member=member, role=role, resource=resource)
            if attempt == 0:
                return Outcome(ALREADY, _("`{member}` already has `{role}` on `{resource}`: nothing done.").format(**names))
            return Outcome(DONE, _("`{member}` has `{role}` on `{resource}` (a concurrent change added it).").format(
                **names))
        binding = next((b for b in policy.bindings if b.role == role and not b.HasField("condition")), None)
        if binding is None:
            binding = policy.bindings.add(role=role)
        binding.members.append(member)
        try:
            gw.set_project_iam_policy(project, policy)
            return Outcome(DONE, _("Added one binding to `{resource}`: `{role}` → `{member}`.").format(
                resource=resource, role=role, member=member))
        except ApiError as err:
            if err.code != 409 and err.status != "ABORTED":
                raise
            progress(_("The IAM policy of `{resource}` changed while I was editing it; reading it again (attempt "
                       "{attempt} of {attempts}).").format(resource=resource, attempt=attempt + 2, attempts=IAM_RETRIES))
            time.sleep(min(8.0, 0.2 * 2 ** attempt) * (0.5 + random.random() / 2))
    return Outcome(FAILED, _("The IAM policy of `{resource}` kept changing ({count} conflicts): nothing changed.").format(
        resource=resource, count=IAM_RETRIES))


def _poll(gw: Gateway, ref: ClusterRef, op, progress: Progress, poll: float, what: str) -> Outcome:
    name = f"projects/{ref.project}/locations/{ref.location}/operations/{op.name}"
    progress(_("{what}: operation `{operation}` is running…").format(what=what, operation=op.name))
    transient = 0
    while op.status != container_v1.Operation.Status.DONE:
        if gw.deadline is not None and time.monotonic() + poll > gw.deadline:
            return Outcome(RUNNING, _("{what}: operation `{operation}` is still running; follow it with `{command}`.")
                           .format(what=what, operation=op.name,
                                   command=f"gcloud container operations describe {op.name} --location={ref.location} "
                                           f"--project={ref.project}"))
        time.sleep(poll)
        try:
            op = gw.operation(name)
            transient = 0
        except ApiError as err:
            if err.code not in (429, 500, 502, 503, 504):
                raise
            transient += 1  # the operation goes on: a passing error while watching it is no failure
            if transient > 5:
                raise
    error = op.error.message if op.error and op.error.message else op.status_message
    if error:
        return Outcome(FAILED, _("{what}: operation `{operation}` failed: {error}").format(what=what, operation=op.name,
                                                                                        error=error))
    return Outcome(DONE, _("{what}: operation `{operation}` finished.").format(what=what, operation=op.name))


def _busy(gw: Gateway, ref: ClusterRef) -> Outcome | None:
    ops = in_flight(gw.live_operations(ref.project, ref.location), ref.name)
    if ops:
        return Outcome(REFUSED, _("Another operation is running on `{cluster}`: {operations}. Nothing done; try again "
                                  "when it has finished.").format(cluster=ref.name, operations=_describe(ops)))
    return None


def upgrade_node_pool(gw: Gateway, params: dict, progress: Progress, poll: float) -> Outcome:
    ref = ClusterRef(params["project"], params["location"], params["cluster"])
    pool_name, target, before = params["pool"], params["to_version"], params["from_version"]
    mode = params.get("mode", "upgrade")
    if mode not in ("upgrade", "recreate"):
        return Outcome(REFUSED, _("Unknown node-pool fix mode `{mode}`: nothing done.").format(mode=mode))
    cluster = gw.live_cluster(ref)
    if cluster.current_master_version != target:
        return Outcome(DRIFTED, _("The control plane of `{cluster}` is now `{version}`, not `{planned}` as planned: "
                                  "nothing done. Run `why-400` again.").format(
            cluster=ref.name, version=cluster.current_master_version, planned=target))
    pool = next((p for p in cluster.node_pools if p.name == pool_name), None)
    if pool is None:
        return Outcome(DRIFTED, _("Node pool `{pool}` no longer exists in `{cluster}`: nothing done.").format(
            pool=pool_name, cluster=ref.name))
    if mode == "recreate":
        since = parse_time(params.get("since", ""))
        if since is None:
            return Outcome(REFUSED, _("The plan does not say since when the pool waits for recreation: nothing done."))
        ops = [o for o in gw.live_operations(ref.project, ref.location) if targets(o, ref)]
        done = recreated_since(ops, pool_name, since)
        if done is not None:
            return Outcome(ALREADY, _("Node pool `{pool}` was recreated since {since} (operation `{operation}`, {type}): "
                                      "nothing done.").format(pool=pool_name, since=when(since), operation=done.name,
                                                              type=done.operation_type.name))
        if pool.version != before and pool.version == target:
            return Outcome(ALREADY, _("Node pool `{pool}` now runs `{version}`: it was upgraded (so recreated) meanwhile; "
                                      "nothing done.").format(pool=pool_name, version=target))
    elif pool.version == target:
        return Outcome(ALREADY, _("Node pool `{pool}` already runs `{version}`: nothing done.").format(
            pool=pool_name, version=target))
    if pool.version != before:
        return Outcome(DRIFTED, _("Node pool `{pool}` now runs `{version}`, not `{planned}` as planned: nothing done. "
                                  "Run `why-400` again.").format(pool=pool_name, version=pool.version, planned=before))
    busy = _busy(gw, ref)
    if busy:
        return busy
    op = gw.update_node_pool(container_v1.UpdateNodePoolRequest(
        name=f"{ref.path}/nodePools/{pool_name}", node_version=target, image_type=pool.config.image_type))
    what = (_("Recreation of `{pool}` (upgrade to the version it runs, `{version}`)") if before == target else
            _("Upgrade of `{pool}` to `{version}`")).format(pool=pool_name, version=target)
    return _poll(gw, ref, op, progress, poll, what)


def enable_http_load_balancing(gw: Gateway, params: dict, progress: Progress, poll: float) -> Outcome:
    ref = ClusterRef(params["project"], params["location"], params["cluster"])
    cluster = gw.live_cluster(ref)
    if not cluster.addons_config.http_load_balancing.disabled:
        return Outcome(ALREADY, _("HTTP load balancing is already enabled on `{cluster}`: nothing done.").format(
            cluster=ref.name))
    busy = _busy(gw, ref)
    if busy:
        return busy
    update = container_v1.ClusterUpdate(
        desired_addons_config=container_v1.AddonsConfig(
            http_load_balancing=container_v1.HttpLoadBalancing(disabled=False)),
        etag=cluster.etag)
    op = gw.update_cluster(container_v1.UpdateClusterRequest(name=ref.path, update=update))
    return _poll(gw, ref, op, progress, poll, _("Enabling HTTP load balancing on `{cluster}`").format(cluster=ref.name))


EXECUTORS: dict[str, Callable[[Gateway, dict, Progress, float], Outcome]] = {
    "grant_service_agent": grant_service_agent,
    "upgrade_node_pool": upgrade_node_pool,
    "enable_http_load_balancing": enable_http_load_balancing,
}


# ---- validation: what a stored plan may ask for, re-derived from live state ----------------------------------
SERVICE_AGENT_ROLE = "roles/container.serviceAgent"
PARAMS = {  # kind → (required parameters, optional ones)
    "grant_service_agent": ({"project", "member", "role"}, set()),
    "upgrade_node_pool": ({"project", "location", "cluster", "pool", "from_version", "to_version"}, {"mode", "since"}),
    "enable_http_load_balancing": ({"project", "location", "cluster"}, set()),
}


def _planned_cluster(path: str) -> ClusterRef | None:
    parts = path.split("/")
    if len(parts) == 6 and parts[0] == "projects" and parts[2] == "locations" and parts[4] == "clusters":
        return ClusterRef(parts[1], parts[3], parts[5])
    return None


def validate(gw: Gateway, kind: str, params, cluster: str, projects: tuple[str, ...]) -> str:
    """'' when a plan asks for exactly what the bot may do, else why not (then nothing may be written).

    Stored plans are never trusted: the change is re-derived from the kind and live state. A re-grant is only
    `roles/container.serviceAgent` to `service-NUMBER@container-engine-robot.iam.gserviceaccount.com` of the
    diagnosed cluster's project (its number read live now); an upgrade only moves a node pool of the diagnosed
    cluster (to its control-plane version: upgrade_node_pool checks that live); HTTP load balancing only on the
    diagnosed cluster; and the project must be one of `projects` (the binding's)."""
    if kind not in PARAMS:
        return _("`{kind}` is not a fix the bot knows").format(kind=kind)
    required, optional = PARAMS[kind]
    if not isinstance(params, dict) or not required <= set(params) <= required | optional or \
            not all(isinstance(v, str) and v for v in params.values()):
        return _("the plan's parameters are not those of `{kind}`").format(kind=kind)
    if params.get("mode", "upgrade") not in ("upgrade", "recreate"):
        return _("`{mode}` is not a node-pool fix").format(mode=params["mode"])
    project, planned = params["project"], _planned_cluster(cluster)
    if project not in projects:
        return _("project `{project}` is not one this conversation may change").format(project=project)
    if planned is None or planned.project != project:
        return _("project `{project}` is not the project of the diagnosed cluster").format(project=project)
    if kind == "grant_service_agent":
        if params["role"] != SERVICE_AGENT_ROLE:
            return _("the re-grant may only add `{role}`, not `{asked}`").format(role=SERVICE_AGENT_ROLE,
                                                                               asked=params["role"])
        number = gw.project_number(project)
        agent = f"serviceAccount:service-{number}@container-engine-robot.iam.gserviceaccount.com"
        if params["member"] != agent:
            return _("the re-grant may only name the GKE service agent of `{project}` (`{agent}`)").format(
                project=project, agent=agent)
        return ""
    ref = ClusterRef(project, params["location"], params["cluster"])
    if ref != planned:
        return _("cluster `{cluster}` is not the diagnosed cluster `{diagnosed}`").format(cluster=ref.path,
                                                                                       diagnosed=cluster)
    if kind == "upgrade_node_pool":
        live = gw.live_cluster(ref)
        if not any(p.name == params["pool"] for p in live.node_pools):
            return _("node pool `{pool}` is not a pool of `{cluster}`").format(pool=params["pool"], cluster=ref.name)
        if params["to_version"] != live.current_master_version:
            return _("the upgrade may only move a pool to the control-plane version of `{cluster}` (now `{version}`), "
                     "not `{asked}`; run `why-400` again").format(cluster=ref.name, version=live.current_master_version,
                                                                  asked=params["to_version"])
    return ""


def execute(gw: Gateway, kind: str, params: dict, progress: Progress, poll: float = 10.0) -> Outcome:
    """Run one fix. Google API errors become a FAILED outcome quoting the error verbatim."""
    fn = EXECUTORS.get(kind)
    if fn is None:
        return Outcome(FAILED, _("Unknown remediation `{kind}`.").format(kind=kind))
    try:
        return fn(gw, params, progress, poll)
    except ApiError as err:
        return Outcome(FAILED, _("Google answered {code} {status}: {message}").format(
            code=err.code, status=err.status, message=err.message))
