"""Inside the cluster, the asker may get and list namespaces and pods (Kubernetes RBAC or IAM allows it).

Getting into a GKE cluster takes two permissions: IAM `container.clusters.get` to obtain credentials
(see gke/principal-cluster-access), then, for every request, authorization inside the cluster. GKE
first looks for a Kubernetes RBAC rule that allows the request, then for an IAM permission that does
(`container.pods.list` for `kubectl get pods`). When neither exists kubectl prints, for example:
Error from server (Forbidden): pods is forbidden: User "EMAIL" cannot list resource "pods" in API
group "" in the namespace "default": requires one of ["container.pods.list"] permission(s).

The check asks the cluster itself with SubjectAccessReviews (the Kubernetes username of a Google
account or service account is its email) for `get` and `list` on namespaces (cluster-wide) and on
pods (in `default`, or the namespace given). When something is denied it proposes the minimal
Role + RoleBinding (ClusterRole + ClusterRoleBinding for namespaces), and, as the IAM alternative,
Kubernetes Engine Viewer (`roles/container.viewer`), which reads every object in every cluster of the
project.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from checks.access import (CLUSTER_GET, VIEWER_ROLE, cluster_access, email_of, forbidden_message, rbac_yaml)
from checks.gateway import ApiError
from checks.iam import grant_command

ID = "gke/principal-rbac"
TITLE = "Kubernetes lets you get and list namespaces and pods"
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication"
COMMANDS = ("why-403",)
ORDER = 60
CLUSTER_LEVEL = False  # depends on the asker
VERBS = ("get", "list")


def _iam(ctx):
    try:
        return cluster_access(ctx.gw, ctx.ref, ctx.principal)
    except ApiError as err:  # gke/principal-cluster-access reports it; here it only shapes the advice
        return err


def run(ctx):
    principal = ctx.principal
    if not principal:
        return ctx.skip(ctx.args.get("principal_note") or
                        "I do not know which Google account is yours: add `--as user:EMAIL`.")
    if principal.startswith("group:"):
        return ctx.skip(f"Kubernetes authorizes users, not `{principal}` as such: ask again with "
                        "`--as user:EMAIL` for one of its members.")
    user, ns = email_of(principal), ctx.args.get("namespace") or "default"
    asks = [(verb, "namespaces", "") for verb in VERBS] + [(verb, "pods", ns) for verb in VERBS]
    with ThreadPoolExecutor(max_workers=len(asks) + 1, thread_name_prefix="sar") as pool:
        iam = pool.submit(_iam, ctx)
        reviews = list(pool.map(lambda a: ctx.gw.subject_access_review(
            ctx.ref, user=user, verb=a[0], resource=a[1], namespace=a[2]), asks))
    evidence = "\n".join(f"SubjectAccessReview {user} {verb} {res} {_scope(n)}: allowed={str(r['allowed']).lower()}"
                         + "".join(f", {k}={r[k]!r}" for k in ("reason", "evaluationError") if r[k])
                         for (verb, res, n), r in zip(asks, reviews))
    denied = [a for a, r in zip(asks, reviews) if not r["allowed"]]
    if not denied:
        return ctx.ok(f"`{user}` may get and list namespaces (cluster-wide) and pods in `{ns}`.", evidence=evidence)
    iam = iam.result()
    if isinstance(iam, ApiError):
        iam_note = f"Whether IAM lets `{principal}` get the cluster at all could not be read ({iam.explain()})."
    elif iam.granted:
        iam_note = (f"IAM lets `{principal}` into the cluster (`{CLUSTER_GET}` through {', '.join(iam.via)}), "
                    "but inside it neither an RBAC rule nor an IAM permission allows these requests.")
    else:
        iam_note = (f"IAM does not even grant `{principal}` `{CLUSTER_GET}` (see gke/principal-cluster-access): "
                    f"`{VIEWER_ROLE}` below fixes both.")
    by_res: dict[tuple[str, str], list[str]] = {}
    for verb, res, n in denied:
        by_res.setdefault((res, n), []).append(verb)
    messages = "\n".join(forbidden_message(user, verb, res, n) for verb, res, n in denied)
    yaml = "\n---\n".join(rbac_yaml(user, res, verbs, n) for (res, n), verbs in by_res.items())
    refused = ", ".join(f"`{verb} {res}` {_scope(n, '`')}" for verb, res, n in denied)
    return ctx.fail(
        f"`{user}` is refused {refused}. {iam_note} kubectl then says:\n```\n{messages}\n```\n"
        "The `container.*` permission it names is the IAM alternative to an RBAC rule.",
        f"Grant it with Kubernetes RBAC (a cluster admin runs `kubectl apply -f rbac.yaml` on cluster "
        f"`{ctx.ref.name}`):\n```\n{yaml}\n```\nOr, through IAM, `{VIEWER_ROLE}` (read access to every object "
        f"in every cluster of project `{ctx.ref.project}`):\n"
        f"```\n{grant_command(ctx.ref.project, principal, VIEWER_ROLE)}\n```",
        evidence=evidence)


def _scope(namespace: str, quote: str = "") -> str:
    return f"in {quote}{namespace}{quote}" if namespace else "cluster-wide"
