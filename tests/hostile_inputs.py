"""Hostile inputs for checks.explain, shared by tests/test_explain.py (they must return, with valid values)
and bench/explain.py (which times them)."""
from __future__ import annotations

import random

from checks.explain import MAX_INPUT

# pieces of the patterns checks.explain looks for, and of the markup it undoes: glued at random, they make
# the near-misses that would cost a backtracking regular expression the most
FRAGMENTS = [
    'User "', '" cannot ', 'list', ' resource "', '" in API group "', '" in the namespace "', "at the cluster scope",
    ": requires one of [", '"container.pods.list"', "] permission(s).", "Error from server (Forbidden): ",
    "projects/", "acme-prod", "/locations/", "/zones/", "europe-west4", "/clusters/", "payments", "/nodePools/",
    "gke_", "_", "gcloud container clusters get-credentials ", " --zone ", " --project=", "kubectl ", " -n ",
    'Required "', "Required permission '", "' for '", '" permission(s) for "', "Permission '", "' denied on resource '",
    "Retry budget exhausted: Google Compute Engine: ", "Node pool \"", "\" requires recreation.", "dial tcp ",
    "35.1.2.3", ":443: ", "connect: connection refused", "i/o timeout", "169.254.169.254", "svc.id.goog[", "/", "]",
    "system:serviceaccount:", ":", "<https://", "console.cloud.google.com/kubernetes/clusters/details/", "|", ">",
    "<!channel>", "&lt;", "&gt;", "&amp;", '\\"', "\\\\", "```", "`", "\x1b[31m", "\n", " ", "Name: ", "Namespace: ",
    "HTTP/1.1 307 Temporary Redirect", "/healthz", "UNHEALTHY", "ingress.kubernetes.io/backends: {", '"kind":"Status"',
    '"code":401', "You must be logged in to the server", "gke-gcloud-auth-plugin", " not found", "Not found: ",
    "generic::not_found", "Unable to generate access token; IAM returned 403", "ヘルスチェック", "異常", "“", "”",
    "NAME HOSTS ADDRESS PORTS AGE\n", "a" * 40, "-" * 40, "1" * 40, '"' * 40, "@example.com",
]


def fragment_text(rng: random.Random, size: int = MAX_INPUT) -> str:
    """Fragments glued at random up to `size` characters."""
    out, n = [], 0
    while n < size:
        piece = rng.choice(FRAGMENTS)
        out.append(piece)
        n += len(piece)
    return "".join(out)[:size]


# one fragment repeated up to the cap: the classic worst cases
WORST = {
    "quotes": '"' * MAX_INPUT,
    "user-quotes": ('User "' * (MAX_INPUT // 6)),
    "cannot": ('User "a" cannot ' * (MAX_INPUT // 16)),
    "paths": ("projects/" * (MAX_INPUT // 9)),
    "path-nearly": ("projects/a/locations/b/clusters/" * (MAX_INPUT // 32)),
    "gke": ("gke_" * (MAX_INPUT // 4)),
    "dial": ("dial tcp " * (MAX_INPUT // 9)),
    "slack": ("<https://" * (MAX_INPUT // 9)),
    "backslashes": ("\\" * MAX_INPUT),
    "newlines": ("\n" * MAX_INPUT),
    "letters": ("a" * MAX_INPUT),
    "metadata": ("169.254.169.254" * (MAX_INPUT // 15)),
    "gke-plugin": ("gke-gcloud-auth-plugin " * (MAX_INPUT // 23)),
    "annotation": ('ingress.kubernetes.io/backends: {' * (MAX_INPUT // 34)),
    "http": ("HTTP/1.1 30" * (MAX_INPUT // 11)),
    "required": ('Required "' * (MAX_INPUT // 10)),
    "japanese": ("ヘルスチェック" * (MAX_INPUT // 7)),
    "continuation": ("gcloud container clusters get-credentials \\\n" * (MAX_INPUT // 44)),
    "table": ("NAME HOSTS ADDRESS PORTS AGE\n" * (MAX_INPUT // 29)),
}
