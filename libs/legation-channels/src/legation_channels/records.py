"""The outbox's Delivery as the platform records it in events: ``publish_pb2.Delivery``.

The publisher keeps a post's deliveries inside its PostState and the engager keeps a
reply's delivery inside its ConversationState; both map to and from the outbox's
state machine here, so the transitions stay :mod:`legation_channels.outbox`'s alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from legation.events.v1 import publish_pb2
from legation_channels import outbox

_STATUS: dict[outbox.DeliveryState, publish_pb2.DeliveryStatus.ValueType] = {
    "pending": publish_pb2.DELIVERY_STATUS_PENDING,
    "sending": publish_pb2.DELIVERY_STATUS_SENDING,
    "delivered": publish_pb2.DELIVERY_STATUS_PUBLISHED,
    "failed": publish_pb2.DELIVERY_STATUS_FAILED,
    "needs-check": publish_pb2.DELIVERY_STATUS_NEEDS_CHECK,
    "cancelled": publish_pb2.DELIVERY_STATUS_CANCELLED,
}
_STATE = {status: state for state, status in _STATUS.items()}


def _time(
    record: publish_pb2.Delivery, name: Literal["next_attempt_at", "published_at"]
) -> datetime | None:
    return getattr(record, name).ToDatetime(tzinfo=UTC) if record.HasField(name) else None


def to_outbox(record: publish_pb2.Delivery) -> outbox.Delivery:
    """The outbox's view of a recorded delivery."""
    return outbox.Delivery(
        idempotency_key=record.delivery_id,
        channel=record.channel,
        state=_STATE[record.status],
        attempts=record.attempts,
        next_attempt_at=_time(record, "next_attempt_at"),
        reason=record.reason,
        reason_field=record.reason_field,
        channel_item_id=record.channel_item_id,
        url=record.url,
        published_at=_time(record, "published_at"),
    )


def from_outbox(delivery: outbox.Delivery, language: str, due_at: datetime) -> publish_pb2.Delivery:
    """The record of an outbox delivery of the ``language`` variant due at ``due_at``."""
    record = publish_pb2.Delivery(
        delivery_id=delivery.idempotency_key,
        language=language,
        channel=delivery.channel,
        status=_STATUS[delivery.state],
        reason=delivery.reason,
        reason_field=delivery.reason_field,
        attempts=delivery.attempts,
        channel_item_id=delivery.channel_item_id,
        url=delivery.url,
    )
    record.due_at.FromDatetime(due_at.astimezone(UTC))
    if delivery.next_attempt_at is not None:
        record.next_attempt_at.FromDatetime(delivery.next_attempt_at.astimezone(UTC))
    if delivery.published_at is not None:
        record.published_at.FromDatetime(delivery.published_at.astimezone(UTC))
    return record
