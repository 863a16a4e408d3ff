"""Which language a reader gets, and the pure parts of `/gke explain` (bot.explain): the grammar's `--lang` and
`explain`, the policy's `locale:`, documentation links for Japanese readers, plan descriptions from kind and
params, and reading a pasted error (the cluster typed, named, a bare first word, the cluster list)."""
from __future__ import annotations

import re

import pytest
import yaml

from bot.explain import command, read, settle
from bot.grammar import COMMANDS, GrammarError, lang_flag, parse
from bot.i18n import choose, doc_url, language
from bot.policy import Asker, PolicyError
from bot.policy import parse as parse_policy
from bot.render import blocks as render
from bot.render import explain as texts
from bot.render import plans
from checks.model import ClusterRef
from checks.resolve import ClusterSpec

JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
PAYMENTS = ClusterRef("acme-prod", "europe-west4", "payments")
RECREATION = 'ERROR: (gcloud.container.clusters.update) ResponseError: code=400, message=Node pool "p1" requires recreation.'
FORBIDDEN = ('Error from server (Forbidden): roles.rbac.authorization.k8s.io is forbidden: User "bob@example.com" '
             'cannot list resource "roles" in API group "rbac.authorization.k8s.io" in the namespace "kube-system": '
             'requires one of ["container.roles.list"] permission(s).')


@pytest.mark.parametrize("flag, binding, user, expected", [
    ("", "", "ja-JP", "ja"), ("", "", "en-US", "en"), ("", "", "fr-FR", "en"), ("", "", "", "en"),
    ("", "ja-JP", "en-US", "ja"), ("", "en", "ja-JP", "en"),  # the binding fixes it
    ("en", "ja-JP", "ja-JP", "en"), ("ja", "", "en-US", "ja"),  # --lang wins
])
def test_the_language_is_the_flag_else_the_binding_else_the_user(flag, binding, user, expected):
    assert choose(flag, binding, user) == expected


def test_lang_on_every_command_and_explain():
    for name in COMMANDS:
        text = {"wi": "wi c ns/ksa", "rbac": "rbac c get pods", "explain": "explain --lang ja Unauthorized",
                "help": "help", "audit": "audit 3"}.get(name, f"{name} c")
        if name != "explain":
            text += " --lang ja"
        assert parse(text).lang == "ja", text
    assert parse("why-403 c --lang=en-US").lang == "en"
    with pytest.raises(GrammarError, match="`--lang`"):
        parse("why-403 c --lang fr")
    assert lang_flag("why-403 Bad_Name --lang ja") == "ja" and lang_flag("why-403 x") == ""
    with language("ja"):  # grammar errors in the reader's language
        with pytest.raises(GrammarError) as err:
            parse("why-403")
    assert JAPANESE.search(str(err.value)) and "why-403 CLUSTER" in str(err.value)


def test_explain_keeps_the_pasted_text_and_shows_one_safe_line():
    cmd = parse("explain europe-west4/payments\n" + RECREATION + "\n<!channel> `x`")
    assert cmd.name == "explain" and cmd.args["text"].startswith("europe-west4/payments\nERROR:")
    assert cmd.source == "explain " + cmd.args["text"] and parse(cmd.source).args == cmd.args
    assert "\n" not in cmd.text and len(cmd.text) <= 70 and not set(cmd.text) & set("<>&`")
    assert parse("EXPLAIN   --lang ja  x y").args["text"] == "x y"
    with pytest.raises(GrammarError, match="Paste the error"):
        parse("explain   ")
    with pytest.raises(GrammarError, match="too long"):
        parse("explain " + "x" * 13000)
    parse("explain " + "x" * 11000)  # longer than any other command may be


def test_binding_locale_key():
    policy = parse_policy(yaml.safe_load("bindings: [{channels: [C1AA], projects: [acme-prod], locale: ja-JP}]"),
                          ("acme-prod",), "p.yaml")
    assert policy.binding_for("C1AA").locale == "ja-JP"
    for bad in ("fr-FR", "japanese", 3):
        with pytest.raises(PolicyError, match="locale"):
            parse_policy({"bindings": [{"channels": ["C1AA"], "projects": ["acme-prod"], "locale": bad}]},
                         ("acme-prod",), "p.yaml")
    assert Asker.from_slack({"id": "U1", "locale": "ja-JP"}).locale == "ja-JP"


