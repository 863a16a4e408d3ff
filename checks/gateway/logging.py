"""Cloud Logging v2 `entries.list` over REST (google-auth's AuthorizedSession): recent log entries as evidence.

Optional: without `logging.logEntries.list` (roles/logging.viewer) the bot says once that it could not
search the logs, and every check still stands on the live state it read.
"""
from __future__ import annotations

from checks.gateway.core import GatewayCore
from checks.gateway.permissions import google

LOGGING = "logging.googleapis.com"
LOG_ENTRIES_LIST = google("entries.list", LOGGING, "logging.logEntries.list", optional=True,
                          purpose="quote recent gke-metadata-server errors (Workload Identity)")


class LoggingMixin(GatewayCore):
    def log_entries(self, project: str, filter_: str, page_size: int = 20) -> list[dict]:
        """The newest entries (at most `page_size`, one page) of project `project` matching `filter_`, newest
        first, as LogEntry JSON. Memoised per job by (project, filter)."""
        url = f"{self._base(LOGGING)}/v2/entries:list"
        body = {"resourceNames": [f"projects/{project}"], "filter": filter_, "orderBy": "timestamp desc",
                "pageSize": page_size}
        return self.memo(("log_entries", project, filter_, page_size), lambda: (self._rest(
            LOG_ENTRIES_LIST, f"projects/{project}", "POST", url, body) or {}).get("entries") or [])
