"""Kubernetes Engine (container v1, REST transport): clusters, operations; the fix buttons' writes."""
from __future__ import annotations

from google.cloud import container_v1

from checks.gateway.core import GatewayCore
from checks.gateway.permissions import google
from checks.model import ClusterRef

CONTAINER = "container.googleapis.com"
CLUSTERS_GET = google("clusters.get", CONTAINER, "container.clusters.get", purpose="the cluster's configuration")
CLUSTERS_LIST = google("clusters.list", CONTAINER, "container.clusters.list",
                       purpose="find a cluster named without its location; suggestions")
OPERATIONS_LIST = google("operations.list", CONTAINER, "container.operations.list",
                         purpose="operations in flight and recent failures")
OPERATIONS_GET = google("operations.get", CONTAINER, "container.operations.get", purpose="follow a fix's operation")
# the fix buttons' writes
NODEPOOLS_UPDATE = google("nodePools.update", CONTAINER, "container.clusters.update", write=True,
                          fix="upgrade_node_pool", purpose="upgrade a node pool to the control-plane version")
CLUSTERS_UPDATE = google("clusters.update", CONTAINER, "container.clusters.update", write=True,
                         fix="enable_http_load_balancing", purpose="enable the HTTP load balancing add-on")


class ContainerMixin(GatewayCore):
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
