"""The gRPC API over a real in-process server, the real Atom channel and a fake producer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import feedparser
import grpc
import pytest
from prometheus_client import CollectorRegistry

from legation.publisher.v1.publisher_service_pb2 import (
    CreatePostRequest,
    ListPublicationsRequest,
)
from legation.publisher.v1.publisher_service_pb2_grpc import (
    PublisherServiceStub,
    add_PublisherServiceServicer_to_server,
)
from legation_core.auth import AuthInterceptor, load_users, with_token
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, EventCodec
from legation_core.grpc_server import build_server
from legation_devstack.users import UsersFile
from legation_publisher.adapters.atom_channel import AtomChannel
from legation_publisher.adapters.grpc_api import SERVICE_NAME, PublisherServicer
from legation_publisher.adapters.policy import POLICY
from legation_publisher.domain.posts import PUBLICATIONS_TOPIC, post_id_for

BASE_URL = "https://ministry.example/news/"


class FakeProducer:
    """Records what would be produced; checks each event against the topic's contract the
    way EventProducer does; fails the next ``failures`` calls."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Envelope]] = []
        self.calls = 0
        self.failures = 0

    def send_and_wait(self, events: list[tuple[str, str, Envelope]]) -> None:
        self.calls += 1
        for topic, _key, envelope in events:
            EventCodec.validate(default_catalog().check_produce("publisher", topic), envelope)
        if self.failures:
            self.failures -= 1
            raise TimeoutError("broker did not acknowledge")
        self.sent.extend(events)


@pytest.fixture
def feed_path(tmp_path: Path) -> Path:
    return tmp_path / "site" / "feed.atom"


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def served(
    feed_path: Path, producer: FakeProducer, auth_users: UsersFile
) -> Iterator[grpc.Channel]:
    """The API behind the real access policy; the channel carries no token yet."""
    servicer = PublisherServicer(
        AtomChannel(feed_path, BASE_URL, "Ministry news"), producer, CollectorRegistry()
    )
    server, _health, port = build_server(
        0,
        [lambda s: add_PublisherServiceServicer_to_server(servicer, s)],
        [SERVICE_NAME],
        host="127.0.0.1",
        auth=AuthInterceptor(load_users(auth_users.path), [POLICY]),
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        channel.close()
        server.stop(None).wait()


@pytest.fixture
def stub(served: grpc.Channel, auth_users: UsersFile) -> PublisherServiceStub:
    """Calls as the user holding the publisher role."""
    return PublisherServiceStub(with_token(served, auth_users.token("publisher")))


def create(**overrides: str) -> CreatePostRequest:
    fields = {
        "request_id": "req-1",
        "campaign_id": "plastics-2026",
        "issue_id": "plastics-treaty",
        "title": "Our position on the plastics treaty",
        "body": "We support a binding cap on plastic production.",
        "language": "en",
        "author": "Press office",
    }
    fields.update(overrides)
    return CreatePostRequest(**fields)


def test_create_post_publishes_once_and_emits_the_publication(
    stub: PublisherServiceStub, producer: FakeProducer, feed_path: Path
) -> None:
    response = stub.CreatePost(create(), timeout=10)

    post_id = post_id_for("req-1")
    assert response.post_id == post_id
    assert response.newly_published
    assert response.publication.url == BASE_URL + post_id
    assert response.publication.channel == "site-atom"
    [(topic, key, envelope)] = producer.sent
    assert (topic, key) == (PUBLICATIONS_TOPIC, post_id)
    assert envelope.event_id == response.publication.publication_id
    assert envelope.publication == response.publication
    assert (envelope.campaign_id, envelope.issue_id) == ("plastics-2026", "plastics-treaty")
    [entry] = feedparser.parse(feed_path.read_bytes()).entries
    assert entry.id == f"urn:uuid:{post_id}"


def test_the_same_request_id_twice_is_one_entry_and_one_event_id(
    stub: PublisherServiceStub, producer: FakeProducer, feed_path: Path
) -> None:
    first = stub.CreatePost(create(), timeout=10)
    second = stub.CreatePost(create(), timeout=10)

    assert not second.newly_published
    assert second.publication == first.publication
    assert [envelope.event_id for _, _, envelope in producer.sent] == [
        first.publication.publication_id
    ] * 2
    assert len(feedparser.parse(feed_path.read_bytes()).entries) == 1


def test_a_missing_title_is_invalid_argument_naming_it(
    stub: PublisherServiceStub, producer: FakeProducer, feed_path: Path
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreatePost(create(title=""), timeout=10)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "title" in (caught.value.details() or "")
    assert producer.calls == 0
    assert not feed_path.exists()


def test_an_unacknowledged_event_is_unavailable_and_the_retry_does_not_repost(
    stub: PublisherServiceStub, producer: FakeProducer, feed_path: Path
) -> None:
    producer.failures = 1
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreatePost(create(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "retry" in (caught.value.details() or "")

    retried = stub.CreatePost(create(), timeout=10)

    assert not retried.newly_published
    assert [key for _, key, _ in producer.sent] == [post_id_for("req-1")]
    assert len(feedparser.parse(feed_path.read_bytes()).entries) == 1


def test_list_publications_reads_the_feed_back_newest_first(
    stub: PublisherServiceStub,
) -> None:
    assert list(stub.ListPublications(ListPublicationsRequest(), timeout=10).publications) == []
    first = stub.CreatePost(create(), timeout=10)
    second = stub.CreatePost(create(request_id="req-2", title="Second"), timeout=10)

    listed = stub.ListPublications(ListPublicationsRequest(), timeout=10).publications

    assert [p.publication_id for p in listed] == [
        second.publication.publication_id,
        first.publication.publication_id,
    ]
    assert {p.publication_id: p for p in listed} == {
        first.publication.publication_id: first.publication,
        second.publication.publication_id: second.publication,
    }


def test_only_a_publisher_may_create_a_post(
    served: grpc.Channel, auth_users: UsersFile, producer: FakeProducer, feed_path: Path
) -> None:
    for user in ("viewer", "editor", "approver"):
        stub = PublisherServiceStub(with_token(served, auth_users.token(user)))
        with pytest.raises(grpc.RpcError) as raised:
            stub.CreatePost(create(), timeout=5)
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "needs the role publisher" in (raised.value.details() or "")
        assert len(stub.ListPublications(ListPublicationsRequest(), timeout=5).publications) == 0
    with pytest.raises(grpc.RpcError) as raised:
        PublisherServiceStub(served).CreatePost(create(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert producer.sent == []
    assert not feed_path.exists() or "req-1" not in feed_path.read_text()
