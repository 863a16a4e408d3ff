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

from checks.i18n import N_, _, sentences
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
        return _("`{annotation}` does not redirect it").format(annotation=f"{INCLUDE}: {notes[INCLUDE]}")
    for c in _containers(pod):  # istio-init renders the mesh-wide global.proxy.excludeIPRanges as `-x RANGES`
        args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
        if any(a == "-x" and covers(ip_ranges(v), METADATA_IP) for a, v in zip(args, args[1:])):
            return _("`{container}` runs with `-x` covering {address}").format(container=c.get("name"),
                                                                              address=METADATA_IP)
    return ""


def held(pod: dict) -> str:
    """How the application waits for the sidecar ('' when it does not)."""
    notes = annotations_of(pod)
    if HOLD_RE.search(notes.get(PROXY_CONFIG, "")):
        return _("`{annotation}` holds the application").format(annotation=PROXY_CONFIG)
    spec = pod.get("spec") or {}
    if any(c.get("name") == "istio-proxy" and c.get("restartPolicy") == "Always" for c in spec.get("initContainers") or []):
        return _("`istio-proxy` runs as a native sidecar (it starts before the application)")
    containers = spec.get("containers") or []
    if containers and containers[0].get("name") == "istio-proxy":
        hook = ((containers[0].get("lifecycle") or {}).get("postStart") or {}).get("exec") or {}
        if "wait" in " ".join(map(str, hook.get("command") or [])):
            return _("`istio-proxy` starts first and the application waits for it (`pilot-agent wait`)")
    return ""


def run(ctx):
    ns, ksa = target(ctx)
    pods = ksa_pods(ctx)
    names = dict(ksa=f"{ns}/{ksa}", address=METADATA_IP)
    if not pods:
        return ctx.skip(_("No pod uses `{ksa}` yet: nothing to check for an Istio sidecar.").format(**names))
    mesh = [p for p in pods if meshed(p)]
    if not mesh:
        return ctx.ok(_("No pod of `{ksa}` runs an Istio sidecar ({count} pod(s) checked).").format(count=len(pods),
                                                                                              **names))
    unexcluded = [p for p in mesh if not excluded(p)]
    unheld = [p for p in mesh if not held(p)]
    if not unexcluded and not unheld:
        return ctx.ok(_("{count} meshed pod(s) of `{ksa}` keep {address} out of the sidecar and start after it: "
                        "{how}.").format(count=len(mesh), how="; ".join(sorted({excluded(p) for p in mesh}
                                                                              | {held(p) for p in mesh})), **names))
    bad = [p for p in mesh if p in unexcluded or p in unheld]
    current = sorted({annotations_of(p)[EXCLUDE] for p in unexcluded if annotations_of(p).get(EXCLUDE)})
    value = ",".join(current[:1] + [f"{METADATA_IP}/32"])
    owners = sorted({f"{o.get('kind')} `{o.get('name')}`" for p in bad
                     for o in (p.get("metadata") or {}).get("ownerReferences") or []})
    problems = []
    if unexcluded:
        problems.append(_("{count} pod(s) of `{ksa}` run an Istio sidecar that redirects traffic to the GKE metadata "
                          "server ({address}): {pods}. Workload Identity authentication fails while the proxy "
                          "intercepts it.").format(count=len(unexcluded),
                                                   pods=", ".join(f"`{name_of(p)}`" for p in unexcluded[:5]), **names))
    if unheld:
        problems.append(_("{count} meshed pod(s) start their application before the sidecar is ready: {pods}. Requests "
                          "sent in the first seconds (to the metadata server or to Google APIs) fail until the proxy "
                          "runs.").format(count=len(unheld), pods=", ".join(f"`{name_of(p)}`" for p in unheld[:5])))
    lines = ([f"    {EXCLUDE}: {value}"] if unexcluded else []) + ([f"    {HOLD}"] if unheld else [])
    keys = [key for key, wanted in (("`global.proxy.excludeIPRanges`", unexcluded),
                                    ("`global.proxy.holdApplicationUntilProxyStarts`", unheld)) if wanted]
    keys_text = _("{first} and {second}").format(first=keys[0], second=keys[1]) if len(keys) == 2 else keys[0]
    block = "metadata:\n  annotations:\n" + "\n".join(lines)
    remedy = (_("Add these pod-level annotations to the pod template of {owners} (or set the mesh-wide {keys}):\n```\n"
                "{annotations}\n```") if owners else
              _("Add these pod-level annotations to the pod template (or set the mesh-wide {keys}):\n```\n"
                "{annotations}\n```")).format(owners=", ".join(owners), keys=keys_text, annotations=block)

    def state(p: dict, key: str) -> str:
        notes = annotations_of(p)
        return _("`{key}` is `{value}`").format(key=key, value=notes[key]) if key in notes else \
            _("`{key}` is not set").format(key=key)
    return ctx.warn(
        sentences(*problems), remedy,
        evidence="\n".join(_("pod `{pod}`: {exclude}; {config}").format(
            pod=name_of(p), exclude=state(p, EXCLUDE), config=state(p, PROXY_CONFIG)) for p in bad[:5]))
