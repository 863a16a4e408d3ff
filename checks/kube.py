"""Kubernetes reads as the API server's JSON, through the gateway (memoised per job by `call`)."""
from __future__ import annotations

import json
from typing import Any, Callable

from kubernetes.client.exceptions import ApiException


def k8s_json(ctx, call: str, permission: str, fn: Callable[[Any], Any], missing_ok: bool = False) -> Any:
    """fn(api_client), which calls the client with `_preload_content=False`, as parsed JSON (camelCase,
    verbatim); None for a 404 when missing_ok. `call` names the fact: every check asking for it shares one request."""
    def go(api):
        try:
            return json.loads(fn(api).data)
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            raise
    return ctx.gw.k8s(ctx.ref, call, go, permission)
