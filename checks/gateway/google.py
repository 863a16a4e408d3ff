"""Google Cloud reads (and the fix buttons' few writes), each through its declaration.

Client libraries use the REST transport (RQ forks per job; gRPC is not fork-safe) and honour
GKE_BOT_GOOGLE_API_URL. google-cloud-iam has no REST transport, so IAM v1 is called through
google-auth's AuthorizedSession.
"""
from __future__ import annotations

import json
import logging
import threading
import time

from google.cloud import container_v1, resourcemanager_v3, service_usage_v1
from google.iam.v1 import iam_policy_pb2, options_pb2, policy_pb2

from checks.gateway.core import GatewayCore
from checks.gateway.permissions import google
from checks.iam import sa_project
from checks.model import ClusterRef

log = logging.getLogger(__name__)

CONTAINER = "container.googleapis.com"
CRM = "cloudresourcemanager.googleapis.com"
IAM = "iam.googleapis.com"

# ---- declarations -----------------------------------------------------------------------------
CLUSTERS_GET = google("clusters.get", CONTAINER, "container.clusters.get", purpose="the cluster's configuration")
CLUSTERS_LIST = google("clusters.list", CONTAINER, "container.clusters.list",
                       purpose="find a cluster named without its location; suggestions")
OPERATIONS_LIST = google("operations.list", CONTAINER, "container.operations.list",
                         purpose="operations in flight and recent failures")
OPERATIONS_GET = google("operations.get", CONTAINER, "container.operations.get", purpose="follow a fix's operation")
PROJECTS_GET = google("projects.get", CRM, "resourcemanager.projects.get", purpose="the project's number and state")
PROJECTS_GET_IAM = google("projects.getIamPolicy", CRM, "resourcemanager.projects.getIamPolicy",
                          purpose="who holds which role on the project")
SERVICES_GET = google("services.get", "serviceusage.googleapis.com", "serviceusage.services.get",
                      purpose="whether an API is enabled")
SA_GET = google("serviceAccounts.get", IAM, "iam.serviceAccounts.get",
                purpose="whether a service account exists and is enabled")
SA_GET_IAM = google("serviceAccounts.getIamPolicy", IAM, "iam.serviceAccounts.getIamPolicy",
                    purpose="Workload Identity bindings on a Google service account")
ROLES_GET = google("roles.get", IAM, "iam.roles.get", purpose="the permissions of a role")
TROUBLESHOOT = google("iam.troubleshoot", "policytroubleshooter.googleapis.com", "resourcemanager.projects.getIamPolicy",
                      purpose="explain a principal's access, groups and inherited policies included")
EFFECTIVE_FIREWALLS = google("networks.getEffectiveFirewalls", "compute.googleapis.com",
                             "compute.networks.getEffectiveFirewalls",
                             purpose="firewall rules that let Google's health checkers reach the nodes")
# the fix buttons' writes
PROJECTS_SET_IAM = google("projects.setIamPolicy", CRM, "resourcemanager.projects.setIamPolicy", write=True,
                          fix="grant_service_agent", purpose="re-grant roles/container.serviceAgent")
NODEPOOLS_UPDATE = google("nodePools.update", CONTAINER, "container.clusters.update", write=True,
                          fix="upgrade_node_pool", purpose="upgrade a node pool to the control-plane version")
CLUSTERS_UPDATE = google("clusters.update", CONTAINER, "container.clusters.update", write=True,
                         fix="enable_http_load_balancing", purpose="enable the HTTP load balancing add-on")

_ROLE_TTL = 3600.0
_role_cache: dict[str, tuple[float, dict]] = {}  # across jobs in one process
_role_lock = threading.Lock()


