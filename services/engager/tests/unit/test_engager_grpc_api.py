"""EngagerApi over a real in-process gRPC server with a fake producer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import grpc
import pytest

from legation.engager.v1 import engager_service_pb2 as pb
from legation.engager.v1.engager_service_pb2_grpc import (
    EngagerServiceStub,
    add_EngagerServiceServicer_to_server,
)
from legation.events.v1 import listen_pb2
from legation_core.auth import AuthInterceptor, load_users, with_token
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, EventCodec
from legation_core.grpc_server import build_server
from legation_core.kafka import EventProducer
from legation_devstack.users import UsersFile
from legation_engager.adapters.events import INTERACTIONS
from legation_engager.adapters.grpc_api import EngagerApi
from legation_engager.adapters.policy import POLICY
from legation_engager.domain.inbox import Inbox, Interaction

OPENED_AT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


class FakeProducer:
    """Records what would be produced (checked against the catalog); raises while
    ``failing`` is set."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, str, Envelope]]] = []
        self.failing: Exception | None = None

    def send_and_wait(self, events: list[tuple[str, str, Envelope]]) -> None:
        for topic, _key, envelope in events:
            EventCodec.validate(default_catalog().check_produce("engager", topic), envelope)
        if self.failing is not None:
            raise self.failing
        self.calls.append(list(events))


def open_conversation(inbox: Inbox, mention_id: str, campaign_id: str) -> str:
    opened = inbox.open_from_mention(
        listen_pb2.Mention(mention_id=mention_id, text="How do I get a visa?", language="en")
    )
    assert opened is not None
    inbox.apply(opened, campaign_id, f"issue-of-{campaign_id}", OPENED_AT)
    return opened.conversation_id


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def stub(
    inbox: Inbox, producer: FakeProducer, auth_users: UsersFile
) -> Iterator[EngagerServiceStub]:
    """The API behind its real access policy, called as the engagement officer."""
    api = EngagerApi(inbox, threading.Lock(), cast(EventProducer, producer))
    server, _health, port = build_server(
        0,
        [lambda server: add_EngagerServiceServicer_to_server(api, server)],
        [POLICY.service],
        max_workers=2,
        host="127.0.0.1",
        auth=AuthInterceptor(load_users(auth_users.path), [POLICY]),
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield EngagerServiceStub(with_token(channel, auth_users.token("officer")))
    finally:
        channel.close()
        server.stop(None).wait()


def reply_request(conversation_id: str, **overrides: Any) -> pb.ReplyToConversationRequest:
    fields: dict[str, Any] = {
        "request_id": "req-1",
        "conversation_id": conversation_id,
        "officer": "officer@gov",
        "text": "Apply online at the consulate's site.",
    }
    fields.update(overrides)
    return pb.ReplyToConversationRequest(**fields)


def test_a_reply_is_recorded_as_one_event(
    stub: EngagerServiceStub, inbox: Inbox, producer: FakeProducer
) -> None:
    conversation_id = open_conversation(inbox, "m-1", "camp-1")
    conversation = stub.ReplyToConversation(reply_request(conversation_id), timeout=10)
    assert conversation.state == pb.Conversation.STATE_ANSWERED
    assert len(conversation.replies) == 1
    assert conversation.replies[0].text == "Apply online at the consulate's site."
    assert len(producer.calls) == 1
    [(topic, key, envelope)] = producer.calls[0]
    assert topic == INTERACTIONS
    assert key == conversation_id
    assert envelope.interaction.kind == Interaction.KIND_REPLIED
    assert envelope.interaction.actor == "officer@gov"
    assert envelope.interaction.response_seconds > 0
    assert envelope.event_id == envelope.interaction.interaction_id
    assert envelope.campaign_id == "camp-1"
    assert envelope.issue_id == "issue-of-camp-1"
    assert inbox.conversations[conversation_id].replies == [envelope.interaction]


def test_a_retried_reply_sends_nothing_more(
    stub: EngagerServiceStub, inbox: Inbox, producer: FakeProducer
) -> None:
    conversation_id = open_conversation(inbox, "m-1", "camp-1")
    first = stub.ReplyToConversation(reply_request(conversation_id), timeout=10)
    retry = stub.ReplyToConversation(reply_request(conversation_id), timeout=10)
    assert len(producer.calls) == 1
    assert retry == first
    assert len(inbox.conversations[conversation_id].replies) == 1
    stub.ReplyToConversation(reply_request(conversation_id, request_id="req-2"), timeout=10)
    assert len(producer.calls) == 2
    assert len(inbox.conversations[conversation_id].replies) == 2


def test_a_reply_to_an_unknown_conversation_is_not_found(
    stub: EngagerServiceStub, producer: FakeProducer
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ReplyToConversation(reply_request("no-such-conversation"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-conversation" in (caught.value.details() or "")
    assert producer.calls == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"text": "  "}, "text"),
        ({"officer": ""}, "officer"),
        ({"request_id": ""}, "request_id"),
    ],
)
def test_an_incomplete_reply_is_an_invalid_argument(
    stub: EngagerServiceStub,
    inbox: Inbox,
    producer: FakeProducer,
    overrides: dict[str, str],
    field: str,
) -> None:
    conversation_id = open_conversation(inbox, "m-1", "camp-1")
    with pytest.raises(grpc.RpcError) as caught:
        stub.ReplyToConversation(reply_request(conversation_id, **overrides), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")
    assert producer.calls == []
    assert not inbox.conversations[conversation_id].answered


def test_a_producer_failure_is_unavailable_and_changes_nothing(
    stub: EngagerServiceStub, inbox: Inbox, producer: FakeProducer
) -> None:
    conversation_id = open_conversation(inbox, "m-1", "camp-1")
    producer.failing = TimeoutError("broker did not acknowledge")
    with pytest.raises(grpc.RpcError) as caught:
        stub.ReplyToConversation(reply_request(conversation_id), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "broker did not acknowledge" in (caught.value.details() or "")
    assert inbox.conversations[conversation_id].replies == []
    assert len(inbox.conversations) == 1
    # Once the broker is back, the same request is recorded (it was not taken as done).
    producer.failing = None
    conversation = stub.ReplyToConversation(reply_request(conversation_id), timeout=10)
    assert conversation.state == pb.Conversation.STATE_ANSWERED
    assert len(producer.calls) == 1


def test_list_conversations_filters_by_campaign(stub: EngagerServiceStub, inbox: Inbox) -> None:
    a1 = open_conversation(inbox, "m-1", "camp-a")
    a2 = open_conversation(inbox, "m-2", "camp-a")
    b1 = open_conversation(inbox, "m-3", "camp-b")
    only_a = stub.ListConversations(pb.ListConversationsRequest(campaign_id="camp-a"), timeout=10)
    assert {c.conversation_id for c in only_a.conversations} == {a1, a2}
    assert {c.campaign_id for c in only_a.conversations} == {"camp-a"}
    assert all(c.state == pb.Conversation.STATE_NEW for c in only_a.conversations)
    everything = stub.ListConversations(pb.ListConversationsRequest(), timeout=10)
    assert {c.conversation_id for c in everything.conversations} == {a1, a2, b1}
    none = stub.ListConversations(pb.ListConversationsRequest(campaign_id="camp-z"), timeout=10)
    assert list(none.conversations) == []
