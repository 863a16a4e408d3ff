"""Policy scan of the rendered manifests and the Dockerfile: our own rules (always), and checkov
(when installed: .ci/run installs it into a virtualenv of its own and names it in GKE_BOT_CHECKOV).

The rules fail on: a container that may run as root, privilege escalation, a writable root
filesystem, capabilities not dropped, no seccomp profile, a missing CPU/memory request or limit,
a secret (by name or by value) in a ConfigMap, a Secret's value in the manifests, Redis without a
password or persistence or reachable by anything but the bot, a pod no NetworkPolicy restricts.
Each rule is shown to fail on a manifest that breaks it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from checks.rules.wi_network_policy import rule_allows
from tests.deploy import (DEPLOY, ROOT, SECRET_NAME, SECRET_VALUE, containers, is_bot, is_redis, kustomize,
                          missing_tool, named, of_kind, pod_labels, pod_spec, render, selects, variant_id, variants,
                          workloads)

CONF_PASSWORD = re.compile(r"^\s*(requirepass|masterauth)\s+\S", re.M)


def _effective(c: dict, spec: dict, key: str):
    return (c.get("securityContext") or {}).get(key, (spec.get("securityContext") or {}).get(key))


def violations(docs: list[dict]) -> list[str]:
    out: list[str] = []
    configmaps = {d["metadata"]["name"]: d for d in of_kind(docs, "ConfigMap")}
    for d in of_kind(docs, "Secret"):
        out.append(f"Secret/{d['metadata']['name']}: secret values must not be in the manifests (create it, README)")
    for name, cm in configmaps.items():
        for key, value in (cm.get("data") or {}).items():
            if SECRET_NAME.search(key):
                out.append(f"ConfigMap/{name}: key {key} names a secret; put it in a Secret")
            if SECRET_VALUE.search(str(value)) or CONF_PASSWORD.search(str(value)):
                out.append(f"ConfigMap/{name}: the value of {key} holds a secret; put it in a Secret")
    policies = of_kind(docs, "NetworkPolicy")
    for w in workloads(docs):
        wname, spec, labels = f"{w['kind']}/{w['metadata']['name']}", pod_spec(w), pod_labels(w)
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag):
                out.append(f"{wname}: {flag}")
        if any("hostPath" in v for v in spec.get("volumes") or []):
            out.append(f"{wname}: a hostPath volume")
        if spec.get("automountServiceAccountToken") is not False:
            out.append(f"{wname}: automountServiceAccountToken is not false")
        for c in containers(spec):
            cname = f"{wname}/{c['name']}"
            sc = c.get("securityContext") or {}
            uid = _effective(c, spec, "runAsUser")
            if _effective(c, spec, "runAsNonRoot") is not True or uid is None or int(uid) == 0:
                out.append(f"{cname}: may run as root (runAsNonRoot: true and a non-zero runAsUser)")
            if sc.get("allowPrivilegeEscalation") is not False:
                out.append(f"{cname}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                out.append(f"{cname}: privileged")
            if sc.get("readOnlyRootFilesystem") is not True:
                out.append(f"{cname}: the root filesystem is writable")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
                out.append(f"{cname}: capabilities not all dropped")
            seccomp = (_effective(c, spec, "seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                out.append(f"{cname}: no seccomp profile (RuntimeDefault)")
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for what in ("cpu", "memory"):
                    if what not in (res.get(kind) or {}):
                        out.append(f"{cname}: no {what} {kind[:-1]}")
            image = c.get("image", "")
            if "@sha256:" not in image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
                out.append(f"{cname}: image {image!r} has no tag or digest")
        if not any(selects(p["spec"]["podSelector"], labels) and "Ingress" in p["spec"].get("policyTypes", [])
                   for p in policies):
            out.append(f"{wname}: no NetworkPolicy restricts traffic to its pods")
        if not any(selects(p["spec"]["podSelector"], labels) and "Egress" in p["spec"].get("policyTypes", [])
                   for p in policies):
            out.append(f"{wname}: no NetworkPolicy restricts traffic from its pods")
        if any(c.get("image", "").split("/")[-1].startswith("redis") for c in spec["containers"]):
            out += _redis_violations(wname, spec, labels, configmaps, policies, docs)
    return out


def _redis_violations(wname, spec, labels, configmaps, policies, docs) -> list[str]:
    out = []
    c = next(c for c in spec["containers"] if c["image"].split("/")[-1].startswith("redis"))
    mounted = {v["name"]: v for v in spec.get("volumes") or []}
    conf = "\n".join(str(v) for m in c.get("volumeMounts") or [] if "configMap" in mounted.get(m["name"], {})
                     for v in (configmaps.get(mounted[m["name"]]["configMap"]["name"], {}).get("data") or {}).values())
    cmdline = " ".join(c.get("command") or []) + " " + " ".join(c.get("args") or [])
    from_secret = any("secret" in v for v in mounted.values()) or any(
        (e.get("valueFrom") or {}).get("secretKeyRef") for e in c.get("env") or [])
    if not (from_secret and "requirepass" in cmdline + conf):
        out.append(f"{wname}: Redis without a password (requirepass from a Secret)")
    if "requirepass" in cmdline and re.search(r"--requirepass\s+[^$\"\s]", cmdline):
        out.append(f"{wname}: Redis password literally on the command line")
    if not re.search(r"^\s*appendonly\s+yes", conf, re.M) and "--appendonly yes" not in cmdline:
        out.append(f"{wname}: Redis without its append-only file")
    data = [m for m in c.get("volumeMounts") or [] if m["mountPath"] == "/data"]
    if not data or "persistentVolumeClaim" not in mounted.get(data[0]["name"], {}):
        out.append(f"{wname}: Redis data (/data) is not on a PersistentVolumeClaim")
    ingress = [p for p in policies if selects(p["spec"]["podSelector"], labels)
               and "Ingress" in p["spec"].get("policyTypes", [])]
    bots = [pod_labels(w) for w in workloads(docs) if is_bot(w)]
    others = [pod_labels(w) for w in workloads(docs) if not is_bot(w)]
    for p in ingress:
        for rule in p["spec"].get("ingress") or []:
            peers = rule.get("from") or []
            if not peers or any("podSelector" not in peer or "namespaceSelector" in peer or "ipBlock" in peer
                                for peer in peers):
                out.append(f"{wname}: NetworkPolicy {p['metadata']['name']} lets more than the bot's pods reach Redis")
            elif any(selects(peer["podSelector"], o) for peer in peers for o in others):
                out.append(f"{wname}: NetworkPolicy {p['metadata']['name']} lets non-bot pods reach Redis")
            elif not any(selects(peer["podSelector"], b) for peer in peers for b in bots):
                out.append(f"{wname}: NetworkPolicy {p['metadata']['name']} lets no bot pod reach Redis")
    return out


@pytest.mark.parametrize("variant", variants(), ids=variant_id)
def test_policy_scan_passes(variant):
    assert violations(render(*variant)) == []


def test_cluster_rbac_reads_no_secrets_and_writes_nothing():
    role = named(kustomize(DEPLOY / "cluster-rbac"), "ClusterRole", "gke-bot-reader")
    for rule in role["rules"]:
        if "nonResourceURLs" in rule:  # discovery only, read only
            assert set(rule["verbs"]) == {"get"} and "*" not in rule["nonResourceURLs"], rule
            assert all(u.startswith(("/api", "/apis")) for u in rule["nonResourceURLs"]), rule
            continue
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        assert not {"secrets", "configmaps"} & set(rule["resources"]), rule
        writes = set(rule["verbs"]) - {"get", "list"}
        assert not writes or (writes == {"create"} and rule["resources"] == ["subjectaccessreviews"]), rule


# ---- each rule can fail ----------------------------------------------------------------------
def _worker(docs):
    return pod_spec(named(docs, "Deployment", "gke-bot-worker"))


def _redis(docs):
    return pod_spec(named(docs, "Deployment", "gke-bot-redis"))


def _root(docs):
    _worker(docs)["securityContext"]["runAsUser"] = 0


def _root_by_default(docs):
    del _worker(docs)["securityContext"]["runAsNonRoot"]


def _no_limit(docs):
    del _worker(docs)["containers"][0]["resources"]["limits"]["memory"]


def _token_in_configmap(docs):
    cm = next(d for d in of_kind(docs, "ConfigMap") if "GKE_BOT_METRICS_PORT" in d["data"])
    cm["data"]["SLACK_BOT_TOKEN"] = "xoxb-1-2-abc"


def _redis_url_with_password_in_configmap(docs):
    cm = next(d for d in of_kind(docs, "ConfigMap") if "GKE_BOT_METRICS_PORT" in d["data"])
    cm["data"]["REDIS_URL"] = "redis://:hunter2@gke-bot-redis:6379/0"


def _password_in_redis_conf(docs):
    cm = next(d for d in of_kind(docs, "ConfigMap") if "redis.conf" in d["data"])
    cm["data"]["redis.conf"] += "\nrequirepass hunter2\n"


def _redis_without_password(docs):
    spec = _redis(docs)
    spec["volumes"] = [v for v in spec["volumes"] if "secret" not in v]
    c = spec["containers"][0]
    c["volumeMounts"] = [m for m in c["volumeMounts"] if m["name"] != "password"]
    c["args"] = ["exec redis-server /etc/redis/redis.conf"]
    cm = next(d for d in of_kind(docs, "ConfigMap") if "redis.conf" in d["data"])
    cm["data"]["redis.conf"] = cm["data"]["redis.conf"].replace("include /run/redis/auth.conf", "")


def _redis_on_emptydir(docs):
    spec = _redis(docs)
    for v in spec["volumes"]:
        if v["name"] == "data":
            v.pop("persistentVolumeClaim")
            v["emptyDir"] = {}


def _redis_open_to_namespace(docs):
    policy = named(docs, "NetworkPolicy", "gke-bot-redis")
    policy["spec"]["ingress"][0]["from"] = [{"podSelector": {}}]


def _redis_unrestricted(docs):
    docs.remove(named(docs, "NetworkPolicy", "default-deny"))
    docs.remove(named(docs, "NetworkPolicy", "gke-bot-redis"))


def _writable_root(docs):
    _worker(docs)["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False


def _latest_image(docs):
    _redis(docs)["containers"][0]["image"] = "redis:latest"


def _secret_in_manifests(docs):
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "gke-bot", "namespace": "gke-bot"},
                 "stringData": {"SLACK_BOT_TOKEN": "xoxb-1"}})


BREAKS = {
    _root: "may run as root", _root_by_default: "may run as root", _no_limit: "no memory limit",
    _token_in_configmap: "names a secret", _redis_url_with_password_in_configmap: "holds a secret",
    _password_in_redis_conf: "holds a secret", _redis_without_password: "Redis without a password",
    _redis_on_emptydir: "not on a PersistentVolumeClaim", _redis_open_to_namespace: "non-bot pods reach Redis",
    _redis_unrestricted: "no NetworkPolicy restricts", _writable_root: "root filesystem is writable",
    _latest_image: "no tag or digest", _secret_in_manifests: "secret values must not be in the manifests",
}


@pytest.mark.parametrize("break_it", list(BREAKS), ids=lambda f: f.__name__.strip("_"))
def test_policy_scan_fails_on_a_broken_manifest(break_it):
    docs = render("http")
    break_it(docs)
    found = violations(docs)
    assert any(BREAKS[break_it] in v for v in found), found


# ---- network reachability, evaluated like the bot's own wi network-policy check ---------------
def _egress_allows(docs, labels, cidr, port) -> bool:
    rules = [r for p in of_kind(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)
             and "Egress" in p["spec"].get("policyTypes", []) for r in p["spec"].get("egress") or []]
    return any(rule_allows(r, cidr, port) for r in rules)


@pytest.mark.parametrize("variant", variants(), ids=variant_id)
def test_bot_pods_reach_what_they_need_and_redis_reaches_nothing(variant):
    docs = render(*variant)
    for w in workloads(docs):
        labels = pod_labels(w)
        if is_bot(w):
            # the GKE metadata server, for every GKE version and datapath (Workload Identity)
            for cidr, port in (("169.254.169.252/32", 988), ("127.0.0.1/32", 988), ("169.254.169.254/32", 80)):
                assert _egress_allows(docs, labels, cidr, port), (w["metadata"]["name"], cidr, port)
            # Google APIs, Slack, the diagnosed clusters' API servers
            assert _egress_allows(docs, labels, "142.250.0.1/32", 443)
            assert not _egress_allows(docs, labels, "142.250.0.1/32", 80)
            redis_rules = [r for p in of_kind(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)
                           for r in p["spec"].get("egress") or [] for peer in r.get("to") or []
                           if "podSelector" in peer and any(selects(peer["podSelector"], pod_labels(x))
                                                            for x in workloads(docs) if is_redis(x))]
            assert redis_rules and all(p.get("port") == 6379 for r in redis_rules for p in r["ports"])
        if is_redis(w):
            assert not _egress_allows(docs, labels, "142.250.0.1/32", 443)
            assert not _egress_allows(docs, labels, "169.254.169.254/32", 80)


def test_only_the_load_balancer_reaches_serve():
    docs = render("http")
    serve = pod_labels(named(docs, "Deployment", "gke-bot-serve"))
    rules = [r for p in of_kind(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"], serve)
             and "Ingress" in p["spec"].get("policyTypes", []) for r in p["spec"].get("ingress") or []]
    http = [r for r in rules if any(p.get("port") == 3000 for p in r.get("ports") or [])]
    assert http and all(sorted(peer["ipBlock"]["cidr"] for peer in r["from"]) == ["130.211.0.0/22", "35.191.0.0/16"]
                        for r in http)
    assert all(r.get("ports") for r in rules), "every ingress rule names its ports"


# ---- checkov ---------------------------------------------------------------------------------
def _checkov() -> str:
    exe = os.environ.get("GKE_BOT_CHECKOV") or shutil.which("checkov")
    if not exe:
        missing_tool("checkov is not installed (.ci/run installs it in a virtualenv and sets GKE_BOT_CHECKOV)")
    return exe


def _run_checkov(tmp_path: Path, docs: list[dict], with_dockerfile: bool = True) -> subprocess.CompletedProcess:
    (tmp_path / "rendered.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    frameworks = ["kubernetes"]
    if with_dockerfile:
        shutil.copy(ROOT / "Dockerfile", tmp_path / "Dockerfile")
        frameworks.append("dockerfile")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "PRISMA_", "CKV_"))}
    # no update check against pypi.org (checkov's banner asks at import unless told not to)
    env.update(BC_SKIP_MAPPING="TRUE", CKV_SKIP_PACKAGE_UPDATE_CHECK="True",
               PYTHONPATH=str(ROOT / "tests" / "loopback_guard"))
    out = subprocess.run([_checkov(), "-d", str(tmp_path), "--config-file", str(DEPLOY / ".checkov.yaml"),
                          "--framework", *frameworks, "--skip-download", "--compact", "--quiet"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert "loopback guard: refused" not in out.stdout + out.stderr, "checkov tried to reach the network"
    return out


@pytest.mark.parametrize("variant", variants(), ids=variant_id)
def test_checkov_passes(variant, tmp_path):
    out = _run_checkov(tmp_path, render(*variant))
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "Passed checks" in out.stdout


def test_checkov_fails_on_a_root_container(tmp_path):
    docs = render("http")
    _root(docs)
    out = _run_checkov(tmp_path, docs, with_dockerfile=False)
    assert out.returncode == 1 and "gke-bot-worker" in out.stdout, out.stdout[-3000:]
