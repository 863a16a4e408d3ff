"""The Kubernetes service account exists and names its IAM identity (annotation, or IAM grants to the KSA itself).

With Workload Identity Federation for GKE a pod acts as the IAM service account named by its
Kubernetes service account's annotation `iam.gke.io/gcp-service-account:
GSA_NAME@PROJECT_ID.iam.gserviceaccount.com` (`kubectl describe serviceaccount --namespace NAMESPACE
KSA_NAME`). Without the annotation the pod authenticates as the KSA's own principal,
`principal://iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/PROJECT_ID.svc.id.goog/subject/ns/NAMESPACE/sa/KSA_NAME`,
which IAM can grant roles to directly: then no annotation is needed. The check looks for such grants
(and for `principalSet://…/namespace/NAMESPACE`) in the project's IAM policy; grants on single resources
(a bucket, a secret) cannot be listed from here, so without either it warns rather than fails. With a
misspelt annotation the token exchange fails. The fix is `kubectl annotate serviceaccount`, or a direct
grant to the principal.
"""
from __future__ import annotations

import json

from checks.gateway import ApiError
from checks.i18n import N_, _
from checks.iam import bindings
from checks.wi import (GSA_ANNOTATION, annotations_of, gsa_of, is_gsa_email, ksa_object, ksa_principal,
                       namespace_principal_set, pool_project, target, workload_pool)

ID = "wi/ksa-annotation"
TITLE = N_("The KSA names its IAM service account")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 13
CLUSTER_LEVEL = False
SEED = "002 GKE 用 Workload Identity 連携; Pod が Google Cloud で認証されない (4)"


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
            _("Kubernetes service account `{ksa}` does not exist in namespace `{namespace}`: pods that name it are not "
              "created, and nothing can act as an IAM service account through it.").format(ksa=ksa, namespace=ns),
            _("Create it and annotate it with the IAM service account (GSA_NAME: yours):\n```\n{commands}\n```").format(
                commands=f"kubectl create serviceaccount {ksa} --namespace {ns}\n{annotate(ns, ksa, placeholder)}"),
            evidence=_("`{command}`: serviceaccounts \"{ksa}\" not found (404).").format(command=describe, ksa=ksa),
            resource=resource)
    gsa = gsa_of(ctx)
    evidence = _("`{command}`: annotations {annotations}").format(
        command=describe, annotations=json.dumps(annotations_of(sa), sort_keys=True))
    if not gsa:
        return _direct(ctx, evidence, resource, placeholder)
    if not is_gsa_email(gsa):
        return ctx.fail(
            _("`{ksa}` names `{value}` in `{annotation}`, which is not an IAM service account email "
              "(`NAME@PROJECT_ID.iam.gserviceaccount.com`): the token exchange fails.").format(
                ksa=f"{ns}/{ksa}", value=gsa, annotation=GSA_ANNOTATION),
            _("Set the full email:\n```\n{command}\n```").format(command=annotate(ns, ksa, placeholder)),
            evidence=evidence, resource=resource)
    return ctx.ok(_("`{ksa}` is annotated `{annotation}`.").format(ksa=f"{ns}/{ksa}",
                                                                  annotation=f"{GSA_ANNOTATION}: {gsa}"),
                  evidence=evidence, resource=resource)


def _direct(ctx, evidence: str, resource: str, placeholder: str):
    """No annotation: the pods act as the KSA's own principal. IAM may grant it roles directly (GKE's
    recommended form today): look for such grants on the project."""
    ns, ksa = target(ctx)
    project = pool_project(workload_pool(ctx))
    try:
        number, policy = ctx.gw.parallel(lambda: ctx.gw.project_number(project),
                                         lambda: ctx.gw.project_iam_policy(project))
    except ApiError as err:
        number, policy, unread = "PROJECT_NUMBER", None, err
    else:
        unread = None
    principal, group = ksa_principal(ctx, number), namespace_principal_set(ctx, number)
    grants = [b for b in (bindings(policy) if policy is not None else []) if {principal, group} & set(b.members)]
    unconditional = [b for b in grants if not b.condition]

    def granted(b) -> str:
        if group in b.members and b.condition:
            text = _("`{role}` (to every KSA of the namespace) (condition '{condition}')")
        elif group in b.members:
            text = _("`{role}` (to every KSA of the namespace)")
        elif b.condition:
            text = _("`{role}` (condition '{condition}')")
        else:
            return f"`{b.role}`"
        return text.format(role=b.role, condition=b.condition)
    listed = ", ".join(granted(b) for b in grants)
    evidence += "\n" + _("`{command}`: roles granted to `{principal}` or its namespace: {roles}").format(
        command=f"gcloud projects get-iam-policy {project}", principal=principal, roles=listed or _("none"))
    names = dict(ksa=f"{ns}/{ksa}", annotation=GSA_ANNOTATION, principal=principal, project=project)
    if unconditional:
        return ctx.ok(_("`{ksa}` has no `{annotation}` annotation, and needs none: IAM grants its own principal "
                        "`{principal}` {roles} on project `{project}` (Workload Identity Federation for GKE without an "
                        "IAM service account).").format(roles=listed, **names), evidence=evidence, resource=resource)
    if unread:
        where = _("The project policy could not be read ({error})").format(error=unread.explain())
    elif grants:
        where = _("Project `{project}` grants it nothing unconditionally ({roles})").format(project=project, roles=listed)
    else:
        where = _("Project `{project}` grants it nothing").format(project=project)
    return ctx.warn(
        _("`{ksa}` has no `{annotation}` annotation: its pods authenticate as the KSA's own principal `{principal}`, "
          "not as an IAM service account, and get only what IAM grants that principal directly. {why}; grants on "
          "single resources (a bucket, a secret) cannot be listed from here.").format(why=where, **names),
        _("Either grant the KSA's principal the roles it needs directly (ROLE: yours):\n```\n{grant}\n```\nor annotate "
          "it with the IAM service account the pods should act as (GSA_NAME: yours):\n```\n{annotate}\n```").format(
            grant=f"gcloud projects add-iam-policy-binding {project} \\\n    --role=ROLE \\\n    --member={principal} "
                  "\\\n    --condition=None",
            annotate=annotate(ns, ksa, placeholder)),
        evidence=evidence, resource=resource)
