"""FakeGoogle, proven with the real Google client libraries over HTTP on loopback."""
from __future__ import annotations

import json
import threading
import time
import socket
import urllib.parse

import pytest
import requests
from google.api_core import exceptions as gexc
from google.auth.transport.requests import AuthorizedSession
from google.cloud import container_v1, policytroubleshooter_iam_v3, resourcemanager_v3, service_usage_v1
from google.iam.v1 import iam_policy_pb2, options_pb2
from google.oauth2 import service_account

from tests.fakes.google import FakeGoogle

GKE1 = "gcpdiag-gke1-aaaa"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fail the test on any attempt to resolve or reach a host other than loopback."""
    attempts = []
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", b"127.0.0.1"):
            attempts.append(host)
            raise OSError(f"test tried to reach {host!r}: only loopback is allowed")
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield
    time.sleep(0.05)  # let background threads (google-auth refreshers) run before checking
    assert attempts == []


@pytest.fixture
def fake():
    with FakeGoogle() as f:
        f.load_fixture("gke1")
        yield f


@pytest.fixture
def creds(fake, tmp_path):
    path = fake.write_service_account_key(tmp_path / "key.json")
    return service_account.Credentials.from_service_account_file(str(path), scopes=SCOPES)


def client(cls, fake, creds):
    return cls(credentials=creds, transport="rest", client_options={"api_endpoint": fake.url})


@pytest.fixture
def gke(fake, creds):
    return client(container_v1.ClusterManagerClient, fake, creds)


@pytest.fixture
def session(creds):
    return AuthorizedSession(creds)


# ---- state ------------------------------------------------------------------------------------
def test_fixtures_load_into_mutable_state(fake):
    st = fake.projects[GKE1]
    assert st.number == "12340002" and st.project["projectId"] == GKE1
    assert len(st.clusters) == 7 and st.services["container.googleapis.com"] == "ENABLED"
    assert "12340002-compute@developer.gserviceaccount.com" in st.service_accounts
    assert "projects/gcpdiag-gke1-aaaa/roles/gke2_custom_role" in st.custom_roles
    for role in ("roles/container.serviceAgent", "roles/container.clusterViewer", "roles/editor", "roles/owner",
                 "roles/container.defaultNodeServiceAccount"):
        assert fake.predefined_roles[role]["includedPermissions"]
    assert fake.load_fixture("gke3") == "gcpdiag-gke3-gggg"
    assert fake.cluster("gcpdiag-gke3-gggg", "cluster-1")["status"] == "ERROR"
    assert fake.load_fixture("gke2") == "gcpdiag-gke-cluster-autoscaler-rrrr"
    assert fake.projects["gcpdiag-gke-cluster-autoscaler-rrrr"].sa_policies == {}  # empty recording
    regional = fake.cluster("gcpdiag-gke-cluster-autoscaler-rrrr", "gcp-cluster", "europe-west10")
    assert regional["location"] == "europe-west10"


# ---- Kubernetes Engine ------------------------------------------------------------------------
def test_container_list_get_and_not_found(fake, gke):
    clusters = gke.list_clusters(parent=f"projects/{GKE1}/locations/-").clusters
    assert len(clusters) == 7
    assert {c.name for c in gke.list_clusters(parent=f"projects/{GKE1}/locations/europe-west4-a").clusters} == {
        "gke1", "gke4", "gke6"}
    c = gke.get_cluster(name=f"projects/{GKE1}/locations/europe-west4-a/clusters/gke1")
    assert c.status == container_v1.Cluster.Status.RUNNING  # enum names parse
    assert c.addons_config.http_load_balancing.disabled
    gke2 = gke.get_cluster(name=f"projects/{GKE1}/locations/europe-west4/clusters/gke2")
    mode = gke2.node_pools[0].config.workload_metadata_config.mode
    assert mode == container_v1.WorkloadMetadataConfig.Mode.GKE_METADATA
    with pytest.raises(gexc.NotFound, match=f"Not found: projects/{GKE1}/locations/europe-west4-a/clusters/nope"):
        gke.get_cluster(name=f"projects/{GKE1}/locations/europe-west4-a/clusters/nope")
    with pytest.raises(gexc.NotFound):
        gke.list_clusters(parent="projects/no-such-project/locations/-")
    pools = gke.list_node_pools(parent=f"projects/{GKE1}/locations/europe-west4/clusters/gke2").node_pools
    assert [p.name for p in pools] == ["default-pool", "low-pod-per-node-pool"]
    cfg = gke.get_server_config(name=f"projects/{GKE1}/locations/europe-west4-a")
    assert cfg.default_cluster_version == "1.25.7-gke.1000"
    # the real client asks for int enums; the answer keeps enum names, as real servers do
    assert "enum-encoding=int" in urllib.parse.unquote(fake.calls[-1].query)


def test_container_service_disabled(fake, gke):
    fake.projects[GKE1].services["container.googleapis.com"] = "DISABLED"
    with pytest.raises(gexc.Forbidden, match="Kubernetes Engine API has not been used") as exc:
        gke.list_clusters(parent=f"projects/{GKE1}/locations/-")
    assert exc.value.reason == "SERVICE_DISABLED"


def test_update_node_pool_operation(fake, gke):
    name = f"projects/{GKE1}/locations/europe-west4-a/clusters/gke1/nodePools/default-pool"
    op = gke.update_node_pool(request={"name": name, "node_version": "1.25.8-gke.1000", "image_type": "COS_CONTAINERD"})
    assert op.operation_type == container_v1.Operation.Type.UPGRADE_NODES
    assert op.status == container_v1.Operation.Status.RUNNING
    assert gke.get_node_pool(name=name).status == container_v1.NodePool.Status.RECONCILING
    with pytest.raises(gexc.BadRequest, match="incompatible operation " + op.name):  # 400 FAILED_PRECONDITION
        gke.update_node_pool(request={"name": name, "node_version": "1.25.8-gke.1000"})
    listed = gke.list_operations(parent=f"projects/{GKE1}/locations/-").operations
    assert [o.name for o in listed] == [op.name]
    done = gke.get_operation(name=f"projects/{GKE1}/locations/europe-west4-a/operations/{op.name}")
    assert done.status == container_v1.Operation.Status.DONE
    pool = gke.get_node_pool(name=name)
    assert pool.version == "1.25.8-gke.1000" and pool.status == container_v1.NodePool.Status.RUNNING


def test_update_cluster_addons_after_polls(fake, gke):
    fake.operation_polls = 2
    name = f"projects/{GKE1}/locations/europe-west4-a/clusters/gke1"
    op = gke.update_cluster(name=name, update=container_v1.ClusterUpdate(
        desired_addons_config=container_v1.AddonsConfig(
            http_load_balancing=container_v1.HttpLoadBalancing(disabled=False))))
    assert op.operation_type == container_v1.Operation.Type.UPDATE_CLUSTER
    op_name = f"projects/{GKE1}/locations/europe-west4-a/operations/{op.name}"
    assert gke.get_operation(name=op_name).status == container_v1.Operation.Status.RUNNING
    assert gke.get_operation(name=op_name).status == container_v1.Operation.Status.DONE
    assert not gke.get_cluster(name=name).addons_config.http_load_balancing.disabled
    assert fake.cluster(GKE1, "gke1")["addonsConfig"]["kubernetesDashboard"] == {"disabled": True}  # others kept


# ---- Resource Manager -------------------------------------------------------------------------
def test_resource_manager(fake, creds):
    crm = client(resourcemanager_v3.ProjectsClient, fake, creds)
    assert crm.get_project(name=f"projects/{GKE1}").name == "projects/12340002"
    assert crm.get_project(name="projects/12340002").project_id == GKE1
    with pytest.raises(gexc.Forbidden, match="Permission 'resourcemanager.projects.get' denied on resource "
                                                    "'//cloudresourcemanager.googleapis.com/projects/nope'"):
        crm.get_project(name="projects/nope")
    fake.deleted_projects.add(GKE1)
    assert crm.get_project(name=f"projects/{GKE1}").state == resourcemanager_v3.Project.State.DELETE_REQUESTED

    req = iam_policy_pb2.GetIamPolicyRequest(resource=f"projects/{GKE1}",
                                             options=options_pb2.GetPolicyOptions(requested_policy_version=3))
    policy = crm.get_iam_policy(request=req)
    agent = next(b for b in policy.bindings if b.role == "roles/container.serviceAgent")
    assert list(agent.members) == ["serviceAccount:service-12340002@container-engine-robot.iam.gserviceaccount.com"]

    del policy.bindings[:1]
    updated = crm.set_iam_policy(request={"resource": f"projects/{GKE1}", "policy": policy})
    assert updated.etag != policy.etag and len(updated.bindings) == len(policy.bindings)
    assert len(fake.projects[GKE1].iam_policy["bindings"]) == len(policy.bindings)
    # a stale etag is refused: 409 ABORTED, which google-api-core raises as Conflict (the class for HTTP 409)
    with pytest.raises(gexc.Conflict, match="There were concurrent policy changes") as exc:
        crm.set_iam_policy(request={"resource": f"projects/{GKE1}", "policy": policy})
    assert exc.value.response.json()["error"]["status"] == "ABORTED"


def test_concurrent_edit_hook_and_direct_edits(fake, creds):
    crm = client(resourcemanager_v3.ProjectsClient, fake, creds)
    policy = crm.get_iam_policy(request={"resource": f"projects/{GKE1}"})
    fake.on_set_iam_policy = lambda pid: fake.projects[pid].iam_policy["bindings"].pop()
    with pytest.raises(gexc.Conflict):
        crm.set_iam_policy(request={"resource": f"projects/{GKE1}", "policy": policy})
    fake.on_set_iam_policy = None
    fresh = crm.get_iam_policy(request={"resource": f"projects/{GKE1}"})
    assert fresh.etag != policy.etag and len(fresh.bindings) == len(policy.bindings) - 1
    assert crm.set_iam_policy(request={"resource": f"projects/{GKE1}", "policy": fresh}).etag != fresh.etag


def test_test_iam_permissions_uses_caller(fake, tmp_path):
    path = fake.write_service_account_key(tmp_path / "k.json", client_email="testuser-sa@x.iam.gserviceaccount.com")
    creds = service_account.Credentials.from_service_account_file(str(path), scopes=SCOPES)
    fake.projects[GKE1].iam_policy["bindings"].append(
        {"role": "roles/container.clusterViewer", "members": ["serviceAccount:testuser-sa@x.iam.gserviceaccount.com"]})
    crm = client(resourcemanager_v3.ProjectsClient, fake, creds)
    resp = crm.test_iam_permissions(resource=f"projects/{GKE1}",
                                    permissions=["container.clusters.get", "resourcemanager.projects.setIamPolicy"])
    assert list(resp.permissions) == ["container.clusters.get"]


# ---- Service Usage ----------------------------------------------------------------------------
def test_service_usage(fake, creds):
    # NB: ServiceUsageClient methods take only `request=` (no flattened name=/parent= arguments)
    su = client(service_usage_v1.ServiceUsageClient, fake, creds)
    container = f"projects/{GKE1}/services/container.googleapis.com"
    svc = su.get_service(request={"name": container})
    assert svc.state == service_usage_v1.State.ENABLED
    assert svc.name == "projects/12340002/services/container.googleapis.com"
    unknown = su.get_service(request={"name": "projects/12340002/services/nope.googleapis.com"})
    assert unknown.state == service_usage_v1.State.DISABLED
    fake.projects[GKE1].services["container.googleapis.com"] = "DISABLED"
    assert su.get_service(request={"name": container}).state == service_usage_v1.State.DISABLED
    listed = su.list_services(request={"parent": "projects/12340002", "filter": "state:ENABLED"})
    enabled = {s.config.name for s in listed}
    assert len(enabled) == 11 and "container.googleapis.com" not in enabled
    gke2 = fake.load_fixture("gke2")
    listed = su.list_services(request={"parent": f"projects/{gke2}", "filter": "state:ENABLED", "page_size": 20})
    pages = list(listed.pages)
    assert [len(p.services) for p in pages] == [20, 20, 10]


# ---- IAM via AuthorizedSession ----------------------------------------------------------------
def test_iam_rest(fake, session):
    url = f"{fake.url}/v1/projects/-/serviceAccounts/12340002-compute@developer.gserviceaccount.com"
    r = session.get(url)
    assert r.status_code == 200 and r.json()["displayName"] == "Compute Engine default service account"
    assert fake.token_valid(session.credentials.token)
    fake.projects[GKE1].service_accounts["12340002-compute@developer.gserviceaccount.com"]["disabled"] = True
    assert session.get(url).json()["disabled"] is True
    del fake.projects[GKE1].service_accounts["12340002-compute@developer.gserviceaccount.com"]
    r = session.get(url)
    assert r.status_code == 404 and r.json()["error"] == {"code": 404, "message": "Unknown service account",
                                                         "status": "NOT_FOUND"}
    assert len(session.get(f"{fake.url}/v1/projects/{GKE1}/serviceAccounts").json()["accounts"]) == 3

    policy_url = f"{fake.url}/v1/projects/-/serviceAccounts/gke1sa@{GKE1}.iam.gserviceaccount.com:getIamPolicy"
    sa_policy = session.post(policy_url, params={"options.requestedPolicyVersion": 3}).json()
    assert sa_policy["bindings"][0]["role"] == "roles/iam.serviceAccountUser"
    # the method has no request body: gcloud never sends one, and a body names fields the method lacks
    refused = session.post(policy_url, json={"options": {"requestedPolicyVersion": 3}})
    assert refused.status_code == 400 and 'Unknown name "options"' in refused.json()["error"]["message"]
    # below version 3 a conditional binding comes back renamed, without its condition
    fake.projects[GKE1].sa_policies[f"gke1sa@{GKE1}.iam.gserviceaccount.com"]["bindings"].append({
        "role": "roles/iam.workloadIdentityUser", "members": ["serviceAccount:p.svc.id.goog[a/b]"],
        "condition": {"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}})
    v1 = session.post(policy_url).json()
    assert v1["version"] == 1 and not any("condition" in b for b in v1["bindings"])
    assert any(b["role"].startswith("roles/iam.workloadIdentityUser_withcond_") for b in v1["bindings"])
    v3 = session.post(policy_url, params={"options.requestedPolicyVersion": 3}).json()
    assert {"role": "roles/iam.workloadIdentityUser", "members": ["serviceAccount:p.svc.id.goog[a/b]"],
            "condition": {"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}} \
        in v3["bindings"]
    fake.projects[GKE1].sa_policies.clear()
    assert session.post(policy_url, json={}).json() == {"etag": "ACAB"}

    role = session.get(f"{fake.url}/v1/roles/container.serviceAgent").json()
    assert "container.clusters.get" in role["includedPermissions"]
    assert session.get(f"{fake.url}/v1/roles/nope").status_code == 404
    custom = session.get(f"{fake.url}/v1/projects/{GKE1}/roles/gke2_custom_role").json()
    assert custom["name"] == "projects/gcpdiag-gke1-aaaa/roles/gke2_custom_role"
    assert session.get(f"{fake.url}/v1/projects/{GKE1}/roles/nope").status_code == 404
    page = session.get(f"{fake.url}/v1/roles", params={"view": "FULL", "pageSize": 1000}).json()
    assert len(page["roles"]) == 1000 and page["nextPageToken"]


# ---- Policy Troubleshooter --------------------------------------------------------------------
def test_troubleshooter_v3_allow_and_deny(fake, creds):
    checker = client(policytroubleshooter_iam_v3.PolicyTroubleshooterClient, fake, creds)
    pt = policytroubleshooter_iam_v3
    req = {"access_tuple": {"principal": "testuser@example.com", "permission": "container.clusters.get",
                            "full_resource_name": f"//container.googleapis.com/projects/{GKE1}/locations/"
                                                  "europe-west4-a/clusters/gke1"}}
    with pytest.raises(gexc.Forbidden, match="The caller does not have permission"):
        checker.troubleshoot_iam_policy(request=req, retry=None)
    fake.troubleshooter_enabled = True
    resp = checker.troubleshoot_iam_policy(request=req)
    assert resp.overall_access_state == pt.TroubleshootIamPolicyResponse.OverallAccessState.CAN_ACCESS
    assert resp.access_tuple.permission_fqdn == "container.googleapis.com/clusters.get"
    policy = resp.allow_policy_explanation.explained_policies[0]
    assert policy.full_resource_name == f"//cloudresourcemanager.googleapis.com/projects/{GKE1}"
    owner = next(b for b in policy.binding_explanations if b.role == "roles/owner")
    assert owner.allow_access_state == pt.AllowAccessState.ALLOW_ACCESS_STATE_GRANTED
    assert owner.memberships["user:testuser@example.com"].membership == pt.MembershipMatchingState.MEMBERSHIP_MATCHED
    assert resp.deny_policy_explanation.deny_access_state == pt.DenyAccessState.DENY_ACCESS_STATE_NOT_DENIED

    fake.projects[GKE1].deny_policies.append({"name": "policies/x/denypolicies/no-gke", "rules": [{"denyRule": {
        "deniedPrincipals": ["principal://goog/subject/testuser@example.com"],
        "deniedPermissions": ["container.googleapis.com/clusters.*"]}}]})
    resp = checker.troubleshoot_iam_policy(request=req)
    assert resp.overall_access_state == pt.TroubleshootIamPolicyResponse.OverallAccessState.CANNOT_ACCESS
    assert resp.deny_policy_explanation.deny_access_state == pt.DenyAccessState.DENY_ACCESS_STATE_DENIED
    assert resp.deny_policy_explanation.explained_resources[0].explained_policies[0].policy.name == \
        "policies/x/denypolicies/no-gke"
    fake.troubleshooter_reads_deny = False  # the caller lacks iam.denypolicies.*
    resp = checker.troubleshoot_iam_policy(request=req)
    assert resp.overall_access_state == pt.TroubleshootIamPolicyResponse.OverallAccessState.UNKNOWN_INFO
    assert resp.allow_policy_explanation.allow_access_state == pt.AllowAccessState.ALLOW_ACCESS_STATE_GRANTED

    req["access_tuple"]["principal"] = "other@example.com"
    fake.projects[GKE1].iam_policy["bindings"].append({
        "role": "roles/container.clusterViewer", "members": ["user:other@example.com"],
        "condition": {"title": "weekdays", "expression": "request.time.getDayOfWeek() < 5"}})
    fake.troubleshooter_reads_deny = True
    assert checker.troubleshoot_iam_policy(request=req).overall_access_state == \
        pt.TroubleshootIamPolicyResponse.OverallAccessState.UNKNOWN_CONDITIONAL
    fake.projects[GKE1].custom_roles["projects/gcpdiag-gke1-aaaa/roles/gke2_custom_role"]["deleted"] = True
    role = fake.projects[GKE1].custom_roles["projects/gcpdiag-gke1-aaaa/roles/gke2_custom_role"]
    assert fake._role_permissions(role["name"]) == set()  # a deleted custom role grants nothing


# ---- auth, injection, recording ---------------------------------------------------------------
def test_auth(fake, creds, gke, tmp_path):
    url = f"{fake.url}/v1/roles/container.serviceAgent"
    for headers in ({}, {"Authorization": "Bearer garbage"}, {"Authorization": "Bearer a.b.c"}):
        r = requests.get(url, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    assert not fake.token_valid("garbage")
    r = requests.post(fake.token_uri, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                            "assertion": "x.y.z"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # the GAPIC client authenticates with a self-signed JWT, which is accepted but is no access token
    gke.get_cluster(name=f"projects/{GKE1}/locations/europe-west4-a/clusters/gke1")
    jwt_token = fake.calls[-1].headers["Authorization"].split(" ", 1)[1]
    assert not fake.token_valid(jwt_token)
    # a key this fake never issued (written by another fake) is refused at /token
    with FakeGoogle() as other:
        foreign = other.write_service_account_key(tmp_path / "foreign.json")
    info = json.loads(foreign.read_text()) | {"token_uri": fake.token_uri}
    other_creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
    r = AuthorizedSession(creds).get(url)
    assert r.status_code == 200 and fake.token_valid(r.request.headers["Authorization"][7:])
    with pytest.raises(Exception, match="invalid_grant"):
        AuthorizedSession(other_creds).get(url)
    fake.expire_tokens()
    assert not fake.token_valid(r.request.headers["Authorization"][7:])


def test_fail_and_deny_injection(fake, session, gke):
    url = f"{fake.url}/v1/roles/container.serviceAgent"
    handle = fake.fail("GET", r"/v1/roles/", 503, times=2)
    assert [session.get(url).status_code for _ in range(3)] == [503, 503, 200]
    assert handle.hits == 2
    handle = fake.fail(None, r"/roles/", 429)
    assert session.get(url).json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    handle.remove()
    assert session.get(url).status_code == 200

    fake.deny("POST", r":getIamPolicy$", "resourcemanager.projects.getIamPolicy")
    crm = client(resourcemanager_v3.ProjectsClient, fake, session.credentials)
    with pytest.raises(gexc.Forbidden) as exc:
        crm.get_iam_policy(request={"resource": f"projects/{GKE1}"})
    assert exc.value.message.endswith(
        "Permission 'resourcemanager.projects.getIamPolicy' denied on resource "
        f"'//cloudresourcemanager.googleapis.com/projects/{GKE1}' (or it may not exist).")
    assert exc.value.reason == "IAM_PERMISSION_DENIED" and exc.value.domain == "iam.googleapis.com"
    assert exc.value.metadata == {"permission": "resourcemanager.projects.getIamPolicy"}

    fake.fail("GET", r"/clusters/gke1$", 403, google_status="PERMISSION_DENIED", message="nope", times=1)
    with pytest.raises(gexc.Forbidden, match="nope"):
        gke.get_cluster(name=f"projects/{GKE1}/locations/europe-west4-a/clusters/gke1")


def test_calls_recorded_and_latency(fake, session):
    fake.reset_calls()
    session.get(f"{fake.url}/v1/roles/container.serviceAgent")
    assert [(c.method, c.path) for c in fake.calls] == [("POST", "/token"), ("GET", "/v1/roles/container.serviceAgent")]
    assert fake.calls[-1].headers["Authorization"].startswith("Bearer ya29.fake-")
    fake.latency = 0.2
    t0 = time.monotonic()
    threads = [threading.Thread(target=session.get, args=(f"{fake.url}/v1/roles/editor",)) for _ in range(5)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert 0.2 <= time.monotonic() - t0 < 0.9  # requests wait concurrently, not in turn


def test_zonal_paths(fake, session):
    r = session.get(f"{fake.url}/v1/projects/{GKE1}/zones/europe-west4-a/clusters/gke1")
    assert r.status_code == 200 and r.json()["name"] == "gke1"
    assert session.get(f"{fake.url}/v1/projects/{GKE1}/zones/europe-west4/serverconfig").json()["defaultClusterVersion"]
    r = session.get(f"{fake.url}/v1/nowhere")
    assert r.status_code == 404 and "no route" in r.json()["error"]["message"]


def test_add_project(fake, gke):
    st = fake.add_project("empty-proj", "999")
    assert gke.list_clusters(parent="projects/empty-proj/locations/-").clusters == []
    st.clusters.append({**fake.cluster(GKE1, "gke1"), "selfLink": ""})
    assert [c.name for c in gke.list_clusters(parent="projects/999/locations/-").clusters] == ["gke1"]


# ---- Cloud Logging entries:list -----------------------------------------------------------------
def test_logging_applies_the_filter_it_is_sent(fake, creds):
    from google.auth.transport.requests import AuthorizedSession

    from tests.fakes.logging import container_entry
    session = AuthorizedSession(creds)
    e = lambda msg, ts, **kw: container_entry(GKE1, kw.get("loc", "europe-west4"), kw.get("cluster", "gke2"),  # noqa
                                              "kube-system", "p", kw.get("container", "gke-metadata-server"), msg, ts,
                                              kw.get("sev", "ERROR"))
    fake.log_entries += [e("Unable to find pod", "2026-01-01T10:00:00Z"), e("dial tcp: connection refused",
                                                                          "2026-01-01T11:00:00Z", sev="WARNING"),
                         e("all good", "2026-01-01T12:00:00Z", sev="INFO"), e("Unable to find pod",
                                                                              "2026-01-01T13:00:00Z", cluster="other")]
    url = f"{fake.url}/v2/entries:list"

    def ask(flt, **extra):
        r = session.post(url, json={"resourceNames": [f"projects/{GKE1}"], "filter": flt, **extra})
        return r.status_code, [x["jsonPayload"]["message"] for x in r.json().get("entries", [])] if r.ok else r.json()

    assert ask('resource.labels.cluster_name="gke2" severity>=WARNING', orderBy="timestamp desc") == \
        (200, ["dial tcp: connection refused", "Unable to find pod"])
    assert ask('("unable to FIND pod" OR "refused")\nresource.labels.cluster_name="gke2"')[1] == \
        ["Unable to find pod", "dial tcp: connection refused"]  # global search is case-insensitive; oldest first
    assert ask('timestamp>="2026-01-01T11:30:00Z" AND NOT resource.labels.cluster_name="other"')[1] == ["all good"]
    assert ask('labels."k8s-pod/k8s-app"="gke-metadata-server" jsonPayload.message:"good"')[1] == ["all good"]
    code, err = ask('resource.labels.cluster_name="gke2" AND (')
    assert code == 400 and err["error"]["status"] == "INVALID_ARGUMENT"
    assert session.post(url, json={"filter": ""}).status_code == 400  # resourceNames is required
    assert session.post(url, json={"resourceNames": ["projects/nope-123"]}).status_code == 403
