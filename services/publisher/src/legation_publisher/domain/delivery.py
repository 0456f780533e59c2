"""What one delivery hands to its channel, and the Publication it becomes. No I/O."""

from __future__ import annotations

from datetime import UTC

from legation.events.v1 import publish_pb2
from legation_publisher.domain.content import channel_text, rewrite_links
from legation_publisher.domain.posts import Post, publication_id_for


def variant_of(post: publish_pb2.PostState, language: str) -> publish_pb2.LanguageVariant:
    """The post's variant in ``language`` (KeyError when it has none)."""
    for variant in post.variants:
        if variant.language == language:
            return variant
    raise KeyError(language)


def outgoing(post: publish_pb2.PostState, delivery_id: str, language: str, channel: str) -> Post:
    """The message for one delivery: the variant's text for the channel, links rewritten to
    their tracked short links. Its id is the delivery id (the channel's idempotency key)."""
    variant = variant_of(post, language)
    links = [link for link in post.links if link.language == language and link.channel == channel]
    return Post(
        post_id=delivery_id,
        title=variant.title,
        body=rewrite_links(channel_text(variant, channel), links),
        language=language,
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
        body=message.body,
        language=message.language,
        author=message.author,
    )
    publication.published_at.FromDatetime(delivery.published_at.ToDatetime(tzinfo=UTC))
    return publication
