"""Redis is a trust boundary, proven over the real wire: jobs written into Redis by hand, fix plans edited in
Redis, a click flood, and Redis with a password over TLS (rediss://). Real redis-server, real `gke-bot serve`
and `gke-bot worker` processes, the fakes."""
from __future__ import annotations

import copy
import datetime
import ipaddress
import json
import shutil
import subprocess
import time
from urllib.parse import quote

import pytest
import redis as redislib
import requests
from rq import Callback, Queue
from rq.serializers import JSONSerializer

from bot.config import Settings
from bot.work.payload import QUEUE_NAME
from bot.work.store import AUDIT_STREAM, DENIED_STREAM
from tests.conftest import PLAN_KEY, free_port, serve_with, wait_until
from tests.helpers import AGENT, GKE1, drop_binding
from tests.test_access_e2e import answered, ask, private
from tests.test_remediation import (POOL, ROLE, audit, bindings_of, buttons, click, diagnose, outcome,
                                    planned_button)

GKE4 = "gcpdiag-gke4-aaaa"
ZEN = "Beautiful is better than ugly"  # what importing `this` prints: proof a module was imported


def rq_queue(redis_url: str) -> Queue:
    return Queue(QUEUE_NAME, connection=redislib.Redis.from_url(redis_url), serializer=JSONSerializer)


def security_events(proc) -> list[dict]:
    return [json.loads(x)["security"] for x in proc.output().splitlines() if x.startswith("{") and '"security"' in x]


def writes(google) -> list:
    return [c for c in google.calls if c.path.endswith(":setIamPolicy") or c.method in ("PUT", "POST") and
            ("/nodePools/" in c.path or c.path.endswith(":update") or c.path.endswith("/gke1"))]


# ---- jobs ------------------------------------------------------------------------------------------------------
def test_a_job_naming_another_function_is_refused_never_imported_or_called(served, slack, google, redis_url,
                                                                          tmp_path):
    marker = tmp_path / "pwned"
    q = rq_queue(redis_url)
    foreign = [q.enqueue("os.system", f"touch {marker}"),  # what a Redis writer would try first
               q.enqueue("this.s"),  # importing `this` prints the Zen of Python: it must never be imported
               q.enqueue("bot.work.jobs.run_job", {"kind": "x"}, on_failure=Callback("os.system")),
               q.enqueue("bot.work.jobs.run_job", {"kind": "x"}, on_success=Callback("this.s"))]
    registry = q.failed_job_registry
    wait_until(lambda: all(j.id in registry.get_job_ids() for j in foreign), 20, what="the jobs to be refused")
    for job in foreign:
        job.refresh()
        assert job.get_status() == "failed" and "refused by gke-bot" in job.latest_result().exc_string
    time.sleep(0.5)
    assert not marker.exists()
    worker = served["worker"].output()
    assert ZEN not in worker
    refused = [e for e in security_events(served["worker"]) if e["event"] == "foreign job refused"]
    assert {e["job_id"] for e in refused} == {j.id for j in foreign}
    assert any("os.system" in e["why"] for e in refused) and any("failure callback" in e["why"] for e in refused)
    assert slack.calls_to("chat.postMessage") == [] and [c for c in google.calls if c.path != "/token"] == []
    # the worker is still there and still answers real commands
    ask(served, slack, "why-400 gke1")
    answered(served, slack, "C123", "why-400 gke1")


def test_an_unsigned_job_for_the_bots_own_function_is_refused(served, slack, google, redis_url):
    payload = {"channel": "C123", "thread_ts": "1.1", "status_ts": "1.1", "user": "UAPPROVER",
               "text": "why-403 gke1", "command": {"name": "why-403"}}
    job = rq_queue(redis_url).enqueue("bot.work.jobs.run_job", payload)
    wait_until(lambda: job.get_status(refresh=True) in ("finished", "failed"), 20, what="the job to end")
    assert job.latest_result().return_value == {"ok": False, "error": "refused: not signed by the bot"}
    assert [e["event"] for e in security_events(served["worker"])] == ["unsigned job refused by the worker"]
    forged = dict(payload, sig="0" * 64)  # a made-up signature is no better
    job = rq_queue(redis_url).enqueue("bot.work.jobs.run_job", forged)
    wait_until(lambda: job.get_status(refresh=True) in ("finished", "failed"), 20, what="the job to end")
    assert job.latest_result().return_value["ok"] is False
    assert slack.calls_to("chat.postMessage") == [] and [c for c in google.calls if c.path != "/token"] == []


