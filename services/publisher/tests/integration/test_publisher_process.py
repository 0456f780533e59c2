"""The publisher process against the Kafka stand-in: it rebuilds its posts from
``legation.publish.posts.v1``, delivers a scheduled post with two translations to the Atom
feed exactly once although it is killed mid-delivery and restarted, serves the post's state
over gRPC, turns short-link clicks into LinkClick events, and stops cleanly on SIGTERM."""

from __future__ import annotations

import fcntl
import http.client
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest

from legation.events.v1 import publish_pb2
from legation.publisher.v1 import publisher_service_pb2 as pb
from legation_channels.adapters.site_atom import LIMITS
from legation_core.auth import Caller
from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec
from legation_core.config import CoreSettings
from legation_core.kafka import EventProducer, read_topic
from legation_core.metrics import Metrics
from legation_core.topic_names import (
    PUBLISH_LINK_CLICKS_V1,
    PUBLISH_POSTS_V1,
    PUBLISH_PUBLICATIONS_V1,
)
from legation_devstack.processes import wait_until
from legation_publisher.adapters.state import post_envelope
from legation_publisher.domain import schedule as sched
from legation_publisher.domain import workflow
from legation_publisher.domain.content import ChannelProfile
from legation_publisher.domain.workflow import WorkflowPolicy

pytestmark = pytest.mark.integration

PROFILES = {"site-atom": ChannelProfile("site-atom", "site-atom", LIMITS)}


User = Caller


def scheduled_post(request_id: str) -> publish_pb2.PostState:
    """A post with two translations through the two-step approval, scheduled for now:
    made with the domain functions, as the API would."""
    now = datetime.now(UTC)
    policy = WorkflowPolicy()
    editor = User("jean", frozenset({"editor"}))
    request = pb.CreatePostRequest(
        request_id=request_id,
        campaign_id="plastics-2026",
        content=pb.VariantContent(
            title="Our position", body="We support a cap. https://ministry.example/plastics"
        ),
    )
    post = workflow.create_post(request, editor, policy, PROFILES, ["site-atom"], now)
    for language, title in (("fr", "Notre position"), ("es", "Nuestra posición")):
        translation = pb.VariantContent(title=title, body="https://ministry.example/plastics")
        post = workflow.add_translation(
            post, language, "en", translation, editor, policy, PROFILES, now
        )
    post = workflow.submit_for_review(post, [], "", editor, policy, now)
    post = workflow.approve(post, [], "", User("amina", frozenset({"approver"})), policy, now)
    post = workflow.approve(post, [], "", User("lucia", frozenset({"approver"})), policy, now)
    plan = sched.parse_schedule("", "Africa/Nairobi", "", now)
    publisher = User("omar", frozenset({"publisher"}))
    return workflow.schedule_post(post, plan, publisher, policy, PROFILES, "http://127.0.0.1/", now)


def latest(settings: CoreSettings, post_id: str) -> list[publish_pb2.PostState]:
    codec = EventCodec(default_catalog())
    return [
        envelope.post_state
        for envelope in read_topic(settings, "publisher", codec, PUBLISH_POSTS_V1, timeout=30)
        if envelope.post_state.post_id == post_id
    ]


def test_killed_mid_delivery_and_restarted_publishes_exactly_once(
    kafka_settings: CoreSettings,
    start_publisher: Callable[..., Any],
    tmp_path: Path,
) -> None:
    post = scheduled_post(f"kill-{uuid.uuid4().hex[:8]}")
    producer = EventProducer(kafka_settings, "publisher", default_catalog(), Metrics())
    try:
        producer.send_and_wait([(PUBLISH_POSTS_V1, post.post_id, post_envelope(post))])
    finally:
        producer.close()
    feed = tmp_path / "site" / "feed.atom"
    feed.parent.mkdir()
    # Hold the feed's writer lock (as another replica writing would): the publisher records
    # "sending" and then blocks inside the delivery, where we kill it.
    lock = (feed.parent / ".feed.atom.lock").open("a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    first = start_publisher(feed)

    def sending() -> bool:
        states = latest(kafka_settings, post.post_id)
        return any(d.status == publish_pb2.DELIVERY_STATUS_SENDING for d in states[-1].deliveries)

    wait_until(sending, 30, "a delivery recorded as sending", 0.3)
    first.process.kill()
    fcntl.flock(lock, fcntl.LOCK_UN)
    lock.close()
    assert not feed.exists()

    second = start_publisher(feed)

    def published() -> bool:
        return bool(second.get_post(post.post_id).status == publish_pb2.POST_STATUS_PUBLISHED)

    wait_until(published, 30, "the post published", 0.3, detail=second.process.log_tail)
    entries = feedparser.parse(str(feed)).entries
    assert sorted(entry.title for entry in entries) == sorted(
        ["Our position", "Notre position", "Nuestra posición"]
    )
    state = second.get_post(post.post_id)
    assert {d.channel_item_id for d in state.deliveries} == {entry.id for entry in entries}
    assert all(d.status == publish_pb2.DELIVERY_STATUS_PUBLISHED for d in state.deliveries)
    interrupted = [d for d in state.deliveries if d.attempts == 2]
    assert len(interrupted) == 1  # the one killed mid-delivery, tried again once

    codec = EventCodec(default_catalog())
    publications = [
        envelope.publication
        for envelope in read_topic(kafka_settings, "evaluator", codec, PUBLISH_PUBLICATIONS_V1, 30)
        if envelope.publication.post_id == post.post_id
    ]
    assert len({p.publication_id for p in publications}) == 3
    assert {p.channel_item_id for p in publications} == {entry.id for entry in entries}
    assert {p.url for p in publications} == {entry.link for entry in entries}

    # The feed carries short links; following one emits a LinkClick for the evaluator.
    [link] = [link for link in state.links if link.language == "fr"]
    assert f"/r/{link.code}" in next(e for e in entries if e.title == "Notre position").summary
    connection = http.client.HTTPConnection("127.0.0.1", second.redirect_port, timeout=5)
    # A reader's browser: requests without a User-Agent are robots, redirected uncounted.
    connection.request(
        "GET", f"/r/{link.code}", headers={"User-Agent": "Mozilla/5.0 Firefox/128.0"}
    )
    response = connection.getresponse()
    connection.close()
    assert response.status == 302
    assert "utm_campaign=plastics-2026" in (response.getheader("Location") or "")
    clicks = [
        envelope.link_click
        for envelope in read_topic(kafka_settings, "evaluator", codec, PUBLISH_LINK_CLICKS_V1, 30)
        if envelope.link_click.post_id == post.post_id
    ]
    assert [(c.code, c.language) for c in clicks] == [(link.code, "fr")]

    assert second.process.stop() == 0
