"""Wall time and sequential round trips of each diagnosis command, with latency injected per call.

    python bench/diagnose.py [--latency 0.1] [--repeat 3]

Runs every command in-process against the fake Google and Kubernetes APIs on loopback (each
answer delayed by --latency seconds) and prints, per command: wall time, requests
made, the critical path in round trips (the longest chain of requests each started after the
previous one answered, from the fakes' request logs), and wall time / latency. gke1 serves the
field report's Argo CD behind a GCE Ingress whose load balancer exists (backend service, health
check, NEG), so `ingress` reads Kubernetes, the load balancer and the pod proxy.
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.google import FakeGoogle  # noqa: E402
from tests.fakes.kube import FakeKube  # noqa: E402

GKE1 = "gcpdiag-gke1-aaaa"
COMMANDS = ["why-403 gke1", "why-401 gke1", "why-400 gke1", "why-404 gke1", "doctor gke1",
            "wi gke2 default/app", "rbac gke1 list pods -n default", "ingress gke1"]


def critical_path(calls: list[tuple[float, float]]) -> int:
    """Longest chain of requests (start, end) in which each starts after the previous one ended."""
    depth: list[int] = []
    calls = sorted(calls)
    for i, (start, _) in enumerate(calls):
        depth.append(1 + max((depth[j] for j in range(i) if calls[j][1] <= start), default=0))
    return max(depth, default=0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import logging
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    google = FakeGoogle()
    google.start()
    google.load_fixture("gke1")
    kube = FakeKube(token_ok=google.token_valid)
    kube.start()
    for name in ("gke1", "gke2"):
        cluster = google.cluster(GKE1, name)
        cluster["endpoint"], cluster["masterAuth"]["clusterCaCertificate"] = kube.endpoint, kube.ca_b64
    from tests.test_check_ingress_fixtures import argocd
    argocd(kube, google)  # an Ingress with its load balancer, for `ingress`
    key = google.write_service_account_key(Path(tempfile.mkdtemp()) / "key.json")
    os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = str(key)

    importlib.import_module("google.cloud.compute_v1")  # preloaded by `gke-bot worker` before it forks: here too
    from bot.grammar import parse
    from checks import gateway as gwmod
    from checks.engine import run_command
    from checks.gateway import Gateway

    google.latency = args.latency
    kube.latency = args.latency
    print(f"latency per Google and Kubernetes API call: {args.latency * 1000:.0f} ms; median of {args.repeat} runs")
    print(f"{'command':34} {'wall ms':>8} {'requests':>9} {'round trips':>12} {'wall/latency':>13}")
    for text in COMMANDS:
        cmd = parse(text)
        walls, calls, depths = [], 0, []
        for _ in range(args.repeat):
            gwmod._role_cache.clear()  # a cold job: no role definitions cached yet
            gw = Gateway(google.url)
            gw.access_token()  # the token is fetched once per process, not per job
            google.reset_calls()
            kube.reset_calls()
            t0 = time.perf_counter()
            run_command(gw, cmd.name, cmd.cluster, (GKE1,), "user:testuser@example.com", cmd.args)
            walls.append(time.perf_counter() - t0)
            calls = len(gw.calls)
            spans = [(c.at, c.at + args.latency) for c in google.calls if c.path != "/token"]
            spans += [(c.at, c.at + args.latency) for c in kube.calls]
            depths.append(critical_path(spans))
        wall = statistics.median(walls)
        print(f"{text:34} {wall * 1000:8.0f} {calls:9d} {max(depths):12d} {wall / args.latency:13.1f}")
    kube.stop()
    google.stop()


if __name__ == "__main__":
    main()
