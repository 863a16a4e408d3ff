"""Pods of the KSA that run an Istio / Cloud Service Mesh sidecar exclude 169.254.169.254/32 from redirection.

When Istio or Anthos (Cloud) Service Mesh injects a sidecar, the pod's outbound traffic is redirected
to the proxy, which blocks the GKE metadata server, and Workload Identity authentication fails. Add
the pod annotation `traffic.sidecar.istio.io/excludeOutboundIPRanges: 169.254.169.254/32` (or the
mesh-wide `global.proxy.excludeIPRanges` key, which the injector renders into istio-init's `-x`
argument) to every workload that uses Workload Identity, and
`proxy.istio.io/config: '{ "holdApplicationUntilProxyStarts": true }'` (mesh-wide
`global.proxy.holdApplicationUntilProxyStarts`) so the application starts after the sidecar. A pod
counts as meshed when it has an `istio-proxy` container or a `sidecar.istio.io/status` annotation.
"""
from __future__ import annotations

from checks.wi import METADATA_IP, annotations_of, covers, ip_ranges, ksa_pods, name_of, target

ID = "wi/istio-sidecar"
TITLE = "Istio sidecars let the KSA's pods reach the metadata server"
DOC_URL = "https://cloud.google.com/kubernetes-engine/docs/troubleshooting/authentication#workload-identity"
COMMANDS = ("wi",)
ORDER = 16
CLUSTER_LEVEL = False
EXCLUDE = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
INCLUDE = "traffic.sidecar.istio.io/includeOutboundIPRanges"
HOLD = "proxy.istio.io/config: '{ \"holdApplicationUntilProxyStarts\": true }'"


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


def run(ctx):
    ns, ksa = target(ctx)
    pods = ksa_pods(ctx)
    if not pods:
        return ctx.skip(f"No pod uses `{ns}/{ksa}` yet: nothing to check for an Istio sidecar.")
    mesh = [p for p in pods if meshed(p)]
    if not mesh:
        return ctx.ok(f"No pod of `{ns}/{ksa}` runs an Istio sidecar ({len(pods)} pod(s) checked).")
    bad = [p for p in mesh if not excluded(p)]
    if not bad:
        return ctx.ok(f"{len(mesh)} meshed pod(s) of `{ns}/{ksa}` keep {METADATA_IP} out of the sidecar: "
                      + "; ".join(sorted({excluded(p) for p in mesh})) + ".")
    current = sorted({annotations_of(p)[EXCLUDE] for p in bad if annotations_of(p).get(EXCLUDE)})
    value = ",".join(current[:1] + [f"{METADATA_IP}/32"])
    owners = sorted({f"{o.get('kind')} `{o.get('name')}`" for p in bad
                     for o in (p.get("metadata") or {}).get("ownerReferences") or []})
    return ctx.warn(
        f"{len(bad)} pod(s) of `{ns}/{ksa}` run an Istio sidecar that redirects traffic to the GKE metadata "
        f"server ({METADATA_IP}): " + ", ".join(f"`{name_of(p)}`" for p in bad[:5])
        + ". Workload Identity authentication fails while the proxy intercepts it.",
        "Add these pod-level annotations to the pod template"
        + (f" of {', '.join(owners)}" if owners else "") + " (or set the mesh-wide keys "
        "`global.proxy.excludeIPRanges` and `global.proxy.holdApplicationUntilProxyStarts`):\n```\n"
        f"metadata:\n  annotations:\n    {EXCLUDE}: {value}\n    {HOLD}\n```",
        evidence="\n".join(f"pod `{name_of(p)}`: `{EXCLUDE}` "
                           + (f"is `{annotations_of(p)[EXCLUDE]}`" if EXCLUDE in annotations_of(p) else "is not set")
                           for p in bad[:5]))
