"""Each fact is fetched once per job: count the requests every command makes on the wire."""
from __future__ import annotations

from collections import Counter

import pytest

from bot.grammar import parse
from checks.engine import run_command
from tests.conftest import serve_cluster
from tests.helpers import GKE1, gateway

COMMANDS = ["why-403 gke1", "why-401 gke1", "why-400 gke1", "why-404 gke1", "why-404 gke-1", "doctor gke1",
            "wi gke1 default/app", "rbac gke1 list pods -n default", "ingress gke1"]


@pytest.mark.parametrize("text", COMMANDS)
def test_no_request_is_made_twice_in_one_job(google, kube, settings, text):
    serve_cluster(google, kube, GKE1, "gke1")
    google.troubleshooter_enabled = True
    cmd = parse(text)
    google.reset_calls()
    kube.reset_calls()
    report = run_command(gateway(settings), cmd.name, cmd.cluster, (GKE1,), "user:alice@example.com", cmd.args)
    assert report.findings or report.note
    seen = Counter((c.method, c.path, c.body) for c in google.calls if c.path != "/token")
    seen.update((c.method, c.path, c.query, c.body) for c in kube.calls)
    repeated = {k: n for k, n in seen.items() if n > 1}
    assert not repeated, f"requests made more than once in one job: {repeated}"
