"""The clusters of a binding's projects, for the diagnosis modal's cluster select (bot.listeners.views).

Listed through the gateway (container.clusters.list, all locations) and cached in Redis for a few minutes,
signed (Redis is untrusted; a tampered entry is listed again). Slack wants an options answer within 3 s: each
listing has a short deadline, and a project that cannot be listed offers nothing (the grammar and the access
policy check whatever is submitted anyway).
"""
from __future__ import annotations

import logging
import threading
import time

from bot.signing import Signer

log = logging.getLogger(__name__)

TTL = 300  # seconds a project's cluster list is reused
BUDGET = 2.0  # seconds an options request may spend listing
MAX_OPTIONS = 100  # Slack shows at most 100 options

_local: dict[str, tuple[float, list[str]]] = {}  # without Redis: project → (expires, clusters)
_local_lock = threading.Lock()


def _list(settings, project: str, deadline: float) -> list[str]:
    from checks.gateway import Gateway
    gw = Gateway(settings.google_api_url, deadline=deadline, projects=(project,), endpoint=settings.endpoint)
    return sorted(f"{project}/{c.location}/{c.name}" for c in gw.clusters(project))


def clusters(settings, redis, project: str, deadline: float) -> list[str]:
    """`PROJECT/LOCATION/NAME` of every cluster in `project` (cached); [] when it cannot be listed in time."""
    signer = Signer(settings.plan_keys, "clusters")
    key = f"gke-bot:clusters:{project}"
    if redis is not None and signer.enabled:
        try:
            cached = signer.loads(redis.get(key))
        except Exception:  # noqa: BLE001 - Redis down: list directly
            cached = None
        if isinstance(cached, list):
            return [str(c) for c in cached]
    elif redis is None:
        with _local_lock:
            hit = _local.get(project)
        if hit and hit[0] > time.monotonic():
            return hit[1]
    try:
        found = _list(settings, project, deadline)
    except Exception as exc:  # noqa: BLE001 - offer nothing from this project; say why in the log
        log.warning("could not list the clusters of %s: %s", project, type(exc).__name__)
        return []
    if redis is not None and signer.enabled:
        try:
            redis.set(key, signer.dumps(found), ex=TTL)
        except Exception:  # noqa: BLE001 - uncached: listed again next time
            log.warning("could not cache the cluster list")
    elif redis is None:
        with _local_lock:
            _local[project] = (time.monotonic() + TTL, found)
    return found


def matching(settings, redis, projects, query: str) -> list[str]:
    """The clusters of `projects` whose name contains the query (case-insensitive; a query with a `/` is looked
    for in `PROJECT/LOCATION/NAME`)."""
    deadline = time.monotonic() + BUDGET
    query = (query or "").strip().lower()
    out = []
    for project in projects:
        if time.monotonic() >= deadline:
            break
        out += [c for c in clusters(settings, redis, project, deadline)
                if query in (c.lower() if "/" in query else c.rpartition("/")[2].lower())]
    return out[:MAX_OPTIONS]
