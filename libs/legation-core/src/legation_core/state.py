"""Durable service state on a compacted topic: one record per change holding an entity's
whole state, the latest record per key being the entity.

At start-up a service reads the topic to its end (:meth:`StateTable.rebuild`; a record
that does not decode goes to the topic's DLQ like any other, see
:func:`legation_core.kafka.read_topic`); afterwards
every change is written and acknowledged by Kafka *before* memory changes, so memory never
holds what Kafka would not give back after a restart. Entities carry a ``version`` that
increases with every record, so an older record never replaces a newer one (a replay or a
redelivery is harmless). The publisher's posts follow the same rule; the engager keeps its
conversations, partners and questions campaigns in tables of this kind. A table without
versions (the listener's tracked issues and feed cursors) takes each record as the latest:
its writes are serialised by the table's write lock, so topic order is write order.

Changes go through :meth:`StateTable.transaction`: under one write lock, read the current
versions, stage new ones (with any further events), and on leaving the block everything
staged is produced (its events, then its entities, each batch acknowledged) and then
applied. Nothing is applied when a write fails or the block raises. :func:`existing` and
:func:`changing` are how a gRPC call finds, or changes, the entity its request names.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

from google.protobuf.message import Message

from legation_core.calls import CallError, NotFound, require
from legation_core.catalog import CatalogError
from legation_core.codec import Envelope, EventCodec, InvalidEvent, payload_of
from legation_core.config import CoreSettings
from legation_core.consumer import TransientError
from legation_core.kafka import DEFAULT_MAX_REQUEST_BYTES, EventProducer, ensure_fits, read_topic

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

Event = tuple[str, str, Envelope]


class EventSink(Protocol):
    """Produces events and returns once Kafka acknowledged them all (raises otherwise);
    :class:`~legation_core.kafka.EventProducer` is one."""

    def send_and_wait(self, events: list[Event]) -> None: ...


class StoreUnavailable(TransientError):
    """A change was not acknowledged by Kafka, so it was not made; retrying is safe (a
    consume loop whose handler raises it pauses and retries the batch)."""


def acknowledged(producer: EventSink, events: list[Event]) -> None:
    """Sends ``events`` and waits for Kafka's acknowledgement. A failure a retry may fix
    raises :class:`StoreUnavailable` (a gRPC call it ends is answered ``UNAVAILABLE``, a
    consume loop retries); a service's bug, a record too large or a caller gone raise as
    they are."""
    try:
        producer.send_and_wait(events)
    except (CatalogError, InvalidEvent, CallError):
        raise  # a retry does not fix them
    except Exception as error:
        raise StoreUnavailable(f"Kafka did not acknowledge the change: {error}") from error


class StateTable(Generic[M]):
    """The entities of one compacted topic, in memory, by key; safe to share between
    threads.

    ``key_of`` and ``version_of`` read an entity's key and version (``version_of=None``: the
    entity has none, and every record replaces the one before); ``envelope_of`` wraps one
    version in its envelope (its event id should name the version, so a version written
    twice is one event).
    """

    def __init__(
        self,
        topic: str,
        payload_type: type[M],
        key_of: Callable[[M], str],
        version_of: Callable[[M], int] | None,
        envelope_of: Callable[[M], Envelope],
        producer: EventSink | None = None,
        on_change: Callable[[M], None] | None = None,
    ) -> None:
        self.topic = topic
        self.payload_type = payload_type
        self.key_of = key_of
        self.version_of = version_of
        self.envelope_of = envelope_of
        self.producer = producer
        # Called with every entity version that replaced an older one (indexes, metrics).
        self.on_change = on_change
        self._lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._items: dict[str, M] = {}

    def rebuild(
        self,
        settings: CoreSettings,
        service: str,
        codec: EventCodec,
        timeout: float = 60.0,
        *,
        dead_letters: EventProducer,
    ) -> None:
        """Loads what the topic holds now (the latest version per key wins); records that do
        not decode go to the topic's DLQ through ``dead_letters``."""
        for envelope in read_topic(settings, service, codec, self.topic, timeout, dead_letters):
            self.apply(envelope)
        log.info("state rebuilt", extra={"topic": self.topic, "entities": len(self._items)})

    def apply(self, envelope: Envelope) -> bool:
        """Folds one record into memory; an older version never replaces a newer (without
        versions, the record replaces). Returns True when it changed something."""
        payload = payload_of(envelope)
        if not isinstance(payload, self.payload_type):
            return False
        return self._put(payload)

    def _put(self, item: M) -> bool:
        key = self.key_of(item)
        with self._lock:
            current = self._items.get(key)
            if (
                current is not None
                and self.version_of is not None
                and self.version_of(current) >= self.version_of(item)
            ):
                return False
            self._items[key] = item
        if self.on_change is not None:
            self.on_change(item)
        return True

    def get(self, key: str) -> M | None:
        """The entity ``key`` (do not modify it: copy, change, then put in a transaction)."""
        with self._lock:
            return self._items.get(key)

    def all(self) -> list[M]:
        """Every entity, in key order."""
        with self._lock:
            return [self._items[key] for key in sorted(self._items)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @contextmanager
    def transaction(self, producer: EventSink | None = None) -> Iterator[Transaction[M]]:
        """A block of changes written together through ``producer`` (default: the
        table's); see the module docstring."""
        sink = producer or self.producer
        if sink is None:
            raise RuntimeError(f"the table of {self.topic} has no producer to write with")
        with self._write_lock:
            transaction = Transaction(self, sink)
            yield transaction
            transaction.commit()


class Transaction(Generic[M]):
    """Staged changes of one :meth:`StateTable.transaction` block."""

    def __init__(self, table: StateTable[M], producer: EventSink) -> None:
        self.table = table
        self.producer = producer
        self.staged: dict[str, M] = {}
        self.events: list[Event] = []

    def get(self, key: str) -> M | None:
        """The entity as this transaction will leave it."""
        staged = self.staged.get(key)
        return staged if staged is not None else self.table.get(key)

    def put(self, item: M, *events: Event) -> None:
        """Stages a new version of an entity (and events produced with it)."""
        self.staged[self.table.key_of(item)] = item
        self.events.extend(events)

    def emit(self, *events: Event) -> None:
        """Stages events produced with this transaction's changes."""
        self.events.extend(events)

    def commit(self) -> None:
        """Writes the staged events, then the staged entities, each batch acknowledged,
        then applies the entities.

        Events go first: a crash between the two writes leaves the change unrecorded, so
        its redelivery makes it again with the same event ids (a consumer keyed on them
        counts it once). The other order could record the change without its events, and
        a redelivery would then see nothing left to do: the events would be lost.
        """
        if not self.staged and not self.events:
            return
        records = [
            (self.table.topic, key, self.table.envelope_of(item))
            for key, item in self.staged.items()
        ]
        # A change whose events or entity would be over Kafka's record size is refused
        # whole (RecordTooLarge), before its events are written without its entity.
        limit = getattr(self.producer, "max_request_bytes", DEFAULT_MAX_REQUEST_BYTES)
        ensure_fits([*self.events, *records], limit)
        if self.events:
            acknowledged(self.producer, list(self.events))
        if records:
            acknowledged(self.producer, records)
        for item in self.staged.values():
            self.table._put(item)
        self.staged.clear()
        self.events.clear()


def existing(table: StateTable[M], what: str, field: str, key: str) -> M:
    """The entity ``key`` of ``table``; INVALID_ARGUMENT naming ``field`` when ``key`` is
    empty, NOT_FOUND saying ``what`` does not exist when there is none."""
    require(**{field: key})
    found = table.get(key)
    if found is None:
        raise NotFound(f"{what} {key} does not exist")
    return found


@contextmanager
def changing(
    table: StateTable[M], what: str, field: str, key: str
) -> Iterator[tuple[Transaction[M], M]]:
    """A transaction on ``table`` with the current version of the entity ``key`` (checked
    as :func:`existing` does, before the write lock is taken)."""
    existing(table, what, field, key)
    with table.transaction() as transaction:
        current = transaction.get(key)
        assert current is not None  # entities are never removed
        yield transaction, current
