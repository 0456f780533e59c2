"""The durable scheduler: delivers what is due through the shared outbox, never twice.

Each run derives the due deliveries from the posts' state (which the publisher rebuilt from
Kafka at start-up), so a restarted publisher owes exactly what it owed before. Every
(post, language variant, channel, occurrence) is one outbox delivery whose idempotency
key is the delivery id. The outbox's rule is kept here: the "sending" state returned by
``Deliverer.begin`` is recorded on Kafka (acknowledged) before ``Deliverer.send`` calls
the channel, and whatever ``send`` returns is recorded after, with the Publication when it
was delivered. A delivery found "sending" is one a crash interrupted: ``Deliverer.recover``
looks it up on the channel (``lookup``), sends it again under the same key
(``idempotency-key``) or hands it to a person (``none``: needs a check).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter

from legation.events.v1 import publish_pb2
from legation_channels import outbox
from legation_channels.base import Channel
from legation_core.codec import Envelope
from legation_core.metrics import BoundedLabel
from legation_core.topic_names import PUBLISH_PUBLICATIONS_V1
from legation_publisher.adapters.state import PostStore
from legation_publisher.domain import schedule as sched
from legation_publisher.domain import workflow
from legation_publisher.domain.delivery import from_outbox, outgoing, publication_for, to_outbox
from legation_publisher.domain.posts import publication_envelope

log = logging.getLogger(__name__)

NEEDS_CHECK_HINT = (
    "look on the channel, then ConfirmDelivery with its id and URL if it is there, "
    "or RetryDelivery if it is not"
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Delivers due posts to their channels; run it periodically from one thread."""

    def __init__(
        self,
        store: PostStore,
        channels: Mapping[str, Channel],
        deliverer: outbox.Deliverer | None = None,
        clock: Callable[[], datetime] = _utc_now,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.store = store
        self.channels = channels
        self.clock = clock
        self.deliverer = deliverer or outbox.Deliverer(clock=clock)
        self.deliveries = Counter(
            "legation_publisher_deliveries_total",
            "Delivery steps by channel and the state they ended in",
            ["channel", "state"],
            registry=registry,
        )
        self._channel_label = BoundedLabel(limit=50)  # channel names: bounded label values

    def run_once(self) -> int:
        """Recovers interrupted deliveries, then delivers everything due; returns how many
        delivery steps it took."""
        steps = 0
        for post in self.store.book.all():
            for record in sched.in_flight(post, self.clock()):
                self._recover(post.post_id, record)
                steps += 1
            for planned in sched.due_deliveries(post, self.clock()):
                self._deliver(post.post_id, planned)
                steps += 1
        return steps

    def _recover(self, post_id: str, record: publish_pb2.Delivery) -> None:
        channel = self.channels.get(record.channel)
        if channel is None:
            self._unknown_channel(post_id, record)
            return
        recovered = self.deliverer.recover(to_outbox(record), channel)
        self._record(post_id, recovered, record.language, record.due_at.ToDatetime(tzinfo=UTC))

    def _deliver(self, post_id: str, planned: sched.PlannedDelivery) -> None:
        post = self.store.book.get(post_id)
        assert post is not None  # due deliveries come from the book
        record = next((d for d in post.deliveries if d.delivery_id == planned.delivery_id), None)
        current = (
            to_outbox(record)
            if record is not None
            else outbox.new_delivery(planned.delivery_id, planned.channel, self.clock())
        )
        channel = self.channels.get(planned.channel)
        if channel is None:
            self._unknown_channel(post_id, from_outbox(current, planned.language, planned.due_at))
            return
        sending = self.deliverer.begin(current)
        # Recorded and acknowledged before the channel is called: the never-twice rule.
        post = self._record(post_id, sending, planned.language, planned.due_at)
        message = outgoing(post, planned.delivery_id, planned.language, planned.channel)
        result = self.deliverer.send(sending, channel, message)
        self._record(post_id, result, planned.language, planned.due_at)

    def _unknown_channel(self, post_id: str, record: publish_pb2.Delivery) -> None:
        failed = publish_pb2.Delivery()
        failed.CopyFrom(record)
        failed.status = publish_pb2.DELIVERY_STATUS_FAILED
        failed.reason = f"channel {record.channel!r} is not configured"
        self.store.change(post_id, lambda p: workflow.record_delivery(p, failed, self.clock()))
        self.deliveries.labels(channel=self._channel_label(record.channel), state="failed").inc()

    def _record(
        self, post_id: str, delivery: outbox.Delivery, language: str, due_at: datetime
    ) -> publish_pb2.PostState:
        if delivery.state == "needs-check":
            # Say what the person who reads the reason in GetPost can do about it.
            delivery = replace(delivery, reason=f"{delivery.reason}; {NEEDS_CHECK_HINT}")
        record = from_outbox(delivery, language, due_at)

        def publication(post: publish_pb2.PostState) -> list[tuple[str, str, Envelope]]:
            if delivery.state != "delivered":
                return []
            event = publication_for(post, record)
            envelope = publication_envelope(event, post.campaign_id, post.issue_id)
            return [(PUBLISH_PUBLICATIONS_V1, post.post_id, envelope)]

        post = self.store.change(
            post_id, lambda p: workflow.record_delivery(p, record, self.clock()), publication
        )
        self.deliveries.labels(
            channel=self._channel_label(delivery.channel), state=delivery.state
        ).inc()
        log.info(
            "delivery recorded",
            extra={
                "post_id": post_id,
                "delivery_id": delivery.idempotency_key,
                "channel": delivery.channel,
                "state": delivery.state,
                "attempts": delivery.attempts,
                "reason": delivery.reason,
                "url": delivery.url,
            },
        )
        return post
