"""Recognising pasted errors (issue 15 part 1): the corpus of real error strings, hostile input, the
property that any input of the cap size returns with only valid values, and the translated summaries."""
from __future__ import annotations

import json
import random
import re
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.grammar import parse
from bot.render.blocks import escape
from checks import explain
from checks.explain import (KINDS, MAX_INPUT, PERMISSION_RE, QUOTE_MAX, VERBS, Recognition, kinds, normalize,
                            recognize, recognize_all, split_leading_cluster)
from checks.i18n import language
from checks.names import (CLUSTER_RE, DNS_LABEL_RE, DNS_SUBDOMAIN_RE, LOCATION_RE, PROJECT_RE,
                          normalize_principal)
from checks.resolve import ClusterSpec
from tests.hostile_inputs import FRAGMENTS, WORST, fragment_text

CORPUS_PATH = Path(__file__).resolve().parent / "corpus" / "errors.yaml"
CORPUS = yaml.safe_load(CORPUS_PATH.read_text(encoding="utf-8"))
POSITIVE = [e for e in CORPUS if e["expect"] is not None]
NEGATIVE = [e for e in CORPUS if e["expect"] is None]


def spec(text: str | None) -> ClusterSpec | None:
    if not text:
        return None
    parts = text.split("/")
    return ClusterSpec(parts[-1], parts[-2] if len(parts) > 1 else "", parts[0] if len(parts) == 3 else "")


def assert_valid(rec: Recognition) -> None:
    """Everything a Recognition carries would pass the command grammar; nothing can break out of code
    or mrkdwn."""
    assert rec.kind in KINDS and rec.command in explain.COMMANDS
    for c in ((rec.cluster,) if rec.cluster else ()) + rec.clusters:
        assert CLUSTER_RE.match(c.name)
        assert not c.location or LOCATION_RE.match(c.location)
        assert not c.project or PROJECT_RE.match(c.project)
    if rec.cluster:
        assert rec.cluster in rec.clusters
    assert not rec.project or PROJECT_RE.match(rec.project)
    assert not rec.location or LOCATION_RE.match(rec.location)
    if rec.principal:
        assert normalize_principal(rec.principal) == rec.principal
    a = rec.args
    checks = {
        "namespace": DNS_LABEL_RE.match, "ksa": DNS_SUBDOMAIN_RE.match, "ingress": DNS_SUBDOMAIN_RE.match,
        "verb": lambda v: v in VERBS, "group": lambda g: g == "" or DNS_SUBDOMAIN_RE.match(g),
        "resource": (lambda r: all(DNS_LABEL_RE.match(p) for p in r.split("/")) and r.count("/") <= 1)
        if rec.command == "rbac" else explain._valid_resource,
        "pool": CLUSTER_RE.match, "permission": PERMISSION_RE.match,
    }
    allowed = {"wi": {"namespace", "ksa"}, "rbac": {"verb", "resource", "group", "namespace"},
               "why-400": {"pool"}, "why-403": {"permission", "resource"}, "ingress": {"namespace", "ingress"}}
    assert set(a) <= allowed.get(rec.command, set()), (rec.command, a)
    for key, value in a.items():
        assert isinstance(value, str) and checks[key](value), (key, value)
    if rec.command == "wi":
        assert set(a) in (set(), {"namespace", "ksa"})
    if rec.command == "ingress":
        assert set(a) in (set(), {"namespace", "ingress"})
    if rec.command == "rbac":
        assert {"verb", "resource", "group"} <= set(a)
    named = [v for v in rec.named.values()]
    assert all(isinstance(v, str) for v in named)
    for value in list(a.values()) + [str(c) for c in rec.clusters] + [rec.principal] + named:
        assert not set(value) & set("<>&`\n\"' "), value
    text = rec.summary() + "".join(rec.lines())
    assert text and not set(text) & set("<>&"), text
    assert len(rec.quote) <= QUOTE_MAX + 2


# ---------------------------------------------------------------- the corpus

def test_the_corpus_is_big_varied_and_sourced():
    ids = [e["id"] for e in CORPUS]
    assert len(ids) == len(set(ids)), "ids are unique"
    assert len(POSITIVE) >= 60 and len(NEGATIVE) >= 10
    assert all(e.get("source") and e.get("form") and e.get("text") for e in CORPUS)
    for seed in ("seed 000", "seed 001", "seed 002"):
        assert sum(seed in e["source"] for e in POSITIVE) >= 3, seed
    assert sum(e["source"].startswith("https://github.com/") for e in CORPUS) >= 30, "public issue threads"
    forms = {e["form"] for e in POSITIVE}
    assert {"kubectl", "gcloud", "terraform", "python", "java", "go", "slack"} <= forms
    # every kind is exercised by at least one real string
    assert {e["expect"]["kind"] for e in POSITIVE} == set(KINDS)


