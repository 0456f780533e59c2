"""The publisher's durable state: every post on ``legation.publish.posts.v1``.

The topic is compacted and keyed by post id, and each record holds the post's whole state,
so the latest record per key is the post. At start-up the publisher reads the topic to its
end; afterwards every change is written and acknowledged before memory changes, so memory
never holds what Kafka would not give back after a restart, and the scheduler derives due
deliveries from it. The table is the shared :class:`legation_core.state.StateTable` (the
engager keeps its conversations the same way).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC

from legation.events.v1 import publish_pb2
from legation_core.calls import NotFound
from legation_core.codec import Envelope, EventCodec, make_envelope
from legation_core.config import CoreSettings
from legation_core.ids import stable_id
from legation_core.kafka import EventProducer
from legation_core.state import StateTable, StoreUnavailable
from legation_core.topic_names import PUBLISH_APPROVALS_V1, PUBLISH_POSTS_V1
from legation_publisher.adapters.sink import EventSink
from legation_publisher.domain.approvals import approval_changes
from legation_publisher.domain.posts import SERVICE

log = logging.getLogger(__name__)

__all__ = ["PostBook", "PostStore", "StoreUnavailable", "post_envelope"]

# The workflow's default steps (legation_publisher.domain.workflow.WorkflowPolicy).
DEFAULT_STEPS = (("policy-desk", "approver"), ("head-of-communications", "approver"))


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
    """Every post in memory, by id (a :class:`~legation_core.state.StateTable` of the
    posts topic, with the short-link index); safe to share between threads."""

    def __init__(self) -> None:
        self._links_lock = threading.Lock()
        self._links: dict[str, tuple[str, publish_pb2.TrackedLink]] = {}
        self.table: StateTable[publish_pb2.PostState] = StateTable(
            PUBLISH_POSTS_V1,
            publish_pb2.PostState,
            lambda post: post.post_id,
            lambda post: post.version,
            post_envelope,
            on_change=self._index_links,
        )

    @classmethod
    def rebuild(
        cls,
        settings: CoreSettings,
        codec: EventCodec,
        dead_letters: EventProducer,
        timeout: float = 60.0,
    ) -> PostBook:
        """The posts the topic holds now (the latest version per post wins); records that do
        not decode go to the topic's DLQ through ``dead_letters``."""
        book = cls()
        book.table.rebuild(settings, SERVICE, codec, timeout, dead_letters=dead_letters)
        log.info("posts rebuilt", extra={"posts": len(book.table)})
        return book

    def _index_links(self, post: publish_pb2.PostState) -> None:
        with self._links_lock:
            for link in post.links:
                self._links[link.code] = (post.post_id, link)

    def apply(self, envelope: Envelope) -> None:
        """Folds one PostState record into memory; an older version never replaces a newer."""
        self.table.apply(envelope)

    def get(self, post_id: str) -> publish_pb2.PostState | None:
        """The post ``post_id`` (do not modify it), or None."""
        return self.table.get(post_id)

    def all(self) -> list[publish_pb2.PostState]:
        """Every post, oldest first."""
        posts = self.table.all()
        return sorted(posts, key=lambda post: (post.created_at.ToNanoseconds(), post.post_id))

    def link(self, code: str) -> tuple[publish_pb2.PostState, publish_pb2.TrackedLink] | None:
        """The post and tracked link of a short-link code, or None."""
        with self._links_lock:
            found = self._links.get(code)
        if found is None:
            return None
        post = self.table.get(found[0])
        return (post, found[1]) if post is not None else None


class PostStore:
    """Changes posts: each change is computed from the current version under the table's
    write lock, written to Kafka (waiting for the acknowledgement), then applied to memory.
    Every change that makes an approval step start or stop waiting carries an
    ``ApprovalRequest`` on ``legation.publish.approvals.v1`` in the same acknowledged write."""

    def __init__(
        self,
        book: PostBook,
        producer: EventSink,
        approval_steps: Sequence[tuple[str, str]] = DEFAULT_STEPS,
    ) -> None:
        self.book = book
        self.producer = producer
        # (step, role) pairs in order: the workflow's.
        self.approval_steps = tuple(approval_steps)

    def _approvals(
        self, before: publish_pb2.PostState | None, after: publish_pb2.PostState
    ) -> list[tuple[str, str, Envelope]]:
        return [
            (
                PUBLISH_APPROVALS_V1,
                after.post_id,
                make_envelope(
                    request,
                    event_id=request.request_id,
                    source_service=SERVICE,
                    occurred_at=request.at.ToDatetime(tzinfo=UTC),
                    campaign_id=after.campaign_id,
                    issue_id=after.issue_id,
                ),
            )
            for request in approval_changes(before, after, self.approval_steps)
        ]

    def create(
        self, post_id: str, make: Callable[[], publish_pb2.PostState]
    ) -> tuple[publish_pb2.PostState, bool]:
        """The post ``post_id``, made and recorded unless it exists; the flag is True when
        it was created now."""
        with self.book.table.transaction(self.producer) as transaction:
            existing = transaction.get(post_id)
            if existing is not None:
                return existing, False
            post = make()
            transaction.put(post, *self._approvals(None, post))
        return post, True

    def change(
        self,
        post_id: str,
        change: Callable[[publish_pb2.PostState], publish_pb2.PostState],
        extra: Callable[[publish_pb2.PostState], list[tuple[str, str, Envelope]]] | None = None,
    ) -> publish_pb2.PostState:
        """Applies ``change`` to the current version of ``post_id`` and records the result
        (with ``extra`` events produced in the same acknowledged batch). Raises NotFound when
        there is no such post; whatever ``change`` raises leaves the post as it was."""
        with self.book.table.transaction(self.producer) as transaction:
            current = transaction.get(post_id)
            if current is None:
                raise NotFound(f"post {post_id} does not exist")  # as existing() says
            post = change(current)
            transaction.put(
                post,
                *(extra(post) if extra is not None else []),
                *self._approvals(current, post),
            )
        return post
