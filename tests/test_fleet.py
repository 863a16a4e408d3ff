"""Fleet sweeps, piece by piece: the `sweep:` policy key, comparing sweeps by key, the shared rate limiter (a real
redis-server), the scheduler's once-per-tick claim."""
from __future__ import annotations

import threading
import time

import pytest
import redis as redis_lib
import yaml

from bot.policy import PolicyError, parse
from bot.work.fleet import compare, digest_text
from checks.model import Finding, Report, Status

C1 = "projects/proj-one/locations/europe-west4-a/clusters/a"
C2 = "projects/proj-two/locations/europe-west4-a/clusters/b"


def policy(sweep: str):
    return parse(yaml.safe_load(f"bindings:\n  - channels: [C123]\n    projects: [proj-one]\n    sweep: {sweep}\n"),
                 ("proj-one",), "policy.yaml")


def test_the_sweep_key_is_validated():
    spec = policy('{cron: "0 9 * * 1-5", quiet: true, deadline: 600}').bindings[0].sweep
    assert (spec.cron, spec.quiet, spec.deadline, spec.channel) == ("0 9 * * 1-5", True, 600, "")
    for bad, error in [('{cron: "every day"}', "five-field cron"), ('{cron: "61 * * * *"}', "five-field cron"),
                       ("{quiet: maybe}", "quiet must be true or false"), ("{deadline: 5}", "from 10 to 86400"),
                       ("{when: 9}", "unknown key 'when'"), ("{channel: C999}", "not one of this binding's"),
                       ('"0 9 * * *"', "must be a mapping")]:
        with pytest.raises(PolicyError, match=error):
            policy(bad)


def report(cluster: str, *fails: tuple[str, str, str]) -> Report:
    return Report("doctor", cluster, [Finding("gke/ok", Status.OK, "fine", resource=cluster)] + [
        Finding(i, Status.FAIL, title, resource=res) for i, res, title in fails])


def test_sweeps_are_compared_by_check_and_resource_never_by_text():
    first = compare([C1, C2], {}, {C1: report(C1, ("x/one", C1, "Title")), C2: report(C2)})
    assert [e["id"] for e in first.new] == ["x/one"] and first.unchanged == 0
    # the same finding worded differently (another language, a new detail) is not new
    again = compare([C1, C2], first.state, {C1: report(C1, ("x/one", C1, "Titre")), C2: report(C2)})
    assert again.new == [] and again.unchanged == 1 and again.quiet
    # a cluster that did not answer keeps its FAILs: not resolved, not new
    silent = compare([C1, C2], first.state, {C2: report(C2)})
    assert silent.resolved == [] and [p for p, _ in silent.missing] == [C1] and silent.state == first.state
    # the same check on another resource is a new FAIL; the old one resolved
    moved = compare([C1, C2], first.state, {C1: report(C1, ("x/one", C1 + "/nodePools/np", "Title")),
                                            C2: report(C2)})
    assert len(moved.new) == 1 and len(moved.resolved) == 1
    assert "1 new FAILs, 1 resolved, 0 unchanged" in digest_text(moved)


def test_only_an_answer_resolves_a_fail():
    """A check that ended in ERROR (a deadline, a 429, the bot's missing permission) or did not run says nothing
    about its FAIL: kept, neither resolved now nor new at the next sweep."""
    first = compare([C1, C2], {}, {C1: report(C1, ("x/one", C1, "Title")), C2: report(C2)})
    errored = Report("doctor", C1, [Finding("gke/ok", Status.OK, "fine", resource=C1),
                                     Finding("x/one", Status.ERROR, "Title", resource=C1)])
    second = compare([C1, C2], first.state, {C1: errored, C2: report(C2)})
    assert second.resolved == [] and second.new == [] and second.state == first.state
    not_run = compare([C1, C2], first.state, {C1: report(C1), C2: report(C2)})  # x/one absent from the answer
    assert not_run.resolved == [] and not_run.state == first.state
    third = compare([C1, C2], second.state, {C1: report(C1, ("x/one", C1, "Title")), C2: report(C2)})
    assert third.new == [] and third.unchanged == 1
    # an answer that says OK resolves it
    fixed = Report("doctor", C1, [Finding("x/one", Status.OK, "Title", resource=C1)])
    done = compare([C1, C2], third.state, {C1: fixed, C2: report(C2)})
    assert [e["id"] for e in done.resolved] == ["x/one"] and done.state == {}