@pytest.mark.parametrize("entry", POSITIVE, ids=[e["id"] for e in POSITIVE])
def test_corpus_positive(entry):
    want = entry["expect"]
    rec = recognize(entry["text"])
    assert rec is not None, "not recognised"
    got = {"kind": rec.kind, "command": rec.command, "cluster": rec.cluster, "args": rec.args,
           "principal": rec.principal}
    assert got == {"kind": want["kind"], "command": want["command"], "cluster": spec(want["cluster"]),
                   "args": want["args"], "principal": want["principal"]}
    if "ignored" in want:
        assert sorted(rec.ignored) == sorted(want["ignored"])
    if "expect_project" in entry:
        assert rec.project == entry["expect_project"]
    if "expect_clusters" in entry:
        assert list(rec.clusters) == [spec(c) for c in entry["expect_clusters"]]
    assert rec.cluster_found == (want["cluster"] is not None)
    assert not set(entry.get("not_kinds", [])) & {r.kind for r in recognize_all(entry["text"])}
    assert_valid(rec)
    # the quote is the pasted text (normalised, secrets redacted), not a paraphrase
    lines, _urls, _cut = normalize(entry["text"])
    flat = " ".join(lines)
    for piece in rec.quote.replace("…", "\n").splitlines():
        assert piece.strip() in flat, piece


@pytest.mark.parametrize("entry", NEGATIVE, ids=[e["id"] for e in NEGATIVE])
def test_corpus_negative(entry):
    assert recognize(entry["text"]) is None
    assert recognize_all(entry["text"]) == []


@pytest.mark.parametrize("entry", [e for e in POSITIVE if e["expect"]["cluster"]],
                         ids=[e["id"] for e in POSITIVE if e["expect"]["cluster"]])
def test_a_recognition_with_its_cluster_is_the_typed_command(entry):
    """What the text yields parses as a typed command (bot/grammar.py) and means the same."""
    rec = recognize(entry["text"])
    line = rec.command_line()
    if rec.missing:
        assert line == ""
        return
    cmd = parse(line)
    assert (cmd.name, cmd.cluster, cmd.principal) == (rec.command, rec.cluster, rec.principal)
    if rec.command in ("wi", "rbac", "ingress"):
        assert cmd.args == rec.args
    else:
        assert cmd.args == {}


@pytest.mark.parametrize("entry", [e for e in POSITIVE if not e["expect"]["cluster"]][:25],
                         ids=[e["id"] for e in POSITIVE if not e["expect"]["cluster"]][:25])
def test_without_a_cluster_the_picked_one_completes_the_command(entry):
    rec = recognize(entry["text"])
    assert rec.command_line() == ""  # no guess: the edge asks (cluster picker)
    picked = ClusterSpec("payments", "europe-west4", "acme-prod")
    line = rec.command_line(picked, principal="")
    if rec.missing:
        assert line == "" and set(rec.missing) == {"namespace", "ksa"}
        return
    cmd = parse(line)
    assert cmd.name == rec.command and cmd.cluster == picked and cmd.principal == ""
    assert rec.with_cluster(picked).command_line(principal="") == line


def test_the_principal_is_kept_apart_from_the_command():
    """The edge decides: an approver gets the named principal, others their own identity."""
    rec = recognize(next(e for e in CORPUS if e["id"] == "seed002-forbidden-with-context")["text"])
    assert rec.principal == "user:alice@example.com"
    assert rec.command_line().endswith("--as user:alice@example.com")
    assert "--as" not in rec.command_line(principal="")
    assert parse(rec.command_line(principal="user:bob@example.com")).principal == "user:bob@example.com"


def test_kubernetes_service_accounts_are_not_google_principals():
    rec = recognize('Error from server (Forbidden): secrets is forbidden: User "system:serviceaccount:shop:web" '
                    'cannot list resource "secrets" in API group "" in the namespace "shop"')
    assert rec.principal == "" and rec.named["kubernetes_service_account"] == "shop/web"
    # in a Workload Identity error the same identity gives wi its arguments
    rec = recognize('Unable to generate access token; IAM returned 403 Forbidden: The caller does not have '
                    'permission. member "serviceAccount:acme-prod.svc.id.goog[shop/web]"')
    assert (rec.command, rec.args, rec.principal, rec.project) == ("wi", {"namespace": "shop", "ksa": "web"}, "",
                                                                   "acme-prod")