def test_a_signed_job_naming_a_foreign_project_or_channel_makes_no_google_request(served, slack, google, redis_url,
                                                                                 settings):
    """Even a job the bot signed (replayed, or a policy that changed since) is checked against the policy again
    in the worker, before any Google request."""
    from dataclasses import replace

    from bot.work.queue import RQQueue
    from slack_sdk import WebClient
    google.load_fixture("gke4")
    client = WebClient(token="xoxb-test", base_url=slack.api_url)
    queue = RQQueue(replace(settings, redis_url=redis_url))
    for text in (f"why-403 {GKE4}/europe-west4-a/gke1", "why-403 some-other-project/us-central1/c1"):
        ts = client.chat_postMessage(channel="C123", text=f"<@U123> asked `/gke {text}` — checking…")["ts"]
        queue.enqueue({"channel": "C123", "thread_ts": ts, "status_ts": ts, "user": "U123", "text": text,
                       "command": {"name": "why-403"}, "coalesce_key": ""})
        reply = slack.wait_for(lambda: slack.thread("C123", ts), timeout=20)
        assert "is not one this conversation may ask about" in reply[0]["text"]
    assert [c for c in google.calls if c.path != "/token"] == []
    worker = [json.loads(x)["command_log"] for x in served["worker"].output().splitlines()
              if x.startswith("{") and "command_log" in x]
    assert [x["reason"] for x in worker] == ["foreign_project", "foreign_project"]


def test_the_janitor_never_requeues_or_answers_an_unsigned_tracked_job(served, slack, redis_url):
    from bot.work.tracking import DATA, OPEN
    r = redislib.Redis.from_url(redis_url)
    r.hset(DATA, "forged", json.dumps({"channel": "C123", "thread_ts": "1.1", "user": "U123",
                                       "text": "why-403 gke1", "attempt": 1}))
    r.zadd(OPEN, {"forged": time.time() - 600})
    wait_until(lambda: r.zcard(OPEN) == 0, 30, what="the janitor to drop the forged job")
    assert rq_queue(redis_url).count == 0 and slack.calls_to("chat.postMessage") == []
    assert "unsigned tracked job dropped by the janitor" in [e["event"] for e in security_events(served["worker"])]


# ---- fix plans -------------------------------------------------------------------------------------------------
@pytest.fixture
def broken(google):
    drop_binding(google.projects[GKE1].iam_policy, ROLE, AGENT)
    return copy.deepcopy(google.projects[GKE1].iam_policy)


def edit_plan(redis_url: str, plan_id: str, **params) -> None:
    """What someone with write access to Redis does: change the stored plan in place."""
    r = redislib.Redis.from_url(redis_url)
    key = f"gke-bot:plan:{plan_id}"
    plan = json.loads(r.get(key))
    for k, v in params.items():
        if k in ("cluster",):
            plan[k] = v
        else:
            plan["params"][k] = v
    r.set(key, json.dumps(plan), keepttl=True)


@pytest.mark.parametrize("edit", [
    {"member": "user:attacker@evil.example"},
    {"role": "roles/owner"},
    {"project": GKE4, "member": "serviceAccount:service-12340033@container-engine-robot.iam.gserviceaccount.com",
     "cluster": f"projects/{GKE4}/locations/europe-west4-a/clusters/gke1"},
])
def test_an_iam_plan_edited_in_redis_is_refused_on_click(served, slack, google, broken, redis_url, edit):
    _, reply = diagnose(served, slack)
    [button] = buttons(reply)
    edit_plan(redis_url, button["value"], **edit)
    url = click(served, slack, reply, "UAPPROVER")
    assert "changed after the bot planned it" in private(slack, url)
    time.sleep(0.5)
    assert bindings_of(google.projects[GKE1].iam_policy) == bindings_of(broken)
    assert not [c for c in google.calls if c.path.endswith(":setIamPolicy")]
    assert audit(redis_url)[0]["event"] == "tampered"
    assert [e["event"] for e in security_events(served["server"])] == ["tampered fix plan refused on click"]


