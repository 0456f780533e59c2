"""Kafka side of the engager: mentions in, Interaction events out, inbox rebuilt from
the interactions topic at start-up."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from legation_core.codec import Envelope, EventCodec, InvalidEvent, make_envelope
from legation_core.config import CoreSettings
from legation_core.consumer import Incoming, Outgoing
from legation_core.kafka import read_topic
from legation_engager.domain.inbox import Inbox, Interaction

SERVICE = "engager"
MENTIONS = "legation.listen.mentions.v1"
INTERACTIONS = "legation.engage.interactions.v1"


def interaction_envelope(
    interaction: Interaction, cause: Envelope, occurred_at: datetime
) -> Envelope:
    """Wraps an interaction, keeping the campaign, issue and trace of what caused it."""
    return make_envelope(
        interaction,
        event_id=interaction.interaction_id,
        source_service=SERVICE,
        occurred_at=occurred_at,
        campaign_id=cause.campaign_id,
        issue_id=cause.issue_id,
        trace_id=cause.trace_id,
    )


def occurred_at(envelope: Envelope) -> datetime:
    return envelope.occurred_at.ToDatetime(tzinfo=UTC)


class MentionHandler:
    """Opens a conversation for every mention that asks a question.

    The handler only decides; :meth:`apply_produced` changes the inbox once the OPENED event
    is acknowledged, so the inbox never holds a conversation the log does not.
    """

    def __init__(self, inbox: Inbox, lock: threading.Lock) -> None:
        self.inbox = inbox
        self.lock = lock

    def __call__(self, incoming: Incoming) -> Iterable[Outgoing]:
        envelope = incoming.envelope
        mention = envelope.mention
        if not mention.mention_id:
            raise InvalidEvent("mention has no mention_id")
        with self.lock:
            opened = self.inbox.open_from_mention(mention)
        if opened is None:
            return []
        # The conversation starts when the question was asked, not when we saw it.
        outgoing = interaction_envelope(opened, envelope, occurred_at(envelope))
        return [Outgoing(INTERACTIONS, opened.conversation_id, outgoing)]

    def apply_produced(self, produced: Sequence[Outgoing]) -> None:
        with self.lock:
            for outgoing in produced:
                envelope = outgoing.envelope
                self.inbox.apply(
                    envelope.interaction,
                    envelope.campaign_id,
                    envelope.issue_id,
                    occurred_at(envelope),
                )


def rebuild_inbox(settings: CoreSettings, codec: EventCodec) -> Inbox:
    """Folds every Interaction ever produced into a fresh inbox."""
    inbox = Inbox()
    for envelope in read_topic(settings, SERVICE, codec, INTERACTIONS):
        inbox.apply(
            envelope.interaction, envelope.campaign_id, envelope.issue_id, occurred_at(envelope)
        )
    return inbox
