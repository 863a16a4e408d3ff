"""Fleet sweeps end to end: `gke-bot sweep` and `gke-bot scheduler` processes, a real redis-server, real
`gke-bot worker` processes (fan-out, fan-in), the fake Google fleet and the fake Slack."""
from __future__ import annotations

import json
import time

import pytest
import redis as redis_lib

from tests.conftest import GKE1, Proc, wait_until
from tests.fleet import make_fleet, set_broken

OTHER = "fleet-proj-b"
FLEET = f"{GKE1},{OTHER}"


def digests(slack, channel="C123") -> list[dict]:
    return [m for m in slack.messages(channel) if not m.get("thread_ts") or m.get("thread_ts") == m["ts"]]


def run(spawn, args, env, name) -> Proc:
    p = spawn(args, env, name)
    wait_until(lambda: not p.alive(), 60, what=f"gke-bot {' '.join(args)} to exit")
    assert p.proc.returncode == 0, p.output()
    return p


@pytest.fixture
def fleet(google, kube):
    return make_fleet(google, [GKE1, OTHER], 2, {(GKE1, "c1"), (OTHER, "c0")}, kube)


def test_a_sweep_speaks_only_of_what_changed(spawn, env, redis_url, google, slack, fleet):
    full = dict(env, REDIS_URL=redis_url, GKE_BOT_PROJECTS=FLEET, GKE_BOT_JANITOR_SECONDS="0.5")
    spawn(["worker"], full, "worker-1")
    spawn(["worker"], full, "worker-2")

    # 1st sweep: both broken clusters are new, one line each, and one thread reply each with its fix button
    run(spawn, ["sweep", "--channel", "C123"], full, "sweep-1")
    first = slack.wait_for(lambda: digests(slack))[0]
    assert "2 new FAILs" in first["text"], first["text"]
    assert f"`{GKE1}/europe-west4-a/c1`" in first["text"] and f"`{OTHER}/europe-west4-a/c0`" in first["text"]
    assert "/c0`" not in first["text"].replace(f"{OTHER}/europe-west4-a/c0", "")  # the healthy ones are not named
    replies = slack.wait_for(lambda: len(slack.thread("C123", first["ts"])) == 2 and slack.thread("C123", first["ts"]))
    for reply, cluster in zip(sorted(replies, key=lambda m: json.dumps(m["blocks"])), (OTHER, GKE1)):
        blocks = json.dumps(reply["blocks"])
        assert f"projects/{cluster}/" in blocks and "remediate:enable_http_load_balancing" in blocks
        assert "[OK]" not in blocks  # only what is new

    # 2nd sweep, nothing changed: one short line, no finding repeated
    run(spawn, ["sweep", "--channel", "C123"], full, "sweep-2")
    second = slack.wait_for(lambda: len(digests(slack)) == 2 and digests(slack))[1]
    assert "nothing new (2 unchanged FAILs)" in second["text"], second["text"]
    assert "c1`" not in second["text"] and "c0`" not in second["text"]

    # one is fixed: the 3rd digest lists it as resolved, and nothing as new
    set_broken(google, GKE1, "c1", False)
    run(spawn, ["sweep", "--channel", "C123"], full, "sweep-3")
    third = slack.wait_for(lambda: len(digests(slack)) == 3 and digests(slack))[2]
    assert "0 new FAILs, 1 resolved, 1 unchanged" in third["text"], third["text"]
    assert f"`{GKE1}/europe-west4-a/c1`" in third["text"] and OTHER not in third["text"]
    # no per-cluster reply under a digest without new FAILs
    assert slack.thread("C123", second["ts"]) == [] and slack.thread("C123", third["ts"]) == []


def test_a_cluster_that_does_not_answer_is_named_at_the_deadline(spawn, env, redis_url, google, slack, fleet,
                                                                 monkeypatch):
    """The fan-in does not wait forever: past the sweep deadline a worker's janitor posts the digest and names
    the cluster that did not answer (here its job was lost before any worker took it)."""
    from rq import Queue
    from rq.serializers import JSONSerializer

    from bot.config import Settings
    from bot.slackclient import web_client
    from bot.work import fleet as fleet_mod
    from bot.work.jobs import post_report
    full = dict(env, REDIS_URL=redis_url, GKE_BOT_PROJECTS=FLEET, GKE_BOT_JANITOR_SECONDS="0.5",
                GKE_BOT_SWEEP_DEADLINE="10")
    for k, v in full.items():
        monkeypatch.setenv(k, v)
    settings = Settings.from_env()
    out = fleet_mod.run_job(settings, web_client(settings), {"kind": "sweep", "channel": "C123", "sweep_id": "s1"},
                           post_report, 60)
    assert out == {"ok": True, "clusters": 4}
    queue = Queue("gke-bot", connection=redis_lib.Redis.from_url(redis_url), serializer=JSONSerializer)
    lost = next(j for j in queue.get_jobs() if j.args[0]["cluster"].endswith(f"{OTHER}/locations/europe-west4-a/clusters/c0"))
    queue.remove(lost.id)
    spawn(["worker"], full, "worker")
    digest = slack.wait_for(lambda: digests(slack), timeout=40)[0]
    assert "1 new FAILs" in digest["text"] and f"`{GKE1}/europe-west4-a/c1`" in digest["text"]
    missing = digest["text"].split("No answer before the deadline")[1]
    assert f"`{OTHER}/europe-west4-a/c0`" in missing and "c1`" not in missing


