"""The durable scheduler: delivers what is due, never twice.

Each run derives the due deliveries from the posts' state (which the publisher rebuilt from
Kafka at start-up), so a restarted publisher owes exactly what it owed before. A delivery is
recorded as ``sending`` (acknowledged by Kafka) before its channel is called, then as
``published`` with the channel's own id and URL, together with its Publication event. A
delivery found ``sending`` at start-up was interrupted: the channel is asked first
(``find``, the channel's lookup by idempotency key) and the delivery recorded as published
when the channel holds it, so a crash between sending and recording never posts twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter

from legation.events.v1 import publish_pb2
from legation_core.codec import Envelope
from legation_publisher.adapters.state import PostStore
from legation_publisher.domain import schedule as sched
from legation_publisher.domain import workflow
from legation_publisher.domain.delivery import outgoing, publication_for
from legation_publisher.domain.posts import (
    PUBLICATIONS_TOPIC,
    Channel,
    ChannelError,
    ChannelResult,
    ChannelUnavailable,
    publication_envelope,
)

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Delivers due posts to their channels; run it periodically from one thread."""

    def __init__(
        self,
        store: PostStore,
        channels: Mapping[str, Channel],
        max_attempts: int = 5,
        clock: Callable[[], datetime] = _utc_now,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.store = store
        self.channels = channels
        self.max_attempts = max_attempts
        self.clock = clock
        self.deliveries = Counter(
            "legation_publisher_deliveries_total",
            "Deliveries by channel and outcome",
            ["channel", "outcome"],
            registry=registry,
        )

    def run_once(self) -> int:
        """Reconciles interrupted deliveries, then delivers everything due; returns how many
        deliveries it handled."""
        handled = 0
        for post in self.store.book.all():
            for delivery in sched.in_flight(post):
                planned = sched.PlannedDelivery(
                    delivery.delivery_id,
                    delivery.language,
                    delivery.channel,
                    delivery.due_at.ToDatetime(tzinfo=UTC),
                )
                self._deliver(post.post_id, planned, interrupted=True)
                handled += 1
            for planned in sched.due_deliveries(post, self.clock()):
                self._deliver(post.post_id, planned, interrupted=False)
                handled += 1
        return handled

    def _deliver(self, post_id: str, planned: sched.PlannedDelivery, interrupted: bool) -> None:
        channel = self.channels.get(planned.channel)
        if channel is None:
            self._fail(post_id, planned, f"channel {planned.channel!r} is not configured")
            return
        found: ChannelResult | None = None
        if interrupted:
            # The last attempt may have reached the channel before the crash: ask it.
            try:
                found = channel.find(planned.delivery_id)
            except ChannelUnavailable as error:
                log.warning("cannot reconcile yet", extra={"delivery_id": planned.delivery_id})
                self._count(planned.channel, "unavailable")
                self._retry_or_fail(post_id, planned, str(error))
                return
        if found is None:
            post = self.store.change(
                post_id, lambda p: workflow.record_sending(p, planned, self.clock())
            )
            message = outgoing(post, planned.delivery_id, planned.language, planned.channel)
            try:
                found = channel.publish(message)
            except ChannelUnavailable as error:
                self._count(planned.channel, "unavailable")
                self._retry_or_fail(post_id, planned, str(error))
                return
            except ChannelError as error:
                self._fail(post_id, planned, str(error))
                return
        result = found

        def published(post: publish_pb2.PostState) -> publish_pb2.PostState:
            return workflow.record_published(
                post,
                planned.delivery_id,
                result.channel_item_id,
                result.url,
                result.published_at,
                self.clock(),
            )

        def publication(post: publish_pb2.PostState) -> list[tuple[str, str, Envelope]]:
            record = next(d for d in post.deliveries if d.delivery_id == planned.delivery_id)
            event = publication_for(post, record)
            envelope = publication_envelope(event, post.campaign_id, post.issue_id)
            return [(PUBLICATIONS_TOPIC, post.post_id, envelope)]

        self.store.change(post_id, published, publication)
        outcome = "published" if result.newly_published else "already_published"
        self._count(planned.channel, outcome)
        log.info(
            "delivered",
            extra={
                "post_id": post_id,
                "delivery_id": planned.delivery_id,
                "channel": planned.channel,
                "outcome": outcome,
                "url": result.url,
            },
        )

    def _retry_or_fail(self, post_id: str, planned: sched.PlannedDelivery, reason: str) -> None:
        post = self.store.book.get(post_id)
        deliveries = list(post.deliveries) if post is not None else []
        record = next((d for d in deliveries if d.delivery_id == planned.delivery_id), None)
        if record is not None and record.attempts >= self.max_attempts:
            self._fail(post_id, planned, f"gave up after {record.attempts} attempts: {reason}")
        # Otherwise it stays "sending" and the next run reconciles and tries again.

    def _fail(self, post_id: str, planned: sched.PlannedDelivery, reason: str) -> None:
        def failed(post: publish_pb2.PostState) -> publish_pb2.PostState:
            if not any(d.delivery_id == planned.delivery_id for d in post.deliveries):
                post = workflow.record_sending(post, planned, self.clock())
            return workflow.record_failed(post, planned.delivery_id, reason, self.clock())

        self.store.change(post_id, failed)
        self._count(planned.channel, "failed")
        log.error(
            "delivery failed",
            extra={"post_id": post_id, "delivery_id": planned.delivery_id, "reason": reason},
        )

    def _count(self, channel: str, outcome: str) -> None:
        self.deliveries.labels(channel=channel, outcome=outcome).inc()
