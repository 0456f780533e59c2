"""The gRPC API over a real in-process server, the scheduler over the real Atom channel,
and a fake producer that keeps what Kafka would (so a restart rebuilds from it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import grpc
import pytest
from prometheus_client import CollectorRegistry

from legation.events.v1 import publish_pb2
from legation.publisher.v1 import publisher_service_pb2 as pb
from legation.publisher.v1.publisher_service_pb2_grpc import (
    PublisherServiceStub,
    add_PublisherServiceServicer_to_server,
)
from legation_channels.adapters.site_atom import LIMITS, SiteAtomChannel
from legation_channels.base import ChannelLimits, ChannelUnavailable, Delivered, Outgoing
from legation_channels.outbox import Deliverer, RetryPolicy
from legation_core.auth import AuthInterceptor, Caller, current_caller, load_users, with_token
from legation_core.grpc_server import build_server
from legation_core.testing import RecordingProducer
from legation_core.topic_names import (
    PUBLISH_APPROVALS_V1,
    PUBLISH_POSTS_V1,
    PUBLISH_PUBLICATIONS_V1,
)
from legation_devstack.users import UsersFile
from legation_publisher.adapters.grpc_api import SERVICE_NAME, PublisherServicer
from legation_publisher.adapters.policy import POLICY
from legation_publisher.adapters.scheduler import Scheduler
from legation_publisher.adapters.state import PostBook, PostStore
from legation_publisher.domain.content import ChannelProfile, channel_info
from legation_publisher.domain.workflow import WorkflowPolicy

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PROFILES = {"site-atom": ChannelProfile("site-atom", "site-atom", LIMITS)}


def caller_of(context: grpc.ServicerContext) -> Caller:
    return current_caller()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Publisher:
    channel: grpc.Channel
    users: UsersFile
    store: PostStore
    clock: Clock

    def as_user(self, user: str) -> PublisherServiceStub:
        return PublisherServiceStub(with_token(self.channel, self.users.token(user)))

    @property
    def stub(self) -> PublisherServiceStub:
        """Reads, as a viewer."""
        return self.as_user("viewer")


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer("publisher")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def feed(tmp_path: Path, clock: Clock) -> SiteAtomChannel:
    return SiteAtomChannel(tmp_path / "feed.atom", "https://ministry.example/news/", "News", clock)


@pytest.fixture
def publisher(
    producer: RecordingProducer, clock: Clock, auth_users: UsersFile
) -> Iterator[Publisher]:
    store = PostStore(PostBook(), producer)
    servicer = PublisherServicer(
        store,
        WorkflowPolicy(),
        PROFILES,
        ["site-atom"],
        "https://go.ministry.example/",
        caller_of,
        CollectorRegistry(),
        clock,
    )
    server, _, port = build_server(
        0,
        [lambda s: add_PublisherServiceServicer_to_server(servicer, s)],
        [SERVICE_NAME],
        host="127.0.0.1",
        auth=AuthInterceptor(load_users(auth_users.path), [POLICY]),
    )
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Publisher(channel, auth_users, store, clock)
    server.stop(None).wait()


def call(publisher: Publisher, method: str, user: str, request: object) -> pb.PostResponse:
    response: pb.PostResponse = getattr(publisher.as_user(user), method)(request, timeout=10)
    return response


def content(
    title: str, body: str = "We support a binding cap. https://ministry.example/p"
) -> pb.VariantContent:
    return pb.VariantContent(title=title, body=body, author="Press office")


def approved(publisher: Publisher) -> str:
    post = call(
        publisher,
        "CreatePost",
        "editor",
        pb.CreatePostRequest(request_id="r1", campaign_id="c1", content=content("Position")),
    ).post
    for language, title in (("fr", "Position FR"), ("es", "Posición")):
        call(
            publisher,
            "AddTranslation",
            "editor",
            pb.AddTranslationRequest(
                post_id=post.post_id, language=language, content=content(title)
            ),
        )
    call(publisher, "SubmitForReview", "editor", pb.ReviewRequest(post_id=post.post_id))
    call(publisher, "Approve", "approver", pb.ReviewRequest(post_id=post.post_id))
    final = call(
        publisher, "Approve", "campaign-owner", pb.ReviewRequest(post_id=post.post_id)
    ).post
    assert final.status == publish_pb2.POST_STATUS_APPROVED
    return post.post_id


def test_create_is_idempotent_on_request_id(
    publisher: Publisher, producer: RecordingProducer
) -> None:
    request = pb.CreatePostRequest(request_id="r1", campaign_id="c1", content=content("T"))
    first = call(publisher, "CreatePost", "editor", request).post
    again = call(publisher, "CreatePost", "editor", request).post
    assert first == again and len(producer.on(PUBLISH_POSTS_V1)) == 1


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.CreatePostRequest(campaign_id="c1", content=content("T")), "request_id"),
        (pb.CreatePostRequest(request_id="r", content=content("T")), "campaign_id"),
        (
            pb.CreatePostRequest(request_id="r", campaign_id="c", content=content("")),
            "content.title",
        ),
        (
            pb.CreatePostRequest(
                request_id="r",
                campaign_id="c",
                content=pb.VariantContent(
                    title="T",
                    body="B",
                    media=[publish_pb2.MediaRef(url="https://m.example/a.jpg", kind="image")],
                ),
            ),
            "content.media[0].alt_text",
        ),
    ],
)
def test_invalid_content_is_invalid_argument_naming_the_field(
    publisher: Publisher, request_: pb.CreatePostRequest, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        call(publisher, "CreatePost", "editor", request_)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith(field + " ")


def test_unauthorised_approval_is_permission_denied(publisher: Publisher) -> None:
    post = call(
        publisher,
        "CreatePost",
        "editor",
        pb.CreatePostRequest(request_id="r1", campaign_id="c1", content=content("T")),
    ).post
    call(publisher, "SubmitForReview", "editor", pb.ReviewRequest(post_id=post.post_id))
    with pytest.raises(grpc.RpcError) as error:
        call(publisher, "Approve", "editor", pb.ReviewRequest(post_id=post.post_id))
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "approver" in (error.value.details() or "")


@pytest.mark.parametrize(
    ("local_time", "zone", "field"),
    [("2026-11-20T08:00", "UTC", "local_time"), ("2026-12-01T09:00", "Nowhere/City", "time_zone")],
)
def test_bad_schedule_is_invalid_argument(
    publisher: Publisher, local_time: str, zone: str, field: str
) -> None:
    post_id = approved(publisher)
    with pytest.raises(grpc.RpcError) as error:
        call(
            publisher,
            "Schedule",
            "publisher",
            pb.ScheduleRequest(post_id=post_id, local_time=local_time, time_zone=zone),
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith(field + " ")


def test_unknown_post_is_not_found(publisher: Publisher) -> None:
    with pytest.raises(grpc.RpcError) as error:
        call(publisher, "Approve", "approver", pb.ReviewRequest(post_id="nope"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_two_translations_through_approval_scheduled_and_published_once(
    publisher: Publisher, producer: RecordingProducer, feed: SiteAtomChannel
) -> None:
    post_id = approved(publisher)
    call(
        publisher,
        "Schedule",
        "publisher",
        pb.ScheduleRequest(
            post_id=post_id, local_time="2026-11-20T13:00", time_zone="Africa/Nairobi"
        ),
    )
    scheduler = Scheduler(publisher.store, {"site-atom": feed}, clock=publisher.clock)
    assert scheduler.run_once() == 0  # 10:00 UTC is not yet due
    listed = publisher.stub.ListPosts(
        pb.ListPostsRequest(language="fr", channel="site-atom"), timeout=10
    )
    assert [p.post_id for p in listed.posts] == [post_id]
    publisher.clock.now = NOW + timedelta(hours=1, minutes=1)
    assert scheduler.run_once() == 3
    assert scheduler.run_once() == 0
    entries = feedparser.parse(str(feed.path)).entries
    assert sorted(entry.title for entry in entries) == sorted(
        ["Position", "Position FR", "Posición"]
    )
    # Links in the feed are the tracked short links.
    assert all("https://go.ministry.example/r/" in entry.summary for entry in entries)
    publications = [e.publication for e in producer.on(PUBLISH_PUBLICATIONS_V1)]
    assert len(publications) == 3 and {p.post_id for p in publications} == {post_id}
    assert {p.channel_item_id for p in publications} == {entry.id for entry in entries}
    post = call(publisher, "GetPost", "editor", pb.GetPostRequest(post_id=post_id)).post
    assert post.status == publish_pb2.POST_STATUS_PUBLISHED
    actions = [e.post_state.transition.action for e in producer.on(PUBLISH_POSTS_V1)]
    assert actions[:7] == [
        "create",
        "add_translation",
        "add_translation",
        "submit",
        "approve",
        "approve",
        "schedule",
    ]


class CrashingChannel(SiteAtomChannel):
    """The Atom channel that writes the entry and then dies before answering (a crash
    between delivering and recording)."""

    def deliver(self, message: Outgoing) -> Delivered:
        super().deliver(message)
        raise SystemExit("killed mid-delivery")


def test_a_crash_between_delivering_and_recording_never_posts_twice(
    publisher: Publisher, producer: RecordingProducer, feed: SiteAtomChannel
) -> None:
    post_id = approved(publisher)
    call(publisher, "Schedule", "publisher", pb.ScheduleRequest(post_id=post_id))
    crashing_feed = CrashingChannel(feed.path, feed.base_url, feed.title, publisher.clock)
    crashing = Scheduler(publisher.store, {"site-atom": crashing_feed}, clock=publisher.clock)
    with pytest.raises(SystemExit):
        crashing.run_once()
    # A new process: rebuild the posts from what Kafka acknowledged.
    book = PostBook()
    for envelope in producer.on(PUBLISH_POSTS_V1):
        book.apply(envelope)
    [sending] = [d for d in book.get(post_id).deliveries]  # type: ignore[union-attr]
    assert sending.status == publish_pb2.DELIVERY_STATUS_SENDING
    restarted = Scheduler(PostStore(book, producer), {"site-atom": feed}, clock=publisher.clock)
    # One lookup finds the interrupted delivery on the feed; the other two are sent.
    assert restarted.run_once() == 3
    entries = feedparser.parse(str(feed.path)).entries
    assert len(entries) == 3 and len({entry.id for entry in entries}) == 3
    post = book.get(post_id)
    assert post is not None and post.status == publish_pb2.POST_STATUS_PUBLISHED
    assert all(d.status == publish_pb2.DELIVERY_STATUS_PUBLISHED for d in post.deliveries)


class UnaskableChannel(CrashingChannel):
    """A channel that can neither be asked what it holds nor deduplicate (as Telegram or
    email), and whose process dies right after it delivered."""

    reconcile = "none"


def test_a_needs_check_delivery_found_on_the_channel_is_confirmed_with_its_publication(
    publisher: Publisher, producer: RecordingProducer, feed: SiteAtomChannel
) -> None:
    post_id = approved(publisher)
    call(publisher, "Schedule", "publisher", pb.ScheduleRequest(post_id=post_id))
    dying = UnaskableChannel(feed.path, feed.base_url, feed.title, publisher.clock)
    with pytest.raises(SystemExit):
        Scheduler(publisher.store, {"site-atom": dying}, clock=publisher.clock).run_once()
    # After the restart the interrupted delivery cannot be looked up: a person must check.
    restarted = UnaskableChannel(feed.path, feed.base_url, feed.title, publisher.clock)
    restarted.deliver = feed.deliver  # type: ignore[method-assign]  # alive this time
    Scheduler(publisher.store, {"site-atom": restarted}, clock=publisher.clock).run_once()
    post = call(publisher, "GetPost", "viewer", pb.GetPostRequest(post_id=post_id)).post
    [check] = [d for d in post.deliveries if d.status == publish_pb2.DELIVERY_STATUS_NEEDS_CHECK]
    assert post.status == publish_pb2.POST_STATUS_FAILED
    entries = feedparser.parse(str(feed.path)).entries
    assert len(entries) == 3  # delivered once, never resent
    found = next(e for e in entries if e.id not in {d.channel_item_id for d in post.deliveries})
    confirm = pb.ConfirmDeliveryRequest(
        post_id=post_id, delivery_id=check.delivery_id, channel_item_id=found.id, url=found.link
    )
    with pytest.raises(grpc.RpcError) as error:
        call(publisher, "ConfirmDelivery", "editor", confirm)
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    bad = pb.ConfirmDeliveryRequest(post_id=post_id, delivery_id=check.delivery_id)
    with pytest.raises(grpc.RpcError) as error:
        call(publisher, "ConfirmDelivery", "publisher", bad)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith("channel_item_id is required")
    before = len(producer.on(PUBLISH_PUBLICATIONS_V1))
    post = call(publisher, "ConfirmDelivery", "publisher", confirm).post
    assert post.status == publish_pb2.POST_STATUS_PUBLISHED
    assert post.transition.action == "confirm" and post.transition.user == "publisher"
    [publication] = [e.publication for e in producer.on(PUBLISH_PUBLICATIONS_V1)[before:]]
    assert (publication.channel_item_id, publication.url) == (found.id, found.link)
    with pytest.raises(grpc.RpcError) as error:
        call(publisher, "ConfirmDelivery", "publisher", confirm)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION


class DownChannel(SiteAtomChannel):
    """Our feed on a volume that is not mounted."""

    calls = 0

    def deliver(self, message: Outgoing) -> Delivered:
        self.calls += 1
        raise ChannelUnavailable("feed volume not mounted")


def test_retries_are_bounded_then_the_failure_is_visible_and_retryable(
    publisher: Publisher, feed: SiteAtomChannel
) -> None:
    post_id = approved(publisher)
    call(publisher, "Schedule", "publisher", pb.ScheduleRequest(post_id=post_id))
    down = DownChannel(feed.path, feed.base_url, feed.title)
    no_wait = RetryPolicy(max_attempts=2, base_delay=0, max_delay=0, jitter=0)
    deliverer = Deliverer(no_wait, clock=publisher.clock)
    scheduler = Scheduler(publisher.store, {"site-atom": down}, deliverer, clock=publisher.clock)
    for _ in range(4):
        scheduler.run_once()
    assert down.calls == 6  # three deliveries, two attempts each
    post = call(publisher, "GetPost", "editor", pb.GetPostRequest(post_id=post_id)).post
    assert post.status == publish_pb2.POST_STATUS_FAILED
    failed = post.deliveries[0]
    assert failed.status == publish_pb2.DELIVERY_STATUS_FAILED
    assert "gave up after 2 attempts: feed volume not mounted" in failed.reason

    def on_delivery(command: str, role: str, delivery_id: str) -> None:
        request = pb.DeliveryRequest(post_id=post_id, delivery_id=delivery_id)
        call(publisher, command, role, request)

    with pytest.raises(grpc.RpcError) as error:
        on_delivery("RetryDelivery", "editor", failed.delivery_id)
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    on_delivery("RetryDelivery", "publisher", failed.delivery_id)
    on_delivery("CancelDelivery", "publisher", post.deliveries[1].delivery_id)
    healthy = Scheduler(publisher.store, {"site-atom": feed}, clock=publisher.clock)
    assert healthy.run_once() == 1
    post = call(publisher, "GetPost", "editor", pb.GetPostRequest(post_id=post_id)).post
    statuses = [d.status for d in post.deliveries]
    assert statuses[0] == publish_pb2.DELIVERY_STATUS_PUBLISHED
    assert statuses[1] == publish_pb2.DELIVERY_STATUS_CANCELLED
    assert statuses[2] == publish_pb2.DELIVERY_STATUS_FAILED
    with pytest.raises(grpc.RpcError) as error:
        on_delivery("CancelDelivery", "publisher", failed.delivery_id)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_import_and_calendar(publisher: Publisher) -> None:
    csv_text = (
        "request_id,campaign_id,title,body,language\n"
        "a,plastics-2026,A,Body,en\n"
        "b,oceans-2027,B,Corps,fr\n"
    )
    imported = publisher.as_user("editor").ImportPosts(
        pb.ImportPostsRequest(csv=csv_text), timeout=10
    )
    assert [p.request_id for p in imported.posts] == ["a", "b"]
    with pytest.raises(grpc.RpcError) as error:
        publisher.as_user("editor").ImportPosts(
            pb.ImportPostsRequest(csv="request_id,campaign_id,title,body\nc,x,,b\n"),
            timeout=10,
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith("csv row 2, column title")

    def listed(campaign_id: str = "", language: str = "", channel: str = "") -> list[str]:
        request = pb.ListPostsRequest(campaign_id=campaign_id, language=language, channel=channel)
        response = publisher.stub.ListPosts(request, timeout=10)
        return sorted(p.request_id for p in response.posts)

    assert listed() == ["a", "b"]
    assert listed(campaign_id="oceans-2027") == ["b"]
    assert listed(language="en") == ["a"]
    assert listed(channel="mastodon") == []


def test_list_channels_gives_viewers_each_channel_with_its_limits(publisher: Publisher) -> None:
    response = publisher.stub.ListChannels(pb.ListChannelsRequest(), timeout=10)
    assert [(c.name, c.kind, c.default) for c in response.channels] == [
        ("site-atom", "site-atom", True)
    ]
    limits = response.channels[0].limits
    assert not limits.HasField("max_text_length")  # the feed takes any length
    assert limits.max_title_length == LIMITS.max_title_length
    assert limits.max_media == LIMITS.max_media
    assert set(limits.media_kinds) == set(LIMITS.media_kinds)
    assert limits.alt_text_required is LIMITS.alt_text_required


def test_channel_info_carries_what_the_adapter_counts() -> None:
    mastodon = ChannelProfile(
        "mastodon-main",
        "mastodon",
        ChannelLimits(
            max_text_length=500,
            max_media=4,
            media_kinds=frozenset({"image", "video"}),
            link_in_text=True,
            url_length=23,
        ),
        redirect_base="https://go.ministry.example/",
    )
    info = channel_info(mastodon, default=False)
    assert (info.name, info.kind, info.default) == ("mastodon-main", "mastodon", False)
    assert info.limits.max_text_length == 500
    assert info.limits.url_length == 23 and info.limits.link_in_text
    assert list(info.limits.media_kinds) == ["image", "video"]
    assert not info.limits.HasField("max_caption_length")
    # The short link the publisher checks texts with: https://go.ministry.example/r/<11>.
    assert info.short_link_length == len("https://go.ministry.example/r/") + 11


# --------------------------------------------------------------- hostile requests (issue 11)


def test_a_10000_character_time_zone_is_invalid_argument_without_a_path(
    publisher: Publisher,
) -> None:
    post_id = approved(publisher)
    with pytest.raises(grpc.RpcError) as error:
        call(
            publisher,
            "Schedule",
            "publisher",
            pb.ScheduleRequest(post_id=post_id, time_zone="Europe/" + "x" * 10_000),
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.value.details() or ""
    assert details.startswith("time_zone: must be a time zone name such as Africa/Nairobi")
    assert "zoneinfo" not in details and "/usr" not in details and len(details) < 200


def test_a_2_mb_body_is_invalid_argument_not_unavailable(
    publisher: Publisher, producer: RecordingProducer
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        call(
            publisher,
            "CreatePost",
            "editor",
            pb.CreatePostRequest(
                request_id="big", campaign_id="c1", content=content("Big", "b" * 2_000_000)
            ),
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "content.body: at most 60000 characters (got 2000000)"
    assert producer.sent == []


def test_a_post_grown_beyond_a_kafka_record_is_invalid_argument_and_left_as_it_was(
    publisher: Publisher, producer: RecordingProducer
) -> None:
    body = "字" * 60_000  # 180 kB of UTF-8: each translation adds as much to the post's record
    post = call(
        publisher,
        "CreatePost",
        "editor",
        pb.CreatePostRequest(request_id="long", campaign_id="c1", content=content("Long", body)),
    ).post
    refused: grpc.RpcError | None = None
    for language in ("fr", "es", "de", "ar", "zh", "ru", "pt", "it"):
        sent = len(producer.sent)
        try:
            call(
                publisher,
                "AddTranslation",
                "editor",
                pb.AddTranslationRequest(
                    post_id=post.post_id, language=language, content=content(language, body)
                ),
            )
        except grpc.RpcError as error:
            refused = error
            break
    assert refused is not None
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "more than LEGATION_KAFKA_MAX_REQUEST_BYTES" in (refused.details() or "")
    assert len(producer.sent) == sent  # nothing of the refused change was written
    stored = publisher.store.book.get(post.post_id)
    assert stored is not None and language not in [v.language for v in stored.variants]


def test_each_approval_step_waiting_and_passed_is_one_approval_request(
    publisher: Publisher, producer: RecordingProducer
) -> None:
    post_id = approved(publisher)
    requests = [e.approval_request for e in producer.on(PUBLISH_APPROVALS_V1)]
    A = publish_pb2  # noqa: N806
    assert [(r.step, r.role, r.state, sorted(r.languages)) for r in requests] == [
        ("policy-desk", "approver", A.APPROVAL_STATE_AWAITING, ["en", "es", "fr"]),
        ("head-of-communications", "approver", A.APPROVAL_STATE_AWAITING, ["en", "es", "fr"]),
        ("policy-desk", "approver", A.APPROVAL_STATE_APPROVED, ["en", "es", "fr"]),
        ("head-of-communications", "approver", A.APPROVAL_STATE_APPROVED, ["en", "es", "fr"]),
    ]
    assert {r.subject_id for r in requests} == {post_id}
    assert requests[0].requested_by == "editor" and requests[2].decided_by == "approver"
