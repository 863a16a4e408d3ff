"""Rendering deploy/ with the real `kubectl kustomize`, for the static checks of tests/test_deploy_*.py.

Each test that needs a tool skips, naming it, only when the tool is not installed; with
GKE_BOT_REQUIRE_TOOLS=1 (set by .ci/run, which installs them all) a missing tool fails instead.
Rendered documents are plain dicts, exactly what `kubectl apply -k` would send.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("http", "socket")
COMPONENTS = tuple(sorted(p.name for p in (DEPLOY / "components").iterdir() if (p / "kustomization.yaml").exists()))
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


def missing_tool(why: str):
    """Skip (a developer without the tool) or, in CI (GKE_BOT_REQUIRE_TOOLS=1), fail."""
    if os.environ.get("GKE_BOT_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{why}; CI requires it")
    pytest.skip(why)


def tool(name: str, why: str) -> str:
    """A command on PATH, or installed beside this Python (pip's scripts folder; pyenv may not have
    made a shim for it yet)."""
    import sysconfig
    exe = shutil.which(name) or shutil.which(name, path=sysconfig.get_path("scripts"))
    if not exe:
        missing_tool(f"{name} is not installed ({why})")
    return exe


def kubectl() -> str:
    return tool("kubectl", "it renders the kustomizations")


def kubernetes_validate():
    try:
        import kubernetes_validate as kv
    except ImportError:
        missing_tool("kubernetes-validate is not installed (pip install kubernetes-validate)")
    return kv


def kustomize(path: Path) -> list[dict]:
    out = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"kubectl kustomize {path} failed:\n{out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@lru_cache(maxsize=None)
def _rendered(overlay: str, components: tuple[str, ...]) -> tuple:
    if not components:
        return tuple(kustomize(DEPLOY / "overlays" / overlay))
    # What an operator does: copy deploy/, uncomment the components in the overlay, render.
    import tempfile
    with tempfile.TemporaryDirectory(prefix="gke-bot-deploy-") as tmp:
        copy = Path(tmp) / "deploy"
        shutil.copytree(DEPLOY, copy)
        kfile = copy / "overlays" / overlay / "kustomization.yaml"
        text = kfile.read_text()
        for name in components:
            line = f"# - ../../components/{name}"
            assert line in text, f"{overlay}/kustomization.yaml does not offer component {name}"
            text = text.replace(line, f"- ../../components/{name}")
        kfile.write_text(text)
        return tuple(kustomize(copy / "overlays" / overlay))


def render(overlay: str, components: tuple[str, ...] = ()) -> list[dict]:
    """The documents of an overlay, optionally with components enabled (a fresh deep copy each time)."""
    import copy
    return copy.deepcopy(list(_rendered(overlay, tuple(components))))


def variants() -> list[tuple[str, tuple[str, ...]]]:
    """Every overlay alone, and with every component enabled."""
    return [(o, ()) for o in OVERLAYS] + [(o, COMPONENTS) for o in OVERLAYS]


def variant_id(v) -> str:
    return v[0] + ("+" + "+".join(v[1]) if v[1] else "")


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_spec(doc: dict) -> dict | None:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if doc["kind"] in WORKLOAD_KINDS:
        return doc["spec"]["template"]["spec"]
    if doc["kind"] == "Pod":
        return doc["spec"]
    return None


def pod_labels(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels") or {}
    return (doc["spec"]["template"]["metadata"].get("labels") or {}) if doc["kind"] in WORKLOAD_KINDS else {}


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if pod_spec(d) is not None]


def containers(spec: dict) -> list[dict]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def is_bot(doc: dict) -> bool:
    return pod_labels(doc).get("app.kubernetes.io/name") == "gke-bot"


def is_redis(doc: dict) -> bool:
    return pod_labels(doc).get("app.kubernetes.io/name") == "redis"


def selects(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels; {} selects everything."""
    from checks.wi import selects as bot_selects  # the bot's own evaluator (wi network-policy check)
    return bot_selects(selector or {}, labels)


def env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|_KEY$|^KEY$|APIKEY)", re.I)
SECRET_VALUE = re.compile(
    r"(xox[abposr]-[0-9A-Za-z-]+|xapp-[0-9A-Za-z-]+|-----BEGIN [A-Z ]*PRIVATE KEY-----|"
    r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^@\s/]+@|AIza[0-9A-Za-z_-]{35}|\"private_key\")")
