"""Acknowledgement latency of `gke-bot serve` under N concurrent signed slash commands.

    python bench/ack_latency.py [--n 40] [--rounds 5] [--url http://127.0.0.1:3000 --secret S]

Without --url it starts its own rig: fake Slack and fake Google, a redis-server and `gke-bot serve`
on loopback (jobs are queued in Redis; no worker runs, so only the edge is measured).
Prints p50/p99/max of the time from sending the request to Slack's 200.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes.slack import sign, slash_command_body  # noqa: E402


def fire(url: str, secret: str, i: int) -> float:
    body = slash_command_body(text="why-403 gke1", trigger_id=f"bench-{time.time_ns()}-{i}")
    headers = sign(secret, body)
    t0 = time.perf_counter()
    r = requests.post(f"{url}/slack/events", data=body, headers=headers, timeout=10)
    dt = time.perf_counter() - t0
    if r.status_code != 200:
        raise SystemExit(f"request {i} answered {r.status_code}")
    return dt


def measure(url: str, secret: str, n: int, rounds: int) -> list[float]:
    fire(url, secret, -1)  # warm up (first request verifies the token)
    out: list[float] = []
    with ThreadPoolExecutor(max_workers=n) as pool:
        for _ in range(rounds):
            out += list(pool.map(lambda i: fire(url, secret, i), range(n)))
            time.sleep(0.5)
    return out


def report(lat: list[float], n: int) -> None:
    lat = sorted(lat)
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    print(f"ack latency, {n} concurrent, {len(lat)} commands: "
          f"p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms, max {lat[-1] * 1000:.1f} ms, "
          f"mean {statistics.mean(lat) * 1000:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--url")
    ap.add_argument("--secret", default="")
    args = ap.parse_args()
    if args.url:
        report(measure(args.url, args.secret, args.n, args.rounds), args.n)
        return
    import subprocess
    from bench.rig import SECRET, redis_server, rig
    with redis_server() as redis_url, rig(redis_url) as r:
        # The load generator runs in its own process, so its threads do not share a GIL with
        # the fakes (which answer the bot's Slack calls) and skew the measurement.
        subprocess.run([sys.executable, __file__, "--url", r["url"], "--secret", SECRET, "--n", str(args.n),
                        "--rounds", str(args.rounds)], check=True)


if __name__ == "__main__":
    main()
