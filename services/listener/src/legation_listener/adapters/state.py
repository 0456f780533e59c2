"""The listener's durable state, kept in Kafka.

Tracked issues live on ``legation.listen.tracked-issues.v1`` (key ``issue_id``) and feed
cursors on ``legation.listen.feed-cursors.v1`` (key ``"<issue_id> <feed>"``); both topics
are compacted, so the latest record per key is the current state. A deleted issue's last
record carries ``deleted = true`` (the codec rejects null tombstones). Each topic is a shared
:class:`legation_core.state.StateTable` (without versions: the latest record per key wins):
at start-up the listener reads both topics to their end (a record that does not decode goes
to the topic's DLQ, see :func:`legation_core.kafka.read_topic`); afterwards every change is
written (and acknowledged) before memory changes, so memory never holds what Kafka would not
give back after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from legation.events.v1 import listen_pb2
from legation_core.codec import Envelope, EventCodec, make_envelope
from legation_core.config import CoreSettings
from legation_core.ids import stable_id
from legation_core.kafka import EventProducer
from legation_core.state import EventSink, StateTable
from legation_core.topic_names import (
    LISTEN_FEED_CURSORS_V1,
    LISTEN_TRACKED_ISSUES_V1,
)
from legation_listener.domain.cursor import empty_cursor

log = logging.getLogger(__name__)

SERVICE = "listener"


def cursor_key(issue_id: str, feed: str) -> str:
    """The record key of a feed cursor (issue ids never contain whitespace)."""
    return f"{issue_id} {feed}"


def _content_id(kind: str, message: listen_pb2.TrackedIssue | listen_pb2.FeedCursor) -> str:
    # The same state written twice (a retried request) carries the same event id.
    return stable_id(kind, message.SerializeToString(deterministic=True).hex())


def issue_envelope(issue: listen_pb2.TrackedIssue, now: datetime) -> Envelope:
    """The tracked-issues event that records ``issue``."""
    return make_envelope(
        issue,
        event_id=_content_id("tracked-issue", issue),
        source_service=SERVICE,
        occurred_at=now,
        campaign_id=issue.campaign_ids[0] if issue.campaign_ids else "",
        issue_id=issue.issue_id,
        observed_at=now,
    )


def cursor_envelope(cursor: listen_pb2.FeedCursor, now: datetime) -> Envelope:
    """The feed-cursors event that records ``cursor``."""
    return make_envelope(
        cursor,
        event_id=_content_id("feed-cursor", cursor),
        source_service=SERVICE,
        occurred_at=now,
        issue_id=cursor.issue_id,
        observed_at=now,
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ListenerState:
    """Tracked issues and feed cursors: two :class:`~legation_core.state.StateTable` in
    memory, written through ``producer`` (each change acknowledged by Kafka before memory
    changes); safe to share between threads. ``clock`` stamps the records written."""

    def __init__(
        self, producer: EventSink | None = None, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self.clock = clock
        # A deleted issue stays in its table as its last record (deleted = true), as on
        # the compacted topic; the reads below leave it out.
        self.issue_table: StateTable[listen_pb2.TrackedIssue] = StateTable(
            LISTEN_TRACKED_ISSUES_V1,
            listen_pb2.TrackedIssue,
            lambda issue: issue.issue_id,
            None,
            lambda issue: issue_envelope(issue, self.clock()),
            producer,
        )
        self.cursor_table: StateTable[listen_pb2.FeedCursor] = StateTable(
            LISTEN_FEED_CURSORS_V1,
            listen_pb2.FeedCursor,
            lambda cursor: cursor_key(cursor.issue_id, cursor.feed),
            None,
            lambda cursor: cursor_envelope(cursor, self.clock()),
            producer,
        )

    @classmethod
    def rebuild(
        cls,
        settings: CoreSettings,
        codec: EventCodec,
        producer: EventProducer,
        timeout: float = 60.0,
    ) -> ListenerState:
        """The state the two topics hold now (the latest record per key wins), written
        through ``producer`` from then on; records that do not decode go to their topic's
        DLQ through it."""
        state = cls(producer)
        for table in (state.issue_table, state.cursor_table):
            table.rebuild(settings, SERVICE, codec, timeout, dead_letters=producer)
        return state

    def apply(self, envelope: Envelope) -> None:
        """Folds one TrackedIssue or FeedCursor record into memory (later records replace)."""
        self.issue_table.apply(envelope)
        self.cursor_table.apply(envelope)

    def issue(self, issue_id: str) -> listen_pb2.TrackedIssue | None:
        """The tracked issue ``issue_id``, or None."""
        issue = self.issue_table.get(issue_id)
        return issue if issue is not None and not issue.deleted else None

    def issues(self) -> list[listen_pb2.TrackedIssue]:
        """Every tracked issue, ordered by id."""
        return [issue for issue in self.issue_table.all() if not issue.deleted]

    def active_issues(self) -> list[listen_pb2.TrackedIssue]:
        """The issues whose feeds are polled, ordered by id."""
        return [issue for issue in self.issues() if issue.active]

    def cursor(self, issue_id: str, feed: str) -> listen_pb2.FeedCursor:
        """The stored cursor, or an empty one for a feed never read for this issue."""
        cursor = self.cursor_table.get(cursor_key(issue_id, feed))
        return cursor if cursor is not None else empty_cursor(issue_id, feed)

    def save_issue(self, issue: listen_pb2.TrackedIssue) -> None:
        """Records ``issue`` (replacing any issue with its id); raises if Kafka did not ack."""
        with self.issue_table.transaction() as change:
            change.put(issue)

    def delete_issue(self, issue: listen_pb2.TrackedIssue) -> listen_pb2.TrackedIssue:
        """Records that ``issue`` is no longer tracked; returns the record written. Its feed
        cursors stay, so tracking the id again does not re-emit items already seen."""
        deleted = listen_pb2.TrackedIssue()
        deleted.CopyFrom(issue)
        deleted.active = False
        deleted.deleted = True
        self.save_issue(deleted)
        return deleted

    def save_cursor(self, cursor: listen_pb2.FeedCursor) -> None:
        """Records a feed's progress; raises if Kafka did not ack."""
        with self.cursor_table.transaction() as change:
            change.put(cursor)
