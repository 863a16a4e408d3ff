"""Soak: N minutes of mixed commands against the fakes with random fault injection.

    python bench/soak.py [--minutes 1] [--rate 2] [--workers 2] [--seed 1]

Starts fake Slack and Google (and a fake Kubernetes API), a redis-server, `gke-bot serve` and
`gke-bot worker` processes on loopback. Sends signed slash commands at --rate per second from many
users and channels, while injecting faults at random: Google 503s and 429s, Slack rate limits, and
one worker killed (SIGKILL, mid-job) and replaced half-way. Then waits for every command to be
answered and prints: commands sent, answered, answered with an error, lost (must be 0), and the
p50/p99 time from the command to its first thread reply.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rig import SECRET, redis_server, rig  # noqa: E402
from tests.fakes.kube import FakeKube  # noqa: E402
from tests.fakes.slack import sign, slash_command_body  # noqa: E402

COMMANDS = ["why-403 gke1", "why-400 gke2", "why-404 gke-1", "doctor gke3", "why-401 gke1", "wi gke2 default/app",
            "ingress gke1", "rbac gke1 list pods -n default", "why-403 nope"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--rate", type=float, default=2.0, help="commands per second")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    with redis_server() as redis_url, rig(redis_url) as r:
        slack, google = r["slack"], r["google"]
        kube = FakeKube(token_ok=google.token_valid)
        kube.start()
        for name in ("gke1", "gke2", "gke3"):
            c = google.cluster("gcpdiag-gke1-aaaa", name)
            c["endpoint"], c["masterAuth"]["clusterCaCertificate"] = kube.endpoint, kube.ca_b64
        channels = [f"CSOAK{i}" for i in range(8)]
        for ch in channels:
            slack.add_channel(ch, member=True)
        env = dict(r["env"], REDIS_URL=redis_url, GKE_BOT_JANITOR_SECONDS="1", GKE_BOT_RATE_USER="1000/60",
                   GKE_BOT_RATE_CHANNEL="1000/60")
        workers = [subprocess.Popen([sys.executable, "-m", "bot", "worker"], env=env, start_new_session=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for _ in range(args.workers)]
        sent: dict[str, tuple[str, float]] = {}  # user → (channel, time sent)
        urls: dict[str, str] = {}
        first_reply: dict[str, float] = {}
        stop = threading.Event()

        def watch():  # time to first thread reply, per command (each command has its own user)
            while not stop.is_set():
                for ch in channels:
                    for m in slack.messages(ch):
                        if m.get("thread_ts") and m["thread_ts"] != m["ts"]:
                            continue
                        user = m["text"][2:m["text"].find(">")] if m["text"].startswith("<@") else ""
                        if user in sent and user not in first_reply and slack.thread(ch, m["ts"]):
                            first_reply[user] = time.monotonic() - sent[user][1]
                time.sleep(0.05)
        threading.Thread(target=watch, daemon=True).start()

        end = time.monotonic() + args.minutes * 60
        killed = False
        i = 0
        while time.monotonic() < end:
            i += 1
            user, channel = f"USOAK{i}", rnd.choice(channels)
            slack.add_user(user, email=f"soak{i}@example.com")
            fault = rnd.random()
            if fault < 0.10:
                google.fail(None, r"/v[13]/projects/", rnd.choice([503, 429]), times=rnd.randint(1, 2))
            elif fault < 0.15:
                slack.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=1)
            if not killed and time.monotonic() > end - args.minutes * 30:
                killed = True
                victim = workers.pop(0)
                os.killpg(victim.pid, signal.SIGKILL)
                workers.append(subprocess.Popen([sys.executable, "-m", "bot", "worker"], env=env,
                                                start_new_session=True, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL))
            response_url = slack.new_response_url()
            body = slash_command_body(text=rnd.choice(COMMANDS), user_id=user, channel_id=channel,
                                      trigger_id=f"soak-{i}", response_url=response_url)
            sent[user] = (channel, time.monotonic())
            urls[user] = response_url
            requests.post(f"{r['url']}/slack/events", data=body, headers=sign(SECRET, body), timeout=10)
            time.sleep(rnd.expovariate(args.rate))

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(first_reply) < len(sent):
            time.sleep(0.5)
        stop.set()
        parents = {}
        for ch in channels:
            for m in slack.messages(ch):
                if not m.get("thread_ts") or m["thread_ts"] == m["ts"]:
                    parents[m["text"][2:m["text"].find(">")]] = m
        errors = sum(1 for u in first_reply if any(w in parents[u]["text"] for w in ("failed", "lost", "ERROR")))
        lost = [u for u in sent if u not in first_reply]
        lat = sorted(first_reply.values())
        pct = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan"))  # noqa: E731
        print(f"soak {args.minutes:g} min at {args.rate:g}/s, {args.workers} workers, one killed mid-run: "
              f"sent {len(sent)}, answered {len(first_reply)}, answered with an error {errors}, lost {len(lost)}, "
              f"first thread reply p50 {pct(0.5):.2f} s p99 {pct(0.99):.2f} s")
        for w in workers:
            w.terminate()
        kube.stop()
        if lost:
            for u in lost[:20]:
                told = [x.get("text", "") for x in slack.responses_to(urls[u])]
                print(f"lost: {u}: parent={parents.get(u, {}).get('text')!r} told={told!r}")
            sys.exit(1)


if __name__ == "__main__":
    main()