def test_japanese_readers_get_japanese_documentation_links():
    url = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors#error_400"
    assert doc_url(url, "en") == url
    assert doc_url(url, "ja") == "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors?hl=ja#error_400"
    own = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/4xx-errors?hl=ja#error_400"
    assert doc_url(own, "ja") == own  # the engine's own ?hl=ja is kept as it is
    assert doc_url("https://kubernetes.io/docs/reference/access-authn-authz/rbac/", "ja").endswith("/rbac/")
    with language("ja"):
        assert doc_url(url).endswith("?hl=ja#error_400")


@pytest.mark.parametrize("kind, params, en, ja", [
    ("grant_service_agent", {"project": "p-1", "member": "serviceAccount:service-1@x", "role": "roles/container.serviceAgent"},
     "Re-grant roles/container.serviceAgent", "roles/container.serviceAgent を再付与"),
    ("upgrade_node_pool", {"project": "p-1", "location": "l", "cluster": "c", "pool": "pool-1", "from_version": "1.24",
                           "to_version": "1.25", "mode": "upgrade"}, "Upgrade pool-1 to 1.25", "pool-1 を 1.25 にアップグレード"),
    ("upgrade_node_pool", {"project": "p-1", "location": "l", "cluster": "c", "pool": "pool-1", "from_version": "1.25",
                           "to_version": "1.25", "mode": "recreate"}, "Recreate pool-1 at 1.25", "pool-1 を 1.25 で再作成"),
    ("enable_http_load_balancing", {"project": "p-1", "location": "l", "cluster": "c"}, "Enable HTTP load balancing",
     "HTTP 負荷分散を有効化"),
])
def test_fixes_are_described_from_kind_and_params_in_each_language(kind, params, en, ja):
    assert plans.label(kind, params, "stored label") == en
    with language("ja"):
        assert plans.label(kind, params, "stored label") == ja
        summary = plans.summary(kind, params, "stored summary")
    assert JAPANESE.search(summary) and "stored" not in summary
    assert all(f"`{v}`" in summary for k, v in params.items() if k in ("cluster", "pool", "member"))
    assert plans.label("future_kind", {}, "Stored label") == "Stored label"


def test_reading_a_pasted_error():
    # the cluster typed before the error
    r = read("acme-prod/europe-west4/payments " + RECREATION)
    assert r.rec.command == "why-400" and r.cluster == ClusterSpec("payments", "europe-west4", "acme-prod")
    assert not r.needs_listing()
    # a bare first word: a cluster only when the binding has one of that name
    r = read("payments " + RECREATION)
    assert r.candidate == ClusterSpec("payments") and r.needs_listing()
    rec, cluster, choices = settle(r, [PAYMENTS, ClusterRef("acme-prod", "us-east1", "shop")])
    assert cluster == ClusterSpec("payments", "europe-west4", "acme-prod") and rec.cluster == cluster
    rec, cluster, choices = settle(r, [ClusterRef("acme-prod", "us-east1", "shop"), ClusterRef("acme-dev", "x1", "y")])
    assert cluster is None and len(choices) == 2  # no such cluster: the whole text is the error, and a picker
    # no cluster named: one cluster in the binding is used as is, several are offered
    r = read(RECREATION)
    assert settle(r, [PAYMENTS])[1] == ClusterSpec("payments", "europe-west4", "acme-prod")
    assert settle(r, [PAYMENTS, ClusterRef("acme-prod", "us-east1", "shop")])[1] is None
    # the project the error names narrows the choice
    r = read("Error: googleapi: Error 403: Retry budget exhausted: Google Compute Engine: Required permission "
             "'compute.regions.get' for 'projects/acme-dev/regions/us-east1'.")
    assert r.rec.project == "acme-dev" and r.cluster is None
    shop_dev = ClusterRef("acme-dev", "us-east1", "shop")
    assert settle(r, [PAYMENTS, shop_dev])[1] == ClusterSpec("shop", "us-east1", "acme-dev")
    # nothing recognised
    assert not read("hello, how are you?").recognised


