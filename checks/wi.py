"""Shared facts and helpers of the `/gke wi NAMESPACE/KSA` checks (Workload Identity Federation for GKE).

Every Kubernetes read goes through the gateway, memoised per job, so the checks that need the KSA's
pods, the nodes or kube-system's pods share one request per job. Objects come back as
the API server's JSON (camelCase, verbatim), which the checks quote as evidence.
"""
from __future__ import annotations

import ipaddress

from checks.gateway import kube as kc
from checks.i18n import _
from checks.names import EMAIL_RE

GSA_ANNOTATION = "iam.gke.io/gcp-service-account"
WI_ROLE = "roles/iam.workloadIdentityUser"
NODEPOOL_LABEL = "cloud.google.com/gke-nodepool"
IAMCREDENTIALS = "iamcredentials.googleapis.com"
METADATA_IP = "169.254.169.254"


def for_ksa(ctx) -> bool:
    """True under `/gke wi NAMESPACE/KSA`; False when a cluster-level check runs for `doctor` (no KSA)."""
    return "ksa" in ctx.args


def wi_enabled(cluster) -> bool:
    """Workload Identity Federation for GKE is on: a workload pool is set (Autopilot always has one)."""
    return bool(cluster.workload_identity_config.workload_pool) or cluster.autopilot.enabled


def target(ctx) -> tuple[str, str]:
    """(namespace, KSA name) the user asked about."""
    return ctx.args["namespace"], ctx.args["ksa"]


def ksa_pods(ctx) -> list[dict]:
    """Pods in NAMESPACE whose spec.serviceAccountName is the KSA."""
    ns, ksa = target(ctx)
    return ctx.gw.kube_list(ctx.ref, kc.PODS_LIST, ns, field_selector=f"spec.serviceAccountName={ksa}")


def system_pods(ctx) -> list[dict]:
    """Every pod in kube-system (gke-metadata-server, kube-dns, …)."""
    return ctx.gw.kube_list(ctx.ref, kc.PODS_LIST, "kube-system")


def nodes(ctx) -> list[dict]:
    return ctx.gw.kube_list(ctx.ref, kc.NODES_LIST)


def ksa_object(ctx) -> dict | None:
    """The KSA, or None when it does not exist."""
    ns, ksa = target(ctx)
    return ctx.gw.kube_get(ctx.ref, kc.SERVICEACCOUNTS_GET, ksa, ns)


def gsa_of(ctx) -> str:
    """The KSA's `iam.gke.io/gcp-service-account` annotation ('' when the KSA or annotation is missing)."""
    sa = ksa_object(ctx) or {}
    return ((sa.get("metadata") or {}).get("annotations") or {}).get(GSA_ANNOTATION, "").strip()


def is_gsa_email(text: str) -> bool:
    """NAME@PROJECT_ID.iam.gserviceaccount.com (or another *.gserviceaccount.com service account)."""
    return bool(EMAIL_RE.match(text)) and text.endswith(".gserviceaccount.com")


def network_policies(ctx) -> list[dict]:
    ns, _ksa = target(ctx)
    return ctx.gw.kube_list(ctx.ref, kc.NETWORKPOLICIES_LIST, ns)


def service_account_count(ctx) -> int:
    """Kubernetes service accounts in every namespace, counted page by page (limit/continue)."""
    return ctx.gw.kube_count(ctx.ref, kc.SERVICEACCOUNTS_LIST)


def workload_pool(ctx) -> str:
    """The cluster's workload pool, or the one it should have (PROJECT.svc.id.goog) when Workload Identity is off."""
    return ctx.gw.cluster(ctx.ref).workload_identity_config.workload_pool or f"{ctx.ref.project}.svc.id.goog"


def wi_member(ctx) -> str:
    ns, ksa = target(ctx)
    return f"serviceAccount:{workload_pool(ctx)}[{ns}/{ksa}]"


def pool_project(pool: str) -> str:
    """The project whose workload identity pool `PROJECT.svc.id.goog` is."""
    return pool.removesuffix(".svc.id.goog")


def ksa_principal(ctx, number: str) -> str:
    """The KSA's own IAM principal, which IAM can grant roles to directly (no IAM service account, no annotation):
    principal://iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/subject/ns/NS/sa/KSA."""
    ns, ksa = target(ctx)
    return (f"principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/"
            f"{workload_pool(ctx)}/subject/ns/{ns}/sa/{ksa}")


def namespace_principal_set(ctx, number: str) -> str:
    """Every KSA of the namespace: principalSet://…/workloadIdentityPools/POOL/namespace/NS."""
    ns, _ksa = target(ctx)
    return (f"principalSet://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/"
            f"{workload_pool(ctx)}/namespace/{ns}")


def where(ctx) -> str:
    """gcloud flags naming the cluster's location and project."""
    return f"--location={ctx.ref.location} --project={ctx.ref.project}"


