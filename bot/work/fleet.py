"""Fleet sweeps: `doctor` on every cluster of a binding, and one digest of what changed since the last sweep.

`gke-bot sweep --channel C` (or the scheduler, bot.work.scheduler) queues one `sweep` job. The worker that takes
it lists the binding's clusters (every project of the binding) and queues one `sweep-cluster` job per cluster
(fan-out), so N workers share a sweep. Each cluster job runs `doctor` and stores its report, signed, in Redis;
the job that stores the last one posts the digest (fan-in). When the sweep's deadline passes first, a worker's
janitor posts it instead and names the clusters that did not answer. Whoever posts takes a once-only lock, so
there is exactly one digest per sweep.

The digest compares FAILs by a stable key (cluster, check id, resource), never by their text, with the
channel's previous sweep (kept in Redis, signed): new FAILs get one line each and a thread reply per cluster
with the details and fix buttons (the ordinary report, bot.work.jobs.post_report); resolved ones are listed;
unchanged ones are counted. Nothing new: one short line, or nothing (`sweep: {quiet: true}`).

Without REDIS_URL the whole sweep runs in the calling process (a thread pool) and has no memory: every FAIL is new.

How a report is posted (`post`: bot.work.jobs.post_report) and how long a diagnosis may take (`budget`:
bot.work.jobs.check_budget) are handed in by the caller: this module sits below bot.work.jobs (which runs its jobs).
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from bot.config import ConfigError, Settings
from bot.i18n import N_, _, language
from bot.signing import Signer
from checks.model import Report, Status

log = logging.getLogger(__name__)

PREFIX = "gke-bot:fleet:"
OPEN = PREFIX + "open"  # sorted set: sweep id → its deadline (epoch seconds)
KEEP = 7 * 24 * 3600  # seconds a sweep's data stays in Redis
MAX_LINES = 60  # lines per part of the digest; the rest is counted
PACE = 1.0  # seconds between thread replies past the first few (Slack: about one message per second per channel)

NOT_BOUND = N_("channel {channel} is bound by no binding of the access policy, so there is no fleet to sweep")


def signer(settings: Settings) -> Signer:
    """Signs what a sweep keeps in Redis (its plan, each cluster's report, the channel's last state)."""
    return Signer(settings.plan_keys, "sweep")


def binding_of(settings: Settings, channel: str):
    """The binding whose fleet a sweep of `channel` covers; ConfigError (one line) when there is none."""
    from bot.policy import CHANNEL_RE, load
    if not isinstance(channel, str) or not CHANNEL_RE.match(channel) or channel[0] == "D":
        raise ConfigError(f"--channel must be a Slack channel id (C…, G…); got {channel!r}")
    binding = load(settings).binding_for(channel)
    if binding is None:
        raise ConfigError(_(NOT_BOUND).format(channel=channel))
    if not binding.projects:
        raise ConfigError(f"the binding of {channel} ({binding.name}) names no project (GKE_BOT_PROJECTS is empty?)")
    return binding


def _gateway(settings: Settings, binding, redis, deadline: float | None):
    from checks.gateway import Gateway
    from bot.work.ratelimit import limiter_for
    return Gateway(settings.google_api_url, deadline=deadline, shared_cache=redis, projects=binding.projects,
                   endpoint=settings.endpoint, limiter=limiter_for(settings, redis))


def list_fleet(settings: Settings, binding, redis=None) -> tuple[list[str], list[str], list[str]]:
    """(cluster paths of every project of the binding, one line per project that could not be listed, the ids of
    those projects)."""
    from checks.gateway import ApiError
    gw = _gateway(settings, binding, redis, time.monotonic() + 60)
    paths, errors, failed = [], [], []
    for project in binding.projects:
        try:
            for c in gw.clusters(project):
                paths.append(f"projects/{project}/locations/{c.location}/clusters/{c.name}")
        except ApiError as err:
            errors.append(_("Could not list the clusters of `{project}`: {error}").format(
                project=project, error=err.explain()))
            failed.append(project)
    return sorted(set(paths)), errors, failed


Post = Callable  # (thread, report, store) → None: bot.work.jobs.post_report


def doctor(settings: Settings, binding, path: str, budget: float, redis=None) -> tuple[Report, int]:
    """`doctor` on one cluster of the binding (a path it listed): its report and how many Google calls it made."""
    from checks.resolve import ClusterSpec
    parts = path.split("/")
    if len(parts) != 6 or parts[0] != "projects" or parts[1] not in binding.projects:
        return Report("doctor", path, note=_("not a cluster of this binding")), 0
    return doctor_spec(settings, binding, ClusterSpec(name=parts[5], location=parts[3], project=parts[1]), budget,
                       redis)


def doctor_spec(settings: Settings, binding, spec, budget: float, redis=None) -> tuple[Report, int]:
    """`doctor` on a cluster as named (found among the binding's projects when no project is given)."""
    from checks.engine import run_command
    deadline = time.monotonic() + budget
    gw = _gateway(settings, binding, redis, deadline)
    report = run_command(gw, "doctor", spec, binding.projects, "", {}, strict=True, deadline=deadline)
    return report, len(gw.calls)


# ---- comparing two sweeps ---------------------------------------------------------------------------------------
def fail_key(cluster: str, check_id: str, resource: str) -> str:
    return f"{cluster}|{check_id}|{resource}"


@dataclass
class Digest:
    clusters: list[str]  # every cluster of the fleet
    new: list[dict] = field(default_factory=list)  # {cluster, id, resource, title}
    resolved: list[dict] = field(default_factory=list)
    unchanged: int = 0
    missing: list[tuple[str, str]] = field(default_factory=list)  # (cluster, why) of clusters without an answer
    errors: list[str] = field(default_factory=list)  # projects that could not be listed
    state: dict = field(default_factory=dict)  # what the next sweep compares with

    @property
    def quiet(self) -> bool:
        return not (self.new or self.resolved or self.missing or self.errors)


def compare(clusters: list[str], previous: dict, reports: dict[str, Report], errors: list[str] = (),
            unlisted: list[str] = ()) -> Digest:
    """What changed: FAILs of the answered clusters against the previous state (key → entry).

    Only an answer resolves a FAIL: a cluster that did not answer, a check that ended in ERROR (a deadline, a
    429, the bot's own missing permission) or did not run this time, and the clusters of a project that could
    not be listed (`unlisted`) keep their previous FAILs, neither new nor resolved, so a flaky sweep never turns
    one finding into "resolved" and then "new" again."""
    answered = {p for p, r in reports.items() if r.findings}
    current, unknown = {}, set()  # unknown: (cluster, check id) whose answer this time says nothing
    for path in answered:
        ran = {f.id for f in reports[path].findings}
        for f in reports[path].findings:
            if f.status is Status.FAIL:
                current[fail_key(path, f.id, f.resource)] = {"cluster": path, "id": f.id, "resource": f.resource,
                                                              "title": f.title}
            elif f.status is Status.ERROR:
                unknown.add((path, f.id))
        unknown.update((path, k["id"]) for k in (previous or {}).values()
                       if isinstance(k, dict) and k.get("cluster") == path and k.get("id") not in ran)
    def project(path) -> str:  # projects/P/locations/L/clusters/C → P
        parts = str(path or "").split("/")
        return parts[1] if len(parts) == 6 else ""
    previous = {k: v for k, v in (previous or {}).items() if isinstance(v, dict) and (
        v.get("cluster") in clusters or project(v.get("cluster")) in set(unlisted))}

    def settled(v: dict) -> bool:  # this sweep's answer about it can be trusted
        return v["cluster"] in answered and (v["cluster"], v.get("id")) not in unknown
    d = Digest(clusters=list(clusters), errors=list(errors))
    d.new = [current[k] for k in sorted(current) if k not in previous]
    d.resolved = [previous[k] for k in sorted(previous) if k not in current and settled(previous[k])]
    d.unchanged = sum(1 for k in current if k in previous)
    d.missing = [(p, reports[p].note if p in reports else "") for p in clusters if p not in answered]
    d.state = dict(current)
    d.state.update({k: v for k, v in previous.items() if k not in current and not settled(v)})
    return d


# ---- the digest in Slack ------------------------------------------------------------------------------------------
def _short(path: str) -> str:
    parts = path.split("/")
    return "/".join(parts[1::2]) if len(parts) == 6 else path


def _title(entry: dict) -> str:
    """A finding's title in the reader's language (by its check id), else as it was stored."""
    from checks import registry
    from checks.i18n import _ as checks_
    check = registry.CHECKS.get(str(entry.get("id", "")))
    return checks_(check.title) if check else str(entry.get("title", ""))


def digest_text(d: Digest) -> str:
    from bot.render.blocks import code, escape, word
    projects = len({p.split("/")[1] for p in d.clusters if p.count("/") == 5})
    if d.quiet:
        return ":white_check_mark: " + _("Fleet sweep of {clusters} clusters in {projects} projects: nothing new "
                                         "({unchanged} unchanged FAILs).").format(
            clusters=len(d.clusters), projects=projects, unchanged=d.unchanged)
    lines = [_("*Fleet sweep* of {clusters} clusters in {projects} projects: {new} new FAILs, {resolved} resolved, "
               "{unchanged} unchanged.").format(clusters=len(d.clusters), projects=projects, new=len(d.new),
                                                resolved=len(d.resolved), unchanged=d.unchanged)]

    def part(head: str, items: list[str]) -> None:
        if items:
            lines.append(head)
            lines.extend(items[:MAX_LINES])
            if len(items) > MAX_LINES:
                lines.append(_("… and {n} more").format(n=len(items) - MAX_LINES))
    fail, ok = word(Status.FAIL), word(Status.OK)  # a check's title says what should hold: "[FAIL] X is enabled"
    part(":x: " + _("*New:*"), [f"• {code(_short(e['cluster']))} — [{fail}] {escape(_title(e))}" for e in d.new])
    part(":white_check_mark: " + _("*Resolved:*"),
         [f"• {code(_short(e['cluster']))} — [{ok}] {escape(_title(e))}" for e in d.resolved])
    part(":hourglass: " + _("*No answer before the deadline* (their findings are kept for the next sweep):"),
         [f"• {code(_short(p))}" + (f" — {escape(why.splitlines()[0][:200])}" if why else "") for p, why in d.missing])
    part(":warning: " + _("*Not swept:*"), [f"• {escape(e)}" for e in d.errors])
    return "\n".join(lines)


class _DigestThread:
    """A thread under the digest: replies only (the digest itself is not a status line to update)."""

    def __init__(self, client, channel: str, ts: str):
        from bot.work.thread import Thread
        self._t = Thread(client, {"channel": channel, "thread_ts": ts})
        self.client, self.channel, self.thread_ts, self.user = client, channel, ts, ""

    def reply(self, text: str, blocks: list | None = None) -> None:
        self._t.reply(text, blocks)

    def status(self, state: str) -> None:
        pass


def post_digest(client, channel: str, spec, d: Digest, reports: dict[str, Report], post_report: Post,
                store=None, sleep=time.sleep, on_posted=None) -> str:
    """Post the digest (and a thread reply per cluster with new FAILs); the digest's ts, or "" when quiet.
    `on_posted()` runs as soon as the digest itself is out (the news is told: a reply that fails later, or a job
    killed while pacing the replies, must not make the next sweep tell it again)."""
    from bot.render.blocks import sections
    if d.quiet and spec is not None and spec.quiet:
        return ""
    text = digest_text(d)
    blocks = sections(text)[:50]
    ts = client.chat_postMessage(channel=channel, text=text[:3000], blocks=blocks, unfurl_links=False)["ts"]
    if on_posted is not None:
        on_posted()
    keys = {fail_key(e["cluster"], e["id"], e["resource"]) for e in d.new}
    for i, path in enumerate(sorted({e["cluster"] for e in d.new})):
        report = reports[path]
        report = Report("doctor", path, [f for f in report.findings if f.status is Status.FAIL
                                         and fail_key(path, f.id, f.resource) in keys])
        if i >= 3:
            sleep(PACE)
        try:
            post_report(_DigestThread(client, channel, ts), report, store)
        except Exception:  # noqa: BLE001 - one cluster's reply lost, not the others'
            log.exception("sweep digest: the reply for %s failed", path)
    return ts


# ---- the sweep over Redis -----------------------------------------------------------------------------------------
def enqueue(settings: Settings, redis, payload: dict) -> str:
    """Queue one signed job of a sweep on RQ (as bot.work.queue.RQQueue does; a sweep's jobs are not tracked by
    the janitor: the sweep's deadline covers them)."""
    from rq import Queue
    from rq.serializers import JSONSerializer

    from bot.work.payload import JOB_FUNC, QUEUE_NAME, UNSIGNED, job_signer
    job_id = uuid.uuid4().hex
    signed = dict(job_signer(settings).sign(payload, skip=UNSIGNED), job_id=job_id)
    Queue(QUEUE_NAME, connection=redis, serializer=JSONSerializer).enqueue(
        JOB_FUNC, signed, job_id=job_id, job_timeout=settings.job_timeout, result_ttl=3600, failure_ttl=86400)
    return job_id


def start(settings: Settings, channel: str, post_report: Post, budget: float) -> str:
    """Queue a sweep of `channel`'s binding (with REDIS_URL), or run it here; returns the sweep id."""
    from bot.work.store import shared_cache
    binding = binding_of(settings, channel)
    sweep_id = uuid.uuid4().hex
    if not settings.redis_url:
        run_inprocess(settings, channel, post_report, budget, binding)
        return sweep_id
    enqueue(settings, shared_cache(settings), {"kind": "sweep", "channel": channel, "sweep_id": sweep_id,
                                               "lang": binding.locale})
    return sweep_id


def run_inprocess(settings: Settings, channel: str, post_report: Post, budget: float, binding=None) -> Digest:
    import contextvars

    from bot.slackclient import web_client
    binding = binding or binding_of(settings, channel)
    with language(binding.locale):
        clusters, errors, _failed = list_fleet(settings, binding)
        with ThreadPoolExecutor(max_workers=settings.inprocess_workers, thread_name_prefix="sweep") as pool:
            futures = {p: pool.submit(contextvars.copy_context().run, doctor, settings, binding, p, budget)
                       for p in clusters}
        reports = {p: f.result()[0] for p, f in futures.items()}
        d = compare(clusters, {}, reports, errors)
        post_digest(web_client(settings), channel, binding.sweep, d, reports, post_report)
    return d


def _meta_key(sweep_id: str) -> str:
    return f"{PREFIX}{sweep_id}"


def run_job(settings: Settings, client, payload: dict, post_report: Post, budget: float) -> dict:
    """A `sweep`, `sweep-cluster` or `notify-doctor` job (verified by bot.work.jobs.run_job)."""
    from bot.work.store import shared_cache
    redis = shared_cache(settings)
    if payload.get("kind") == "notify-doctor":
        return notify_doctor(settings, redis, client, payload, post_report, budget)
    sweep_id, channel = str(payload.get("sweep_id", "")), str(payload.get("channel", ""))
    if redis is None or not sweep_id.isalnum() or len(sweep_id) > 64:
        return {"ok": False, "error": "a sweep job needs Redis and a sweep id"}
    try:
        binding = binding_of(settings, channel)  # the policy now, not as it was when the sweep was queued
    except ConfigError as err:
        log.warning("sweep %s dropped: %s", sweep_id, err)
        return {"ok": False, "error": str(err)}
    if payload.get("kind") == "sweep":
        return fan_out(settings, redis, client, binding, channel, sweep_id, str(payload.get("lang") or ""),
                       post_report)
    path = str(payload.get("cluster", ""))
    report, calls = doctor(settings, binding, path, budget, redis)
    redis.hset(f"{_meta_key(sweep_id)}:results", path,
               signer(settings).dumps({"report": report.to_json(), "calls": calls, "sweep_id": sweep_id,
                                       "cluster": path}))
    redis.expire(f"{_meta_key(sweep_id)}:results", KEEP)
    meta = signer(settings).loads(redis.get(_meta_key(sweep_id)))
    if meta and redis.hlen(f"{_meta_key(sweep_id)}:results") >= len(meta["clusters"]):
        finish(settings, redis, client, sweep_id, post_report)
    return {"ok": True, "calls": calls, "counts": report.counts()}


def notify_doctor(settings: Settings, redis, client, payload: dict, post_report: Post, budget: float) -> dict:
    """`doctor` on the cluster of a GKE notification (bot.notifications), answered in the cluster's thread."""
    from checks.names import LOCATION_RE, cluster_problem
    from checks.resolve import ClusterSpec
    from bot.work.store import store_for
    channel, ts = str(payload.get("channel", "")), str(payload.get("thread_ts", ""))
    name, location = str(payload.get("cluster", "")), str(payload.get("location", ""))
    if cluster_problem(name) or (location and not LOCATION_RE.match(location)) or not ts:
        return {"ok": False, "error": "not a cluster"}
    try:
        binding = binding_of(settings, channel)
    except ConfigError as err:
        return {"ok": False, "error": str(err)}
    report, calls = doctor_spec(settings, binding, ClusterSpec(name=name, location=location), budget, redis)
    post_report(_DigestThread(client, channel, ts), report, store_for(settings))
    return {"ok": True, "calls": calls, "counts": report.counts()}


def fan_out(settings: Settings, redis, client, binding, channel: str, sweep_id: str, lang: str,
            post_report: Post) -> dict:
    clusters, errors, failed = list_fleet(settings, binding, redis)
    spec = binding.sweep
    seconds = (spec.deadline if spec and spec.deadline else settings.sweep_deadline)
    meta = {"channel": channel, "clusters": clusters, "errors": errors, "unlisted": failed, "lang": lang,
            "started": time.time()}
    if not redis.set(_meta_key(sweep_id), signer(settings).dumps(meta), nx=True, ex=KEEP):
        return {"ok": False, "error": "this sweep was already started"}  # a replayed or re-queued job
    redis.zadd(OPEN, {sweep_id: time.time() + seconds})
    for path in clusters:
        enqueue(settings, redis, {"kind": "sweep-cluster", "channel": channel, "sweep_id": sweep_id,
                                  "cluster": path, "lang": lang})
    if not clusters:
        finish(settings, redis, client, sweep_id, post_report)
    return {"ok": True, "clusters": len(clusters)}


def finish(settings: Settings, redis, client, sweep_id: str, post_report: Post) -> str:
    """Post the sweep's digest, once (whoever comes first: the last cluster job or a janitor past the deadline)."""
    from bot.access import security_event
    from bot.work.store import store_for
    if not redis.set(f"{_meta_key(sweep_id)}:done", "1", nx=True, ex=KEEP):
        return ""
    redis.zrem(OPEN, sweep_id)
    sign = signer(settings)
    meta = sign.loads(redis.get(_meta_key(sweep_id)))
    if not isinstance(meta, dict):
        security_event("sweep without a signed plan dropped", sweep_id=sweep_id[:64])
        return ""
    reports: dict[str, Report] = {}
    for raw_path, raw in (redis.hgetall(f"{_meta_key(sweep_id)}:results") or {}).items():
        path = raw_path.decode() if isinstance(raw_path, bytes) else raw_path
        data = sign.loads(raw)
        if not isinstance(data, dict) or path not in meta["clusters"] or data.get("sweep_id") != sweep_id \
                or data.get("cluster") != path:  # signed, and for this sweep and this cluster (never a copy)
            security_event("unsigned sweep result ignored", sweep_id=sweep_id[:64])
            continue
        reports[path] = Report.from_json(data["report"])
    channel = meta["channel"]
    try:
        binding = binding_of(settings, channel)
    except ConfigError as err:
        log.warning("sweep %s: no digest: %s", sweep_id, err)
        return ""
    state_key = f"{PREFIX}state:{channel}"
    previous = sign.loads(redis.get(state_key)) or {}
    with language(str(meta.get("lang") or "")):
        d = compare(meta["clusters"], previous, reports, meta.get("errors") or [], meta.get("unlisted") or [])
        saved: list[bool] = []

        def save() -> None:  # once the digest is out: a failed digest post reports the same news next time
            redis.set(state_key, sign.dumps(d.state))
            saved.append(True)
        ts = post_digest(client, channel, binding.sweep, d, reports, post_report, store_for(settings),
                         on_posted=save)
    if not saved:
        save()  # quiet: nothing posted, the state still moves on
    log.info("sweep %s: %d clusters, %d new, %d resolved, %d unchanged, %d missing", sweep_id, len(d.clusters),
             len(d.new), len(d.resolved), d.unchanged, len(d.missing))
    return ts or "quiet"


def finish_overdue(settings: Settings, redis, client_factory, post_report: Post) -> list[str]:
    """Digests of the sweeps whose deadline passed (a worker's janitor calls this)."""
    done = []
    for raw in redis.zrangebyscore(OPEN, 0, time.time()):
        sweep_id = raw.decode() if isinstance(raw, bytes) else raw
        if finish(settings, redis, client_factory(), sweep_id, post_report):
            done.append(sweep_id)
    return done


def summary(digest: Digest) -> str:
    """One JSON line for the terminal."""
    return json.dumps({"clusters": len(digest.clusters), "new": len(digest.new), "resolved": len(digest.resolved),
                       "unchanged": digest.unchanged, "missing": [p for p, _w in digest.missing]})
