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


def handler() -> tuple[Inbox, BatchHandler, MentionHandler]:
    inbox = Inbox()
    mention_handler = MentionHandler(inbox, threading.Lock())
    return inbox, per_event(mention_handler), mention_handler


def test_a_question_produces_one_opened_interaction() -> None:
    inbox, handle, mention_handler = handler()
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
    # The inbox changes only once the event is acknowledged, never ahead of the log.
    assert inbox.conversations == {}
    mention_handler.apply_produced(result.outgoing)
    conversation = inbox.conversations[conversation_id]
    assert conversation.opened_at == ASKED_AT
    assert conversation.campaign_id == "camp-1"


def test_a_redelivered_mention_produces_nothing() -> None:
    inbox, handle, mention_handler = handler()
    first = handle([incoming(mention_envelope())])
    assert len(first.outgoing) == 1
    mention_handler.apply_produced(first.outgoing)
    again = handle([incoming(mention_envelope())])
    assert again.outgoing == []
    assert again.rejected == []
    assert len(inbox.conversations) == 1


def test_a_redelivery_within_one_batch_repeats_the_same_event() -> None:
    """Before the acknowledgement nothing is known, so both copies produce the OPENED event,
    with one event id: the index and the inbox count it once."""
    inbox, handle, mention_handler = handler()
    result = handle([incoming(mention_envelope(), 7), incoming(mention_envelope(), 8)])
    assert len({o.envelope.event_id for o in result.outgoing}) == 1
    mention_handler.apply_produced(result.outgoing)
    assert len(inbox.conversations) == 1


def test_a_handler_retry_before_the_acknowledgement_produces_again() -> None:
    """The loop may re-run the handler (isolating a poison event): the OPENED event must
    come out again, or it would be lost."""
    _inbox, handle, _ = handler()
    assert len(handle([incoming(mention_envelope())]).outgoing) == 1
    assert len(handle([incoming(mention_envelope())]).outgoing) == 1


def test_a_statement_produces_nothing() -> None:
    inbox, handle, _ = handler()
    result = handle([incoming(mention_envelope(text="The visa office moved."))])
    assert result.outgoing == []
    assert result.rejected == []
    assert inbox.conversations == {}


def test_a_mention_without_id_is_rejected_alone() -> None:
    _inbox, handle, _ = handler()
    bad = incoming(mention_envelope(mention_id="", event_id="ev-bad"), 1)
    good = incoming(mention_envelope(mention_id="m-2", event_id="ev-2"), 2)
    result = handle([bad, good])
    assert [r.incoming for r in result.rejected] == [bad]
    assert "mention_id" in result.rejected[0].reason
    assert [o.key for o in result.outgoing] == [conversation_id_for("m-2")]
