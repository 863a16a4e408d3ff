"""Resource Manager (projects, their IAM policy) and Service Usage, on REST transports."""
from __future__ import annotations

from google.cloud import resourcemanager_v3, service_usage_v1
from google.iam.v1 import iam_policy_pb2, options_pb2, policy_pb2

from checks.gateway.core import GatewayCore
from checks.gateway.permissions import google

CRM = "cloudresourcemanager.googleapis.com"
PROJECTS_GET = google("projects.get", CRM, "resourcemanager.projects.get", purpose="the project's number and state")
PROJECTS_GET_IAM = google("projects.getIamPolicy", CRM, "resourcemanager.projects.getIamPolicy",
                          purpose="who holds which role on the project")
SERVICES_GET = google("services.get", "serviceusage.googleapis.com", "serviceusage.services.get",
                      purpose="whether an API is enabled")
# the fix buttons' writes
PROJECTS_SET_IAM = google("projects.setIamPolicy", CRM, "resourcemanager.projects.setIamPolicy", write=True,
                          fix="grant_service_agent", purpose="re-grant roles/container.serviceAgent")


class ProjectsMixin(GatewayCore):
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