class GoogleMixin(GatewayCore):
    # ---- Kubernetes Engine ----------------------------------------------------------------
    @property
    def container(self) -> container_v1.ClusterManagerClient:
        return self._client("container", container_v1.ClusterManagerClient)

    def cluster(self, ref: ClusterRef) -> container_v1.Cluster:
        return self._fact(("cluster", ref.path), CLUSTERS_GET, ref.path,
                          lambda: self.container.get_cluster(name=ref.path))

    def clusters(self, project: str, location: str = "-") -> list[container_v1.Cluster]:
        parent = f"projects/{project}/locations/{location}"
        return self._fact(("clusters", parent), CLUSTERS_LIST, parent,
                          lambda: list(self.container.list_clusters(parent=parent).clusters))

    def operations(self, project: str, location: str) -> list[container_v1.Operation]:
        parent = f"projects/{project}/locations/{location}"
        return self._fact(("operations", parent), OPERATIONS_LIST, parent,
                          lambda: list(self.container.list_operations(parent=parent).operations))

    # fresh reads and writes for the fix buttons: never memoised, writes never retried
    def live_cluster(self, ref: ClusterRef) -> container_v1.Cluster:
        return self._retrying(CLUSTERS_GET, ref.path, lambda: self.container.get_cluster(name=ref.path))

    def live_operations(self, project: str, location: str) -> list[container_v1.Operation]:
        parent = f"projects/{project}/locations/{location}"
        return self._retrying(OPERATIONS_LIST, parent,
                              lambda: list(self.container.list_operations(parent=parent).operations))

    def operation(self, name: str) -> container_v1.Operation:
        return self._retrying(OPERATIONS_GET, name, lambda: self.container.get_operation(name=name))

    def update_node_pool(self, request: container_v1.UpdateNodePoolRequest) -> container_v1.Operation:
        return self._retrying(NODEPOOLS_UPDATE, request.name,
                              lambda: self.container.update_node_pool(request=request), attempts=1)

    def update_cluster(self, request: container_v1.UpdateClusterRequest) -> container_v1.Operation:
        return self._retrying(CLUSTERS_UPDATE, request.name,
                              lambda: self.container.update_cluster(request=request), attempts=1)

    # ---- Resource Manager -----------------------------------------------------------------
    @property
    def projects(self) -> resourcemanager_v3.ProjectsClient:
        return self._client("projects", resourcemanager_v3.ProjectsClient)

    def project(self, project: str) -> resourcemanager_v3.Project:
        return self._fact(("project", project), PROJECTS_GET, f"projects/{project}",
                          lambda: self.projects.get_project(name=f"projects/{project}"))

    def project_number(self, project: str) -> str:
        return self.project(project).name.split("/", 1)[1]

    def _get_project_policy(self, project: str) -> policy_pb2.Policy:
        req = iam_policy_pb2.GetIamPolicyRequest(
            resource=f"projects/{project}", options=options_pb2.GetPolicyOptions(requested_policy_version=3))
        return self.projects.get_iam_policy(request=req)

    def project_iam_policy(self, project: str) -> policy_pb2.Policy:
        return self._fact(("project_policy", project), PROJECTS_GET_IAM, f"projects/{project}",
                          lambda: self._get_project_policy(project))

    def live_project_iam_policy(self, project: str) -> policy_pb2.Policy:
        return self._retrying(PROJECTS_GET_IAM, f"projects/{project}", lambda: self._get_project_policy(project))

    def set_project_iam_policy(self, project: str, policy: policy_pb2.Policy) -> policy_pb2.Policy:
        req = iam_policy_pb2.SetIamPolicyRequest(resource=f"projects/{project}", policy=policy)
        return self._retrying(PROJECTS_SET_IAM, f"projects/{project}",
                              lambda: self.projects.set_iam_policy(request=req), attempts=1)

    # ---- Service Usage --------------------------------------------------------------------
    def service_enabled(self, project: str, service: str) -> bool:
        client = self._client("serviceusage", service_usage_v1.ServiceUsageClient)
        name = f"projects/{project}/services/{service}"
        svc = self._fact(("service", name), SERVICES_GET, name, lambda: client.get_service(request={"name": name}))
        return svc.state == service_usage_v1.State.ENABLED

    # ---- IAM (REST through AuthorizedSession) -------------------------------------------
    def service_account(self, email: str, project: str = "") -> dict | None:
        """The service account resource, or None when it does not exist (deleted).

        The path names the owning project when known (from `project`, or the email's
        `@PROJECT.iam.gserviceaccount.com` domain): under `projects/-` IAM answers 403, not 404,
        for an account that does not exist, which would read as the bot lacking permission.
        """
        owner = project or sa_project(email)
        url = f"{self._base('iam.googleapis.com')}/v1/projects/{owner}/serviceAccounts/{email}"
        return self.memo(("sa", email), lambda: self._rest(SA_GET, email, "GET", url, missing_ok=True))

    def service_account_policy(self, email: str) -> dict:
        url = f"{self._base('iam.googleapis.com')}/v1/projects/-/serviceAccounts/{email}:getIamPolicy"
        return self.memo(("sa_policy", email), lambda: self._rest(
            SA_GET_IAM, email, "POST", url, {"options": {"requestedPolicyVersion": 3}}))

    def role(self, name: str) -> dict | None:
        """A role definition (predefined `roles/X` or custom `projects/P/roles/X`), or None if absent.

        Definitions are cached across jobs for an hour: in this process, and in Redis when the
        gateway has a shared cache (RQ forks a fresh process per job, so only Redis outlives one).
        """
        now = time.monotonic()
        with _role_lock:
            hit = _role_cache.get(name)
        if hit and hit[0] > now:
            return hit[1]
        rkey = f"gke-bot:role:{name}"
        if self.shared_cache is not None:
            try:
                raw = self.shared_cache.get(rkey)
            except Exception:  # noqa: BLE001 - a cache miss, not an error
                raw = None
            if raw:
                role = json.loads(raw)
                with _role_lock:
                    _role_cache[name] = (now + _ROLE_TTL, role)
                return role
        url = f"{self._base('iam.googleapis.com')}/v1/{name}"
        role = self.memo(("role", name), lambda: self._rest(ROLES_GET, name, "GET", url, missing_ok=True))
        if role is not None:
            with _role_lock:
                _role_cache[name] = (now + _ROLE_TTL, role)
            if self.shared_cache is not None:
                try:
                    self.shared_cache.set(rkey, json.dumps(role), ex=int(_ROLE_TTL))
                except Exception:  # noqa: BLE001
                    log.info("role cache write failed for %s", name)
        return role

    # ---- Policy Troubleshooter ----------------------------------------------------------
    def troubleshoot(self, principal: str, full_resource_name: str, permission: str) -> dict:
        """Policy Troubleshooter's answer as JSON (camelCase), e.g. {"access": "GRANTED", ...}."""
        from google.cloud import policytroubleshooter_v1 as pt

        client = self._client("troubleshooter", pt.IamCheckerClient)
        req = pt.TroubleshootIamPolicyRequest(access_tuple=pt.AccessTuple(
            principal=principal.partition(":")[2] or principal, full_resource_name=full_resource_name,
            permission=permission))
        resp = self._fact(("troubleshoot", principal, full_resource_name, permission), TROUBLESHOOT,
                          f"{principal} {permission}", lambda: client.troubleshoot_iam_policy(request=req))
        return type(resp).to_dict(resp, use_integers_for_enums=False, preserving_proto_field_name=False)

    # ---- Compute ------------------------------------------------------------------------------
    def effective_firewalls(self, project: str, network: str) -> dict:
        """compute v1 networks.getEffectiveFirewalls as JSON (camelCase)."""
        from google.cloud import compute_v1

        client = self._client("networks", compute_v1.NetworksClient)
        resp = self._fact(("firewalls", project, network), EFFECTIVE_FIREWALLS,
                          f"projects/{project}/global/networks/{network}",
                          lambda: client.get_effective_firewalls(project=project, network=network))
        return json.loads(type(resp).to_json(resp))
