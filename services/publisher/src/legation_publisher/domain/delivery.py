"""What one delivery hands to its channel, the Publication it becomes, and the mapping
between a post's delivery records and the shared outbox's state machine. No I/O.

The publisher keeps its deliveries inside the post's state (on the posts topic); the
transitions themselves (begin, send, recover, retry, cancel, backoff) are
:mod:`legation_channels.outbox`'s, shared with the engager.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from legation.events.v1 import publish_pb2
from legation_channels import outbox
from legation_channels.base import Outgoing
from legation_publisher.domain.content import (
    channel_media,
    channel_text,
    media_from,
    rewrite_links,
)
from legation_publisher.domain.posts import publication_id_for

_STATUS: dict[outbox.DeliveryState, publish_pb2.DeliveryStatus.ValueType] = {
    "pending": publish_pb2.DELIVERY_STATUS_PENDING,
    "sending": publish_pb2.DELIVERY_STATUS_SENDING,
    "delivered": publish_pb2.DELIVERY_STATUS_PUBLISHED,
    "failed": publish_pb2.DELIVERY_STATUS_FAILED,
    "needs-check": publish_pb2.DELIVERY_STATUS_NEEDS_CHECK,
    "cancelled": publish_pb2.DELIVERY_STATUS_CANCELLED,
}
_STATE = {status: state for state, status in _STATUS.items()}


def variant_of(post: publish_pb2.PostState, language: str) -> publish_pb2.LanguageVariant:
    """The post's variant in ``language`` (KeyError when it has none)."""
    for variant in post.variants:
        if variant.language == language:
            return variant
    raise KeyError(language)


def outgoing(
    post: publish_pb2.PostState, delivery_id: str, language: str, channel: str
) -> Outgoing:
    """The message for one delivery: the variant's text for the channel (its own text and
    hashtags, or the body), links rewritten to their tracked short links, the channel's
    media. Its idempotency key is the delivery id."""
    variant = variant_of(post, language)
    links = [link for link in post.links if link.language == language and link.channel == channel]
    return Outgoing(
        idempotency_key=delivery_id,
        text=rewrite_links(channel_text(variant, channel), links),
        title=variant.title,
        language=language,
        media=media_from(channel_media(variant, channel)),
        author=variant.author,
    )


def publication_for(
    post: publish_pb2.PostState, delivery: publish_pb2.Delivery
) -> publish_pb2.Publication:
    """The Publication event payload of a published delivery, with the channel's own id
    and URL of what it holds."""
    message = outgoing(post, delivery.delivery_id, delivery.language, delivery.channel)
    publication = publish_pb2.Publication(
        publication_id=publication_id_for(delivery.delivery_id),
        post_id=post.post_id,
        channel=delivery.channel,
        channel_item_id=delivery.channel_item_id,
        url=delivery.url,
        title=message.title,
        body=message.text,
        language=message.language,
        author=message.author,
    )
    publication.published_at.FromDatetime(delivery.published_at.ToDatetime(tzinfo=UTC))
    return publication


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
