"""IAM v1 (service accounts, their policies, role definitions) over google-auth's AuthorizedSession
(google-cloud-iam has no REST transport), and Policy Troubleshooter v3 (allow and deny policies)."""
from __future__ import annotations

import json
import logging
import threading
import time

from google.cloud import policytroubleshooter_iam_v3 as troubleshooter_v3

from checks.gateway.core import GatewayCore
from checks.gateway.permissions import google
from checks.iam import sa_project

log = logging.getLogger(__name__)

IAM = "iam.googleapis.com"
SA_GET = google("serviceAccounts.get", IAM, "iam.serviceAccounts.get",
                purpose="whether a service account exists and is enabled")
SA_GET_IAM = google("serviceAccounts.getIamPolicy", IAM, "iam.serviceAccounts.getIamPolicy",
                    purpose="Workload Identity bindings on a Google service account")
ROLES_GET = google("roles.get", IAM, "iam.roles.get", purpose="the permissions of a role")
# Policy Troubleshooter has no permission of its own (there is no policytroubleshooter.iam.troubleshoot): it
# explains only the policies and roles its caller may read (docs: "Troubleshoot IAM permissions": the
# permissions of Security Reviewer for allow policies and roles, of Deny Reviewer for deny policies). These
# go into the project role; policies inherited from folders and the organization also need
# TROUBLESHOOT_INHERITED, which a project-level role cannot hold (grant them on the organization).
TROUBLESHOOT_ALLOW = ("resourcemanager.projects.getIamPolicy", "iam.roles.get", "iam.roles.list")
TROUBLESHOOT_DENY = ("iam.denypolicies.get", "iam.denypolicies.list")
TROUBLESHOOT_INHERITED = ("resourcemanager.folders.getIamPolicy", "resourcemanager.organizations.getIamPolicy")
TROUBLESHOOT = google("iam.troubleshoot", "policytroubleshooter.googleapis.com", TROUBLESHOOT_ALLOW[0],
                      also=TROUBLESHOOT_ALLOW[1:] + TROUBLESHOOT_DENY, optional=True,
                      purpose="explain a principal's access: inherited allow policies and deny policies included")

_ROLE_TTL = 3600.0
_role_cache: dict[str, tuple[float, dict]] = {}  # across jobs in one process
_role_lock = threading.Lock()


class IamMixin(GatewayCore):
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
        """The account's IAM policy, version 3. The method has no request body: the version goes in the query
        string, as gcloud sends it (below version 3 IAM renames conditional bindings `ROLE_withcond_HASH`)."""
        url = f"{self._base('iam.googleapis.com')}/v1/projects/-/serviceAccounts/{email}:getIamPolicy"
        return self.memo(("sa_policy", email), lambda: self._rest(
            SA_GET_IAM, email, "POST", url, params={"options.requestedPolicyVersion": 3}))

    def role(self, name: str) -> dict | None:
        """A role definition (predefined `roles/X`, custom `projects/P/roles/X` or `organizations/O/roles/X`),
        or None if absent. A deleted custom role comes back with `"deleted": true` (it grants nothing).

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

    # ---- Policy Troubleshooter v3 -------------------------------------------------------
    def troubleshoot(self, principal: str, full_resource_name: str, permission: str) -> dict:
        """Policy Troubleshooter v3's answer as JSON (camelCase), e.g. {"overallAccessState": "CAN_ACCESS",
        "allowPolicyExplanation": {...}, "denyPolicyExplanation": {...}}."""
        pt = troubleshooter_v3
        client = self._client("troubleshooter_v3", pt.PolicyTroubleshooterClient)
        req = pt.TroubleshootIamPolicyRequest(access_tuple=pt.AccessTuple(
            principal=principal.partition(":")[2] or principal, full_resource_name=full_resource_name,
            permission=permission))
        resp = self._fact(("troubleshoot", principal, full_resource_name, permission), TROUBLESHOOT,
                          f"{principal} {permission}",
                          lambda: client.troubleshoot_iam_policy(request=req, retry=None, timeout=30))
        return type(resp).to_dict(resp, use_integers_for_enums=False, preserving_proto_field_name=False)
