"""deploy/ renders with `kubectl kustomize`, every document is valid against the Kubernetes schemas
(kubernetes-validate, offline, strict: unknown fields fail) or its CRD's schema, and the pieces fit
together: selectors select, ports and references resolve, the values files reach the documents."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.deploy import (COMPONENTS, DEPLOY, OVERLAYS, containers, env_file, is_bot, kubernetes_validate, kustomize,
                          named, of_kind, pod_labels, pod_spec, render, selects, variant_id, variants, workloads)

K8S_VERSIONS = ("1.30", "latest")  # the oldest GKE minor the manifests target, and the newest schemas
CRDS = Path(__file__).resolve().parent / "fixtures" / "crds"


def _crd_schemas() -> dict[tuple[str, str], dict]:
    out = {}
    for f in CRDS.glob("*.json"):
        doc = json.loads(f.read_text())
        out[(f"{doc['group']}/{doc['version']}", doc["kind"])] = _strict(doc["schema"])
    return out


def _strict(schema):
    """An API server with strict field validation (kubectl's default) refuses unknown fields: so does this."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _validate(doc: dict, version: str) -> None:
    kv = kubernetes_validate()
    import jsonschema
    crd = _crd_schemas().get((doc["apiVersion"], doc["kind"]))
    if crd is not None:
        body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
        jsonschema.validate(body, {**crd, "properties": {k: v for k, v in crd.get("properties", {}).items()
                                                         if k not in ("apiVersion", "kind", "metadata")}})
        return
    kv.validate(doc, kv.latest_version() if version == "latest" else version, strict=True)


@pytest.mark.parametrize("variant", variants(), ids=variant_id)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_document_is_valid_offline(variant, version):
    docs = render(*variant)
    assert docs
    errors = []
    for doc in docs:
        try:
            _validate(doc, version)
        except Exception as exc:  # noqa: BLE001 - collect them all
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {getattr(exc, 'message', exc)}")
    assert not errors, "\n".join(errors)


def test_cluster_rbac_is_valid_offline():
    for doc in kustomize(DEPLOY / "cluster-rbac"):
        for version in K8S_VERSIONS:
            _validate(doc, version)


def test_validation_catches_a_typo_and_an_unknown_crd_field():
    """The validation above can fail: a misspelt field in a Deployment and in a BackendConfig."""
    kubernetes_validate()
    import jsonschema
    docs = render("http")
    deploy = named(docs, "Deployment", "gke-bot-serve")
    deploy["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(Exception, match="readinessProbes"):
        _validate(deploy, "latest")
    backend = named(docs, "BackendConfig", "gke-bot-serve")
    backend["spec"]["healthCheck"]["requestPth"] = "/livez"
    with pytest.raises(jsonschema.ValidationError):
        _validate(backend, "latest")
    cert = named(docs, "ManagedCertificate", "gke-bot")
    cert["spec"]["domains"] = ["*.example.com"]
    with pytest.raises(jsonschema.ValidationError):
        _validate(cert, "latest")


@pytest.mark.parametrize("variant", variants(), ids=variant_id)
def test_everything_is_in_the_namespace_and_labelled(variant):
    for doc in render(*variant):
        meta = doc["metadata"]
        if doc["kind"] != "Namespace":
            assert meta.get("namespace") == "gke-bot", f"{doc['kind']}/{meta['name']}"
        assert meta["labels"].get("app.kubernetes.io/part-of") == "gke-bot", f"{doc['kind']}/{meta['name']}"
    for w in workloads(render(*variant)):
        assert pod_labels(w).get("app.kubernetes.io/part-of") == "gke-bot", w["metadata"]["name"]


@pytest.mark.parametrize("variant", variants(), ids=variant_id)
def test_references_resolve(variant):
    """Every selector selects its pods, every Service port names a container port, every ConfigMap and
    volume reference exists in the render, and Secrets referenced are the two the README creates."""
    docs = render(*variant)
    configmaps = {d["metadata"]["name"] for d in of_kind(docs, "ConfigMap")}
    pvcs = {d["metadata"]["name"] for d in of_kind(docs, "PersistentVolumeClaim")}
    accounts = {d["metadata"]["name"] for d in of_kind(docs, "ServiceAccount")}
    secret_keys = set()
    for w in workloads(docs):
        name, spec, labels = w["metadata"]["name"], pod_spec(w), pod_labels(w)
        assert selects(w["spec"]["selector"], labels), f"{name}: its selector does not select its pods"
        assert spec["serviceAccountName"] in accounts, name
        for vol in spec.get("volumes") or []:
            if "configMap" in vol:
                assert vol["configMap"]["name"] in configmaps, f"{name}: volume {vol['name']}"
            if "persistentVolumeClaim" in vol:
                assert vol["persistentVolumeClaim"]["claimName"] in pvcs, f"{name}: volume {vol['name']}"
            if "secret" in vol:
                for item in vol["secret"].get("items") or []:
                    secret_keys.add((vol["secret"]["secretName"], item["key"]))
        mounts = {v["name"] for v in spec.get("volumes") or []}
        for c in containers(spec):
            assert c["image"] != "gke-bot", f"{name}: the image of values.env was not applied"
            for m in c.get("volumeMounts") or []:
                assert m["name"] in mounts, f"{name}/{c['name']}: mount {m['name']}"
            for src in c.get("envFrom") or []:
                if "configMapRef" in src:
                    assert src["configMapRef"]["name"] in configmaps, f"{name}/{c['name']}"
                assert "secretRef" not in src, f"{name}/{c['name']}: name each secret key (secretKeyRef)"
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    secret_keys.add((ref["name"], ref["key"]))
            ports = {p.get("name") for p in c.get("ports") or []} | {p["containerPort"] for p in c.get("ports") or []}
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = c.get(kind) or {}
                for how in ("httpGet", "tcpSocket"):
                    if how in probe:
                        assert probe[how]["port"] in ports, f"{name}/{c['name']} {kind}: port {probe[how]['port']}"
    for svc in of_kind(docs, "Service"):
        pods = [w for w in workloads(docs) if selects({"matchLabels": svc["spec"]["selector"]}, pod_labels(w))]
        assert pods, f"Service {svc['metadata']['name']} selects no pod"
        for port in svc["spec"]["ports"]:
            for w in pods:
                names = {p.get("name") for c in containers(pod_spec(w)) for p in c.get("ports") or []}
                assert port["targetPort"] in names, f"Service {svc['metadata']['name']} → {w['metadata']['name']}"
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        pods = [w for w in workloads(docs) if selects(pdb["spec"]["selector"], pod_labels(w))]
        assert len(pods) == 1, f"PDB {pdb['metadata']['name']} selects {len(pods)} workloads"
        assert pdb["spec"]["minAvailable"] < pods[0]["spec"]["replicas"], "the PDB would block every node drain"
    documented = {("gke-bot", "SLACK_BOT_TOKEN"), ("gke-bot", "SLACK_SIGNING_SECRET"), ("gke-bot", "SLACK_APP_TOKEN"),
                  ("gke-bot", "GKE_BOT_PLAN_KEY"), ("gke-bot-redis", "REDIS_PASSWORD")}
    assert secret_keys <= documented, secret_keys - documented
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for secret, key in secret_keys:
        assert f"{key}=" in readme and f"secret generic {secret} " in readme, \
            f"README 'Deploy on GKE' does not create {secret}/{key}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_values_reach_the_documents(overlay):
    values = env_file(DEPLOY / "overlays" / overlay / "values.env")
    docs = render(overlay)
    ksa = named(docs, "ServiceAccount", "gke-bot")
    assert ksa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == values["GOOGLE_SERVICE_ACCOUNT"]
    bots = [w for w in workloads(docs) if is_bot(w)]
    assert bots and all(c["image"] == values["IMAGE"] for w in bots for c in pod_spec(w)["containers"])
    assert not of_kind(docs, "ConfigMap") or all(d["metadata"]["name"] != "gke-bot-values"
                                                 for d in of_kind(docs, "ConfigMap")), "values leaked into the render"
    settings = env_file(DEPLOY / "overlays" / overlay / "config.env")
    config = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("gke-bot-")
              and "GKE_BOT_METRICS_PORT" in d["data"]]
    assert len(config) == 1 and all(config[0]["data"][k] == v for k, v in settings.items())
    if overlay == "http":
        assert named(docs, "Ingress", "gke-bot")["spec"]["rules"][0]["host"] == values["DOMAIN"]
        assert named(docs, "ManagedCertificate", "gke-bot")["spec"]["domains"] == [values["DOMAIN"]]
        ing = named(docs, "Ingress", "gke-bot")["metadata"]["annotations"]
        assert ing["kubernetes.io/ingress.global-static-ip-name"] == values["STATIC_IP_NAME"]


def test_cluster_rbac_binds_the_google_service_account():
    values = env_file(DEPLOY / "cluster-rbac" / "values.env")
    binding = named(kustomize(DEPLOY / "cluster-rbac"), "ClusterRoleBinding", "gke-bot-reader")
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                    "name": values["GOOGLE_SERVICE_ACCOUNT"]}]
    assert binding["roleRef"]["name"] == "gke-bot-reader"


