"""A fleet sweep with 1, 2 and 4 real `gke-bot worker` processes: wall time, API calls, speed-up, quota headroom.

    python bench/sweep.py [--projects 20] [--per-project 10] [--latency 0.1] [--workers 1,2,4]

Builds a fleet on the fake Google (copies of the recorded gke1 cluster; two of them broken), every Google and
Kubernetes answer delayed by --latency seconds, and a real redis-server. For each worker count it starts that
many `gke-bot worker` processes, runs `gke-bot sweep --channel C123` and waits for the digest in the fake Slack.
It prints per run: wall time (from the sweep command to the digest), Google API calls per cluster, speed-up
against the first run, and per API the most calls made in any 60 s window against the API's default per-minute
quota (the shared limiter, bot.work.ratelimit, keeps the bot at 80 % of it).

The fakes run in this process and the workers fork a work horse per job: on a small machine the figures measure
the machine as much as the bot (the README records them with the machine's core count).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rig import redis_server  # noqa: E402
from tests.fakes.google import FakeGoogle  # noqa: E402
from tests.fakes.kube import FakeKube  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.fleet import GKE1, make_fleet  # noqa: E402

QUOTAS = {"container.googleapis.com": 3000, "iam.googleapis.com": 6000}  # default requests per minute per project
API_OF = [("/clusters", "container.googleapis.com"), ("/locations/", "container.googleapis.com"),
          ("/serviceAccounts", "iam.googleapis.com"), ("/roles", "iam.googleapis.com"),
          ("/services", "serviceusage.googleapis.com"), ("/v3/projects", "cloudresourcemanager.googleapis.com"),
          ("/compute/", "compute.googleapis.com"), ("/v2/entries", "logging.googleapis.com")]


def api_of(path: str) -> str:
    return next((api for part, api in API_OF if part in path), "other")


def busiest_minute(times: list[float]) -> int:
    times, best, j = sorted(times), 0, 0
    for i, t in enumerate(times):
        while times[j] < t - 60:
            j += 1
        best = max(best, i - j + 1)
    return best


def workers_ready(redis_url: str, n: int) -> bool:
    import redis
    from rq import Worker
    return len(Worker.all(connection=redis.Redis.from_url(redis_url))) >= n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--projects", type=int, default=20)
    ap.add_argument("--per-project", type=int, default=10)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    import logging
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    google, slack = FakeGoogle().start(), FakeSlack(bot_token="xoxb-bench", app_token="xapp-bench").start()
    google.load_fixture("gke1")
    kube = FakeKube(token_ok=google.token_valid)
    kube.start()
    slack.add_channel("C123", member=True)
    projects = [GKE1] + [f"fleet-bench-{i:02d}" for i in range(1, args.projects)]
    paths = make_fleet(google, projects, args.per_project, {(GKE1, "c1"), (projects[-1], "c0")}, kube)
    key = google.write_service_account_key(Path(tempfile.mkdtemp()) / "key.json")
    google.latency = kube.latency = args.latency
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GKE_BOT_", "REDIS_"))}
    env.update(SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET="bench", SLACK_API_URL=slack.api_url,
               GKE_BOT_GOOGLE_API_URL=google.url, GOOGLE_APPLICATION_CREDENTIALS=str(key),
               GKE_BOT_PROJECTS=",".join(projects), GKE_BOT_PLAN_KEY="bench-plan-key-0123456789abcdef0123456789abcdef",
               GKE_BOT_SWEEP_DEADLINE="3600", PYTHONPATH=str(ROOT))
    print(f"fleet: {len(paths)} clusters in {len(projects)} projects; {args.latency * 1000:.0f} ms per Google and "
          f"Kubernetes API call; {os.cpu_count()} CPU cores")
    print(f"{'workers':>7} {'wall s':>8} {'calls/cluster':>14} {'speed-up':>9}   busiest minute per API (quota)")
    first = None
    for n in [int(x) for x in args.workers.split(",")]:
        with redis_server() as url:
            env["REDIS_URL"] = url
            procs = [subprocess.Popen([sys.executable, "-m", "bot", "worker"], env=env, cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]
            try:
                while not workers_ready(url, n):
                    time.sleep(0.1)
                before = len([m for m in slack.messages("C123") if not m.get("thread_ts")])
                google.reset_calls()
                t0 = time.monotonic()
                subprocess.run([sys.executable, "-m", "bot", "sweep", "--channel", "C123"], env=env, cwd=ROOT,
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                while len([m for m in slack.messages("C123") if not m.get("thread_ts")]) == before:
                    time.sleep(0.05)
                wall = time.monotonic() - t0
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait(30)
        calls = [c for c in google.calls if c.path != "/token"]
        per_api: dict[str, list[float]] = {}
        for c in calls:
            per_api.setdefault(api_of(c.path), []).append(c.at)
        first = first or wall
        minutes = ", ".join(f"{api.split('.')[0]} {busiest_minute(ts)}"
                            + (f" ({QUOTAS[api]})" if api in QUOTAS else "") for api, ts in sorted(per_api.items()))
        print(f"{n:7d} {wall:8.1f} {len(calls) / len(paths):14.1f} {first / wall:8.2f}x   {minutes}")
    kube.stop()
    slack.stop()
    google.stop()


if __name__ == "__main__":
    main()