def name_of(obj: dict) -> str:
    return obj["metadata"]["name"]


def listed(objs: list[dict], most: int = 5) -> str:
    """`a`, `b`, `c` and 4 more."""
    names = [f"`{name_of(o)}`" for o in objs]
    if len(names) > most:
        return _("{names} and {count} more").format(names=", ".join(names[:most]), count=len(names) - most)
    return ", ".join(names)


def labels_of(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def annotations_of(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def selects(selector: dict | None, labels: dict) -> bool:
    """A Kubernetes LabelSelector (matchLabels and matchExpressions) against an object's labels."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, values = expr.get("key"), expr.get("values") or []
        ok = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}.get(expr.get("operator"), False)
        if not ok:
            return False
    return True


def ip_ranges(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The CIDRs of a comma-separated list ("*" is every address); unparsable entries are skipped."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if part == "*":
            part = "0.0.0.0/0"
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            continue
    return out


def covers(ranges, address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == r.version and ip in r for r in ranges)


def ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


# ---- NetworkPolicy egress evaluation ------------------------------------------------------------
def restricts_egress(policy: dict) -> bool:
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    return "Egress" in types if types else "egress" in spec


def ipblock_allows(peer: dict, address: str) -> bool:
    """An egress peer's ipBlock contains `address` (and no `except` range does)."""
    block = peer.get("ipBlock")
    if not block or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
        inside = ip in ipaddress.ip_network(block["cidr"], strict=False)
        return inside and not any(ip in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
    except (ValueError, TypeError, KeyError):
        return False


def port_allows(entry: dict, port: int, protocol: str = "TCP") -> bool:
    """A NetworkPolicyPort entry allows `port`/`protocol` (no port: every port; named ports never match here)."""
    if (entry.get("protocol") or "TCP") != protocol:
        return False
    start = entry.get("port")
    if start is None:
        return True
    if not str(start).isdigit():  # a named port names a pod's container port
        return False
    return int(start) <= port <= int(entry.get("endPort") or start)


def selecting_egress(policies: list[dict], pod: dict | None) -> list[dict]:
    """The egress-restricting policies that select `pod` (None: a pod not created yet, only select-all ones)."""
    out = []
    for q in policies:
        if not restricts_egress(q):
            continue
        sel = (q.get("spec") or {}).get("podSelector") or {}
        if pod is None:
            if not sel.get("matchLabels") and not sel.get("matchExpressions"):
                out.append(q)
        elif selects(sel, labels_of(pod)):
            out.append(q)
    return out


# ---- gke-metadata-server's logs (Cloud Logging) -------------------------------------------------
LOG_WINDOW_HOURS = 24
# What the seed and gcpdiag look for in gke-metadata-server's logs (002; gke/ERR/2023_011).
POD_NOT_FOUND = "Unable to find pod"
CONNECTION_REFUSED = "connect: connection refused"
TIMEOUT_TERMS = ("timeout", "deadline exceeded")
METADATA_LOG_TERMS = (POD_NOT_FOUND, CONNECTION_REFUSED, *TIMEOUT_TERMS)


def metadata_server_log_filter(ctx) -> str:
    """A tight Cloud Logging filter: this cluster's gke-metadata-server containers, warnings and worse, in the
    last LOG_WINDOW_HOURS, with one of the messages the seed and gcpdiag look for."""
    import datetime as dt
    import json as _json

    def since() -> str:
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=LOG_WINDOW_HOURS)
        return start.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    ref = ctx.ref
    terms = " OR ".join(_json.dumps(t) for t in METADATA_LOG_TERMS)
    return "\n".join([
        'resource.type="k8s_container"', f'resource.labels.project_id="{ref.project}"',
        f'resource.labels.location="{ref.location}"', f'resource.labels.cluster_name="{ref.name}"',
        'resource.labels.namespace_name="kube-system"', 'resource.labels.container_name="gke-metadata-server"',
        "severity>=WARNING", f'timestamp>="{ctx.gw.memo(("log_window_start",), since)}"', f"({terms})"])


def metadata_server_logs(ctx) -> list[dict]:
    """The newest matching gke-metadata-server entries (memoised: every check that quotes them shares one read).
    Raises ApiError (e.g. 403 without logging.logEntries.list)."""
    return ctx.gw.log_entries(ctx.ref.project, metadata_server_log_filter(ctx))


def log_message(entry: dict) -> str:
    payload = entry.get("jsonPayload") or {}
    return str(payload.get("message") or entry.get("textPayload") or json_dumps(payload))


def json_dumps(value) -> str:
    import json as _json
    return _json.dumps(value, sort_keys=True)


def log_line(entry: dict) -> str:
    pod = ((entry.get("resource") or {}).get("labels") or {}).get("pod_name", "?")
    return f"{entry.get('timestamp', '?')} {entry.get('severity', '')} {pod}: {log_message(entry)[:300]}"
