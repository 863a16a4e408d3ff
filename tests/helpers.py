"""Small helpers shared by tests (no fakes here; see tests/fakes)."""
from __future__ import annotations

from checks.engine import Context, diagnose
from checks.gateway import Gateway
from checks.model import ClusterRef, Finding, Status
from checks.registry import CHECKS

GKE1 = "gcpdiag-gke1-aaaa"
AGENT = "serviceAccount:service-12340002@container-engine-robot.iam.gserviceaccount.com"


def gateway(settings) -> Gateway:
    return Gateway(settings.google_api_url)


def run_check(check_id: str, settings, ref: ClusterRef, principal: str = "", args: dict | None = None,
              gw: Gateway | None = None) -> list[Finding]:
    """Run one registered check through the engine's per-check context."""
    from checks.engine import _run_one
    ctx = Context(gw or gateway(settings), ref, "doctor", principal, dict(args or {})).for_check(CHECKS[check_id])
    return _run_one(ctx)


def one(findings: list[Finding], status: Status | None = None) -> Finding:
    assert len(findings) == 1, findings
    if status is not None:
        assert findings[0].status is status, findings[0]
    return findings[0]


def drop_binding(policy: dict, role: str, member: str) -> None:
    for b in policy["bindings"]:
        if b["role"] == role and member in b["members"]:
            b["members"].remove(member)
    policy["bindings"] = [b for b in policy["bindings"] if b["members"]]
