"""What one delivery hands to its channel and the Publication it becomes. No I/O.

The publisher keeps its deliveries inside the post's state (on the posts topic), mapped
to and from the outbox by :mod:`legation_channels.records`; the
transitions themselves (begin, send, recover, retry, cancel, backoff) are
:mod:`legation_channels.outbox`'s, shared with the engager.
"""

from __future__ import annotations

from datetime import UTC

from legation.events.v1 import publish_pb2
from legation_channels.base import Outgoing
from legation_channels.records import from_outbox, to_outbox
from legation_publisher.domain.content import (
    channel_media,
    channel_text,
    media_from,
    rewrite_links,
)
from legation_publisher.domain.posts import publication_id_for

# The mapping between delivery records and the outbox is shared with the engager.
__all__ = ["from_outbox", "outgoing", "publication_for", "to_outbox", "variant_of"]


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
