"""Golden files: one report of each command (why-403, why-401, why-400, why-404, wi, rbac, ingress, doctor,
explain) in each language (en, ja), as the thread reply's Block Kit, from real diagnoses of the fakes.

Each report is what the worker posts: the engine run against the fake Google and Kubernetes APIs under the
reader's language (`checks.i18n.language`, so the findings' own texts follow the engine's catalog), then
rendered by bot.render.blocks. A changed rendering or a changed finding text fails here; when the change is
intended, regenerate every golden file with one command and review the diff:

    GKE_BOT_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_reports.py

(tests/golden/reports/COMMAND.LANG.json). Only what differs from run to run is normalised: the fake
Kubernetes API's port and timestamps.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from bot.explain import command as typed_command
from bot.explain import read, settle
from bot.grammar import parse
from bot.i18n import language
from bot.policy import Identity
from bot.render import blocks as render
from bot.render import explain as texts
from checks.engine import run_command
from checks.model import ClusterRef
from tests.conftest import serve_cluster
from tests.fakes.kube import node, pod, service_account
from tests.helpers import AGENT, GKE1, drop_binding, gateway
from tests.test_check_ingress_fixtures import argocd

GOLDEN = Path(__file__).parent / "golden" / "reports"
ASKER = "user:alice@example.com"
GSA = f"gke2sa@{GKE1}.iam.gserviceaccount.com"
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff01-\uff60]")
# the seed 001 error of a credential rotation, on the recorded gke1
EXPLAINED = (f"$ gcloud container clusters update gke1 --location=europe-west4-a --project={GKE1} "
             "--complete-credential-rotation\n"
             'ERROR: (gcloud.container.clusters.update) ResponseError: code=400, message=Node pool "default-pool" '
             "requires recreation.")
COMMANDS = ("why-403", "why-401", "why-400", "why-404", "wi", "rbac", "ingress", "doctor", "explain")


def _world(command: str, google, kube) -> str:
    """Set the fakes up so that the command has something to say; returns the command line."""
    if command in ("why-403", "doctor"):
        drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    if command in ("why-400", "explain", "doctor"):
        google.cluster(GKE1, "gke1")["nodePools"][0]["version"] = "1.24.10-gke.2300"
    if command in ("wi", "rbac"):
        serve_cluster(google, kube, GKE1, "gke2")
        kube.add(service_account("app", "default", {"iam.gke.io/gcp-service-account": GSA}))
        kube.add(node("gke-gke2-default-pool-1", "default-pool"))
        kube.add(pod("app-1", sa="app", node="gke-gke2-default-pool-1", labels={"app": "app"}))
    else:
        serve_cluster(google, kube, GKE1, "gke1")
    if command == "ingress":
        argocd(kube, google)
    return {"wi": "wi gke2 default/app", "rbac": "rbac gke2 list pods -n default",
            "explain": "explain " + EXPLAINED}.get(command, f"{command} gke1")


def report_message(command: str, settings, google, kube) -> dict:
    """The thread reply of `/gke COMMAND …` as the worker renders it, in the current language."""
    cmd = parse(_world(command, google, kube))
    context = []
    if cmd.name == "explain":  # as bot.work.explaining settles it: read, the cluster, the typed command
        reading = read(cmd.args["text"])
        listed = [ClusterRef(GKE1, c["location"], c["name"]) for c in google.projects[GKE1].clusters]
        rec, cluster, _choices = settle(reading, listed)
        cmd = typed_command(rec, cluster, "")
        context = texts.recognised_lines(rec) + [texts.ran_line(cmd.text)]
    report = run_command(gateway(settings), cmd.name, cmd.cluster, (GKE1,), ASKER, cmd.args, strict=True)
    report.context += context + [Identity(ASKER, "slack").describe()]
    plans = {i: f"plan-{i}" for i, f in enumerate(report.findings) if f.remediation}
    message, _partial = render.report_message(report, plans)
    return message


def normalised(message: dict) -> str:
    text = json.dumps(message, indent=1, ensure_ascii=False) + "\n"
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?", "TIMESTAMP", text)


@pytest.mark.parametrize("lang", ["en", "ja"])
@pytest.mark.parametrize("command", COMMANDS)
def test_report_matches_its_golden_file(command, lang, settings, google, kube):
    with language(lang):
        text = normalised(report_message(command, settings, google, kube))
    path = GOLDEN / f"{command}.{lang}.json"
    if os.environ.get("GKE_BOT_UPDATE_GOLDEN") or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"the {lang} report of {command} changed; see {path} (regenerate: see the docstring)"
    shown = json.loads(text)
    assert shown["blocks"] and len(shown["blocks"]) <= render.MAX_BLOCKS
    if lang == "en":
        assert not JAPANESE.search(text), "an English reader sees no Japanese"
    else:
        # the bot's own words are Japanese: the heading, the status words, and every documentation link
        assert "（`projects/" in shown["blocks"][0]["text"]["text"]
        assert "ドキュメント>" in text and "|documentation>" not in text
        assert "hl=ja" in text


def test_golden_files_are_all_in_use():
    """No stale golden file: one per command and language, nothing else."""
    wanted = {f"{c}.{lang}.json" for c in COMMANDS for lang in ("en", "ja")}
    assert {p.name for p in GOLDEN.glob("*.json")} <= wanted
