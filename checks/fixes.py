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
    return ", ".join(f"`{op.name}` ({op.operation_type.name}, started {op.start_time or '?'})" for op in ops)


def grant_service_agent(gw: Gateway, params: dict, progress: Progress, poll: float) -> Outcome:
    project, member, role = params["project"], params["member"], params["role"]
    resource = f"projects/{project}"
    for attempt in range(IAM_RETRIES):
        policy = gw.live_project_iam_policy(project)
        found = has_role(policy, member, role)
        if found and not found.condition:
            if attempt == 0:
                return Outcome(ALREADY, f"`{member}` already has `{role}` on `{resource}`: nothing done.")
            return Outcome(DONE, f"`{member}` has `{role}` on `{resource}` (a concurrent change added it).")
        binding = next((b for b in policy.bindings if b.role == role and not b.HasField("condition")), None)
        if binding is None:
            binding = policy.bindings.add(role=role)
        binding.members.append(member)
        try:
            gw.set_project_iam_policy(project, policy)
            return Outcome(DONE, f"Added one binding to `{resource}`: `{role}` → `{member}`.")
        except ApiError as err:
            if err.code != 409 and err.status != "ABORTED":
                raise
            progress(f"The IAM policy of `{resource}` changed while I was editing it; reading it again "
                     f"(attempt {attempt + 2} of {IAM_RETRIES}).")
            time.sleep(min(8.0, 0.2 * 2 ** attempt) * (0.5 + random.random() / 2))
    return Outcome(FAILED, f"The IAM policy of `{resource}` kept changing ({IAM_RETRIES} conflicts): nothing changed.")


def _poll(gw: Gateway, ref: ClusterRef, op, progress: Progress, poll: float, what: str) -> Outcome:
    name = f"projects/{ref.project}/locations/{ref.location}/operations/{op.name}"
    progress(f"{what}: operation `{op.name}` is running…")
    transient = 0
    while op.status != container_v1.Operation.Status.DONE:
        if gw.deadline is not None and time.monotonic() + poll > gw.deadline:
            return Outcome(RUNNING, f"{what}: operation `{op.name}` is still running; follow it with "
                                    f"`gcloud container operations describe {op.name} --location={ref.location} "
                                    f"--project={ref.project}`.")
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
        return Outcome(FAILED, f"{what}: operation `{op.name}` failed: {error}")
    return Outcome(DONE, f"{what}: operation `{op.name}` finished.")


def _busy(gw: Gateway, ref: ClusterRef) -> Outcome | None:
    ops = in_flight(gw.live_operations(ref.project, ref.location), ref.name)
    if ops:
        return Outcome(REFUSED, f"Another operation is running on `{ref.name}`: {_describe(ops)}. Nothing done; "
                                "try again when it has finished.")
    return None


def upgrade_node_pool(gw: Gateway, params: dict, progress: Progress, poll: float) -> Outcome:
    ref = ClusterRef(params["project"], params["location"], params["cluster"])
    pool_name, target, before = params["pool"], params["to_version"], params["from_version"]
    mode = params.get("mode", "upgrade")
    if mode not in ("upgrade", "recreate"):
        return Outcome(REFUSED, f"Unknown node-pool fix mode `{mode}`: nothing done.")
    cluster = gw.live_cluster(ref)
    if cluster.current_master_version != target:
        return Outcome(DRIFTED, f"The control plane of `{ref.name}` is now `{cluster.current_master_version}`, "
                                f"not `{target}` as planned: nothing done. Run `why-400` again.")
    pool = next((p for p in cluster.node_pools if p.name == pool_name), None)
    if pool is None:
        return Outcome(DRIFTED, f"Node pool `{pool_name}` no longer exists in `{ref.name}`: nothing done.")
    if mode == "recreate":
        since = parse_time(params.get("since", ""))
        if since is None:
            return Outcome(REFUSED, "The plan does not say since when the pool waits for recreation: nothing done.")
        ops = [o for o in gw.live_operations(ref.project, ref.location) if targets(o, ref)]
        done = recreated_since(ops, pool_name, since)
        if done is not None:
            return Outcome(ALREADY, f"Node pool `{pool_name}` was recreated since {when(since)} (operation "
                                    f"`{done.name}`, {done.operation_type.name}): nothing done.")
        if pool.version != before and pool.version == target:
            return Outcome(ALREADY, f"Node pool `{pool_name}` now runs `{target}`: it was upgraded (so recreated) "
                                    "meanwhile; nothing done.")
    elif pool.version == target:
        return Outcome(ALREADY, f"Node pool `{pool_name}` already runs `{target}`: nothing done.")
    if pool.version != before:
        return Outcome(DRIFTED, f"Node pool `{pool_name}` now runs `{pool.version}`, not `{before}` as planned: "
                                "nothing done. Run `why-400` again.")
    busy = _busy(gw, ref)
    if busy:
        return busy
    op = gw.update_node_pool(container_v1.UpdateNodePoolRequest(
        name=f"{ref.path}/nodePools/{pool_name}", node_version=target, image_type=pool.config.image_type))
    what = (f"Recreation of `{pool_name}` (upgrade to the version it runs, `{target}`)" if before == target else
            f"Upgrade of `{pool_name}` to `{target}`")
    return _poll(gw, ref, op, progress, poll, what)


