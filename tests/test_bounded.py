"""Bounded work: the job deadline really ends a diagnosis (RQ worker and in-process), pools are bounded, diagnoses
per cluster are limited, Kubernetes lists are capped and say what they skipped, proxied answers are bounded in
size and time, and a report is one message however many findings it has."""
from __future__ import annotations

import json
import threading
import time

import pytest
import redis as redislib

from bot.grammar import parse
from bot.work.jobs import ClusterSlots
from checks.engine import run_command
from checks.model import ClusterRef, Finding, Report, Status
from tests.conftest import serve_cluster, serve_with
from tests.fakes.kube import node, pod, service_account
from tests.helpers import GKE1, gateway
from tests.test_access_e2e import answered, ask
from tests.test_edge import command, edge_with  # noqa: F401 - edge_with is a fixture

SLOW_RBAC = r"/apis/authorization\.k8s\.io/"  # SubjectAccessReviews: the principal-rbac check waits on them
RBAC_TITLE = "Kubernetes lets you get and list namespaces and pods"


@pytest.fixture
def slow_kube(google, kube):
    serve_cluster(google, kube, GKE1, "gke1")
    kube.delays[SLOW_RBAC] = 40.0  # longer than the whole job may take
    yield kube
    kube.delays.clear()


def test_the_deadline_ends_a_diagnosis_on_the_worker_and_frees_it(spawn, env, slack, google, redis_url, slow_kube):
    served = serve_with(spawn, env, redis_url, GKE_BOT_JOB_TIMEOUT="12")  # 9 s for the checks, 3 s to answer
    t0 = time.monotonic()
    ask(served, slack, "why-403 gke1")
    parent, thread = answered(served, slack, "C123", "why-403 gke1")
    took = time.monotonic() - t0
    assert took < 14, f"the answer took {took:.1f} s"
    assert "did not finish within the diagnosis deadline (9 s) and was abandoned" in thread
    assert RBAC_TITLE in thread
    assert "GKE service agent has roles/container.serviceAgent" in thread  # the checks that finished are there
    # the worker is free at once: the next diagnosis starts and answers while the abandoned request still hangs
    t1 = time.monotonic()
    ask(served, slack, "why-400 gke1")
    answered(served, slack, "C123", "why-400 gke1")
    assert time.monotonic() - t1 < 10
    assert redislib.Redis.from_url(redis_url).zcard("gke-bot:open") == 0


def test_the_deadline_ends_a_diagnosis_in_process_too(edge_with, slack, google, slow_kube):
    edge = edge_with(GKE_BOT_JOB_TIMEOUT="8")  # 6 s for the checks
    t0 = time.monotonic()
    command(edge, slack, "why-403 gke1", trigger="dl-1")

    def done():
        msgs = [m for m in slack.messages("C123") if not m.get("thread_ts") and "checking…" not in m["text"]]
        return msgs and msgs[0]
    parent = slack.wait_for(done, timeout=15)
    assert time.monotonic() - t0 < 10
    thread = json.dumps([m.get("blocks") for m in slack.thread("C123", parent["ts"])])
    assert "did not finish within the diagnosis deadline (6 s)" in thread and RBAC_TITLE in thread


def test_a_full_in_process_queue_tells_the_asker_at_once(edge_with, slack, google):
    edge = edge_with(GKE_BOT_INPROCESS_WORKERS="1", GKE_BOT_INPROCESS_BACKLOG="1", GKE_BOT_RATE_USER="100/60")
    google.latency = 1.0
    try:
        for i, cluster in enumerate(("gke1", "gke2")):
            command(edge, slack, f"why-400 {cluster}", trigger=f"full-{i}")
            slack.wait_for(lambda: len([m for m in slack.messages("C123") if not m.get("thread_ts")]) == i + 1)
        t0 = time.monotonic()
        third = command(edge, slack, "why-400 gke3", trigger="full-3")
        told = slack.wait_for(lambda: slack.responses_to(third.response_url), timeout=5)
        assert "I am busy with other diagnoses" in told[0]["text"] and time.monotonic() - t0 < 2
    finally:
        google.latency = 0.0
    assert len([m for m in slack.messages("C123") if not m.get("thread_ts")]) == 2
    # the two queued diagnoses are answered before the test (and its fakes) end
    slack.wait_for(lambda: all("checking…" not in m["text"] for m in slack.messages("C123") if not m.get("thread_ts")),
                   timeout=30)


