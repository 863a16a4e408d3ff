"""The Kubernetes service account exists and is annotated with iam.gke.io/gcp-service-account: GSA_EMAIL.

With Workload Identity Federation for GKE a pod acts as the IAM service account named by its
Kubernetes service account's annotation `iam.gke.io/gcp-service-account:
GSA_NAME@PROJECT_ID.iam.gserviceaccount.com` (`kubectl describe serviceaccount --namespace NAMESPACE
KSA_NAME`). Without the annotation the pod authenticates as the KSA's own principal in the
workload pool, which has no access unless IAM grants it directly; with a misspelt value the token
exchange fails. The fix is `kubectl annotate serviceaccount`.
"""
from __future__ import annotations

import json

from checks.wi import GSA_ANNOTATION, annotations_of, gsa_of, is_gsa_email, ksa_object, target, workload_pool

ID = "wi/ksa-annotation"
TITLE = "The KSA names its IAM service account"
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 13
CLUSTER_LEVEL = False


def annotate(ns: str, ksa: str, gsa: str) -> str:
    return (f"kubectl annotate serviceaccount {ksa} \\\n    --namespace {ns} \\\n"
            f"    {GSA_ANNOTATION}={gsa} --overwrite")


def run(ctx):
    ns, ksa = target(ctx)
    sa = ksa_object(ctx)
    describe = f"kubectl describe serviceaccount --namespace {ns} {ksa}"
    placeholder = f"GSA_NAME@{ctx.ref.project}.iam.gserviceaccount.com"
    resource = f"{ctx.ref.path}/k8s/namespaces/{ns}/serviceaccounts/{ksa}"
    if sa is None:
        return ctx.fail(
            f"Kubernetes service account `{ksa}` does not exist in namespace `{ns}`: pods that name it are not "
            "created, and nothing can act as an IAM service account through it.",
            f"Create it and annotate it with the IAM service account (GSA_NAME: yours):\n```\n"
            f"kubectl create serviceaccount {ksa} --namespace {ns}\n{annotate(ns, ksa, placeholder)}\n```",
            evidence=f"`{describe}`: serviceaccounts \"{ksa}\" not found (404).", resource=resource)
    gsa = gsa_of(ctx)
    evidence = f"`{describe}`: annotations {json.dumps(annotations_of(sa), sort_keys=True)}"
    if not gsa:
        return ctx.fail(
            f"`{ns}/{ksa}` has no `{GSA_ANNOTATION}` annotation: its pods authenticate as "
            f"`{workload_pool(ctx)}[{ns}/{ksa}]` itself, not as an IAM service account, and get only what IAM "
            "grants that principal directly.",
            f"Annotate it with the IAM service account the pods should act as (GSA_NAME: yours):\n```\n"
            f"{annotate(ns, ksa, placeholder)}\n```", evidence=evidence, resource=resource)
    if not is_gsa_email(gsa):
        return ctx.fail(
            f"`{ns}/{ksa}` names `{gsa}` in `{GSA_ANNOTATION}`, which is not an IAM service account email "
            "(`NAME@PROJECT_ID.iam.gserviceaccount.com`): the token exchange fails.",
            f"Set the full email:\n```\n{annotate(ns, ksa, placeholder)}\n```", evidence=evidence, resource=resource)
    return ctx.ok(f"`{ns}/{ksa}` is annotated `{GSA_ANNOTATION}: {gsa}`.", evidence=evidence, resource=resource)