def test_a_project_that_could_not_be_listed_keeps_its_fails():
    first = compare([C1, C2], {}, {C1: report(C1), C2: report(C2, ("x/two", C2, "Title"))})
    # proj-two could not be listed this time: its cluster is not in the sweep at all
    blind = compare([C1], first.state, {C1: report(C1)}, ["Could not list proj-two"], ["proj-two"])
    assert blind.resolved == [] and blind.state == first.state and blind.errors
    back = compare([C1, C2], blind.state, {C1: report(C1), C2: report(C2, ("x/two", C2, "Title"))})
    assert back.new == [] and back.unchanged == 1
    # a project that was listed and no longer has the cluster: its FAILs go (the cluster is gone)
    gone = compare([C1], back.state, {C1: report(C1)})
    assert gone.state == {}


def test_the_digest_escapes_what_it_quotes():
    d = compare([C1], {}, {C1: report(C1, ("x/unknown", C1, "<!channel> & co"))})
    text = digest_text(d)
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; co" in text


def test_the_rate_limit_is_shared_and_a_429_slows_everyone(redis_url):
    from bot.work.ratelimit import RedisLimiter
    conn = redis_lib.Redis.from_url(redis_url)
    now = [1000.0]
    waits: list[float] = []
    a = RedisLimiter(conn, {"container.googleapis.com": (60, 60)}, clock=lambda: now[0], sleep=waits.append)
    b = RedisLimiter(redis_lib.Redis.from_url(redis_url), {"container.googleapis.com": (60, 60)},
                     clock=lambda: now[0], sleep=waits.append)
    assert a.acquire("container.googleapis.com") and waits == []  # one token a second, burst of one
    # the bucket is one for both "workers": b must wait for the next token a second later
    waits_before = len(waits)

    def tick(seconds):
        waits.append(seconds)
        now[0] += seconds
    b.sleep = tick
    assert b.acquire("container.googleapis.com")
    assert len(waits) > waits_before and sum(waits[waits_before:]) == pytest.approx(1.0, abs=0.01)
    # a 429 seen by a holds the API for b as well
    a.backoff("container.googleapis.com", 0.5)
    assert 0 < conn.pttl("gke-bot:bucket:container.googleapis.com:hold") <= 500
    start = len(waits)
    def real(seconds):  # the hold expires in Redis' own time
        tick(seconds)
        time.sleep(seconds)
    b.sleep = real
    assert b.acquire("container.googleapis.com")
    assert sum(waits[start:]) > 0.3
    # an API without a configured rate is never held up
    assert b.acquire("logging.googleapis.com")


def test_the_limiter_never_blocks_past_the_deadline_nor_without_redis():
    from bot.work.ratelimit import RedisLimiter
    dead = redis_lib.Redis(port=1, socket_connect_timeout=0.2)
    assert RedisLimiter(dead, {"container.googleapis.com": (1, 60)}).acquire("container.googleapis.com") is False


