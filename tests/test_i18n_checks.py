"""The engine answers in the reader's language (issue 15): every check's title and texts come from the `checks`
catalog, identifiers stay verbatim, Google's documentation links get `hl=ja` for Japanese readers, and an English
run carries no Japanese. The checks run against the fakes, as in their own tests."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bot.grammar import parse
from checks import i18n
from checks.engine import Context, diagnose, run_command
from checks.gateway import Gateway
from checks.i18n import _, doc_url, language
from checks.model import ClusterRef, Finding, Status
from checks.registry import CHECKS
from checks.resolve import ClusterSpec
from tests.conftest import serve_cluster
from tests.fakes.kube import service_account
from tests.helpers import AGENT, GKE1, drop_binding, gateway, one, run_check
from tests.test_check_ingress_fixtures import ARGO_BACKEND, REDIRECT, argocd, check, live  # noqa: F401 (live: fixture)

JA = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")  # kana, kanji, full-width forms
GKE1_REF = ClusterRef(GKE1, "europe-west4-a", "gke1")
GKE2_REF = ClusterRef(GKE1, "europe-west4", "gke2")
ALICE = "user:alice@example.com"
CHECKS_DIR = Path(__file__).resolve().parents[1] / "checks"


def japanese(text: str) -> bool:
    return bool(JA.search(text or ""))


def texts(f: Finding) -> list[str]:
    out = [f.title, f.detail, f.remedy, f.evidence]
    if f.remediation:
        out += [f.remediation.label, f.remediation.summary]
    return out


# ---- the catalog ------------------------------------------------------------------------------------------
def test_every_registered_title_is_translated():
    with language("ja"):
        untranslated = [c.id for c in CHECKS.values() if _(c.title) == c.title or not japanese(_(c.title))]
    assert not untranslated, untranslated


def test_google_documentation_links_get_hl_ja_for_japanese_readers_only():
    url = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/permission-errors#gke_service_account_deleted"
    assert doc_url(url) == url
    with language("ja"):
        assert doc_url(url) == ("https://cloud.google.com/kubernetes-engine/docs/troubleshooting/permission-errors"
                                "?hl=ja#gke_service_account_deleted")
        assert doc_url("https://cloud.google.com/a?x=1") == "https://cloud.google.com/a?x=1&hl=ja"
        assert doc_url("https://cloud.google.com/a?hl=en") == "https://cloud.google.com/a?hl=en"  # chosen on purpose
        assert doc_url("https://kubernetes.io/docs/") == "https://kubernetes.io/docs/"


def test_sentences_are_spaced_as_each_language_writes_them():
    assert i18n.sentences("One.", "", "Two.") == "One. Two."
    with language("ja"):
        assert i18n.sentences("一つ。", "", "二つ。") == "一つ。二つ。"


def _local_underscore(fn: ast.AST) -> int | None:
    """The line where a function binds `_` itself (a throwaway name), which would hide the module's `_()`."""
    for node in ast.walk(fn):
        if node is not fn and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ListComp,
                                                ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue  # their own scope (walked on their own)
        targets = []
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith)):
            targets = [node.target] if isinstance(node, (ast.For, ast.AsyncFor)) else \
                [i.optional_vars for i in node.items if i.optional_vars is not None]
        for t in targets:
            if any(isinstance(n, ast.Name) and n.id == "_" for n in ast.walk(t)):
                return node.lineno
    return None


def test_no_function_of_the_engine_shadows_the_translation_function():
    """`a, _, b = …` inside a function makes `_` local there: its `_("…")` calls would fail (UnboundLocalError)."""
    found = []
    for path in CHECKS_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and (line := _local_underscore(fn)):
                found.append(f"{path.relative_to(CHECKS_DIR.parent)}:{line}")
    assert not found, found


def test_the_language_reaches_the_gateways_parallel_reads(settings):
    gw = Gateway(settings.google_api_url, credentials=object())
    with language("ja"):
        got = gw.parallel(lambda: i18n.current(), lambda: _("Project `{project}` does not exist."))
    assert got == ["ja", "プロジェクト `{project}` は存在しません。"]


