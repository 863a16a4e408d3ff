"""Reasoning about a cluster's GKE operations, rotations and maintenance windows (Slack-free helpers).

- recent operations of one cluster (running, and finished in the last RECENT_DAYS days), failed ones
  with their error verbatim and what the seeds say it means;
- node pools a credential or IP rotation (or a failed operation: `Node pool "POOL" requires recreation.`)
  left waiting for recreation;
- the cluster's maintenance window and exclusions: when GKE may next do such work on its own.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from checks.i18n import N_, _, sentences

RECENT_DAYS = 7
IN_FLIGHT = ("PENDING", "RUNNING", "ABORTING")
RECREATION_RE = re.compile(r'Node pool "([^"]+)" requires recreation\.?')
RETRY_BUDGET_RE = re.compile(r"Required permission '([^']+)' for '([^']+)'")
_TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")

# (pattern searched in the error, what it means: N_(), translated in meaning()). First match wins; the error
# itself is always quoted.
MEANINGS = [
    (re.compile(r"requires recreation", re.I),
     N_("GKE marked the node pool for recreation (after a credential or IP rotation, for example) and has not "
        "recreated it yet; operations that need recreated nodes fail until it has (see gke/node-pool-recreation).")),
    (re.compile(r"DeployPatch failed", re.I),
     N_("GKE could not apply a change inside the cluster on your behalf: the GKE service agent lacks "
        "roles/container.serviceAgent (see gke/service-agent-role), for example when enabling Workload Identity.")),
    (re.compile(r"Retry budget exhausted", re.I),
     N_("The service account the cluster's nodes use lacks a permission GKE needs to create them (see "
        "gke/retry-budget for the permission named).")),
    (re.compile(r"running incompatible operation", re.I),
     N_("Another operation was running on the cluster; GKE runs one at a time. Wait for it, then retry.")),
    (re.compile(r"IP_SPACE_EXHAUSTED|IP space of .* is exhausted", re.I),
     N_("The subnet (or its secondary range) has no free addresses for new nodes or Pods: expand it or add a "
        "range.")),
    (re.compile(r"ZONE_RESOURCE_POOL_EXHAUSTED|does not have enough resources available", re.I),
     N_("The zone has no capacity for this machine type right now: retry later, or use another zone or machine "
        "type.")),
    (re.compile(r"quota", re.I),
     N_("A Compute Engine quota of the project is exhausted in the region: request more, or use fewer resources.")),
    (re.compile(r"permission|PERMISSION_DENIED|forbidden", re.I),
     N_("A Google Cloud account GKE acts through lacks a permission: see why-403 (service agent, default "
        "accounts, node service accounts).")),
]


def parse_time(text) -> datetime | None:
    """An RFC 3339 time as GKE writes it (nanoseconds and all) as an aware datetime; None when empty."""
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=timezone.utc)
    m = _TIME_RE.match((text or "").strip())
    if not m:
        return None
    base, frac, zone = m.groups()
    out = datetime.fromisoformat(base + (f".{frac[:6].ljust(6, '0')}" if frac else ""))
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        out -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return out.replace(tzinfo=timezone.utc)


def when(dt: datetime | None) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if dt else "?"


def error_text(op) -> str:
    """A finished operation's error, verbatim ('' when it succeeded)."""
    return (op.error.message if op.error and op.error.message else "") or op.status_message or ""


def quoted(text: str) -> str:
    """Text from Google or the cluster for inside a code span or block: backticks cannot break out."""
    return (text or "").replace("`", "'")


def failed(op) -> bool:
    return op.status.name == "DONE" and bool(error_text(op))


def meaning(error: str) -> str:
    """What the seeds say an operation's error means, in the reader's language ('' when unknown)."""
    return next((_(text) for rx, text in MEANINGS if rx.search(error)), "")


def targets(op, ref) -> bool:
    """The operation acts on the cluster `ref` (or one of its node pools)."""
    link = op.target_link or op.self_link
    return bool(re.search(rf"/(?:zones|locations)/{re.escape(ref.location)}/clusters/{re.escape(ref.name)}(?:/|$)",
                          link))


def pool_of(op) -> str:
    m = re.search(r"/nodePools/([^/]+)", op.target_link or "")
    return m.group(1) if m else ""


def recent(ops, ref, now: datetime | None = None, days: int = RECENT_DAYS) -> list:
    """The cluster's operations in flight, or started or finished in the last `days` days, newest first."""
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=days)
    out = []
    for op in ops:
        if not targets(op, ref):
            continue
        start, end = parse_time(op.start_time), parse_time(op.end_time)
        if op.status.name in IN_FLIGHT or (end or start or now) >= since:
            out.append(op)
    return sorted(out, key=lambda o: parse_time(o.start_time) or now, reverse=True)


def describe_op(op) -> str:
    """One line of evidence about an operation: name, type (and node pool), status, start and end."""
    kind = op.operation_type.name
    what = _("{type} on node pool {pool}").format(type=kind, pool=pool_of(op)) if pool_of(op) else kind
    if op.end_time:
        return _("{name}  {what}  {status}  started {start}  ended {end}").format(
            name=op.name, what=what, status=op.status.name, start=op.start_time or "?", end=op.end_time)
    return _("{name}  {what}  {status}  started {start}").format(
        name=op.name, what=what, status=op.status.name, start=op.start_time or "?")