def test_one_tick_is_claimed_once_by_many_schedulers(redis_url, tmp_path, monkeypatch):
    from bot.config import Settings
    from bot.work.scheduler import Scheduler
    path = tmp_path / "policy.yaml"
    path.write_text('bindings:\n  - name: fleet\n    channels: [C123]\n    projects: [proj-one]\n'
                    '    sweep: {cron: "*/5 * * * *"}\n')
    settings = Settings.from_env({"GKE_BOT_PROJECTS": "proj-one", "GKE_BOT_POLICY": str(path), "REDIS_URL": redis_url})
    at = time.mktime((2026, 3, 2, 9, 5, 30, 0, 0, 0)) - time.timezone  # 09:05:30 UTC: tick 09:05
    got: list = []
    schedulers = [Scheduler(settings, redis_lib.Redis.from_url(redis_url), clock=lambda: at) for _ in range(8)]
    threads = [threading.Thread(target=lambda s=s: got.extend(s.due())) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [("fleet", "C123")]
    # the next look in the same tick claims nothing; the next tick is claimed again
    assert schedulers[0].due() == []
    later = Scheduler(settings, redis_lib.Redis.from_url(redis_url), clock=lambda: at + 300)
    assert later.due() == [("fleet", "C123")]
    # a tick older than the grace is skipped (a scheduler that was down does not sweep late)
    path.write_text(path.read_text().replace("*/5 * * * *", "0 9 * * *"))
    assert Scheduler(settings, redis_lib.Redis.from_url(redis_url), clock=lambda: at + 3600).due() == []


def test_the_notifications_key_is_validated():
    def load(value: str, second: str = ""):
        return parse(yaml.safe_load(f"bindings:\n  - channels: [C123]\n    projects: [proj-one]\n"
                                    f"    notifications: {value}\n{second}"), ("proj-one",), "policy.yaml")
    spec = load("{subscription: projects/proj-one/subscriptions/gke-notes}").bindings[0].notifications
    assert (spec.subscription, spec.channel) == ("projects/proj-one/subscriptions/gke-notes", "")
    for bad, error in [("{subscription: gke-notes}", "projects/PROJECT/subscriptions/NAME"),
                       ("{topic: x}", "unknown key 'topic'"), ("projects/p/subscriptions/s", "must be a mapping"),
                       ("{subscription: projects/proj-one/subscriptions/sub-1, channel: C999}", "not one of this")]:
        with pytest.raises(PolicyError, match=error):
            load(bad)
    with pytest.raises(PolicyError, match="one binding per subscription"):
        load("{subscription: projects/proj-one/subscriptions/sub-1}",
             "  - channels: [C456]\n    projects: [proj-one]\n"
             "    notifications: {subscription: projects/proj-one/subscriptions/sub-1}\n")


def test_a_429_to_one_gateway_holds_the_api_for_every_worker(google, settings, redis_url):
    """Real container client, fake Google answering 429 once: the gateway that saw it puts the backoff in Redis
    for the container API (where every worker's limiter reads it), then retries."""
    from checks.gateway import Gateway
    from checks.model import ClusterRef
    from bot.work.ratelimit import RedisLimiter
    conn = redis_lib.Redis.from_url(redis_url)
    holds: list[tuple[str, int]] = []

    class Seen(RedisLimiter):
        def backoff(self, api, seconds):
            super().backoff(api, seconds)
            holds.append((api, conn.pttl(f"gke-bot:bucket:{api}:hold")))
    ref = ClusterRef("gcpdiag-gke1-aaaa", "europe-west4-a", "gke1")
    google.fail("GET", r"/clusters/gke1$", 429, times=1)
    gw = Gateway(settings.google_api_url, limiter=Seen(conn))
    assert gw.cluster(ref).name == "gke1"  # retried after the backoff
    assert sum(c.path.endswith("/clusters/gke1") for c in google.calls) == 2
    assert len(holds) == 1 and holds[0][0] == "container.googleapis.com" and holds[0][1] > 0
    # another worker's limiter waits out such a hold, for that API only
    slept: list[float] = []

    def sleep(seconds):
        slept.append(seconds)
        time.sleep(seconds)
    other = RedisLimiter(redis_lib.Redis.from_url(redis_url), sleep=sleep)
    conn.set("gke-bot:bucket:container.googleapis.com:hold", "1", px=300)
    assert other.acquire("iam.googleapis.com") and slept == []
    assert other.acquire("container.googleapis.com") and slept and 0 < slept[0] <= 0.3


def test_the_digest_speaks_the_bindings_language():
    from bot.i18n import language
    d = compare([C1, C2], {}, {C1: report(C1, ("gke/service-agent-role", C1, "x")), C2: report(C2)})
    with language("ja"):
        text = digest_text(d)
    assert "*フリート スイープ*（2 プロジェクトの 2 クラスタ）: 新しい FAIL 1 件" in text
    assert "*新規:*" in text and "GKE" in text  # the check's title, translated by its id


def test_the_state_is_saved_once_the_digest_is_out_and_one_failed_reply_loses_only_itself(slack):
    from slack_sdk import WebClient

    from bot.work.fleet import post_digest
    from tests.conftest import BOT_TOKEN
    client = WebClient(token=BOT_TOKEN, base_url=f"{slack.url}/api/")
    d = compare([C1, C2], {}, {C1: report(C1, ("x/one", C1, "Title")), C2: report(C2, ("x/two", C2, "Title"))})
    events: list[str] = []

    def post_report(thread, rep, store) -> None:
        events.append(f"reply {rep.cluster}")
        if rep.cluster == C1:
            raise RuntimeError("Slack refused this one")
        thread.reply("details")
    ts = post_digest(client, "C123", None, d, {C1: report(C1, ("x/one", C1, "Title")),
                                               C2: report(C2, ("x/two", C2, "Title"))},
                     post_report, on_posted=lambda: events.append("saved"), sleep=lambda _s: None)
    assert events == ["saved", f"reply {C1}", f"reply {C2}"]
    assert [m["text"] for m in slack.thread("C123", ts)] == ["details"]


def test_a_sweep_that_cannot_be_queued_does_not_drop_the_other_ticks(redis_url, tmp_path, monkeypatch):
    """Queueing one binding's sweep fails (e.g. Redis refused the job): the other bindings' claimed ticks are still
    queued, and the failed one is released so the next look (or another scheduler) claims it again."""
    from bot.config import Settings
    from bot.work import fleet
    from bot.work.scheduler import Scheduler
    path = tmp_path / "policy.yaml"
    path.write_text('bindings:\n'
                    '  - name: broken\n    channels: [C111]\n    projects: [proj-one]\n    sweep: {cron: "*/5 * * * *"}\n'
                    '  - name: fine\n    channels: [C123]\n    projects: [proj-one]\n    sweep: {cron: "*/5 * * * *"}\n')
    from tests.conftest import PLAN_KEY
    settings = Settings.from_env({"GKE_BOT_PROJECTS": "proj-one", "GKE_BOT_POLICY": str(path), "REDIS_URL": redis_url,
                                  "GKE_BOT_PLAN_KEY": PLAN_KEY})
    queued, real = [], fleet.enqueue

    def enqueue(settings, redis, payload):
        if payload["channel"] == "C111":
            raise redis_lib.exceptions.ResponseError("OOM command not allowed when used memory > 'maxmemory'")
        queued.append(payload["channel"])
        return real(settings, redis, payload)
    monkeypatch.setattr(fleet, "enqueue", enqueue)
    at = time.mktime((2026, 3, 2, 9, 5, 30, 0, 0, 0)) - time.timezone  # 09:05:30 UTC: tick 09:05
    scheduler = Scheduler(settings, redis_lib.Redis.from_url(redis_url), clock=lambda: at)
    assert len(scheduler.tick()) == 1 and queued == ["C123"]
    # the broken binding's tick was released: claimed again at the next look; the queued one is not
    assert scheduler.due() == [("broken", "C111")]


def test_a_token_after_the_deadline_is_not_waited_for_nor_sent_without(google, settings, redis_url):
    """The shared bucket's next token comes after the job's deadline: the gateway does not send the request (it
    reports its deadline); only an unreachable limiter (Redis down) lets a request go without a token."""
    from checks.gateway import ApiError, Gateway
    from checks.model import ClusterRef
    from bot.work.ratelimit import RedisLimiter
    ref = ClusterRef("gcpdiag-gke1-aaaa", "europe-west4-a", "gke1")
    rates = {"container.googleapis.com": (1, 60)}  # one a minute: the next token a minute away
    limiter = RedisLimiter(redis_lib.Redis.from_url(redis_url), rates)
    assert limiter.acquire("container.googleapis.com")  # the bucket's one token
    with pytest.raises(TimeoutError):  # the limiter itself says why it gives no token (not False: Redis is up)
        limiter.acquire("container.googleapis.com", time.monotonic() + 5)
    sent = lambda: sum(c.path.endswith("/clusters/gke1") for c in google.calls)  # noqa: E731
    late = Gateway(settings.google_api_url, deadline=time.monotonic() + 5, limiter=limiter)
    with pytest.raises(ApiError) as err:
        late.cluster(ref)
    assert (err.value.code, err.value.status) == (504, "DEADLINE_EXCEEDED") and sent() == 0
    # Redis unreachable: the limiter cannot count, and the request goes (an outage must not stop diagnoses)
    dead = RedisLimiter(redis_lib.Redis(port=1, socket_connect_timeout=0.2), rates)
    assert Gateway(settings.google_api_url, deadline=time.monotonic() + 5, limiter=dead).cluster(ref).name == "gke1"
    assert sent() == 1
