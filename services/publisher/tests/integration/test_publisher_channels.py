"""One post, every channel, the publisher as a process: a post with two translations goes
through the two-step approval over gRPC (the real interceptor, users' tokens), is scheduled
in an embassy's time zone, and reaches the local server of every channel adapter (the
site's Atom feed, WordPress, Mastodon, Bluesky, Telegram, the SMTP newsletter, a webhook)
exactly once per language, although the publisher is killed (SIGKILL, by pid) three times
while a platform holds its answer (after it acted, before the publisher recorded it): on
WordPress (reconciled by looking), Mastodon (sent again under its idempotency key) and
Telegram (neither: a person checks it and confirms it over the API). Bluesky answers one
429 on the way: that delivery waits out its backoff and goes again.

Invalid content and schedules are refused over gRPC with INVALID_ARGUMENT naming the field,
with the limits of the channels the process really configured."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import feedparser
import grpc
import pytest

from legation.events.v1 import publish_pb2
from legation.publisher.v1 import publisher_service_pb2 as pb
from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec
from legation_core.config import CoreSettings
from legation_core.kafka import read_topic
from legation_core.topic_names import PUBLISH_POSTS_V1, PUBLISH_PUBLICATIONS_V1
from legation_devstack.channel_servers import ChannelServers, RecordingHttpServer
from legation_devstack.processes import wait_until

pytestmark = pytest.mark.integration

CHANNELS = ["site-atom", "blog", "mastodon", "bluesky", "telegram", "newsletter", "partners"]
LINK = "https://ministry.example/plastics"
# The first words of each language's text: how a copy on a server is told apart.
MARKERS = {
    "en": "We support a binding cap",
    "fr": "Nous soutenons un plafond",
    "es": "Apoyamos un límite",
}
TITLES = {"en": "Our position", "fr": "Notre position", "es": "Nuestra posición"}
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\0" * 40
HOLD = 60.0  # seconds a platform holds its answer; the publisher is killed long before


def content(language: str, **fields: Any) -> pb.VariantContent:
    return pb.VariantContent(
        title=TITLES[language],
        body=f"{MARKERS[language]} on plastics. {LINK}",
        author="Press office",
        **fields,
    )


def publisher_env(servers: ChannelServers, folder: Path) -> dict[str, str]:
    config, secrets = servers.channels_config()
    path = folder / "channels.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return {"LEGATION_PUBLISHER_CHANNELS_FILE": str(path), **secrets}


def post_states(settings: CoreSettings, post_id: str) -> list[publish_pb2.PostState]:
    codec = EventCodec(default_catalog())
    return [
        envelope.post_state
        for envelope in read_topic(settings, "publisher", codec, PUBLISH_POSTS_V1, timeout=30)
        if envelope.post_state.post_id == post_id
    ]


def expect_permission_denied(call: Callable[[], object]) -> str:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    return refused.value.details() or ""


def kill_while_held(
    publisher: Any,
    server: RecordingHttpServer,
    channel: str,
    settings: CoreSettings,
    post_id: str,
) -> None:
    """Waits until ``server`` has acted on a request and holds its answer, checks that the
    delivery was recorded as sending before the call, then kills the publisher."""
    wait_until(
        lambda: bool(server.held),
        60,
        f"a delivery to {channel} held by its server",
        detail=publisher.process.log_tail,
    )
    publisher.process.kill()
    [latest] = post_states(settings, post_id)[-1:]
    sending = [d for d in latest.deliveries if d.status == publish_pb2.DELIVERY_STATUS_SENDING]
    assert [(d.language, d.channel) for d in sending] == [("en", channel)]


def by_attempts(post: publish_pb2.PostState, channel: str) -> dict[str, int]:
    return {d.language: d.attempts for d in post.deliveries if d.channel == channel}


def test_one_post_in_three_languages_reaches_every_channel_once_across_kills(
    kafka_settings: CoreSettings,
    channel_servers: ChannelServers,
    start_publisher: Callable[..., Any],
    tmp_path: Path,
) -> None:
    servers = channel_servers
    env = publisher_env(servers, tmp_path)
    feed = tmp_path / "site" / "feed.atom"
    image = servers.webhook.serve_file("/media/poster.png", PNG, "image/png")
    # Each platform below acts on its first post and then holds the answer: the publisher
    # dies between the platform's action and its own record of it.
    servers.wordpress.answer_late(HOLD, "POST", "/wp-json/wp/v2/posts")
    servers.mastodon.answer_late(HOLD, "POST", "/api/v1/statuses")
    servers.telegram.answer_late(HOLD, "POST", f"/bot{servers.telegram.bot_token}/send")
    # Bluesky is rate-limited once: the delivery waits (backoff, Retry-After) and goes again.
    servers.bluesky.rate_limit_next(1)

    first = start_publisher(feed, env)
    with first.channel() as channel:
        editor = first.stub(channel, "editor")
        request = pb.CreatePostRequest(
            request_id=f"every-channel-{uuid.uuid4().hex[:8]}",
            campaign_id="plastics-2026",
            channels=CHANNELS,
            content=content(
                "en",
                media=[publish_pb2.MediaRef(url=image, kind="image", alt_text="Treaty poster")],
                channel_variants=[
                    publish_pb2.ChannelVariant(
                        channel="mastodon",
                        text=f"{MARKERS['en']}: {LINK}",
                        hashtags=["plastics"],
                    )
                ],
            ),
        )
        post_id = editor.CreatePost(request, timeout=10).post.post_id
        for language in ("fr", "es"):
            editor.AddTranslation(
                pb.AddTranslationRequest(
                    post_id=post_id, language=language, content=content(language)
                ),
                timeout=10,
            )
        review = pb.ReviewRequest(post_id=post_id)
        editor.SubmitForReview(review, timeout=10)
        # An editor may not approve: the interceptor refuses the call.
        assert "approver" in expect_permission_denied(lambda: editor.Approve(review, timeout=10))
        approver = first.stub(channel, "approver")
        approver.Approve(review, timeout=10)  # policy desk
        # Four eyes: the same approver cannot pass the second step.
        detail = expect_permission_denied(lambda: approver.Approve(review, timeout=10))
        assert "needs another approver" in detail
        post = first.stub(channel, "campaign-owner").Approve(review, timeout=10).post
        assert post.status == publish_pb2.POST_STATUS_APPROVED
        assert all(len(v.approvals) == 2 for v in post.variants)
        post = (
            first.stub(channel, "publisher")
            .Schedule(pb.ScheduleRequest(post_id=post_id, time_zone="Africa/Nairobi"), timeout=10)
            .post
        )
        assert post.status == publish_pb2.POST_STATUS_SCHEDULED
        assert post.schedule.time_zone == "Africa/Nairobi"

    # Killed while WordPress holds its answer: after a restart the lookup finds the post.
    kill_while_held(first, servers.wordpress, "blog", kafka_settings, post_id)
    second = start_publisher(feed, env)
    # Killed while Mastodon holds its answer: sent again under the same Idempotency-Key.
    kill_while_held(second, servers.mastodon, "mastodon", kafka_settings, post_id)
    third = start_publisher(feed, env)
    # Killed while Telegram holds its answer: Telegram can neither look up nor deduplicate.
    kill_while_held(third, servers.telegram, "telegram", kafka_settings, post_id)
    last = start_publisher(feed, env)

    def settled() -> bool:
        state = last.get_post(post_id)
        return len(state.deliveries) == 21 and all(
            d.status
            in (publish_pb2.DELIVERY_STATUS_PUBLISHED, publish_pb2.DELIVERY_STATUS_NEEDS_CHECK)
            for d in state.deliveries
        )

    wait_until(settled, 60, "every delivery settled", 0.3, detail=last.process.log_tail)
    state = last.get_post(post_id)
    [check] = [d for d in state.deliveries if d.status == publish_pb2.DELIVERY_STATUS_NEEDS_CHECK]
    assert (check.channel, check.language) == ("telegram", "en")
    assert "whether it arrived" in check.reason and "ConfirmDelivery" in check.reason
    assert state.status == publish_pb2.POST_STATUS_FAILED  # until someone acts
    # Never re-sent blindly: Telegram got the English post once, before the kill.
    [sent] = [m for m in servers.telegram.messages if MARKERS["en"] in m.get("caption", "")]
    with last.channel() as channel:
        confirm = pb.ConfirmDeliveryRequest(
            post_id=post_id,
            delivery_id=check.delivery_id,
            channel_item_id=str(sent["message_id"]),
            url=f"https://t.me/{servers.telegram.chat_id.lstrip('@')}/{sent['message_id']}",
        )
        expect_permission_denied(lambda: last.stub(channel, "editor").ConfirmDelivery(confirm))
        state = last.stub(channel, "publisher").ConfirmDelivery(confirm, timeout=10).post
    assert state.status == publish_pb2.POST_STATUS_PUBLISHED
    assert all(d.status == publish_pb2.DELIVERY_STATUS_PUBLISHED for d in state.deliveries)

    # Every server holds exactly one copy per language.
    entries = feedparser.parse(str(feed)).entries
    held = {"site-atom": [f"{e.title}\n{e.summary}" for e in entries], **servers.contents()}
    for channel_name, items in held.items():
        assert len(items) == 3, (channel_name, items)
        for language, marker in MARKERS.items():
            copies = [item for item in items if marker in item]
            assert len(copies) == 1, (channel_name, language, items)
    assert by_attempts(state, "bluesky") == {"en": 2, "fr": 1, "es": 1}
    assert by_attempts(state, "blog") == {"en": 1, "fr": 1, "es": 1}  # found, not resent
    assert by_attempts(state, "mastodon") == {"en": 2, "fr": 1, "es": 1}  # resent, same key
    # Each copy is tagged with its variant's language where the platform takes one.
    assert sorted(s["language"] for s in servers.mastodon.statuses) == sorted(MARKERS)
    assert sorted(p["value"]["langs"][0] for p in servers.bluesky.posts()) == sorted(MARKERS)
    # The channel variant and the media went where they belong.
    [english_toot] = [text for text in held["mastodon"] if MARKERS["en"] in text]
    assert english_toot.endswith("#plastics")
    assert [len(s["media_attachments"]) for s in servers.mastodon.statuses].count(1) == 1
    # Links became tracked short links on every channel (fixed when the post was scheduled).
    for channel_name, items in held.items():
        assert all(LINK not in item for item in items), channel_name
        assert all(f"127.0.0.1:{first.redirect_port}/r/" in item for item in items), channel_name
    # Nothing was posted twice at the protocol level either.
    assert len(servers.wordpress.requests_to("POST", "/wp-json/wp/v2/posts")) == 3
    assert len(servers.mastodon.statuses) == 3

    # One Publication per (language, channel), with the channel's own id and URL.
    codec = EventCodec(default_catalog())
    publications = {
        envelope.publication.publication_id: envelope.publication
        for envelope in read_topic(kafka_settings, "evaluator", codec, PUBLISH_PUBLICATIONS_V1, 30)
        if envelope.publication.post_id == post_id
    }
    assert sorted((p.language, p.channel) for p in publications.values()) == sorted(
        (language, channel_name) for language in MARKERS for channel_name in CHANNELS
    )
    by_delivery = {(d.language, d.channel): d for d in state.deliveries}
    for publication in publications.values():
        delivery = by_delivery[(publication.language, publication.channel)]
        assert publication.channel_item_id == delivery.channel_item_id != ""
        assert publication.url == delivery.url
    assert {str(p["id"]) for p in servers.wordpress.published()} == {
        p.channel_item_id for p in publications.values() if p.channel == "blog"
    }
    assert last.process.stop() == 0


def test_invalid_content_and_schedules_name_the_field(
    channel_servers: ChannelServers,
    start_publisher: Callable[..., Any],
    tmp_path: Path,
) -> None:
    publisher = start_publisher(
        tmp_path / "site" / "feed.atom", publisher_env(channel_servers, tmp_path)
    )

    def create(channels: list[str], body: pb.VariantContent) -> pb.PostResponse:
        request = pb.CreatePostRequest(
            request_id=f"invalid-{uuid.uuid4().hex[:8]}",
            campaign_id="plastics-2026",
            channels=channels,
            content=body,
        )
        with publisher.channel() as channel:
            response: pb.PostResponse = publisher.stub(channel, "editor").CreatePost(
                request, timeout=10
            )
            return response

    def refused(call: Callable[[], object]) -> str:
        with pytest.raises(grpc.RpcError) as error:
            call()
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        return error.value.details() or ""

    image = publish_pb2.MediaRef(url="https://ministry.example/poster.png", kind="image")
    # Too long for one channel: Bluesky counts 300 graphemes.
    long_body = pb.VariantContent(title="T", body="é" * 301)
    message = refused(lambda: create(["site-atom", "bluesky"], long_body))
    assert message.startswith("content.body is 301 graphemes; this channel takes at most 300")
    assert message.endswith("(channel bluesky)")
    # The channel's own text is named when it is the one too long (Mastodon: 500).
    own = pb.VariantContent(
        title="T",
        body="Short.",
        channel_variants=[publish_pb2.ChannelVariant(channel="mastodon", text="x" * 501)],
    )
    assert refused(lambda: create(["mastodon"], own)).startswith(
        "content.channel_variants[0].text is 501 characters"
    )
    # Alt text where the channel requires it (Mastodon), not where it does not (Telegram).
    no_alt = pb.VariantContent(title="T", body="Poster.", media=[image])
    message = refused(lambda: create(["telegram", "mastodon"], no_alt))
    assert message.startswith("content.media[0].alt_text is required")
    assert "(channel mastodon)" in message
    assert create(["telegram"], no_alt).post.status == publish_pb2.POST_STATUS_DRAFT

    # Bad schedule times: in the past in the embassy's zone, or an unknown zone.
    post_id = create(["telegram"], pb.VariantContent(title="T", body="Ok.")).post.post_id
    with publisher.channel() as channel:
        editor = publisher.stub(channel, "editor")
        editor.SubmitForReview(pb.ReviewRequest(post_id=post_id), timeout=10)
        publisher.stub(channel, "approver").Approve(pb.ReviewRequest(post_id=post_id), timeout=10)
        publisher.stub(channel, "campaign-owner").Approve(
            pb.ReviewRequest(post_id=post_id), timeout=10
        )
        scheduler = publisher.stub(channel, "publisher")

        def schedule(local_time: str, zone: str) -> str:
            request = pb.ScheduleRequest(post_id=post_id, local_time=local_time, time_zone=zone)
            return refused(lambda: scheduler.Schedule(request, timeout=10))

        assert schedule("2020-01-01T09:00", "Africa/Nairobi").startswith(
            "local_time 2020-01-01T09:00:00 in Africa/Nairobi is in the past"
        )
        assert schedule("2030-01-01T09:00", "Mars/Olympus").startswith(
            "time_zone 'Mars/Olympus' is not an IANA time zone"
        )
        assert schedule("next tuesday", "UTC").startswith("local_time 'next tuesday'")