def test_json_round_trip():
    for entry in POSITIVE[:20]:
        rec = recognize(entry["text"])
        assert Recognition.from_json(json.loads(json.dumps(rec.to_json()))) == rec


# ---------------------------------------------------------------- hostile input

def test_broadcasts_and_mentions_never_survive():
    text = ("<!channel> <!here|@here> <@U0123ABC> <!subteam^S1|@oncall> error: You must be logged in to the server "
            "(Unauthorized) &lt;!everyone&gt;")
    rec = recognize(text)
    assert rec.kind == "unauthorized"
    assert "<!channel>" not in rec.quote and "<@" not in rec.quote
    assert "<!" not in escape(rec.quote) and "<@" not in escape(rec.quote)
    assert_valid(rec)


@pytest.mark.parametrize("text", [
    "Not found: projects/acme-prod/locations/europe-west4/clusters/../../etc/passwd",
    "ERROR: (gcloud.container.clusters.get-credentials) ResponseError: code=404, message=Not found: "
    "projects/acme-prod/locations/../clusters/payments.",
    "$ gcloud container clusters get-credentials ../../etc --zone us-east1-b --project acme-prod\n"
    "ERROR: (gcloud.container.clusters.get-credentials) ResponseError: code=404, message=Not found",
    "$ gcloud container clusters describe 'payments;rm -rf /' --zone=us-east1-b\n"
    "ERROR: (gcloud.container.clusters.describe) ResponseError: code=404",
])
def test_path_tricks_name_no_cluster(text):
    rec = recognize(text)
    assert rec is not None and rec.kind == "cluster-not-found"
    assert rec.cluster is None and rec.clusters == ()
    assert "cluster" in rec.ignored
    assert_valid(rec)


@pytest.mark.parametrize("user", [
    'alice@example.com\\" --as user:root@evil.example', "<@U0123> alice", "alice@example.com <!channel>",
    "`whoami`@example.com", "a" * 300 + "@example.com", "alice@exa mple.com",
])
def test_hostile_principals_are_dropped(user):
    text = (f'Error from server (Forbidden): pods is forbidden: User "{user}" cannot list resource "pods" '
            'in API group "" in the namespace "default"')
    for rec in recognize_all(text):
        assert_valid(rec)
        assert "evil" not in rec.principal and "root" not in rec.principal


@pytest.mark.parametrize("text", [
    'User "alice@example.com" cannot list resource "pods;drop" in API group "" in the namespace "default"',
    'User "alice@example.com" cannot hack resource "pods" in API group "" in the namespace "default"',
    'User "alice@example.com" cannot list resource "pods" in API group "evil group" in the namespace "x y"',
])
def test_what_rbac_cannot_take_falls_back_to_why_403(text):
    rec = recognize("Error from server (Forbidden): " + text)
    assert rec.kind == "kubectl-forbidden" and rec.command == "why-403"
    assert rec.principal == "user:alice@example.com" and rec.args == {}
    assert rec.ignored
    assert_valid(rec)


def test_the_cap_is_respected():
    error = "\nerror: You must be logged in to the server (Unauthorized)"
    junk = "".join(random.Random(7).choice(string.printable) for _ in range(MAX_INPUT))
    assert recognize(junk + error) is None  # past the cap: not read
    rec = recognize(error + junk)
    assert rec.kind == "unauthorized" and rec.truncated
    assert any("8192" in line for line in rec.lines())


def test_secrets_are_not_quoted_back():
    text = ('$ curl -H "Authorization: Bearer ya29.a0AfH6SMBx-secret-token-value-1234567890" '
            'https://34.1.2.3/api/v1/namespaces\n{"kind":"Status","apiVersion":"v1","metadata":{},'
            '"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}\n'
            'access_token=ya29.another-secret-value-0987654321')
    for rec in recognize_all(text):
        assert "secret" not in rec.quote
    rec = recognize('error: You must be logged in to the server (Unauthorized) token: "abcdefghijklmnopqrstuvwx"')
    assert "abcdefghijklmnop" not in rec.quote


def test_slack_and_terminal_formatting_is_undone():
    lines, urls, cut = normalize(
        "```\x1b[1;31m$ kubectl get pods\x1b[0m\r\n“quoted” ‘x’ &lt;tag&gt; &amp; "
        "<mailto:a@b.example|a@b.example> <https://x.example/p|label> <!here>\u200b\n│ Error: boom```")
    assert lines == ["", "kubectl get pods", "\"quoted\" 'x' <tag> & a@b.example label", "Error: boom", ""]
    assert urls == ["https://x.example/p"] and not cut
    assert normalize("?project=acme-prod&region=europe-west4&amp;x=1")[0] == [
        "?project=acme-prod&region=europe-west4&x=1"]  # only Slack's entities are decoded