def test_the_typed_command_passes_the_grammar_and_keeps_only_meaningful_extras():
    r = read(FORBIDDEN)
    rec, cluster, _ = settle(r, [PAYMENTS])
    assert rec.principal == "user:bob@example.com"
    cmd = command(rec, cluster, "")
    assert cmd.text == "rbac acme-prod/europe-west4/payments list roles.rbac.authorization.k8s.io -n kube-system"
    assert cmd.principal == "" and command(rec, cluster, rec.principal).principal == "user:bob@example.com"
    # a 403 naming what the asker lacks is not a "Retry budget exhausted" error of the cluster's account
    denied = read('ERROR: (gcloud.container.clusters.get-credentials) ResponseError: code=403, message=Required '
                  '"container.clusters.get" permission(s) for "projects/acme-prod/locations/europe-west4/clusters/payments".')
    assert command(denied.rec, denied.cluster, "").args == {}
    budget = read("Error: googleapi: Error 403: Retry budget exhausted: Google Compute Engine: Required permission "
                  "'compute.regions.get' for 'projects/acme-prod/regions/europe-west4'.")
    assert command(budget.rec, ClusterSpec("payments", "europe-west4", "acme-prod"), "").args == {
        "permission": "compute.regions.get", "resource": "projects/acme-prod/regions/europe-west4"}


def test_explain_answers_in_the_readers_language():
    with language("ja"):
        unknown = texts.unrecognised_text()
        missing = texts.missing_text(read("Unable to find pod: generic::not_found").rec)
    assert JAPANESE.search(unknown) and "`/gke why-403 CLUSTER`" in unknown and unknown.count("\n•") >= 25
    assert "NAMESPACE/KSA" in missing and JAPANESE.search(missing)
    en = texts.unrecognised_text()
    assert not JAPANESE.search(en) and "I did not recognise" in en
    # the picker: one option per cluster, values within Slack's limits
    message = texts.picker(read(RECREATION).rec, [PAYMENTS] * 120, "pick-1")
    select = message["blocks"][-1]["accessory"]
    assert message["blocks"][-1]["block_id"] == "explain_pick:pick-1" and len(select["options"]) == 100
    assert select["options"][0]["value"] == "acme-prod/europe-west4/payments"
    assert "first 100 of 120" in message["blocks"][-1]["text"]["text"]


def test_parent_message_shows_one_line_in_the_readers_language():
    long = "explain " + "x" * 300 + "\nsecond line"
    shown = render.parent_text("U1", long)
    assert "second line" not in shown and len(shown) < 200
    with language("ja"):
        assert render.parent_text("U123", "why-403 c") == "<@U123> が `/gke why-403 c` を実行しました — 確認中…"


def test_the_terminal_follows_lc_all_and_lang(env, google):
    from tests.helpers import AGENT, GKE1, drop_binding
    from tests.test_cli import gke_bot
    drop_binding(google.projects[GKE1].iam_policy, "roles/container.serviceAgent", AGENT)
    ja = gke_bot(dict(env, LANG="ja_JP.UTF-8", LC_ALL="", LC_MESSAGES=""), "check", "why-403", "gke1")
    assert ja.returncode == 1, ja.stderr
    assert "修正方法:" in ja.stdout and "失敗 1 件" in ja.stdout and "?hl=ja" in ja.stdout
    assert "[FAIL] gke/service-agent-role" in ja.stdout  # the tags stay: output is searched the same way
    bad = gke_bot(dict(env, LC_ALL="ja_JP.UTF-8"), "check", "why-403", "Bad_Name")
    assert bad.returncode == 2 and "有効なクラスタ名ではありません" in bad.stderr
    en = gke_bot(dict(env, LANG="en_US.UTF-8", LC_ALL="", LC_MESSAGES=""), "check", "why-403", "gke1")
    assert "fix:" in en.stdout and not JAPANESE.search(en.stdout + en.stderr)