# ---- diagnoses per cluster ------------------------------------------------------------------------------------
REF = ClusterRef(GKE1, "europe-west4-a", "gke1")


@pytest.mark.parametrize("backend", ["redis", "in-process"])
def test_at_most_n_diagnoses_of_a_cluster_at_once(settings, redis_url, backend):
    from dataclasses import replace
    s = replace(settings, cluster_concurrency=2)
    slots = ClusterSlots(s, redislib.Redis.from_url(redis_url) if backend == "redis" else None)
    ClusterSlots._local.clear()
    held, release, order = [], threading.Event(), []

    def hold(name):
        with slots.admit(REF, time.monotonic() + 10) as refused:
            order.append((name, refused))
            held.append(name)
            release.wait(10)

    threads = [threading.Thread(target=hold, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    while len(held) < 2:
        time.sleep(0.01)
    with slots.admit(REF, time.monotonic() + 0.5) as refused:  # a third finds no slot before its deadline
        assert "2 diagnoses of `projects/gcpdiag-gke1-aaaa/locations/europe-west4-a/clusters/gke1` were already " \
               "running" in refused
    with slots.admit(ClusterRef(GKE1, "europe-west4", "gke2"), time.monotonic() + 0.5) as refused:
        assert refused == ""  # another cluster is not affected
    t3 = threading.Thread(target=hold, args=("c",))
    t3.start()
    time.sleep(0.6)
    assert sorted(held) == ["a", "b"]  # c waits for a slot
    release.set()
    for t in threads + [t3]:
        t.join(10)
    assert sorted(n for n, r in order if r == "") == ["a", "b", "c"]  # c ran once a slot was free


# ---- Kubernetes lists -----------------------------------------------------------------------------------------
def test_capped_lists_are_paginated_and_the_report_says_what_was_not_looked_at(google, kube, settings, monkeypatch):
    import checks.gateway.kube as kube_gateway
    monkeypatch.setattr(kube_gateway, "PAGE", 4)
    monkeypatch.setattr(kube_gateway, "LIST_CAP", 10)
    serve_cluster(google, kube, GKE1, "gke2")
    kube.add(service_account("app", "default", {"iam.gke.io/gcp-service-account": f"gke2sa@{GKE1}.iam.gserviceaccount.com"}))
    kube.add(node("gke-gke2-default-pool-1", "default-pool"))
    for i in range(25):
        kube.add(pod(f"filler-{i:02d}", "kube-system", sa="default", node="gke-gke2-default-pool-1"))
    cmd = parse("wi gke2 default/app")
    report = run_command(gateway(settings), cmd.name, cmd.cluster, (GKE1,), "user:alice@example.com", cmd.args)
    [partial] = [f for f in report.findings if f.id == "bot/partial-lists"]
    assert partial.status is Status.WARN
    assert "`pods.list kube-system` (first 10 items)" in partial.detail
    pages = [c for c in kube.calls if c.path == "/api/v1/namespaces/kube-system/pods"]
    assert len(pages) == 3 and all("limit=" in c.query for c in pages)
    assert "continue=" in pages[1].query and "continue=" in pages[2].query


# ---- proxied health-check answers -----------------------------------------------------------------------------
def trickle(seconds: float, every: float = 0.25):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(every)
        yield b"."


def test_a_pod_that_trickles_its_answer_cannot_hold_the_job(google, kube, settings):
    from checks.gateway.kube import PROXY_BYTES, PROXY_SECONDS
    serve_cluster(google, kube, GKE1, "gke1")
    kube.add(pod("slow-1", "shop", sa="default", node="n1"))
    kube.add(pod("big-1", "shop", sa="default", node="n1"))
    kube.proxy_handlers[("shop", "slow-1", 8080)] = lambda path, headers: (200, {"Content-Type": "text/plain"},
                                                                          trickle(60))
    kube.proxy_handlers[("shop", "big-1", 8080)] = lambda path, headers: (200, {"Content-Type": "text/plain"},
                                                                         (b"<b>*x*</b>" * 1000 for _ in range(100)))
    gw = gateway(settings)
    t0 = time.monotonic()
    slow = gw.pod_proxy(REF, "shop", "slow-1:8080", "/healthz")
    took = time.monotonic() - t0
    assert took < PROXY_SECONDS + 2, f"a trickling pod held the read for {took:.1f} s"
    assert slow.complete is False and 0 < len(slow.body) < 40
    big = gw.pod_proxy(REF, "shop", "big-1:8080", "/healthz")
    assert big.complete is False and len(big.body) == PROXY_BYTES


# ---- one report, however many findings ------------------------------------------------------------------------
def test_a_report_with_hundreds_of_findings_is_one_message_plus_the_full_file(edge_with, slack, google, kube):
    from tests.test_check_ingress_fixtures import ingress
    serve_cluster(google, kube, GKE1, "gke1")
    for i in range(120):
        kube.add(ingress(f"web-{i:03d}", "shop", f"svc-{i:03d}", 80))
    edge = edge_with()
    command(edge, slack, "ingress gke1", trigger="many-1")

    def done():
        msgs = [m for m in slack.messages("C123") if not m.get("thread_ts") and "checking…" not in m["text"]]
        return msgs and msgs[0]
    parent = slack.wait_for(done, timeout=60)
    replies = slack.thread("C123", parent["ts"])
    blocks = [m for m in replies if m.get("blocks")]
    assert len(blocks) == 1, "one thread reply of blocks"
    assert len(blocks[0]["blocks"]) <= 50
    assert "more problems in one line each above" in json.dumps(blocks[0]["blocks"])
    files = slack.wait_for(lambda: slack.files, timeout=10)
    content = files[0]["content"]
    content = content.decode() if isinstance(content, bytes) else content
    assert "web-119" in content and files[0]["thread_ts"] == parent["ts"]


def test_report_message_fits_block_kit_and_marks_what_it_left_out():
    from bot.render import blocks as render
    findings = [Finding(f"c/{i}", Status.FAIL, f"title {i}", detail="d " * 50, remedy="r", resource=f"r/{i}")
                for i in range(200)] + [Finding("ok/1", Status.OK, "fine", detail="ok")]
    message, partial = render.report_message(Report("ingress", "projects/p/locations/l/clusters/c", findings))
    assert partial and len(message["blocks"]) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in message["blocks"] if b["type"] == "section")
    small, partial = render.report_message(Report("ingress", "c", findings[:3]))
    assert not partial and small == render.report_messages(Report("ingress", "c", findings[:3]))[0]


def test_tenant_text_is_quoted_as_code(kube, google, settings):
    """A Pod's answer is the tenant's text: inline code, backticks and line breaks neutralised, never mrkdwn."""
    from tests.test_check_ingress_fixtures import check, http_probe, web
    serve_cluster(google, kube, GKE1, "gke1")
    said = json.dumps({"message": "*[OK]* all good ```\n<!channel> `rm -rf`"}).encode()
    web(kube, readiness=http_probe("/healthz", 8080),
        handler=lambda path: (500, {"Content-Type": "application/json"}, said))
    [f] = check("ingress/health-check-path", settings)
    shown = "`*[OK]* all good ''' <!channel> 'rm -rf'`"
    assert f"answers 500 ({shown})" in f.detail
    assert f.evidence.endswith(f"→ 500 {shown}")
    from bot.render import blocks as render
    rendered = json.dumps(render.report_messages(Report("ingress", "c", [f])))
    assert "<!channel>" not in rendered and "&lt;!channel&gt;" in rendered


def test_a_slow_cluster_lookup_ends_at_the_deadline_too(google, settings):
    google.latency = 3.0
    try:
        cmd = parse("why-403 gke1")
        t0 = time.monotonic()
        report = run_command(gateway(settings), cmd.name, cmd.cluster, (GKE1,), "user:a@example.com", cmd.args,
                             strict=True, deadline=time.monotonic() + 1.2)
        assert time.monotonic() - t0 < 2
        assert report.note == ("Looking up cluster `gke1` did not finish within 1 s (Google answered too slowly). "
                               "Try again.") and not report.findings
    finally:
        google.latency = 0.0
