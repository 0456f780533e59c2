"""The publisher's durable state: every post on ``legation.publish.posts.v1``.

The topic is compacted and keyed by post id, and each record holds the post's whole state,
so the latest record per key is the post. At start-up the publisher reads the topic to its
end (the shared :func:`~legation_core.kafka.read_topic`); afterwards every change is
written and acknowledged before memory changes, so memory never holds what Kafka would not
give back after a restart, and the scheduler derives due deliveries from it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC

from legation.events.v1 import publish_pb2
from legation_core.catalog import CatalogError
from legation_core.codec import Envelope, EventCodec, InvalidEvent, make_envelope, payload_of
from legation_core.config import CoreSettings
from legation_core.ids import stable_id
from legation_core.kafka import read_topic
from legation_publisher.adapters.sink import EventSink
from legation_publisher.domain.posts import SERVICE

log = logging.getLogger(__name__)

POSTS_TOPIC = "legation.publish.posts.v1"


class StoreUnavailable(Exception):
    """A change was not acknowledged by Kafka, so it was not made; retrying is safe."""


def post_envelope(post: publish_pb2.PostState) -> Envelope:
    """The posts-topic record of one version of a post (its event id names the version, so
    a version written twice is one event)."""
    return make_envelope(
        post,
        event_id=stable_id("post-state", post.post_id, str(post.version)),
        source_service=SERVICE,
        occurred_at=post.transition.at.ToDatetime(tzinfo=UTC),
        campaign_id=post.campaign_id,
        issue_id=post.issue_id,
    )


class PostBook:
    """Every post in memory, by id; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._posts: dict[str, publish_pb2.PostState] = {}
        self._links: dict[str, tuple[str, publish_pb2.TrackedLink]] = {}

    @classmethod
    def rebuild(cls, settings: CoreSettings, codec: EventCodec, timeout: float = 60.0) -> PostBook:
        """The posts the topic holds now (the latest version per post wins)."""
        book = cls()
        for envelope in read_topic(settings, SERVICE, codec, POSTS_TOPIC, timeout):
            book.apply(envelope)
        log.info("posts rebuilt", extra={"posts": len(book._posts)})
        return book

    def apply(self, envelope: Envelope) -> None:
        """Folds one PostState record into memory; an older version never replaces a newer."""
        payload = payload_of(envelope)
        if not isinstance(payload, publish_pb2.PostState):
            return
        with self._lock:
            current = self._posts.get(payload.post_id)
            if current is not None and current.version >= payload.version:
                return
            self._posts[payload.post_id] = payload
            for link in payload.links:
                self._links[link.code] = (payload.post_id, link)

    def get(self, post_id: str) -> publish_pb2.PostState | None:
        """The post ``post_id`` (do not modify it), or None."""
        with self._lock:
            return self._posts.get(post_id)

    def all(self) -> list[publish_pb2.PostState]:
        """Every post, oldest first."""
        with self._lock:
            posts = list(self._posts.values())
        return sorted(posts, key=lambda post: (post.created_at.ToNanoseconds(), post.post_id))

    def link(self, code: str) -> tuple[publish_pb2.PostState, publish_pb2.TrackedLink] | None:
        """The post and tracked link of a short-link code, or None."""
        with self._lock:
            found = self._links.get(code)
            if found is None:
                return None
            return self._posts[found[0]], found[1]


class PostStore:
    """Changes posts: each change is computed from the current version under one lock,
    written to Kafka (waiting for the acknowledgement), then applied to memory."""

    def __init__(self, book: PostBook, producer: EventSink) -> None:
        self.book = book
        self.producer = producer
        self._write_lock = threading.RLock()

    def create(
        self, post_id: str, make: Callable[[], publish_pb2.PostState]
    ) -> tuple[publish_pb2.PostState, bool]:
        """The post ``post_id``, made and recorded unless it exists; the flag is True when
        it was created now."""
        with self._write_lock:
            existing = self.book.get(post_id)
            if existing is not None:
                return existing, False
            post = make()
            self._save(post)
            return post, True

    def change(
        self,
        post_id: str,
        change: Callable[[publish_pb2.PostState], publish_pb2.PostState],
        extra: Callable[[publish_pb2.PostState], list[tuple[str, str, Envelope]]] | None = None,
    ) -> publish_pb2.PostState:
        """Applies ``change`` to the current version of ``post_id`` and records the result
        (with ``extra`` events produced in the same acknowledged batch). Raises KeyError when
        there is no such post; whatever ``change`` raises leaves the post as it was."""
        with self._write_lock:
            current = self.book.get(post_id)
            if current is None:
                raise KeyError(post_id)
            post = change(current)
            self._save(post, extra(post) if extra is not None else [])
            return post

    def _save(
        self, post: publish_pb2.PostState, extra: list[tuple[str, str, Envelope]] | None = None
    ) -> None:
        envelope = post_envelope(post)
        try:
            self.producer.send_and_wait([(POSTS_TOPIC, post.post_id, envelope), *(extra or [])])
        except (CatalogError, InvalidEvent):
            raise  # a bug in this service, not something a retry fixes
        except Exception as error:
            raise StoreUnavailable(f"Kafka did not acknowledge the change: {error}") from error
        self.book.apply(envelope)
