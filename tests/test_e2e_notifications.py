"""GKE cluster notifications end to end: the real Pub/Sub emulator and the official client, a real
`gke-bot notifications` process, a real `gke-bot worker` (the doctor runs), redis-server and the fake Slack."""
from __future__ import annotations

import json

import pytest

from tests.conftest import GKE1
from tests.fleet import make_fleet

OTHER = "fleet-proj-b"
EMU_PROJECT = "notify-proj"
UPGRADE_URL = "type.googleapis.com/google.container.v1beta1."


def gke_message(kind: str, cluster: str, number: str, payload: dict, text: str) -> dict:
    """A message as GKE publishes it: its short text, and the attributes of the cluster notifications docs."""
    return {"data": text.encode(), "cluster_name": cluster, "cluster_location": "europe-west4-a",
            "project_id": number, "type_url": UPGRADE_URL + kind, "payload": json.dumps(payload)}


@pytest.fixture
def topics(pubsub_emulator, monkeypatch):
    from google.cloud import pubsub_v1
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.host)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    made = {}
    for name in ("gke-a", "gke-b"):
        topic = publisher.topic_path(EMU_PROJECT, f"{name}-{id(made)}")
        sub = subscriber.subscription_path(EMU_PROJECT, f"{name}-sub-{id(made)}")
        publisher.create_topic(name=topic)
        subscriber.create_subscription(name=sub, topic=topic, ack_deadline_seconds=10)
        made[name] = (topic, sub)
    yield publisher, made
    for topic, sub in made.values():
        subscriber.delete_subscription(subscription=sub)
        publisher.delete_topic(topic=topic)
    subscriber.close()



