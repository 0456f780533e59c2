"""The publisher's gRPC API: create a post, list what was published.

CreatePost answers only after the post is on the channel and its Publication event is
acknowledged by Kafka. When either step fails the caller gets UNAVAILABLE and retries with
the same request_id: the channel finds the post it already holds instead of posting again,
and the same event id is produced again, which subscribers deduplicate.
"""

from __future__ import annotations

import logging
from typing import Protocol

import grpc
from prometheus_client import CollectorRegistry, Counter

from legation.publisher.v1 import publisher_service_pb2, publisher_service_pb2_grpc
from legation_core.catalog import CatalogError
from legation_core.codec import Envelope, InvalidEvent
from legation_core.grpc_server import invalid_argument
from legation_publisher.domain.posts import (
    PUBLICATIONS_TOPIC,
    Channel,
    ChannelError,
    ChannelUnavailable,
    InvalidPost,
    build_publication,
    publication_envelope,
    validate_create_post,
)

log = logging.getLogger(__name__)
SERVICE_NAME = "legation.publisher.v1.PublisherService"


class EventSink(Protocol):
    """What the API needs of :class:`legation_core.kafka.EventProducer`."""

    def send_and_wait(self, events: list[tuple[str, str, Envelope]]) -> None: ...


class PublisherServicer(publisher_service_pb2_grpc.PublisherServiceServicer):
    """Serves ``legation.publisher.v1.PublisherService`` over one channel."""

    def __init__(
        self, channel: Channel, producer: EventSink, registry: CollectorRegistry | None = None
    ) -> None:
        self.channel = channel
        self.producer = producer
        self.posts = Counter(
            "legation_publisher_posts_total",
            "CreatePost calls by outcome",
            ["channel", "outcome"],
            registry=registry,
        )

    def CreatePost(
        self, request: publisher_service_pb2.CreatePostRequest, context: grpc.ServicerContext
    ) -> publisher_service_pb2.CreatePostResponse:
        """Publishes the post once per request_id and emits its Publication event."""
        try:
            order = validate_create_post(request)
        except InvalidPost as error:
            self._count("invalid")
            invalid_argument(context, str(error))
        try:
            result = self.channel.publish(order.post)
        except ChannelUnavailable as error:
            self._count("channel_unavailable")
            log.warning("channel unavailable", extra={"channel": self.channel.name})
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{error}; retry with the same request_id")
        except ChannelError as error:
            self._count("channel_failed")
            log.error("channel failed", extra={"channel": self.channel.name, "error": str(error)})
            context.abort(grpc.StatusCode.INTERNAL, str(error))
        publication = build_publication(self.channel.name, result)
        envelope = publication_envelope(publication, order.campaign_id, order.issue_id)
        try:
            self.producer.send_and_wait([(PUBLICATIONS_TOPIC, publication.post_id, envelope)])
        except (CatalogError, InvalidEvent):
            raise  # a bug in this service, not something a retry fixes
        except Exception:
            self._count("producer_unavailable")
            log.exception(
                "publication event not acknowledged",
                extra={"post_id": publication.post_id, "event_id": envelope.event_id},
            )
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "the post is published but its event was not acknowledged; "
                "retry with the same request_id",
            )
        self._count("published" if result.newly_published else "already_published")
        log.info(
            "post published" if result.newly_published else "post was already published",
            extra={
                "post_id": publication.post_id,
                "publication_id": publication.publication_id,
                "campaign_id": order.campaign_id,
                "channel": self.channel.name,
            },
        )
        return publisher_service_pb2.CreatePostResponse(
            post_id=publication.post_id,
            publication=publication,
            newly_published=result.newly_published,
        )

    def ListPublications(
        self, request: publisher_service_pb2.ListPublicationsRequest, context: grpc.ServicerContext
    ) -> publisher_service_pb2.ListPublicationsResponse:
        """Everything on the channel, newest first, read back from the channel itself."""
        try:
            results = self.channel.published()
        except ChannelUnavailable as error:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        except ChannelError as error:
            context.abort(grpc.StatusCode.INTERNAL, str(error))
        return publisher_service_pb2.ListPublicationsResponse(
            publications=[build_publication(self.channel.name, result) for result in results]
        )

    def _count(self, outcome: str) -> None:
        self.posts.labels(channel=self.channel.name, outcome=outcome).inc()