def test_random_near_misses_return_with_valid_values():
    rng = random.Random(1515)
    for _ in range(30):
        _assert_returns_valid(fragment_text(rng))


# ---------------------------------------------------------------- the property: any input returns, values valid

def _assert_returns_valid(text: str) -> None:
    got = recognize_all(text)
    assert isinstance(got, list)
    for rec in got:
        assert_valid(rec)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example,
                                                                 HealthCheck.data_too_large])
@given(st.text(max_size=MAX_INPUT))
def test_any_text_returns_with_valid_values(text):
    _assert_returns_valid(text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example,
                                                                 HealthCheck.data_too_large])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=400), st.integers(min_value=1, max_value=40))
def test_adversarial_fragments_return_with_valid_values(parts, repeat):
    text = "".join(parts) * repeat
    _assert_returns_valid(text[:MAX_INPUT + 100])


@pytest.mark.parametrize("name", sorted(WORST))
def test_worst_case_inputs_of_the_cap_size_return(name):
    """Timed in bench/explain.py; here only: they return, with valid values."""
    _assert_returns_valid(WORST[name])


# ---------------------------------------------------------------- in the reader's language

def test_summaries_and_lines_in_japanese():
    rec = recognize('ERROR: (gcloud.container.clusters.update) ResponseError: code=400, message=Node pool '
                    '"test-pool-1" requires recreation.')
    assert rec.summary() == "Node pool `test-pool-1` must be recreated before this operation can run."
    with language("ja"):
        assert rec.summary() == "この操作の前に、ノードプール `test-pool-1` の再作成が必要です。"
        assert rec.lines() == ["テキストにクラスタ名がありません。"]
    rec = recognize(next(e for e in CORPUS if e["id"] == "seed002-forbidden-wrapped")["text"])
    with language("ja-JP"):
        assert rec.summary() == ("Kubernetes が Namespace `kube-system` の `roles.rbac.authorization.k8s.io` に"
                                 "対する `list` を拒否しました。")
        assert rec.lines()[1] == ("エラーには `serviceAccount:example-account@example-project.iam.gserviceaccount.com`"
                                  " が示されています。")


JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.mark.parametrize("entry", POSITIVE, ids=[e["id"] for e in POSITIVE])
def test_every_summary_has_a_japanese_form(entry):
    rec = recognize(entry["text"])
    english = rec.summary()
    with language("ja"):
        japanese = rec.summary()
        lines = rec.lines()
    assert japanese != english and JAPANESE.search(japanese)
    assert all(JAPANESE.search(line) for line in lines)
    # identifiers stay verbatim
    assert set(re.findall(r"`([^`]*)`", english)) == set(re.findall(r"`([^`]*)`", japanese))


def test_what_the_bot_recognises_is_listed_in_both_languages():
    english = kinds()
    assert [k for k, _c, _d in english] == list(KINDS)
    assert {c for _k, c, _d in english} <= set(explain.COMMANDS)
    with language("ja"):
        japanese = kinds()
    assert all(JAPANESE.search(d) for _k, _c, d in japanese)
    assert [d for _k, _c, d in japanese] != [d for _k, _c, d in english]


# ---------------------------------------------------------------- `/gke explain [CLUSTER] ERROR TEXT…`

@pytest.mark.parametrize("text, cluster, rest", [
    ("payments error: You must be logged in to the server (Unauthorized)", ClusterSpec("payments"),
     "error: You must be logged in to the server (Unauthorized)"),
    ("acme-prod/europe-west4/payments Node pool \"p\" requires recreation.",
     ClusterSpec("payments", "europe-west4", "acme-prod"), 'Node pool "p" requires recreation.'),
    ("europe-west4/payments\nError from server (Forbidden): x", ClusterSpec("payments", "europe-west4"),
     "Error from server (Forbidden): x"),
    ("error: You must be logged in to the server (Unauthorized)", None, None),
    ("kubectl get pods -n shop", None, None),
    ("Error from server (Forbidden): pods is forbidden", None, None),
    ("../../etc/passwd Node pool", None, None),
    ("payments", None, None),
])
def test_a_leading_cluster(text, cluster, rest):
    got, remaining = split_leading_cluster(text)
    assert got == cluster
    assert remaining == (rest if cluster else text)
