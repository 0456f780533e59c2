"""The engager's periodic work: deliver replies and published answers through the shared
outbox, and raise SLA breaches.

The outbox's never-twice rule is kept as in the publisher: :meth:`Deliverer.run` hands
every state to ``save``, which records it on the conversations (or questions) topic and
waits for the acknowledgement, so "sending" is on Kafka before the channel is called. A
reply found "sending" after a restart is recovered by the channel's reconcile mode
(looked up, sent again under the same key, or handed to a person).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter

from legation.events.v1 import engage_pb2
from legation_channels import outbox
from legation_channels.base import Channel, Outgoing
from legation_channels.records import to_outbox
from legation_core.metrics import BoundedLabel
from legation_engager.adapters.store import EngagerState
from legation_engager.domain import inbox, questions

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EngagerJobs:
    """Delivers due replies and answers, then checks SLA deadlines; run it periodically
    from one thread."""

    def __init__(
        self,
        state: EngagerState,
        channels: Mapping[str, Channel],
        deliverer: outbox.Deliverer | None = None,
        clock: Callable[[], datetime] = _utc_now,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.state = state
        self.channels = channels
        self.clock = clock
        self.deliverer = deliverer or outbox.Deliverer(clock=clock)
        self.deliveries = Counter(
            "legation_engager_deliveries_total",
            "Reply and answer delivery steps by channel and the state they ended in",
            ["channel", "state"],
            registry=registry,
        )
        self._channel_label = BoundedLabel(limit=50)  # channel names: bounded label values
        self.breaches = Counter(
            "legation_engager_sla_breaches_total",
            "Conversations that passed their first-response deadline unanswered",
            ["priority"],
            registry=registry,
        )

    def run_once(self) -> None:
        self.deliver_replies()
        self.deliver_answers()
        self.check_sla()

    def deliver_replies(self) -> None:
        for conversation in self.state.conversations.all():
            for reply in inbox.deliveries_due(conversation):
                # Where the channel takes no replies, the reply links the post it answers.
                answered = conversation.mentions[-1].url if conversation.mentions else ""
                self._reply(conversation.conversation_id, reply, answered)

    def _reply(self, conversation_id: str, reply: engage_pb2.Reply, answered_url: str = "") -> None:
        def save(delivery: outbox.Delivery) -> None:
            with self.state.change_conversations() as writer:
                current = writer.get(conversation_id)
                assert current is not None
                writer.put(inbox.record_delivery(current, reply.reply_id, delivery, self.clock()))
            self._count(delivery)

        message = Outgoing(
            idempotency_key=reply.reply_id,
            text=reply.text,
            language=reply.language or "en",
            in_reply_to=reply.in_reply_to,
            link="" if reply.in_reply_to else answered_url,
            author=reply.officer,
        )
        self._drive(to_outbox(reply.delivery), message, save)

    def deliver_answers(self) -> None:
        for campaign in self.state.questions.all():
            for question in questions.answers_due(campaign):
                self._answer(campaign.questions_id, question)

    def _answer(self, questions_id: str, question: questions.Question) -> None:
        def save(delivery: outbox.Delivery) -> None:
            with self.state.questions.transaction() as transaction:
                current = transaction.get(questions_id)
                assert current is not None
                transaction.put(
                    questions.record_answer_delivery(
                        current, question.question_id, delivery, self.clock()
                    )
                )
            self._count(delivery)

        message = Outgoing(
            idempotency_key=question.answer.reply_id,
            text=questions.answer_text(question),
            language=question.language or "en",
            author=question.answer.officer,
        )
        self._drive(to_outbox(question.answer.delivery), message, save)

    def _drive(
        self,
        delivery: outbox.Delivery,
        message: Outgoing,
        save: Callable[[outbox.Delivery], None],
    ) -> None:
        channel = self.channels.get(delivery.channel)
        if channel is None:
            # Configuration changed under a queued reply: fail it for a person to see.
            failed = outbox.Delivery(
                delivery.idempotency_key,
                delivery.channel,
                state="failed",
                attempts=delivery.attempts,
                reason=f"channel {delivery.channel!r} is not configured",
                updated_at=self.clock(),
            )
            save(failed)
            return
        result = self.deliverer.run(delivery, channel, message, save)
        log.info(
            "delivery step",
            extra={
                "delivery_id": result.idempotency_key,
                "channel": result.channel,
                "state": result.state,
                "attempts": result.attempts,
                "reason": result.reason,
            },
        )

    def _count(self, delivery: outbox.Delivery) -> None:
        self.deliveries.labels(
            channel=self._channel_label(delivery.channel), state=delivery.state
        ).inc()

    def check_sla(self) -> None:
        now = self.clock()
        due = [c for c in self.state.conversations.all() if inbox.breach(c, now) is not None]
        if not due:
            return
        with self.state.change_conversations() as writer:
            for conversation in due:
                current = writer.get(conversation.conversation_id)
                change = inbox.breach(current, now) if current is not None else None
                if change is not None:
                    writer.put(change)
                    self.breaches.labels(
                        priority=engage_pb2.Priority.Name(change.state.priority)
                    ).inc()