def enable_http_load_balancing(gw: Gateway, params: dict, progress: Progress, poll: float) -> Outcome:
    ref = ClusterRef(params["project"], params["location"], params["cluster"])
    cluster = gw.live_cluster(ref)
    if not cluster.addons_config.http_load_balancing.disabled:
        return Outcome(ALREADY, f"HTTP load balancing is already enabled on `{ref.name}`: nothing done.")
    busy = _busy(gw, ref)
    if busy:
        return busy
    update = container_v1.ClusterUpdate(
        desired_addons_config=container_v1.AddonsConfig(
            http_load_balancing=container_v1.HttpLoadBalancing(disabled=False)),
        etag=cluster.etag)
    op = gw.update_cluster(container_v1.UpdateClusterRequest(name=ref.path, update=update))
    return _poll(gw, ref, op, progress, poll, f"Enabling HTTP load balancing on `{ref.name}`")


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
        return f"`{kind}` is not a fix the bot knows"
    required, optional = PARAMS[kind]
    if not isinstance(params, dict) or not required <= set(params) <= required | optional or \
            not all(isinstance(v, str) and v for v in params.values()):
        return f"the plan's parameters are not those of `{kind}`"
    if params.get("mode", "upgrade") not in ("upgrade", "recreate"):
        return f"`{params['mode']}` is not a node-pool fix"
    project, planned = params["project"], _planned_cluster(cluster)
    if project not in projects:
        return f"project `{project}` is not one this conversation may change"
    if planned is None or planned.project != project:
        return f"project `{project}` is not the project of the diagnosed cluster"
    if kind == "grant_service_agent":
        if params["role"] != SERVICE_AGENT_ROLE:
            return f"the re-grant may only add `{SERVICE_AGENT_ROLE}`, not `{params['role']}`"
        number = gw.project_number(project)
        agent = f"serviceAccount:service-{number}@container-engine-robot.iam.gserviceaccount.com"
        if params["member"] != agent:
            return f"the re-grant may only name the GKE service agent of `{project}` (`{agent}`)"
        return ""
    ref = ClusterRef(project, params["location"], params["cluster"])
    if ref != planned:
        return f"cluster `{ref.path}` is not the diagnosed cluster `{cluster}`"
    if kind == "upgrade_node_pool":
        live = gw.live_cluster(ref)
        if not any(p.name == params["pool"] for p in live.node_pools):
            return f"node pool `{params['pool']}` is not a pool of `{ref.name}`"
        if params["to_version"] != live.current_master_version:
            return (f"the upgrade may only move a pool to the control-plane version of `{ref.name}` "
                    f"(now `{live.current_master_version}`), not `{params['to_version']}`; run `why-400` again")
    return ""


def execute(gw: Gateway, kind: str, params: dict, progress: Progress, poll: float = 10.0) -> Outcome:
    """Run one fix. Google API errors become a FAILED outcome quoting the error verbatim."""
    fn = EXECUTORS.get(kind)
    if fn is None:
        return Outcome(FAILED, f"Unknown remediation `{kind}`.")
    try:
        return fn(gw, params, progress, poll)
    except ApiError as err:
        return Outcome(FAILED, f"Google answered {err.code} {err.status}: {err.message}")