def test_an_upgrade_plan_edited_to_another_pool_is_refused_on_click(served, slack, google, redis_url):
    google.cluster(GKE1, "gke1")["nodePools"][0]["version"] = POOL["from_version"]
    parent, reply = planned_button(redis_url, slack, "upgrade_node_pool", "Upgrade default-pool", POOL)
    edit_plan(redis_url, buttons(reply)[0]["value"], pool="other-pool")
    url = click(served, slack, reply, "UAPPROVER")
    assert "changed after the bot planned it" in private(slack, url)
    assert not [c for c in google.calls if c.method == "PUT"]


def signed_plan_button(redis_url, slack, kind, params, cluster=f"projects/{GKE1}/locations/europe-west4-a/clusters/gke1"):
    """A plan carrying the bot's own signature but asking for something the bot must never do (a bug in a rule,
    or someone holding the key): the worker re-derives the change from live state and refuses."""
    return planned_button(redis_url, slack, kind, "Fix it", params, cluster=cluster)


@pytest.mark.parametrize("kind, params, why", [
    ("grant_service_agent", {"project": GKE1, "member": "user:attacker@evil.example", "role": ROLE},
     "may only name the GKE service agent"),
    ("grant_service_agent", {"project": GKE1, "member": AGENT, "role": "roles/owner"},
     "may only add `roles/container.serviceAgent`"),
    ("grant_service_agent", {"project": GKE4, "member": AGENT, "role": ROLE},
     "is not the project of the diagnosed cluster"),
    ("upgrade_node_pool", dict(POOL, cluster="gke2", location="europe-west4"), "is not the diagnosed cluster"),
    ("upgrade_node_pool", dict(POOL, pool="no-such-pool"), "is not a pool of `gke1`"),
    ("upgrade_node_pool", dict(POOL, to_version="1.99.0-gke.1"), "control-plane version"),
    ("enable_http_load_balancing", {"project": GKE1, "location": "europe-west4", "cluster": "gke2"},
     "is not the diagnosed cluster"),
])
def test_a_signed_plan_asking_for_anything_else_is_refused_at_run(spawn, env, slack, google, redis_url, broken,
                                                                   kind, params, why):
    google.load_fixture("gke4")
    served = serve_with(spawn, env, redis_url, GKE_BOT_PROJECTS=f"{GKE1},{GKE4}")
    google.cluster(GKE1, "gke1")["nodePools"][0]["version"] = POOL["from_version"]
    parent, reply = signed_plan_button(redis_url, slack, kind, params)
    click(served, slack, reply, "UAPPROVER")
    msg = outcome(slack, parent, "failed: refused")
    assert "I refused to run this fix" in msg[0]["text"] and why in msg[0]["text"], msg[0]["text"]
    assert bindings_of(google.projects[GKE1].iam_policy) == bindings_of(broken)
    assert not [c for c in google.calls if c.path.endswith(":setIamPolicy") or c.method == "PUT"
                or c.path.endswith(":setAddons") or c.method == "POST" and "/clusters/" in c.path]
    assert "fix plan refused by validation" in [e["event"] for e in security_events(served["worker"])]


def test_a_plan_outside_the_channels_projects_is_refused_on_click(served, slack, google, redis_url):
    """A validly signed plan about a project that is not (or no longer) in the binding of its channel."""
    params = {"project": GKE4, "location": "europe-west4-a", "cluster": "gke1"}
    _, reply = signed_plan_button(redis_url, slack, "enable_http_load_balancing", params,
                                  cluster=f"projects/{GKE4}/locations/europe-west4-a/clusters/gke1")
    url = click(served, slack, reply, "UAPPROVER")
    assert f"about project `{GKE4}`, which this conversation may not change" in private(slack, url)
    assert not [c for c in google.calls if c.path != "/token"]


