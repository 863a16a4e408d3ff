"""`gke-bot notifications`: GKE cluster notifications (Pub/Sub) in each binding's channel.

GKE publishes cluster notifications to a Pub/Sub topic (the cluster's `notificationConfig.pubsub`). Each binding
names a subscription on it (`notifications: {subscription: projects/P/subscriptions/S}`); this process pulls
every such subscription (streaming pull, gRPC: a long-running process, not an RQ job) and posts each event to the
binding's channel, threaded per cluster: the first event of a cluster opens its thread, later ones reply in it.

A message is GKE's short text (`data`) with attributes: `cluster_name`, `cluster_location`, `project_id` (the
project number), `type_url` (`type.googleapis.com/google.container.v1beta1.UpgradeEvent`, …) and `payload`
(the event as JSON). UpgradeAvailableEvent, UpgradeEvent, SecurityBulletinEvent and UpgradeInfoEvent are
written out; other types are posted with GKE's text.

Pub/Sub delivers at least once: a message id already posted by this subscription (kept in Redis for a week;
ids are unique per topic only, so the key names the subscription too) is acknowledged without
posting again, and a message is acknowledged only after Slack accepted the post (else it is nacked and comes
back). For a security bulletin and an upgrade event a `doctor` run on the cluster is queued (a worker answers in
the thread).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

from bot.config import Settings
from bot.i18n import N_, _, language
from bot.render.blocks import code, escape

log = logging.getLogger(__name__)

PREFIX = "gke-bot:notify:"
KEEP = 7 * 24 * 3600
POSTING_TTL = 120  # seconds a message being posted stays locked against a concurrent redelivery
DOCTOR_EVENTS = ("SecurityBulletinEvent", "UpgradeEvent")

OPENED = N_("GKE notifications for {cluster}")


@dataclass(frozen=True)
class Event:
    message_id: str
    kind: str  # the last part of type_url, e.g. "UpgradeEvent"
    cluster: str  # cluster name
    location: str
    project: str  # the project number GKE gives
    payload: dict
    text: str  # GKE's own one-line text (the message data)

    @classmethod
    def parse(cls, message_id: str, attributes: dict, data: bytes) -> "Event":
        try:
            payload = json.loads(attributes.get("payload") or "{}")
        except ValueError:
            payload = {}
        return cls(message_id=str(message_id)[:100], kind=str(attributes.get("type_url", "")).rsplit(".", 1)[-1][:80],
                   cluster=str(attributes.get("cluster_name", ""))[:100],
                   location=str(attributes.get("cluster_location", ""))[:64],
                   project=str(attributes.get("project_id", ""))[:64],
                   payload=payload if isinstance(payload, dict) else {},
                   text=data.decode("utf-8", "replace")[:1000] if isinstance(data, bytes) else "")

    @property
    def where(self) -> str:
        return f"{self.location}/{self.cluster}" if self.location else self.cluster


def _p(event: Event, key: str) -> str:
    value = event.payload.get(key, "")
    if isinstance(value, dict):  # e.g. releaseChannel: {channel: REGULAR}
        value = next(iter(value.values()), "")
    return escape(str(value)[:300])


def describe(event: Event) -> str:
    """The event in the reader's language (mrkdwn, every value escaped)."""
    cluster = code(event.where)
    if event.kind == "UpgradeAvailableEvent":
        return ":arrow_up: " + _("GKE version {version} is available for {cluster} ({resource}, channel {channel}).").format(
            version=code(_p(event, "version")), cluster=cluster, resource=_p(event, "resourceType"),
            channel=_p(event, "releaseChannel") or "-")
    if event.kind == "UpgradeEvent":
        return ":gear: " + _("{cluster}: the {resource} upgrade from {current} to {target} has started.").format(
            cluster=cluster, resource=_p(event, "resourceType"), current=code(_p(event, "currentVersion")),
            target=code(_p(event, "targetVersion")))
    if event.kind == "SecurityBulletinEvent":
        line = ":rotating_light: " + _("Security bulletin {bulletin} ({severity}) affects {cluster}: {brief}").format(
            bulletin=_p(event, "bulletinId"), severity=_p(event, "severity"), cluster=cluster,
            brief=_p(event, "briefDescription"))
        target = _p(event, "suggestedUpgradeTarget")
        if target:
            line += "\n" + _("Suggested upgrade: {version}").format(version=code(target))
        uri = str(event.payload.get("bulletinUri", ""))
        if uri.startswith("https://"):
            line += "\n" + _("<{url}|The bulletin>").format(url=escape(uri[:500]))
        return line
    if event.kind == "UpgradeInfoEvent":
        return ":information_source: " + _("{cluster}: {description} ({state})").format(
            cluster=cluster, description=_p(event, "description") or escape(event.text), state=_p(event, "state") or "-")
    return ":bell: " + _("{cluster}: {text}").format(cluster=cluster, text=escape(event.text))