# ---- rotations --------------------------------------------------------------------------------
@dataclass
class CaBundle:
    """The cluster CA certificates in masterAuth.clusterCaCertificate (more than one: a rotation started)."""
    certificates: list = field(default_factory=list)  # (subject, notBefore, notAfter)
    readable: bool = True

    @property
    def rotating(self) -> bool:
        return len(self.certificates) > 1

    @property
    def newest(self) -> datetime | None:
        return max((c[1] for c in self.certificates), default=None)

    def evidence(self) -> str:
        return "; ".join(_("`{subject}` valid from {start} to {end}").format(subject=subject, start=when(start),
                                                                              end=when(end))
                         for subject, start, end in self.certificates)


def ca_bundle(cluster) -> CaBundle:
    from cryptography import x509

    try:
        pem = base64.b64decode(cluster.master_auth.cluster_ca_certificate or "", validate=True)
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        return CaBundle(readable=False)
    return CaBundle([(c.subject.rfc4514_string(), c.not_valid_before_utc, c.not_valid_after_utc) for c in certs])


def recreated_since(ops, pool: str, since: datetime) -> object | None:
    """The operation that recreated `pool`'s nodes (an upgrade, to the same version included, or its
    creation) after `since`, if one finished without error."""
    for op in ops:
        if pool_of(op) != pool or op.status.name != "DONE" or error_text(op):
            continue
        if op.operation_type.name not in ("UPGRADE_NODES", "CREATE_NODE_POOL"):
            continue
        start = parse_time(op.start_time)
        if start and start >= since:
            return op
    return None


# ---- maintenance ------------------------------------------------------------------------------
def _duration(text: str) -> timedelta:
    m = re.fullmatch(r"P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.\d+)?S)?", text or "")
    if not m or not any(m.groups()):
        return timedelta(hours=4)  # GKE's daily windows last four hours
    d, h, mi, s = (int(x or 0) for x in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)


def next_window(cluster, now: datetime | None = None) -> tuple[datetime, datetime] | None:
    """(start, end) of the maintenance window open now or opening next; None without a window."""
    now = now or datetime.now(timezone.utc)
    window = cluster.maintenance_policy.window
    if "daily_maintenance_window" in window and window.daily_maintenance_window.start_time:
        daily = window.daily_maintenance_window
        hour, minute = (int(x) for x in daily.start_time.split(":")[:2])
        length = _duration(daily.duration)
        start = now.replace(hour=hour, minute=minute, second=0, microsecond=0) - timedelta(days=1)
        while start + length <= now:
            start += timedelta(days=1)
        return start, start + length
    if "recurring_window" in window and window.recurring_window.recurrence:
        from dateutil.rrule import rrulestr

        rec = window.recurring_window
        first, last = parse_time(rec.window.start_time), parse_time(rec.window.end_time)
        if not first or not last:
            return None
        length = last - first
        rule = rrulestr(rec.recurrence, dtstart=first)
        current = rule.before(now, inc=True)
        if current and current + length > now:
            return current, current + length
        upcoming = rule.after(now)
        return (upcoming, upcoming + length) if upcoming else None
    return None


def maintenance_note(cluster, now: datetime | None = None) -> str:
    """When GKE may next do maintenance work (recreations included) on its own, from the cluster's
    maintenance window and exclusions."""
    now = now or datetime.now(timezone.utc)
    window = cluster.maintenance_policy.window
    try:
        upcoming = next_window(cluster, now)
    except (ValueError, TypeError) as exc:  # an RRULE dateutil cannot read
        upcoming, problem = None, str(exc)
    else:
        problem = ""
    blocked = []
    for name, excl in window.maintenance_exclusions.items():
        start, end = parse_time(excl.start_time), parse_time(excl.end_time)
        if end and end > now:
            scope = excl.maintenance_exclusion_options.scope.name if "maintenance_exclusion_options" in excl else ""
            text = (_("exclusion `{name}` from {start} to {end} (scope {scope})") if scope else
                    _("exclusion `{name}` from {start} to {end}"))
            blocked.append((start, end, text.format(name=name, start=when(start), end=when(end), scope=scope)))
    if upcoming:
        start, end = upcoming
        text = (_("A maintenance window is open now, until {end}.").format(end=when(end)) if start <= now else
                _("The next maintenance window opens {start} and closes {end}.").format(start=when(start),
                                                                                        end=when(end)))
    elif problem:
        text = _("The cluster has a maintenance window, but no next occurrence could be worked out (the bot could "
                 "not read its recurrence: {error}).").format(error=problem)
    elif "recurring_window" in window or "daily_maintenance_window" in window:
        text = _("The cluster has a maintenance window, but no next occurrence could be worked out.")
    else:
        text = _("The cluster sets no maintenance window, so GKE may do it at any time.")
    if blocked:
        text = sentences(text, _("Maintenance exclusions can hold it back: {exclusions}.").format(
            exclusions="; ".join(b[2] for b in sorted(blocked))))
    return text
