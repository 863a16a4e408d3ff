"""The one gateway through which checks read facts from Google Cloud and Kubernetes.

One `Gateway` serves one job. Every fact is fetched at most once per job (a per-job memo of
futures, so concurrent checks asking for the same fact share one request), errors are memoised
too, and every failed call becomes an `ApiError` that names the API call and the permission the
bot needed, so a check can report it instead of crashing or claiming "OK".

Every call out is declared in `checks.gateway.permissions` (through the constants at the
top of each module below): the bot's IAM role and Kubernetes ClusterRole
under `deploy/` are derived from those declarations and tested against them.

- `core`: memo, retries with backoff, REST sessions, the bot's own token;
- `container`: Kubernetes Engine; `projects`: Resource Manager and Service Usage; `iam`: IAM and Policy
  Troubleshooter; `compute`: Compute Engine; `logging`: Cloud Logging (entries.list, optional);
- `kube`: the cluster's Kubernetes API (reads as JSON, paginated and capped; the pod proxy; SARs).
"""
from __future__ import annotations

from checks.gateway.core import SCOPES, keep_auth_on_endpoint
from checks.gateway.errors import ApiError, auth_error, from_google
from checks.gateway.compute import ComputeMixin
from checks.gateway.container import ContainerMixin
from checks.gateway.iam import IamMixin, _role_cache
from checks.gateway.kube import Items, KubeMixin, ProxyAnswer
from checks.gateway.logging import LoggingMixin
from checks.gateway.projects import ProjectsMixin

__all__ = ["ApiError", "Gateway", "Items", "ProxyAnswer", "SCOPES", "auth_error", "from_google",
           "keep_auth_on_endpoint", "_role_cache"]


class Gateway(KubeMixin, ContainerMixin, ProjectsMixin, IamMixin, ComputeMixin, LoggingMixin):
    """Facts about one job's world (Google Cloud and the cluster). Construct one per job; thread-safe."""
