"""MentionHandler through the per-event batch adapter the consume loop runs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from legation.events.v1 import listen_pb2
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, EventCodec, make_envelope
from legation_core.consumer import BatchHandler, Incoming, per_event
from legation_engager.adapters.events import INTERACTIONS, MENTIONS, MentionHandler
from legation_engager.domain.inbox import Inbox, Interaction, conversation_id_for

ASKED_AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def mention_envelope(
    mention_id: str = "m-1", text: str = "Where do I apply for a visa?", event_id: str = "ev-1"
) -> Envelope:
    return make_envelope(
        listen_pb2.Mention(
            mention_id=mention_id, text=text, author="@citizen", source_url="https://feed"
        ),
        event_id=event_id,
        source_service="listener",
        occurred_at=ASKED_AT,
        campaign_id="camp-1",
        issue_id="issue-1",
        trace_id="trace-abc",
    )


def incoming(envelope: Envelope, offset: int = 7) -> Incoming:
    return Incoming(MENTIONS, 2, offset, b"key", envelope)


def handler() -> tuple[Inbox, BatchHandler]:
    inbox = Inbox()
    return inbox, per_event(MentionHandler(inbox, threading.Lock()))


def test_a_question_produces_one_opened_interaction() -> None:
    inbox, handle = handler()
    result = handle([incoming(mention_envelope())])
    assert result.rejected == []
    assert len(result.outgoing) == 1
    out = result.outgoing[0]
    conversation_id = conversation_id_for("m-1")
    assert out.topic == INTERACTIONS == "legation.engage.interactions.v1"
    assert out.key == conversation_id
    envelope = out.envelope
    assert envelope.WhichOneof("payload") == "interaction"
    assert envelope.interaction.kind == Interaction.KIND_OPENED
    assert envelope.interaction.conversation_id == conversation_id
    assert envelope.event_id == envelope.interaction.interaction_id
    assert envelope.campaign_id == "camp-1"
    assert envelope.issue_id == "issue-1"
    assert envelope.trace_id == "trace-abc"
    assert envelope.source_service == "engager"
    assert envelope.occurred_at.ToDatetime(tzinfo=UTC) == ASKED_AT
    # The event satisfies the interactions topic's contract.
    EventCodec.validate(default_catalog().check_produce("engager", INTERACTIONS), envelope)
    # And the inbox now holds the conversation, opened when the question was asked.
    conversation = inbox.conversations[conversation_id]
    assert conversation.opened_at == ASKED_AT
    assert conversation.campaign_id == "camp-1"


def test_a_redelivered_mention_produces_nothing() -> None:
    inbox, handle = handler()
    assert len(handle([incoming(mention_envelope())]).outgoing) == 1
    again = handle([incoming(mention_envelope())])
    assert again.outgoing == []
    assert again.rejected == []
    assert len(inbox.conversations) == 1


def test_a_redelivery_within_one_batch_produces_once() -> None:
    _inbox, handle = handler()
    result = handle([incoming(mention_envelope(), 7), incoming(mention_envelope(), 8)])
    assert len(result.outgoing) == 1


def test_a_statement_produces_nothing() -> None:
    inbox, handle = handler()
    result = handle([incoming(mention_envelope(text="The visa office moved."))])
    assert result.outgoing == []
    assert result.rejected == []
    assert inbox.conversations == {}


def test_a_mention_without_id_is_rejected_alone() -> None:
    _inbox, handle = handler()
    bad = incoming(mention_envelope(mention_id="", event_id="ev-bad"), 1)
    good = incoming(mention_envelope(mention_id="m-2", event_id="ev-2"), 2)
    result = handle([bad, good])
    assert [r.incoming for r in result.rejected] == [bad]
    assert "mention_id" in result.rejected[0].reason
    assert [o.key for o in result.outgoing] == [conversation_id_for("m-2")]