class Handler:
    """Posts one event (once) and says whether the message may be acknowledged."""

    def __init__(self, settings: Settings, redis, client, channel: str, lang: str = "", enqueue=None,
                 subscription: str = ""):
        self.settings, self.redis, self.client = settings, redis, client
        self.channel, self.lang, self.enqueue = channel, lang, enqueue
        # Pub/Sub message ids are unique per topic only: two bindings subscribed to one topic see the same id, so
        # the de-dup key names the subscription (each binding's own) or, without one, the channel.
        self.scope = subscription or channel
        self._lock = threading.Lock()  # one thread root per cluster, even for events that arrive together

    def handle(self, event: Event) -> bool | None:
        """True: acknowledge (posted now or before). False: nack (Slack refused; it comes back). None: another
        delivery of it is being posted right now: let it come back a little later."""
        key = f"{PREFIX}msg:{self.scope}:{event.message_id}"
        if not event.message_id:
            return True  # nothing to tell it by: GKE always sets one
        if not self.redis.set(key, "posting", nx=True, ex=POSTING_TTL):
            return True if self.redis.get(key) in (b"done", "done") else None
        try:
            with language(self.lang), self._lock:
                ts = self._post(event)
        except Exception as exc:  # noqa: BLE001 - Slack refused or is unreachable: the message comes back
            log.warning("notification %s not posted (%s); it will be delivered again", event.message_id,
                        type(exc).__name__)
            self.redis.delete(key)
            return False
        self._remember(key, event.message_id)
        if event.kind in DOCTOR_EVENTS and self.enqueue is not None and event.cluster:
            try:
                self.enqueue({"kind": "notify-doctor", "channel": self.channel, "thread_ts": ts,
                              "cluster": event.cluster, "location": event.location, "lang": self.lang})
            except Exception:  # noqa: BLE001 - the event is posted; the doctor run is a bonus
                log.warning("could not queue a doctor run for %s", event.where, exc_info=True)
        return True

    def _remember(self, key: str, message_id: str, attempts: int = 4) -> None:
        """Mark the message posted. Slack already has it, so a failed write is retried: a key left "posting"
        expires and the redelivery would post it again."""
        for attempt in range(attempts):
            try:
                self.redis.set(key, "done", ex=KEEP)
                return
            except Exception as exc:  # noqa: BLE001 - Redis hiccup: try again shortly
                if attempt + 1 == attempts:
                    log.error("notification %s posted but not marked done (%s); a redelivery may post it again",
                              message_id, type(exc).__name__)
                    return
                time.sleep(0.2 * 2 ** attempt)

    def _post(self, event: Event) -> str:
        thread_key = f"{PREFIX}thread:{self.channel}:{event.project}/{event.location}/{event.cluster}"
        root = self.redis.get(thread_key)
        root = root.decode() if isinstance(root, bytes) else root
        if not root:
            root = self.client.chat_postMessage(channel=self.channel, text=_(OPENED).format(
                cluster=code(event.where)))["ts"]
            self.redis.set(thread_key, root, ex=KEEP)
        self.client.chat_postMessage(channel=self.channel, thread_ts=root, text=describe(event), unfurl_links=False)
        return root


def subscriptions(settings: Settings) -> list[tuple[str, str, str]]:
    """(subscription, channel, language) of every binding that names one."""
    from bot.policy import load
    out = []
    for b in load(settings).bindings:
        spec = b.notifications
        if spec is not None:
            channel = spec.channel or next(c for c in b.channels if c not in ("*", "direct"))
            out.append((spec.subscription, channel, b.locale))
    return out


def run(settings: Settings, stop: threading.Event | None = None) -> int:
    """Pull every binding's subscription until stopped."""
    from google.cloud import pubsub_v1
    from redis import Redis

    from bot.slackclient import web_client
    from bot.work.fleet import enqueue
    subs = subscriptions(settings)
    if not subs:
        log.warning("no binding names a notifications subscription (policy `notifications:`); nothing to do")
        return 0
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    subscriber = pubsub_v1.SubscriberClient()
    client = web_client(settings)
    futures = []
    for subscription, channel, lang in subs:
        handler = Handler(settings, redis, client, channel, lang, lambda p: enqueue(settings, redis, p),
                          subscription=subscription)

        def callback(message, handler=handler):
            # Never raise: the client library would stop this subscription's stream, and run() every one.
            try:
                event = Event.parse(message.message_id, dict(message.attributes), message.data)
                outcome = handler.handle(event)
            except Exception as exc:  # noqa: BLE001 - e.g. Redis down: the message comes back later
                log.warning("notification %s not handled (%s); it will be delivered again", message.message_id,
                            type(exc).__name__)
                time.sleep(1)  # not straight back into the same failure
                message.nack()
                return
            if outcome is None:
                time.sleep(1)  # the other delivery is being posted: not at once again
            (message.ack if outcome else message.nack)()
        futures.append(subscriber.subscribe(subscription, callback,
                                            flow_control=pubsub_v1.types.FlowControl(max_messages=10)))
        log.info("listening to %s for %s", subscription, channel)
    stop = stop or threading.Event()
    try:
        while not stop.wait(1):
            for f in futures:
                if f.done():  # the stream ended (e.g. the subscription is gone): say why and stop
                    f.result()
    finally:
        for f in futures:
            f.cancel()
        subscriber.close()
    return 0