def test_http_mode_exposes_only_slack_events_over_https():
    docs = render("http")
    ing = named(docs, "Ingress", "gke-bot")
    assert ing["metadata"]["annotations"]["kubernetes.io/ingress.allow-http"] == "false"
    assert ing["metadata"]["annotations"]["networking.gke.io/managed-certificates"] == "gke-bot"
    paths = [p for r in ing["spec"]["rules"] for p in r["http"]["paths"]]
    assert [(p["path"], p["pathType"]) for p in paths] == [("/slack/events", "Exact")]
    svc = named(docs, "Service", paths[0]["backend"]["service"]["name"])
    assert json.loads(svc["metadata"]["annotations"]["cloud.google.com/neg"]) == {"ingress": True}
    backend = json.loads(svc["metadata"]["annotations"]["cloud.google.com/backend-config"])["default"]
    health = named(docs, "BackendConfig", backend)["spec"]["healthCheck"]
    serve = named(docs, "Deployment", "gke-bot-serve")
    container = pod_spec(serve)["containers"][0]
    assert health["requestPath"] == container["readinessProbe"]["httpGet"]["path"] == "/livez"
    assert health["port"] == next(p["containerPort"] for p in container["ports"] if p["name"] == "http")


def test_socket_mode_has_no_inbound_path():
    docs = render("socket")
    assert not of_kind(docs, "Ingress") and not of_kind(docs, "ManagedCertificate")
    socket = named(docs, "Deployment", "gke-bot-socket")
    labels = pod_labels(socket)
    for svc in of_kind(docs, "Service"):
        if selects({"matchLabels": svc["spec"]["selector"]}, labels):
            assert [p["port"] for p in svc["spec"]["ports"]] == [9090], svc["metadata"]["name"]
    assert not [d for d in workloads(docs) if pod_labels(d).get("app.kubernetes.io/component") == "serve"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_bot_process_runs_a_gke_bot_command(overlay):
    """The args of each bot container are a `gke-bot` subcommand that exists (the image's ENTRYPOINT is
    gke-bot). Components for processes that other work adds are checked once that command exists."""
    from bot.cli import _parser
    sub = next(a for a in _parser()._actions if a.dest == "cmd")
    missing = []
    for w in workloads(render(overlay, COMPONENTS)):
        if is_bot(w):
            for c in pod_spec(w)["containers"]:
                assert "command" not in c, "keep the image's ENTRYPOINT (gke-bot)"
                if c["args"][0] not in sub.choices:
                    missing.append(c["args"][0])
    for w in workloads(render(overlay)):
        if is_bot(w):
            assert pod_spec(w)["containers"][0]["args"][0] in sub.choices
    if missing:
        pytest.skip(f"components for commands gke-bot does not have yet: {sorted(set(missing))}")