def test_sweep_refuses_a_channel_without_binding(spawn, env, redis_url, tmp_path, fleet):
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"bindings:\n  - channels: [C123]\n    projects: [{GKE1}]\n")
    full = dict(env, REDIS_URL=redis_url, GKE_BOT_PROJECTS=FLEET, GKE_BOT_POLICY=str(policy))
    p = spawn(["sweep", "--channel", "C999"], full, "sweep")
    wait_until(lambda: not p.alive(), 30, what="sweep to exit")
    assert p.proc.returncode == 2 and "C999 is bound by no binding" in p.output(), p.output()
    assert redis_lib.Redis.from_url(redis_url).llen("rq:queue:gke-bot") == 0


def test_a_schedule_tick_runs_once_with_two_schedulers(spawn, env, redis_url, slack, fleet, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(f'bindings:\n  - name: platform\n    channels: [C123]\n    projects: [{GKE1}, {OTHER}]\n'
                      f'    sweep: {{cron: "* * * * *"}}\n')
    full = dict(env, REDIS_URL=redis_url, GKE_BOT_PROJECTS=FLEET, GKE_BOT_POLICY=str(policy))
    if time.time() % 60 > 50:  # both must look within the same minute's tick
        time.sleep(61 - time.time() % 60)
    schedulers = [spawn(["scheduler", "--once"], full, f"scheduler-{i}") for i in (1, 2)]
    for s in schedulers:
        wait_until(lambda s=s: not s.alive(), 60, what="scheduler to exit")
        assert s.proc.returncode == 0, s.output()
    conn = redis_lib.Redis.from_url(redis_url)
    assert conn.llen("rq:queue:gke-bot") == 1  # one sweep queued for the tick, by one of the two
    assert len(conn.keys("gke-bot:cron:*")) == 1
    run(spawn, ["worker", "--burst"], full, "worker")  # the sweep, its cluster jobs and the fan-in
    assert len(digests(slack)) == 1 and "2 new FAILs" in digests(slack)[0]["text"]


def test_without_redis_the_sweep_runs_in_the_process(spawn, env, slack, fleet):
    full = dict(env, GKE_BOT_PROJECTS=FLEET)
    p = run(spawn, ["sweep", "--channel", "C123"], full, "sweep")
    assert json.loads(p.output().strip().splitlines()[-1])["queued"] is False
    digest = digests(slack)[0]  # posted before the process exited
    assert "2 new FAILs" in digest["text"]
    assert len(slack.thread("C123", digest["ts"])) == 2


def test_a_signed_result_copied_to_another_cluster_is_refused(env, redis_url, google, slack, fleet, monkeypatch):
    """Redis is untrusted: a result is signed with its sweep and its cluster, so a healthy cluster's signed
    result copied over another cluster's (to hide its FAILs) is refused, and that cluster counts as unanswered."""
    from rq import Queue
    from rq.serializers import JSONSerializer

    from bot.config import Settings
    from bot.slackclient import web_client
    from bot.work import fleet as fleet_mod
    from bot.work.jobs import post_report
    for k, v in dict(env, REDIS_URL=redis_url, GKE_BOT_PROJECTS=FLEET).items():
        monkeypatch.setenv(k, v)
    settings = Settings.from_env()
    client = web_client(settings)
    assert fleet_mod.run_job(settings, client, {"kind": "sweep", "channel": "C123", "sweep_id": "s9"},
                             post_report, 60)["ok"]
    conn = redis_lib.Redis.from_url(redis_url)
    jobs = [j.args[0] for j in Queue("gke-bot", connection=conn, serializer=JSONSerializer).get_jobs()]
    broken = next(p for p in jobs if p["cluster"].endswith(f"{GKE1}/locations/europe-west4-a/clusters/c1"))
    healthy = [p for p in jobs if p is not broken]
    for payload in healthy:
        fleet_mod.run_job(settings, client, dict(payload), post_report, 60)
    results = "gke-bot:fleet:s9:results"
    assert conn.hlen(results) == len(healthy) and not digests(slack)
    conn.hset(results, broken["cluster"], conn.hget(results, healthy[0]["cluster"]))  # the forged copy
    fleet_mod.finish(settings, conn, client, "s9", post_report)
    digest = slack.wait_for(lambda: digests(slack))[0]
    new, missing = digest["text"].split("No answer before the deadline")
    assert f"`{GKE1}/europe-west4-a/c1`" in missing and f"`{GKE1}/europe-west4-a/c1`" not in new