# ---- one check per command, in Japanese ---------------------------------------------------------------------
def test_why403_service_agent_in_japanese(google, settings):
    drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    with language("ja"):
        f = one(run_check("gke/service-agent-role", settings, GKE1_REF), Status.FAIL)
    member = AGENT
    assert f.title == "GKE サービス エージェントに roles/container.serviceAgent がある"
    assert f.detail.startswith(f"GKE サービス エージェント `{member}` に、プロジェクト `{GKE1}`（番号 12340002）に対する "
                               "`roles/container.serviceAgent` がありません。")
    assert "\"DeployPatch failed\"" in f.detail  # the error string quoted verbatim
    assert f.remedy.startswith("ロールを付与し直してください:\n```\ngcloud projects add-iam-policy-binding "
                               f"{GKE1} \\\n    --member \"{member}\" \\\n    --role roles/container.serviceAgent")
    assert f.doc_url == ("https://cloud.google.com/kubernetes-engine/docs/troubleshooting/permission-errors"
                         "?hl=ja#gke_service_account_deleted")
    assert f.remediation.label == "roles/container.serviceAgent を再付与"
    assert f.remediation.params == {"project": GKE1, "member": member, "role": "roles/container.serviceAgent"}
    # the same finding in English is byte for byte what it was
    f = one(run_check("gke/service-agent-role", settings, GKE1_REF), Status.FAIL)
    assert f.title == "GKE service agent has roles/container.serviceAgent" and not any(map(japanese, texts(f)))
    assert f.doc_url == ("https://cloud.google.com/kubernetes-engine/docs/troubleshooting/permission-errors"
                         "#gke_service_account_deleted")


def test_why400_recreation_in_japanese(google, settings):
    google.operation_polls = 0
    Gateway(settings.google_api_url).container.start_ip_rotation(
        request={"name": GKE1_REF.path, "rotate_credentials": True})
    with language("ja"):
        f = one(run_check("gke/node-pool-recreation", settings, GKE1_REF), Status.FAIL)
    assert f.title == "再作成を待っているノードプールがない"
    assert f.detail.startswith("ノードプール `default-pool` は再作成が必要です。理由: 認証情報または IP のローテーションが")
    assert ('`ERROR: (gcloud.container.clusters.update) ResponseError: code=400, message=Node pool "default-pool" '
            'requires recreation.`') in f.detail  # the seed's error string, verbatim
    assert "すでにコントロール プレーンと同じバージョン `1.25.7-gke.1000` で動作しています。" in f.detail
    assert "gcloud container clusters upgrade gke1 \\\n    --node-pool=default-pool" in f.remedy
    assert f.remediation.label == "default-pool を 1.25.7-gke.1000 で再作成"
    assert f.doc_url == "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors?hl=ja"


def test_why401_guidance_in_japanese(google, settings):
    with language("ja"):
        f = one(run_check("gke/auth-client", settings, GKE1_REF, ALICE), Status.SKIP)
    assert f.title == "kubectl が gke-gcloud-auth-plugin で認証している"
    assert f.detail.startswith("`gke1` の API サーバーからの 401（Unauthorized）は")
    assert "`gke-gcloud-auth-plugin`" in f.detail
    assert "gcloud components install gke-gcloud-auth-plugin" in f.remedy  # the commands stay as they are
    assert '"message": "Unauthorized", "reason": "Unauthorized", "code": 401' in f.remedy
    assert "*3. プラグインを使用しない*" in f.remedy


def test_why404_lookup_in_japanese(google, settings):
    with language("ja"):
        report = run_command(gateway(settings), "why-404", ClusterSpec("gke-3"), (GKE1,))
    f = one([f for f in report.findings if f.id == "gke/cluster-lookup"], Status.FAIL)
    assert f.title == "指定した場所にクラスタが存在する"
    assert f.detail.startswith(f"`{GKE1}` にクラスタ `gke-3` はありません。")
    assert f"はありません。`{GKE1}/europe-west4/gke3` または `" in f.detail and f.detail.endswith("のことですか？")
    assert f.remedy.startswith("次のいずれかのことですか？\n```\ngcloud container clusters get-credentials gke3 "
                               f"--location=europe-west4 --project={GKE1}")


def test_wi_annotation_in_japanese(google, kube, settings):
    serve_cluster(google, kube, GKE1, "gke2")
    kube.add(service_account("app", "team-a", {"iam.gke.io/gcp-service-account": "gke2sa"}))
    with language("ja"):
        [f] = run_check("wi/ksa-annotation", settings, GKE2_REF, args={"namespace": "team-a", "ksa": "app"})
    assert f.status is Status.FAIL and f.title == "KSA が IAM サービス アカウントを指定している"
    assert f.detail == ("`team-a/app` は `iam.gke.io/gcp-service-account` で `gke2sa` を指定していますが、これは IAM "
                        "サービス アカウントのメールアドレス（`NAME@PROJECT_ID.iam.gserviceaccount.com`）ではありません。"
                        "トークンの交換が失敗します。")
    assert "kubectl annotate serviceaccount app \\\n    --namespace team-a" in f.remedy
    assert f.doc_url.endswith("/troubleshooting/authentication?hl=ja#workload-identity")


