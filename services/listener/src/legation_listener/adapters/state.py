"""The listener's durable state, kept in Kafka.

Tracked issues live on ``legation.listen.tracked-issues.v1`` (key ``issue_id``) and feed
cursors on ``legation.listen.feed-cursors.v1`` (key ``"<issue_id> <feed>"``); both topics
are compacted, so the latest record per key is the current state. A deleted issue's last
record carries ``deleted = true`` (the codec rejects null tombstones). At start-up the listener
reads both topics to their end (a record that does not decode goes to the topic's DLQ, see
:func:`legation_core.kafka.read_topic`); afterwards every change is written (and acknowledged)
before memory changes, so memory never holds what Kafka would not give back after a
restart.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from legation.events.v1 import listen_pb2
from legation_core.codec import Envelope, EventCodec, make_envelope, payload_of
from legation_core.config import CoreSettings
from legation_core.ids import stable_id
from legation_core.kafka import EventProducer, read_topic
from legation_core.state import acknowledged
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


class ListenerState:
    """Tracked issues and feed cursors in memory; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._issues: dict[str, listen_pb2.TrackedIssue] = {}
        self._cursors: dict[str, listen_pb2.FeedCursor] = {}

    @classmethod
    def rebuild(
        cls,
        settings: CoreSettings,
        codec: EventCodec,
        dead_letters: EventProducer,
        timeout: float = 60.0,
    ) -> ListenerState:
        """The state the two topics hold now (the latest record per key wins); records that
        do not decode go to their topic's DLQ through ``dead_letters``."""
        state = cls()
        for topic in (LISTEN_TRACKED_ISSUES_V1, LISTEN_FEED_CURSORS_V1):
            for envelope in read_topic(settings, SERVICE, codec, topic, timeout, dead_letters):
                state.apply(envelope)
        log.info(
            "state rebuilt",
            extra={"issues": len(state._issues), "cursors": len(state._cursors)},
        )
        return state

    def apply(self, envelope: Envelope) -> None:
        """Folds one TrackedIssue or FeedCursor event into memory (later events replace)."""
        payload = payload_of(envelope)
        with self._lock:
            if isinstance(payload, listen_pb2.TrackedIssue):
                if payload.deleted:
                    self._issues.pop(payload.issue_id, None)
                else:
                    self._issues[payload.issue_id] = payload
            elif isinstance(payload, listen_pb2.FeedCursor):
                self._cursors[cursor_key(payload.issue_id, payload.feed)] = payload

    def issue(self, issue_id: str) -> listen_pb2.TrackedIssue | None:
        """The tracked issue ``issue_id``, or None."""
        with self._lock:
            return self._issues.get(issue_id)

    def issues(self) -> list[listen_pb2.TrackedIssue]:
        """Every tracked issue, ordered by id."""
        with self._lock:
            return [self._issues[key] for key in sorted(self._issues)]

    def active_issues(self) -> list[listen_pb2.TrackedIssue]:
        """The issues whose feeds are polled, ordered by id."""
        return [issue for issue in self.issues() if issue.active]

    def cursor(self, issue_id: str, feed: str) -> listen_pb2.FeedCursor:
        """The stored cursor, or an empty one for a feed never read for this issue."""
        with self._lock:
            cursor = self._cursors.get(cursor_key(issue_id, feed))
        return cursor if cursor is not None else empty_cursor(issue_id, feed)


class StateStore:
    """Writes state changes: to Kafka first (waiting for the ack), then to memory."""

    def __init__(self, state: ListenerState, producer: EventProducer) -> None:
        self.state = state
        self.producer = producer
        # Serialises writes so memory applies them in the order Kafka acknowledged them.
        self._write_lock = threading.Lock()

    def save_issue(self, issue: listen_pb2.TrackedIssue, now: datetime | None = None) -> None:
        """Records ``issue`` (replacing any issue with its id); raises if Kafka did not ack."""
        envelope = issue_envelope(issue, now or datetime.now(UTC))
        with self._write_lock:
            acknowledged(self.producer, [(LISTEN_TRACKED_ISSUES_V1, issue.issue_id, envelope)])
            self.state.apply(envelope)

    def delete_issue(
        self, issue: listen_pb2.TrackedIssue, now: datetime | None = None
    ) -> listen_pb2.TrackedIssue:
        """Records that ``issue`` is no longer tracked; returns the record written. Its feed
        cursors stay, so tracking the id again does not re-emit items already seen."""
        deleted = listen_pb2.TrackedIssue()
        deleted.CopyFrom(issue)
        deleted.active = False
        deleted.deleted = True
        self.save_issue(deleted, now)
        return deleted

    def save_cursor(self, cursor: listen_pb2.FeedCursor, now: datetime | None = None) -> None:
        """Records a feed's progress; raises if Kafka did not ack."""
        envelope = cursor_envelope(cursor, now or datetime.now(UTC))
        with self._write_lock:
            key = cursor_key(cursor.issue_id, cursor.feed)
            acknowledged(self.producer, [(LISTEN_FEED_CURSORS_V1, key, envelope)])
            self.state.apply(envelope)
