"""Every call the gateway makes is declared (checks.gateway.permissions); undeclared calls are refused."""
from __future__ import annotations

import pytest

from checks.gateway import Gateway, permissions
from checks.gateway import container as gc
from checks.gateway import kube as kc
from checks.model import ClusterRef


def test_declarations_name_permissions_and_rbac():
    assert gc.CLUSTERS_GET.permission == "container.clusters.get" and not gc.CLUSTERS_GET.write
    assert "container.clusters.get" in permissions.read_permissions()
    assert "resourcemanager.projects.setIamPolicy" not in permissions.read_permissions()
    assert permissions.fix_permissions()["grant_service_agent"] == {"resourcemanager.projects.setIamPolicy"}
    assert ("", "pods/proxy", "get") in permissions.kube_rules()
    assert ("authorization.k8s.io", "subjectaccessreviews", "create") in permissions.kube_rules()
    assert kc.PODS_LIST.permission("kube-system") == "list pods in kube-system"
    assert kc.NODES_LIST.permission("ignored") == "list nodes (cluster-wide)"


def test_a_declaration_cannot_change_silently():
    with pytest.raises(ValueError):
        permissions.google("clusters.get", "container.googleapis.com", "container.clusters.list")


def test_undeclared_calls_are_refused(google, settings):
    from tests.helpers import gateway
    gw: Gateway = gateway(settings)
    with pytest.raises(TypeError):
        gw._retrying("clusters.get", "x", lambda: None)
    with pytest.raises(TypeError):
        gw.k8s(ClusterRef("p", "l", "c"), "pods.list", "pods.list", lambda api: None)


def test_troubleshooter_and_logging_declare_the_real_permissions():
    from checks.gateway import iam, logging
    # Policy Troubleshooter has no permission of its own: the bot needs to read the policies and roles involved
    assert "policytroubleshooter.iam.troubleshoot" not in iam.TROUBLESHOOT.permissions
    assert {"resourcemanager.projects.getIamPolicy", "iam.roles.get", "iam.roles.list", "iam.denypolicies.get",
            "iam.denypolicies.list"} == set(iam.TROUBLESHOOT.permissions)
    assert set(iam.TROUBLESHOOT_INHERITED) == {"resourcemanager.folders.getIamPolicy",
                                               "resourcemanager.organizations.getIamPolicy"}
    assert iam.TROUBLESHOOT.optional and logging.LOG_ENTRIES_LIST.optional
    assert "logging.logEntries.list" in permissions.read_permissions()
    assert kc.DISCOVERY_GROUPS.permission() == "get /apis (non-resource URL)"