def test_rbac_review_in_japanese(google, kube, settings):
    serve_cluster(google, kube, GKE1, "gke2")
    cmd = parse("rbac gke2 list roles.rbac.authorization.k8s.io -n kube-system")
    principal = "serviceAccount:example-account@example-project.iam.gserviceaccount.com"
    with language("ja"):
        f = one(run_check("rbac/access-review", settings, GKE2_REF, principal, cmd.args), Status.FAIL)
    assert f.title == "Kubernetes がリクエストを許可している（RBAC または IAM）"
    assert f.detail.startswith(f"`{principal}` は `gke2` で Namespace `kube-system` での "
                               "`list roles.rbac.authorization.k8s.io` を実行できません。")
    assert "Kubernetes RBAC も IAM（`container.roles.list`）も許可していません" in f.detail
    # kubectl's own refusal is quoted as kubectl prints it
    assert ('Error from server (Forbidden): roles.rbac.authorization.k8s.io is forbidden: User '
            '"example-account@example-project.iam.gserviceaccount.com" cannot list resource "roles"') in f.detail
    assert "kind: Role\n" in f.remedy and "--role roles/container.viewer" in f.remedy
    assert f.remedy.startswith("Kubernetes RBAC で許可してください")


@pytest.mark.usefixtures("live")
def test_ingress_health_check_in_japanese(google, kube, settings):
    argocd(kube, google)
    with language("ja"):
        f = one(check("ingress/health-check-path", settings), Status.FAIL)
    assert f.title == "ロードバランサのヘルスチェックにサービング Pod が 200 を返す"
    assert f.detail.startswith(f"ヘルスチェックはポート 8080 への `HTTP GET /healthz` です（ロードバランサのヘルスチェック "
                               f"`{ARGO_BACKEND}` から）。")
    assert f"307 と `Location: {REDIRECT}`" in f.detail and "（HTTPS に）リダイレクトしています" in f.detail
    assert "`--insecure`" in f.remedy and "- --insecure" in f.remedy
    assert "（リダイレクトは追跡しない）→ 307, Location:" in f.evidence
    assert f.doc_url == "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/ingress-health-checks?hl=ja"


# ---- whole commands ---------------------------------------------------------------------------------------
def _broken(google):
    """A project where much is wrong, so that many texts are produced."""
    policy = google.projects[GKE1].iam_policy
    drop_binding(policy, "roles/container.serviceAgent", AGENT)
    drop_binding(policy, "roles/editor", "serviceAccount:12340002-compute@developer.gserviceaccount.com")
    drop_binding(policy, "roles/editor", "serviceAccount:12340002@cloudservices.gserviceaccount.com")


COMMANDS = ["doctor gke1", "why-403 gke1", "why-400 gke1", "why-401 gke1", "why-404 gke-1", "wi gke1 default/app",
            "rbac gke1 list pods -n default", "ingress gke1"]


def _run(settings, text: str):
    cmd = parse(text)
    return run_command(gateway(settings), cmd.name, cmd.cluster, (GKE1,), ALICE, cmd.args)


@pytest.mark.parametrize("text", ["doctor gke1", "why-403 gke1"])
def test_an_english_run_has_no_japanese(google, kube, settings, text):
    serve_cluster(google, kube, GKE1, "gke1")
    _broken(google)
    report = _run(settings, text)
    assert report.findings and any(f.status is Status.FAIL for f in report.findings)
    leaks = [(f.id, t) for f in report.findings for t in texts(f) if japanese(t)]
    assert not leaks, leaks
    assert all("hl=ja" not in f.doc_url for f in report.findings)


@pytest.mark.parametrize("text", COMMANDS)
def test_a_japanese_run_is_japanese_throughout(google, kube, settings, text):
    """Every finding of every command: a Japanese title and detail, a Japanese remedy unless it is only
    commands, Google's documentation in Japanese."""
    serve_cluster(google, kube, GKE1, "gke1")
    _broken(google)
    with language("ja"):
        report = _run(settings, text)
    assert report.findings, report.note
    english = [(f.id, t[:80]) for f in report.findings for t in (f.title, f.detail) if not japanese(t)]
    english += [(f.id, f.remedy[:80]) for f in report.findings
                if f.remedy and not f.remedy.startswith("```") and not japanese(f.remedy)]
    english += [(f.id, f.remediation.label) for f in report.findings
                if f.remediation and not japanese(f.remediation.label + f.remediation.summary)]
    assert not english, english
    assert all("hl=ja" in f.doc_url for f in report.findings if "cloud.google.com" in f.doc_url)


def test_notes_of_the_engine_are_translated(google, settings):
    with language("ja"):
        report = diagnose("no-such-command", Context(gateway(settings), GKE1_REF, "no-such-command"))
        refused = run_command(gateway(settings), "why-403", ClusterSpec("gke1", project="other-project-1"),
                              (GKE1,), strict=True)
    assert report.note == "`no-such-command` はまだ実装されていません。"
    assert refused.note.startswith("プロジェクト `other-project-1` はここから参照できるプロジェクトではないため")
