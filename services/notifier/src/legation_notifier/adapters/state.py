"""The notifier's durable state: episodes, notifications and messages, each on its
compacted topic (:class:`legation_core.state.StateTable`), rebuilt at start-up.

Every change is written and acknowledged before memory changes. A batch of decisions is one
transaction on the episodes table: the new notifications go first (as the transaction's
events), then the episodes; a crash between the two leaves the episodes as they were, and
the redelivered events decide the same notifications under the same ids, which exist
already and are not recorded twice. A message is recorded (pending) before its delivery
begins, and every delivery step is recorded before the next (the outbox's rule), so a
restart finds each message where it stood.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from datetime import UTC, datetime

from legation.events.v1 import notify_pb2, publish_pb2
from legation_channels import outbox
from legation_channels.records import from_outbox, to_outbox
from legation_core.calls import NotFound
from legation_core.codec import Envelope, EventCodec, make_envelope
from legation_core.config import CoreSettings
from legation_core.ids import stable_id
from legation_core.kafka import EventProducer
from legation_core.state import EventSink, StateTable, Transaction
from legation_core.topic_names import (
    NOTIFY_EPISODES_V1,
    NOTIFY_MESSAGES_V1,
    NOTIFY_NOTIFICATIONS_V1,
)
from legation_notifier.domain.decide import Outcome
from legation_notifier.domain.messages import Planned
from legation_notifier.domain.people import CONSOLE

log = logging.getLogger(__name__)

SERVICE = "notifier"
ATTENTION = ("failed", "needs-check")

EpisodeState = notify_pb2.EpisodeState
NotificationState = notify_pb2.NotificationState
NotificationMessage = notify_pb2.NotificationMessage


def _now() -> datetime:
    return datetime.now(UTC)


def inbox_order(message: NotificationMessage) -> tuple[bool, int, str]:
    """Unread first, then newest first (ties by id, so pages are stable)."""
    return (message.HasField("read_at"), -message.created_at.ToNanoseconds(), message.message_id)


def episode_envelope(episode: EpisodeState) -> Envelope:
    return make_envelope(
        episode,
        event_id=stable_id("episode-state", episode.condition, str(episode.version)),
        source_service=SERVICE,
        occurred_at=_now(),
    )


def notification_envelope(notification: NotificationState) -> Envelope:
    return make_envelope(
        notification,
        event_id=stable_id("notification-state", notification.notification_id),
        source_service=SERVICE,
        occurred_at=notification.created_at.ToDatetime(tzinfo=UTC),
        campaign_id=notification.campaign_id,
        issue_id=notification.issue_id,
    )


def message_envelope(message: NotificationMessage) -> Envelope:
    return make_envelope(
        message,
        event_id=stable_id("message-state", message.message_id, str(message.version)),
        source_service=SERVICE,
        occurred_at=_now(),
    )


class NotifierState:
    """The three tables, with the indexes the dispatcher needs: notifications no message
    carries yet, messages not finished, messages that need a person."""

    def __init__(self, producer: EventSink) -> None:
        self._index_lock = threading.Lock()
        self.waiting: dict[str, NotificationState] = {}
        self.taken: set[str] = set()
        self.unfinished: set[str] = set()
        self.attention: dict[str, str] = {}  # message id → failed / needs-check
        # The console inbox: person → their delivered console messages, and the unread ones.
        self.inbox: dict[str, set[str]] = {}
        self.unread: dict[str, set[str]] = {}
        self.episodes: StateTable[EpisodeState] = StateTable(
            NOTIFY_EPISODES_V1,
            EpisodeState,
            lambda e: e.condition,
            lambda e: e.version,
            episode_envelope,
            producer,
        )
        self.notifications: StateTable[NotificationState] = StateTable(
            NOTIFY_NOTIFICATIONS_V1,
            NotificationState,
            lambda n: n.notification_id,
            lambda n: n.version,
            notification_envelope,
            producer,
            on_change=self._notification_changed,
        )
        self.messages: StateTable[NotificationMessage] = StateTable(
            NOTIFY_MESSAGES_V1,
            NotificationMessage,
            lambda m: m.message_id,
            lambda m: m.version,
            message_envelope,
            producer,
            on_change=self._message_changed,
        )

    def rebuild(
        self, settings: CoreSettings, codec: EventCodec, dead_letters: EventProducer
    ) -> None:
        """Loads every table from its topic (messages first, so the notifications they carry
        are known as taken)."""
        for table in (self.messages, self.notifications, self.episodes):
            table.rebuild(settings, SERVICE, codec, dead_letters=dead_letters)
        log.info(
            "notifier state rebuilt",
            extra={
                "episodes": len(self.episodes),
                "notifications": len(self.notifications),
                "messages": len(self.messages),
                "unfinished": len(self.unfinished),
            },
        )

    def _notification_changed(self, notification: NotificationState) -> None:
        with self._index_lock:
            if notification.notification_id not in self.taken:
                self.waiting[notification.notification_id] = notification

    def _message_changed(self, message: NotificationMessage) -> None:
        state = to_outbox(message.delivery).state
        with self._index_lock:
            for notification_id in message.notification_ids:
                self.taken.add(notification_id)
                self.waiting.pop(notification_id, None)
            if state in ("pending", "sending"):
                self.unfinished.add(message.message_id)
            else:
                self.unfinished.discard(message.message_id)
            if state in ATTENTION:
                self.attention[message.message_id] = state
            else:
                self.attention.pop(message.message_id, None)
            if message.channel == CONSOLE and state == "delivered":
                self.inbox.setdefault(message.person, set()).add(message.message_id)
                unread = self.unread.setdefault(message.person, set())
                if message.HasField("read_at"):
                    unread.discard(message.message_id)
                else:
                    unread.add(message.message_id)

    def waiting_notifications(self) -> list[NotificationState]:
        with self._index_lock:
            return list(self.waiting.values())

    def taken_ids(self) -> set[str]:
        with self._index_lock:
            return set(self.taken)

    def unfinished_messages(self) -> list[NotificationMessage]:
        with self._index_lock:
            ids = sorted(self.unfinished)
        return [m for m in (self.messages.get(i) for i in ids) if m is not None]

    def attention_counts(self) -> dict[str, int]:
        with self._index_lock:
            counts = dict.fromkeys(ATTENTION, 0)
            for state in self.attention.values():
                counts[state] += 1
            return counts

    def inbox_of(self, person: str) -> list[NotificationMessage]:
        """``person``'s console inbox: unread first, then newest first."""
        with self._index_lock:
            ids = list(self.inbox.get(person, ()))
        found = [m for m in (self.messages.get(i) for i in ids) if m is not None]
        found.sort(key=inbox_order)
        return found

    def unread_count(self, person: str) -> int:
        with self._index_lock:
            return len(self.unread.get(person, ()))

    def unread_of(self, person: str) -> set[str]:
        with self._index_lock:
            return set(self.unread.get(person, ()))

    def mark_read(self, person: str, message_ids: Collection[str], now: datetime) -> int:
        """Marks ``person``'s unread console messages among ``message_ids`` read (one
        acknowledged write); the number that changed. NotFound names an id that is not a
        console message of ``person`` (another person's is as unknown as a missing one)."""
        marked = 0
        with self.messages.transaction() as transaction:
            for message_id in message_ids:
                current = transaction.get(message_id)
                if (
                    current is None
                    or current.person != person
                    or current.channel != CONSOLE
                    or to_outbox(current.delivery).state != "delivered"
                ):
                    raise NotFound(f"message_ids: {message_id} is not one of your notifications")
                if current.HasField("read_at"):
                    continue
                message = NotificationMessage()
                message.CopyFrom(current)
                message.version = current.version + 1
                message.read_at.FromDatetime(now)
                transaction.put(message)
                marked += 1
        return marked

    def decide(self, work: Callable[[Transaction[EpisodeState]], list[Outcome]]) -> list[Outcome]:
        """Runs ``work`` in one transaction on the episodes (under their write lock: the
        consume loop and the dispatcher's closings never interleave) and records what it
        decided: new notifications first, then the episodes."""
        recorded: list[NotificationState] = []
        with self.episodes.transaction() as transaction:
            outcomes = work(transaction)
            staged: set[str] = set()
            for outcome in outcomes:
                fresh = [
                    n
                    for n in outcome.notifications
                    if n.notification_id not in staged
                    and self.notifications.get(n.notification_id) is None
                ]
                staged.update(n.notification_id for n in fresh)
                recorded.extend(fresh)
                events = [
                    (NOTIFY_NOTIFICATIONS_V1, n.notification_id, notification_envelope(n))
                    for n in fresh
                ]
                if outcome.episode is not None:
                    transaction.put(outcome.episode, *events)
                else:
                    transaction.emit(*events)
        for notification in recorded:
            self.notifications.apply(notification_envelope(notification))
        return outcomes

    def record_messages(self, planned: list[Planned], now: datetime) -> None:
        """Records planned messages, pending and due now (one acknowledged write)."""
        if not planned:
            return
        with self.messages.transaction() as transaction:
            for plan in planned:
                if transaction.get(plan.message_id) is not None:
                    continue
                message = NotificationMessage(
                    message_id=plan.message_id,
                    person=plan.person,
                    channel=plan.channel,
                    notification_ids=[n.notification_id for n in plan.notifications],
                    digest=plan.digest,
                    subject=plan.subject[:998],
                    text=plan.text,
                    link=plan.link,
                    version=1,
                    kind=plan.notifications[0].kind if plan.notifications else "",
                    campaign_id=plan.notifications[0].campaign_id if plan.notifications else "",
                    issue_id=plan.notifications[0].issue_id if plan.notifications else "",
                )
                message.created_at.FromDatetime(now)
                delivery = outbox.new_delivery(plan.message_id, plan.channel, now)
                message.delivery.CopyFrom(from_outbox(delivery, "", now))
                transaction.put(message)

    def save_delivery(self, message_id: str, delivery: outbox.Delivery) -> None:
        """Records one delivery step of a message (acknowledged before it returns)."""
        self.change_delivery(message_id, lambda _current: delivery)

    def change_delivery(
        self, message_id: str, change: Callable[[outbox.Delivery], outbox.Delivery]
    ) -> NotificationMessage:
        """Applies ``change`` to the message's current delivery under the table's write lock
        and records the result; NotFound when there is no such message."""
        with self.messages.transaction() as transaction:
            current = transaction.get(message_id)
            if current is None:
                raise NotFound(f"message_id: {message_id} is not a message")
            message = NotificationMessage()
            message.CopyFrom(current)
            message.version = current.version + 1
            due = current.created_at.ToDatetime(tzinfo=UTC)
            record: publish_pb2.Delivery = from_outbox(change(to_outbox(current.delivery)), "", due)
            message.delivery.CopyFrom(record)
            transaction.put(message)
        return message