def test_the_worker_runs_a_fix_only_for_the_approver_holding_the_lock(served, slack, google, broken, redis_url,
                                                                      settings):
    """A remediation job whose approver does not hold the plan's once-only lock (replayed, or queued by hand with
    the key) changes nothing."""
    from dataclasses import replace

    from bot.work.queue import RQQueue
    _, reply = diagnose(served, slack)
    plan_id = buttons(reply)[0]["value"]
    queue = RQQueue(replace(settings, redis_url=redis_url))
    queue.enqueue({"kind": "remediate", "plan_id": plan_id, "approver": "UAPPROVER", "channel": "C123",
                   "message_ts": reply["ts"], "blocks": [], "text": "fix"})
    told = slack.wait_for(lambda: [e for e in slack.ephemerals if e["user"] == "UAPPROVER"], timeout=20)
    assert "was not approved by you" in told[0]["text"]
    assert not [c for c in google.calls if c.path.endswith(":setIamPolicy")]
    # the real click then runs it exactly once
    click(served, slack, reply, "UAPPROVER")
    slack.wait_for(lambda: [e for e in audit(redis_url) if e["event"] == "succeeded"], timeout=20)
    assert len([c for c in google.calls if c.path.endswith(":setIamPolicy")]) == 1


# ---- the audit trail under a click flood -----------------------------------------------------------------------
def test_a_click_flood_cannot_push_approvals_out_of_the_audit_trail(served, slack, google, broken, redis_url):
    parent, reply = diagnose(served, slack)
    click(served, slack, reply, "UAPPROVER")
    outcome(slack, parent, "— done")
    r = redislib.Redis.from_url(redis_url)
    real = r.xlen(AUDIT_STREAM)
    urls = [click(served, slack, reply, "UNOBODY") for _ in range(25)]
    answers = [private(slack, u) for u in urls]
    assert sum("Only approvers" in a for a in answers) == 10  # GKE_BOT_RATE_CLICK 10/60
    assert sum("wait a moment" in a for a in answers) == 15
    assert r.xlen(AUDIT_STREAM) == real  # refusals go elsewhere
    assert r.xlen(DENIED_STREAM) == 10
    events = [e["event"] for e in audit(redis_url)]
    assert "approved" in events and "succeeded" in events  # /gke audit still shows what happened


# ---- Redis with a password, over TLS ---------------------------------------------------------------------------
def _tls_files(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test redis ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "redis.pem", "key": tmp_path / "redis.key"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return files


@pytest.fixture
def tls_redis(tmp_path):
    password = "s3cr3t/p@ss:w0rd"
    files, port = _tls_files(tmp_path), free_port()
    proc = subprocess.Popen([shutil.which("redis-server"), "--port", "0", "--tls-port", str(port), "--bind",
                             "127.0.0.1", "--tls-cert-file", str(files["cert"]), "--tls-key-file", str(files["key"]),
                             "--tls-ca-cert-file", str(files["ca"]), "--tls-auth-clients", "no", "--requirepass",
                             password, "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"rediss://:{quote(password, safe='')}@127.0.0.1:{port}/0?ssl_ca_certs={files['ca']}"

    def up():
        try:
            return redislib.Redis.from_url(url).ping()
        except redislib.RedisError:
            return False
    wait_until(up, 10, what="redis-server with TLS")
    yield url, password, port
    proc.terminate()
    proc.wait(10)


def test_redis_with_a_password_over_tls_works_and_never_shows_in_logs(spawn, env, slack, google, tls_redis):
    url, password, port = tls_redis
    with pytest.raises(redislib.RedisError):  # the password is needed, and plain TCP is not spoken there
        redislib.Redis(host="127.0.0.1", port=port, socket_timeout=2).ping()
    served = serve_with(spawn, env, url)
    assert requests.get(f"{served['url']}/healthz", timeout=5).json() == {"ok": True, "queue": "rq"}
    drop_binding(google.projects[GKE1].iam_policy, ROLE, AGENT)
    parent, reply = diagnose(served, slack)
    click(served, slack, reply, "UAPPROVER")
    outcome(slack, parent, "— done")
    assert Settings.from_env(dict(env, REDIS_URL=url)).__repr__().count(password) == 0
    for proc in (served["server"], served["worker"]):
        out = proc.output()
        assert password not in out and quote(password, safe="") not in out and PLAN_KEY not in out