def two_bindings(tmp_path, c123: tuple[str, str], c456: tuple[str, str]):
    """A policy file: C123 and C456, each bound to (project, Pub/Sub subscription)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("bindings:\n" + "".join(
        f"  - channels: [{channel}]\n    projects: [{project}]\n    notifications: {{subscription: {subscription}}}\n"
        for channel, (project, subscription) in (("C123", c123), ("C456", c456))))
    return policy
def test_notifications_reach_the_right_channel_once_each(spawn, env, redis_url, google, kube, slack, topics,
                                                          pubsub_emulator, tmp_path):
    publisher, made = topics
    make_fleet(google, [GKE1, OTHER], 2, {(GKE1, "c1"), (OTHER, "c0")}, kube)
    other_number = google.projects[OTHER].number
    slack.add_channel("C456", member=True)
    policy = two_bindings(tmp_path, (GKE1, made["gke-a"][1]), (OTHER, made["gke-b"][1]))
    full = dict(env, REDIS_URL=redis_url, GKE_BOT_PROJECTS=f"{GKE1},{OTHER}", GKE_BOT_POLICY=str(policy),
                PUBSUB_EMULATOR_HOST=pubsub_emulator.host)
    spawn(["worker"], full, "worker")
    slack.fail_next("chat.postMessage", error="internal_error")  # the first post fails: nacked, delivered again
    notifier = spawn(["notifications"], full, "notifications")

    def publish(topic, msg):
        msg = dict(msg)
        publisher.publish(topic, msg.pop("data"), **msg).result(timeout=30)
    publish(made["gke-a"][0], gke_message("UpgradeAvailableEvent", "c0", "12340002", {
        "version": "1.31.5-gke.1000", "resourceType": "MASTER", "releaseChannel": {"channel": "REGULAR"}},
        "New master version 1.31.5-gke.1000 is available for upgrade."))
    publish(made["gke-a"][0], gke_message("SecurityBulletinEvent", "c1", "12340002", {
        "resourceTypeAffected": "RESOURCE_TYPE_CONTROLPLANE", "bulletinId": "GCP-2026-001", "cveIds": ["CVE-2026-0001"],
        "severity": "HIGH", "bulletinUri": "https://cloud.google.com/kubernetes-engine/security-bulletins#gcp-2026-001",
        "briefDescription": "A <!channel> vulnerability", "suggestedUpgradeTarget": "1.31.5-gke.1000"},
        "A security bulletin affects your cluster."))
    publish(made["gke-b"][0], gke_message("UpgradeEvent", "c0", other_number, {
        "resourceType": "MASTER", "operation": "operation-1", "currentVersion": "1.30.1-gke.1",
        "targetVersion": "1.31.5-gke.1000"}, "Master is upgrading to version 1.31.5-gke.1000."))

    def replies(channel):
        return [m for m in slack.messages(channel) if m.get("thread_ts") and m["thread_ts"] != m["ts"]]

    # the doctor runs (security bulletin, upgrade event) answer in the cluster's thread, after the event itself
    try:
        slack.wait_for(lambda: sum("doctor" in m["text"] for m in replies("C123")) == 1
                       and sum("doctor" in m["text"] for m in replies("C456")) == 1, timeout=60)
    except AssertionError:
        raise AssertionError(notifier.output())
    a, b = replies("C123"), replies("C456")
    events_a = [m["text"] for m in a if "doctor" not in m["text"]]
    events_b = [m["text"] for m in b if "doctor" not in m["text"]]
    assert len(events_a) == 2 and len(events_b) == 1, (events_a, events_b)  # once each, in its binding's channel
    assert sum("GKE version `1.31.5-gke.1000` is available" in t for t in events_a) == 1
    bulletin = next(t for t in events_a if "GCP-2026-001" in t)
    assert "(HIGH)" in bulletin and "&lt;!channel&gt;" in bulletin and "<!channel>" not in bulletin
    assert "upgrade from `1.30.1-gke.1` to `1.31.5-gke.1000` has started" in events_b[0]
    # threaded per cluster: one root per cluster, the events and the doctor run replies under it
    roots_a = [m for m in slack.messages("C123") if not m.get("thread_ts")]
    assert sorted(m["text"] for m in roots_a) == ["GKE notifications for `europe-west4-a/c0`",
                                                  "GKE notifications for `europe-west4-a/c1`"]
    c1 = next(m for m in roots_a if "c1" in m["text"])
    doctor = next(m for m in slack.thread("C123", c1["ts"]) if "doctor" in m["text"])
    assert "ingress/http-lb-addon" in json.dumps(doctor["blocks"])  # the broken cluster's FAIL, with its fix
    assert f"projects/{OTHER}/" in json.dumps(next(m for m in b if "doctor" in m["text"])["blocks"])


def test_a_message_delivered_twice_is_posted_once(settings, redis_url, slack):
    import redis as redis_lib

    from bot.notifications import Event, Handler
    from bot.slackclient import web_client
    queued = []
    handler = Handler(settings, redis_lib.Redis.from_url(redis_url), web_client(settings), "C123", "ja",
                      queued.append)
    event = Event.parse("m-1", {"cluster_name": "c1", "cluster_location": "europe-west4-a", "project_id": "1",
                                "type_url": UPGRADE_URL + "UpgradeEvent", "payload": "{not json"}, b"upgrading")
    assert handler.handle(event) and handler.handle(event)
    assert len([m for m in slack.messages("C123") if m.get("thread_ts")]) == 1
    assert len(queued) == 1 and queued[0]["kind"] == "notify-doctor"
    # Slack refuses: not acknowledged, nothing remembered, so the redelivery posts it
    slack.fail_next("chat.postMessage", error="internal_error")
    other = Event.parse("m-2", {"cluster_name": "c1", "cluster_location": "europe-west4-a", "project_id": "1",
                                "type_url": UPGRADE_URL + "UpgradeInfoEvent"}, b"info")
    assert handler.handle(other) is False
    assert handler.handle(other) is True
    assert len([m for m in slack.messages("C123") if m.get("thread_ts")]) == 2


def test_a_delivery_of_a_message_being_posted_elsewhere_waits(settings, redis_url, slack):
    import redis as redis_lib

    from bot.notifications import Event, Handler
    from bot.slackclient import web_client
    conn = redis_lib.Redis.from_url(redis_url)
    handler = Handler(settings, conn, web_client(settings), "C123")
    conn.set("gke-bot:notify:msg:C123:m-9", "posting", ex=60)  # another process is posting it
    event = Event.parse("m-9", {"cluster_name": "c1", "type_url": UPGRADE_URL + "UpgradeInfoEvent"}, b"info")
    assert handler.handle(event) is None and slack.messages("C123") == []
    conn.set("gke-bot:notify:msg:C123:m-9", "done", ex=60)
    assert handler.handle(event) is True and slack.messages("C123") == []


def _publish(publisher, topic, msg):
    msg = dict(msg)
    publisher.publish(topic, msg.pop("data"), **msg).result(timeout=30)


def _event_replies(slack, channel):
    return [m for m in slack.messages(channel) if m.get("thread_ts") and m["thread_ts"] != m["ts"]]


def test_one_event_on_a_topic_reaches_every_binding_subscribed_to_it(spawn, env, redis_url, slack, topics,
                                                                     pubsub_emulator, tmp_path):
    """Pub/Sub message ids are per topic: two bindings with their own subscriptions to one topic see the same
    id, and each still posts it (once) in its own channel."""
    from google.cloud import pubsub_v1
    publisher, made = topics
    topic = made["gke-a"][0]
    subscriber = pubsub_v1.SubscriberClient()
    second = subscriber.subscription_path(EMU_PROJECT, f"gke-a-second-{id(made)}")
    subscriber.create_subscription(name=second, topic=topic, ack_deadline_seconds=10)
    try:
        slack.add_channel("C456", member=True)
        policy = two_bindings(tmp_path, (GKE1, made["gke-a"][1]), (GKE1, second))
        full = dict(env, REDIS_URL=redis_url, GKE_BOT_PROJECTS=GKE1, GKE_BOT_POLICY=str(policy),
                    PUBSUB_EMULATOR_HOST=pubsub_emulator.host)
        notifier = spawn(["notifications"], full, "notifications")
        _publish(publisher, topic, gke_message("UpgradeAvailableEvent", "c0", "12340002", {
            "version": "1.31.5-gke.1000", "resourceType": "MASTER"}, "New master version is available."))
        try:
            slack.wait_for(lambda: len(_event_replies(slack, "C123")) >= 1 and len(_event_replies(slack, "C456")) >= 1,
                           timeout=60)
        except AssertionError:
            raise AssertionError(notifier.output())
        # a later event on the same topic: still once per channel (nothing posted twice meanwhile)
        _publish(publisher, topic, gke_message("UpgradeInfoEvent", "c0", "12340002", {
            "description": "Maintenance done", "state": "SUCCEEDED"}, "info"))
        slack.wait_for(lambda: len(_event_replies(slack, "C123")) >= 2 and len(_event_replies(slack, "C456")) >= 2,
                       timeout=60)
        for channel in ("C123", "C456"):
            texts = [m["text"] for m in _event_replies(slack, channel)]
            assert len(texts) == 2 and sum("1.31.5-gke.1000" in t for t in texts) == 1, (channel, texts)
    finally:
        subscriber.delete_subscription(subscription=second)
        subscriber.close()


def test_a_redis_outage_does_not_stop_the_notifications(spawn, env, slack, topics, pubsub_emulator, tmp_path):
    """Redis down while a message is handled: the message is nacked (not lost) and the subscriber keeps going;
    when Redis is back it is posted once, and so is a later message."""
    from tests.conftest import RedisServer, wait_until
    publisher, made = topics
    own = RedisServer().start()  # this test's own redis-server, stopped and started again
    try:
        policy = tmp_path / "policy.yaml"
        policy.write_text(f"bindings:\n  - channels: [C123]\n    projects: [{GKE1}]\n"
                          f"    notifications: {{subscription: {made['gke-a'][1]}}}\n")
        full = dict(env, REDIS_URL=own.url, GKE_BOT_PROJECTS=GKE1, GKE_BOT_POLICY=str(policy),
                    PUBSUB_EMULATOR_HOST=pubsub_emulator.host)
        notifier = spawn(["notifications"], full, "notifications")
        wait_until(lambda: "listening to" in notifier.output(), 30, what="the subscriber")
        own.stop()
        _publish(publisher, made["gke-a"][0], gke_message("UpgradeAvailableEvent", "c0", "12340002", {
            "version": "1.31.5-gke.1000", "resourceType": "MASTER"}, "New master version is available."))
        # several deliveries meet the outage (nacked, delivered again) and the process stays up through them (a
        # callback that raised ended the subscription, and run() then the process, within its 1 s look)
        wait_until(lambda: notifier.output().count("not handled (ConnectionError)") >= 3 or not notifier.alive(), 60,
                   what="deliveries during the outage")
        assert notifier.alive(), notifier.output()
        own.start()  # the same port again
        try:
            slack.wait_for(lambda: len(_event_replies(slack, "C123")) >= 1, timeout=60)
        except AssertionError:
            raise AssertionError(notifier.output())
        _publish(publisher, made["gke-a"][0], gke_message("UpgradeInfoEvent", "c0", "12340002", {
            "description": "Maintenance done", "state": "SUCCEEDED"}, "info"))
        slack.wait_for(lambda: len(_event_replies(slack, "C123")) >= 2, timeout=60)
        assert notifier.alive()
        texts = [m["text"] for m in _event_replies(slack, "C123")]
        assert len(texts) == 2 and sum("1.31.5-gke.1000" in t for t in texts) == 1, texts
    finally:
        own.stop()


def test_the_done_mark_is_retried_after_the_post(settings, redis_url, slack):
    """Slack accepted the post but Redis refused the "done" mark once: it is written again, so a redelivery (after
    the "posting" lock expired) is acknowledged without posting twice."""
    import redis as redis_lib

    from bot.notifications import Event, Handler
    from bot.slackclient import web_client

    class Flaky(redis_lib.Redis):  # the real client; the first "done" write meets a dropped connection
        failed = 0

        def set(self, name, value, *args, **kwargs):
            if value == "done" and not self.failed:
                self.failed += 1
                raise redis_lib.exceptions.ConnectionError("Connection reset by peer")
            return super().set(name, value, *args, **kwargs)
    conn = Flaky.from_url(redis_url)
    handler = Handler(settings, conn, web_client(settings), "C123")
    event = Event.parse("m-5", {"cluster_name": "c1", "type_url": UPGRADE_URL + "UpgradeInfoEvent"}, b"info")
    assert handler.handle(event) is True and conn.failed == 1
    assert conn.get("gke-bot:notify:msg:C123:m-5") == b"done"
    assert handler.handle(event) is True
    assert len([m for m in slack.messages("C123") if m.get("thread_ts")]) == 1
