"""Pods of the KSA wait for the GKE metadata server before their application starts.

The GKE metadata server needs a few seconds before it serves a new pod. Applications and client
libraries with short timeouts that authenticate in their first seconds then fail with timeouts. Update
the client libraries, retry after a few seconds in the application, or add an initContainer that waits
until the metadata server answers (the manifest below, with the KSA filled in). The check looks for
such an initContainer in the pods that use the KSA and otherwise shows the manifest as guidance.
"""
from __future__ import annotations

from checks.i18n import N_, _
from checks.wi import ksa_pods, target

ID = "wi/startup-timeout"
TITLE = N_("Pods wait for the metadata server at start-up")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 22
SEED = "002 Pod の起動時にタイムアウト エラーが発生する"
CLUSTER_LEVEL = False
WAIT = ("curl -sS -H 'Metadata-Flavor: Google' "
        "'http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token' --retry 30 "
        "--retry-connrefused --retry-max-time 60 --connect-timeout 3 --fail --retry-all-errors > /dev/null && "
        "exit 0 || echo 'Retry limit exceeded. Failed to wait for metadata server to be available. Check if the "
        "gke-metadata-server Pod in the kube-system namespace is healthy.' >&2; exit 1")


def manifest(ns: str, ksa: str) -> str:
    return (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-with-initcontainer\n  namespace: {ns}\nspec:\n"
            f"  serviceAccountName: {ksa}\n  initContainers:\n"
            "  - image:  gcr.io/google.com/cloudsdktool/cloud-sdk:alpine\n    name: workload-identity-initcontainer\n"
            f"    command:\n    - '/bin/bash'\n    - '-c'\n    - |\n      {WAIT}\n  containers:\n"
            "  - image: gcr.io/your-project/your-image\n    name: your-main-application-container")


def waits(pod: dict) -> bool:
    return any("computeMetadata" in " ".join(map(str, (c.get("command") or []) + (c.get("args") or [])))
               for c in (pod.get("spec") or {}).get("initContainers") or [])


def run(ctx):
    ns, ksa = target(ctx)
    pods = ksa_pods(ctx)
    if pods and all(waits(p) for p in pods):
        return ctx.ok(_("Every pod of `{ksa}` ({count}) has an initContainer that waits for the metadata server.").format(
            ksa=f"{ns}/{ksa}", count=len(pods)))
    return ctx.skip(
        _("If pods of `{ksa}` time out authenticating in their first seconds, the GKE metadata server was not serving "
          "them yet. Update the Google Cloud client libraries, retry after a few seconds in the code, or wait for the "
          "metadata server in an initContainer.").format(ksa=f"{ns}/{ksa}"),
        remedy=_("Add an initContainer like this one before the application starts:\n```\n{manifest}\n```").format(
            manifest=manifest(ns, ksa)))
