"""Pods of the KSA that run an Istio / Cloud Service Mesh sidecar exclude 169.254.169.254/32 from redirection.

When Istio or Anthos (Cloud) Service Mesh injects a sidecar, the pod's outbound traffic is redirected
to the proxy, which blocks the GKE metadata server, and Workload Identity authentication fails. Add
the pod annotation `traffic.sidecar.istio.io/excludeOutboundIPRanges: 169.254.169.254/32` (or the
mesh-wide `global.proxy.excludeIPRanges` key, which the injector renders into istio-init's `-x`
argument) to every workload that uses Workload Identity, and
`proxy.istio.io/config: '{ "holdApplicationUntilProxyStarts": true }'` (mesh-wide
`global.proxy.holdApplicationUntilProxyStarts`) so the application starts after the sidecar. A pod
counts as meshed when it has an `istio-proxy` container or a `sidecar.istio.io/status` annotation. The
hold shows in the pod as the annotation, or as the injector renders the mesh-wide key (`istio-proxy`
first among the containers with a `pilot-agent wait` postStart hook), or as a native sidecar
(`istio-proxy` an init container with `restartPolicy: Always`, which starts before the application).
"""
from __future__ import annotations

import re

from checks.i18n import N_, _
from checks.wi import METADATA_IP, annotations_of, covers, ip_ranges, ksa_pods, name_of, target

ID = "wi/istio-sidecar"
TITLE = N_("Istio sidecars let the KSA's pods reach the metadata server")
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 16
CLUSTER_LEVEL = False
SEED = "002 Istio を使用するクラスタで GKE 用 Workload Identity 連携の認証が失敗する"
EXCLUDE = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
INCLUDE = "traffic.sidecar.istio.io/includeOutboundIPRanges"
HOLD = "proxy.istio.io/config: '{ \"holdApplicationUntilProxyStarts\": true }'"
PROXY_CONFIG = "proxy.istio.io/config"
HOLD_RE = re.compile(r"[\"']?holdApplicationUntilProxyStarts[\"']?\s*:\s*true\b")


def _containers(pod: dict) -> list[dict]:
    spec = pod.get("spec") or {}
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


def meshed(pod: dict) -> bool:
    return "sidecar.istio.io/status" in annotations_of(pod) or any(
        c.get("name") == "istio-proxy" for c in _containers(pod))


def excluded(pod: dict) -> str:
    """The exclusion that keeps the metadata server out of the sidecar ('' when none does)."""
    notes = annotations_of(pod)
    if covers(ip_ranges(notes.get(EXCLUDE, "")), METADATA_IP):
        return f"`{EXCLUDE}: {notes[EXCLUDE]}`"
    if INCLUDE in notes and not covers(ip_ranges(notes[INCLUDE]), METADATA_IP):
        return f"`{INCLUDE}: {notes[INCLUDE]}` does not redirect it"
    for c in _containers(pod):  # istio-init renders the mesh-wide global.proxy.excludeIPRanges as `-x RANGES`
        args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
        if any(a == "-x" and covers(ip_ranges(v), METADATA_IP) for a, v in zip(args, args[1:])):
            return f"`{c.get('name')}` runs with `-x` covering {METADATA_IP}"
    return ""


def held(pod: dict) -> str:
    """How the application waits for the sidecar ('' when it does not)."""
    notes = annotations_of(pod)
    if HOLD_RE.search(notes.get(PROXY_CONFIG, "")):
        return f"`{PROXY_CONFIG}` holds the application"
    spec = pod.get("spec") or {}
    if any(c.get("name") == "istio-proxy" and c.get("restartPolicy") == "Always" for c in spec.get("initContainers") or []):
        return "`istio-proxy` runs as a native sidecar (it starts before the application)"
    containers = spec.get("containers") or []
    if containers and containers[0].get("name") == "istio-proxy":
        hook = ((containers[0].get("lifecycle") or {}).get("postStart") or {}).get("exec") or {}
        if "wait" in " ".join(map(str, hook.get("command") or [])):
            return "`istio-proxy` starts first and the application waits for it (`pilot-agent wait`)"
    return ""


def run(ctx):
    ns, ksa = target(ctx)
    pods = ksa_pods(ctx)
    if not pods:
        return ctx.skip(f"No pod uses `{ns}/{ksa}` yet: nothing to check for an Istio sidecar.")
    mesh = [p for p in pods if meshed(p)]
    if not mesh:
        return ctx.ok(f"No pod of `{ns}/{ksa}` runs an Istio sidecar ({len(pods)} pod(s) checked).")
    unexcluded = [p for p in mesh if not excluded(p)]
    unheld = [p for p in mesh if not held(p)]
    if not unexcluded and not unheld:
        return ctx.ok(f"{len(mesh)} meshed pod(s) of `{ns}/{ksa}` keep {METADATA_IP} out of the sidecar and start "
                      "after it: " + "; ".join(sorted({excluded(p) for p in mesh} | {held(p) for p in mesh})) + ".")
    bad = [p for p in mesh if p in unexcluded or p in unheld]
    current = sorted({annotations_of(p)[EXCLUDE] for p in unexcluded if annotations_of(p).get(EXCLUDE)})
    value = ",".join(current[:1] + [f"{METADATA_IP}/32"])
    owners = sorted({f"{o.get('kind')} `{o.get('name')}`" for p in bad
                     for o in (p.get("metadata") or {}).get("ownerReferences") or []})
    problems = []
    if unexcluded:
        problems.append(f"{len(unexcluded)} pod(s) of `{ns}/{ksa}` run an Istio sidecar that redirects traffic to the "
                        f"GKE metadata server ({METADATA_IP}): " + ", ".join(f"`{name_of(p)}`" for p in unexcluded[:5])
                        + ". Workload Identity authentication fails while the proxy intercepts it.")
    if unheld:
        problems.append(f"{len(unheld)} meshed pod(s) start their application before the sidecar is ready: "
                        + ", ".join(f"`{name_of(p)}`" for p in unheld[:5]) + ". Requests sent in the first seconds "
                        "(to the metadata server or to Google APIs) fail until the proxy runs.")
    lines = ([f"    {EXCLUDE}: {value}"] if unexcluded else []) + ([f"    {HOLD}"] if unheld else [])
    keys = " and ".join(([f"`global.proxy.excludeIPRanges`"] if unexcluded else [])
                        + ([f"`global.proxy.holdApplicationUntilProxyStarts`"] if unheld else []))
    return ctx.warn(
        " ".join(problems),
        "Add these pod-level annotations to the pod template"
        + (f" of {', '.join(owners)}" if owners else "") + f" (or set the mesh-wide {keys}):\n```\n"
        "metadata:\n  annotations:\n" + "\n".join(lines) + "\n```",
        evidence="\n".join(f"pod `{name_of(p)}`: `{EXCLUDE}` "
                           + (f"is `{annotations_of(p)[EXCLUDE]}`" if EXCLUDE in annotations_of(p) else "is not set")
                           + f"; `{PROXY_CONFIG}` " + (f"is `{annotations_of(p)[PROXY_CONFIG]}`"
                                                       if PROXY_CONFIG in annotations_of(p) else "is not set")
                           for p in bad[:5]))
