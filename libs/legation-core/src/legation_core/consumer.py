"""The consume loop every service runs: decode → handle → produce → commit.

A batch of records is decoded (an undecodable or invalid record goes to ``<topic>.dlq``
with the reason in a header), the valid events go to the service's handler, what the
handler returns is produced and acknowledged, and only then are the offsets committed.

What a handler returns (:attr:`BatchResult.outgoing`, or :func:`per_event` over a one-event
function) is for a handler that only turns events into events: the listener's pseudonymised
stream. A handler whose results are state the service keeps and shares with its API (the
engager's conversations, the notifier's episodes) writes them itself, in a
:class:`~legation_core.state.StateTable` transaction that holds the table's write lock from
reading the current versions until Kafka acknowledged the new ones, and returns none: the
loop produces only after the handler returned, when that lock is gone. A handler whose
results are not events (the evaluator's index documents) writes them itself too. Either
way the handler returns only once its results are acknowledged, so nothing is committed
before them.

Failures are told apart. A :func:`transient` one (an index outage, a broker hiccup, a
timeout) pauses the partitions, keeps polling so the group keeps them, and retries the same
step with backoff: nothing is committed that was not done. Any other exception from the
handler is a poison event or a bug: the batch is re-run one event at a time and the event
that fails goes to the DLQ with the error as its reason, so one bad message never stalls a
partition. A permanent failure to produce what the handler returned (an event over the size
limit, a catalog violation) is a bug in the service, but one input must not stop it: the
batch is re-run one event at a time and the event whose results cannot be produced goes to
the DLQ with the error as its reason. A record too large to dead-letter whole goes there
truncated (see :mod:`legation_core.dlq`), so every record leaves its partition.

The loop reads through a :class:`GroupConsumer`: kafka-python's consumer or confluent-kafka's
(:mod:`legation_core.confluent`), as ``LEGATION_KAFKA_CLIENT`` says; both hand it
kafka-python's partitions and exceptions, so the loop is the same on either.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import (
    CommitFailedError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RebalanceInProgressError,
)
from kafka.structs import OffsetAndMetadata

from legation_core.codec import Envelope, EventCodec, InvalidEvent
from legation_core.config import CoreSettings
from legation_core.dlq import DeadLetter, dead_letter_headers
from legation_core.health import Heartbeat
from legation_core.kafka import EventProducer, client_options, group_settling
from legation_core.metrics import Bound, Metrics

__all__ = [
    "BatchHandler",
    "BatchResult",
    "ConsumerLoop",
    "DeadLetter",
    "GroupConsumer",
    "Incoming",
    "Outgoing",
    "Rejected",
    "TransientError",
    "dead_letter_headers",
    "per_event",
    "transient",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class TransientError(Exception):
    """A failure a later retry may fix (a dependency is down or slow). Adapters raise it (or
    a subclass) so the loop pauses and retries instead of dead-lettering."""


def transient(error: BaseException) -> bool:
    """True for failures worth retrying as they are: ours, Kafka's retriable ones,
    timeouts and lost connections."""
    if isinstance(error, TransientError | KafkaTimeoutError | TimeoutError | ConnectionError):
        return True
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


@dataclass(frozen=True)
class Incoming:
    """A decoded event and where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    envelope: Envelope


@dataclass(frozen=True)
class Outgoing:
    """An event the handler wants produced before the batch is committed."""

    topic: str
    key: str
    envelope: Envelope


@dataclass(frozen=True)
class Rejected:
    """A decoded event the handler found invalid: it goes to the DLQ with ``reason``."""

    incoming: Incoming
    reason: str


@dataclass
class BatchResult:
    """What a handler made of a batch: events for the loop to produce, events to reject."""

    outgoing: list[Outgoing] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class BatchHandler(Protocol):
    """Handles a batch of decoded events; must be idempotent (a batch may be redelivered)."""

    def __call__(self, batch: Sequence[Incoming]) -> BatchResult: ...


def per_event(handle: Callable[[Incoming], Iterable[Outgoing]]) -> BatchHandler:
    """Turns a one-event handler into a batch handler; InvalidEvent rejects only that event."""

    def handle_batch(batch: Sequence[Incoming]) -> BatchResult:
        result = BatchResult()
        for incoming in batch:
            try:
                result.outgoing.extend(handle(incoming))
            except InvalidEvent as error:
                result.rejected.append(Rejected(incoming, error.reason))
        return result

    return handle_batch


class GroupConsumer(Protocol):
    """What :class:`ConsumerLoop` needs of a Kafka client: one member of a consumer group
    subscribed to its topics, with auto-commit off and reading a new group from the earliest
    record. ``LEGATION_KAFKA_CLIENT`` picks the implementation (see :func:`group_consumer`).
    Partitions are kafka-python's ``TopicPartition`` whatever the client; errors are
    kafka-python's exception classes (``CommitFailedError`` for a commit refused during a
    rebalance)."""

    def poll(self, timeout_ms: int) -> list[Any]:
        """Up to ``LEGATION_CONSUMER_MAX_BATCH`` records (with topic, partition, offset,
        key, value and headers), waiting at most ``timeout_ms`` for the first."""

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this member holds now."""

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        """Stops fetching ``partitions`` (polls keep the membership alive)."""

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        """Fetches ``partitions`` again, from where the last poll left them."""

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Fetches ``partition`` from ``offset`` next."""

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commits, synchronously, the next offset to read of each partition."""

    def lags(self) -> Iterator[tuple[TopicPartition, int]]:
        """Records not read yet of each assigned partition whose end is known."""

    def settling(self) -> bool:
        """True while the membership is changing: the next poll must wait."""

    def close(self) -> None:
        """Leaves the group (as a static member: keeps its partitions until the session
        ends) without committing."""


class KafkaPythonConsumer:
    """:class:`GroupConsumer` on kafka-python's ``KafkaConsumer``."""

    def __init__(
        self,
        settings: CoreSettings,
        topics: Sequence[str],
        group: str,
        instance_id: str | None,
        options: Mapping[str, Any],
    ) -> None:
        membership = {"group_instance_id": instance_id} if instance_id else {}
        self._consumer = KafkaConsumer(
            *topics,
            **client_options(settings),
            **membership,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.consumer_max_batch,
            **options,
        )

    def poll(self, timeout_ms: int) -> list[Any]:
        polled = self._consumer.poll(timeout_ms=timeout_ms)
        return [record for batch in polled.values() for record in batch]

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self._consumer.assignment())

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        self._consumer.pause(*partitions)

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        self._consumer.resume(*partitions)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._consumer.seek(partition, offset)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._consumer.commit(
            {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()}
        )

    def lags(self) -> Iterator[tuple[TopicPartition, int]]:
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            position = self._consumer.position(tp)
            if position is not None:
                yield tp, max(0, highwater - position)

    def settling(self) -> bool:
        # group_settling also repairs a join kafka-python left unfinished: always ask it.
        return group_settling(self._consumer)

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def group_consumer(
    settings: CoreSettings,
    topics: Sequence[str],
    group: str,
    options: Mapping[str, Any] | None = None,
) -> GroupConsumer:
    """A member of ``group`` on the client ``LEGATION_KAFKA_CLIENT`` names, static when
    ``LEGATION_CONSUMER_INSTANCE_ID`` is set (one instance id per group: a service may run
    several loops). ``options`` are extra options in the client's own names."""
    instance_id = None
    if settings.consumer_instance_id:
        instance_id = f"{settings.consumer_instance_id}.{group}"
    if settings.kafka_client == "confluent":
        from legation_core.confluent import ConfluentConsumer  # only when chosen

        return ConfluentConsumer(settings, list(topics), group, instance_id, options or {})
    return KafkaPythonConsumer(settings, topics, group, instance_id, options or {})


class IdleWait:
    """How long a loop polling without waiting sleeps when a poll found nothing.

    Polling without waiting (a broker that does not long-poll) costs a fetch round trip of
    client CPU per hop: an idle loop sleeps ``consumer_idle_wait_ms``, doubled after each
    empty poll up to ``consumer_poll_timeout_ms``, and back to the first wait when records
    come. With no idle wait set, the poll itself waits and this never sleeps.

    With ``pace`` (seconds), a poll that found records while nothing more is waiting is
    followed by a wait until ``pace`` after the previous poll: for a reader whose poll
    costs about the same whatever it finds, what comes meanwhile is read together.
    """

    def __init__(self, settings: CoreSettings, stop: threading.Event, pace: float = 0.0) -> None:
        self.first = settings.consumer_idle_wait_ms / 1000
        self.longest = max(self.first, settings.consumer_poll_timeout_ms / 1000)
        self.stop = stop
        self.pace = pace
        self._sleep = self.first
        self._polled = time.monotonic()

    def after(self, found: bool, *, full: bool = False) -> None:
        """Called after each poll with whether it found records (``full``: and more are
        waiting to be read at once)."""
        if found:
            self._sleep = self.first
            early = self._polled + self.pace - time.monotonic()
            if self.pace and not full and early > 0:
                self.stop.wait(early)
        elif self.first:
            self.stop.wait(self._sleep)
            self._sleep = min(self._sleep * 2, self.longest)
        self._polled = time.monotonic()


class ConsumerLoop:
    """One consumer group member running ``handler`` over ``topics`` until ``stop`` is set."""

    def __init__(
        self,
        *,
        settings: CoreSettings,
        service: str,
        group: str,
        topics: Sequence[str],
        handler: BatchHandler,
        codec: EventCodec,
        producer: EventProducer,
        metrics: Metrics,
        stop: threading.Event,
        heartbeat: Heartbeat | None = None,
        retry_backoff: tuple[float, float] = (0.2, 10.0),
        consumer_options: dict[str, Any] | None = None,
    ) -> None:
        for topic in topics:
            codec.catalog.check_consume(service, topic)
        self.settings = settings
        self.group = group
        self.topics = list(topics)
        self.handler = handler
        self.codec = codec
        self.producer = producer
        self.metrics = metrics
        self.stop = stop
        self.heartbeat = heartbeat or Heartbeat()
        self.retry_backoff = retry_backoff
        self._consumer_options = consumer_options or {}
        self._consumer: GroupConsumer | None = None
        # Label children bound once (the per-event path must not pay labels()).
        self._consumed = Bound(metrics.consumed)
        self._lag = Bound(metrics.lag)
        self._last_poll = metrics.last_poll.labels(group=group)
        self._handler_seconds = metrics.handler_seconds.labels(group=group)
        self._next_lag = 0.0

    def run(self) -> None:
        """Consumes until ``stop`` is set, then commits what was done and closes."""
        self._consumer = group_consumer(
            self.settings, self.topics, self.group, self._consumer_options
        )
        log.info(
            "consuming",
            extra={
                "group": self.group,
                "topics": self.topics,
                "client": self.settings.kafka_client,
            },
        )
        try:
            idle = IdleWait(self.settings, self.stop)
            while not self.stop.is_set():
                # Joining the group needs a poll that waits; only a member stable in its
                # assignment may poll without waiting.
                settling = self._consumer.settling()
                waits = not idle.first or settling or not self._consumer.assignment()
                records = self._poll(self.settings.consumer_poll_timeout_ms if waits else 0)
                if records:
                    self._process(records)
                idle.after(bool(records))
        finally:
            self._consumer.close()
            log.info("consumer closed", extra={"group": self.group})

    def _poll(self, timeout_ms: int) -> list[Any]:
        assert self._consumer is not None
        polled = self._consumer.poll(timeout_ms)
        self.heartbeat.beat()
        self._last_poll.set_to_current_time()
        now = time.monotonic()
        if now >= self._next_lag:  # a gauge for scrapes: once a second is enough
            self._next_lag = now + LAG_INTERVAL_SECONDS
            self._record_lag()
        return polled

    def _process(self, records: list[Any]) -> None:
        started = time.perf_counter()
        valid: list[Incoming] = []
        letters: list[DeadLetter] = []
        consumed: dict[str, int] = {}
        for record in records:
            consumed[record.topic] = consumed.get(record.topic, 0) + 1
            try:
                envelope = self.codec.decode(record.topic, record.value)
            except InvalidEvent as error:
                letters.append(DeadLetter.of(record, error.reason))
                continue
            valid.append(
                Incoming(record.topic, record.partition, record.offset, record.key, envelope)
            )
        for topic, count in consumed.items():
            self._consumed(topic, self.group).inc(count)
        handled = self._retrying("handle", lambda: self._handle(valid))
        if handled is None:
            return  # stopping: nothing committed, the batch is redelivered
        result = self._produced(valid, handled)
        if result is None:
            return
        if result.rejected:
            by_position = {(r.topic, r.partition, r.offset): r for r in records}
            for rejected in result.rejected:
                source = rejected.incoming
                raw = by_position[(source.topic, source.partition, source.offset)]
                letters.append(DeadLetter.of(raw, rejected.reason))
        if self._retrying("dead-letter", lambda: self._dead_letter(letters)) is None:
            return
        self._commit(records)
        self._handler_seconds.observe(time.perf_counter() - started)

    def _handle(self, batch: Sequence[Incoming]) -> BatchResult:
        """Runs the handler; on a non-transient failure isolates the poison event(s) by
        re-running one event at a time (handlers are idempotent, so a re-run is safe)."""
        try:
            return self.handler(batch)
        except Exception as error:
            if transient(error):
                raise
            if len(batch) == 1:
                log.exception("handler failed on an event", extra={"group": self.group})
                return BatchResult(rejected=[Rejected(batch[0], _reason(error))])
        merged = BatchResult()
        for incoming in batch:
            part = self._handle([incoming])
            merged.outgoing.extend(part.outgoing)
            merged.rejected.extend(part.rejected)
        return merged

    def _produced(self, batch: Sequence[Incoming], result: BatchResult) -> BatchResult | None:
        """Produces the handler's events, retrying transient failures. When one of them can
        never be produced (see :func:`_unproducible`), the batch is handled and produced
        again one event at a time so that only the event at fault is rejected. None when
        stopping."""
        try:
            if self._retrying("produce", lambda: self._produce(result.outgoing)) is None:
                return None
            return result
        except Exception as error:
            if not _unproducible(error):
                raise  # a bug in the service whatever the input: the loop ends
            log.error(
                "an event cannot be produced; producing event by event",
                extra={"group": self.group, "error": str(error)},
            )
        return self._retrying("produce", lambda: self._produce_each(batch))

    def _produce(self, outgoing: Sequence[Outgoing]) -> bool:
        self.producer.send_and_wait([(item.topic, item.key, item.envelope) for item in outgoing])
        return True

    def _produce_each(self, batch: Sequence[Incoming]) -> BatchResult:
        """Handles and produces one event at a time; an event whose results can never be
        produced is rejected with the error as its reason (anything else raises: a transient
        failure to be retried, or a bug). Events produced before are produced again, with
        the same ids."""
        merged = BatchResult()
        for incoming in batch:
            part = self._handle([incoming])
            merged.rejected.extend(part.rejected)
            try:
                self._produce(part.outgoing)
            except Exception as error:
                if not _unproducible(error):
                    raise
                log.error(
                    "an event's results cannot be produced",
                    extra={"group": self.group, "offset": incoming.offset, "error": str(error)},
                )
                merged.rejected.append(Rejected(incoming, _reason(error, PRODUCE_FAILED)))
                continue
            merged.outgoing.extend(part.outgoing)
        return merged

    def _dead_letter(self, letters: list[DeadLetter]) -> bool:
        self.producer.dead_letter(letters, self.group)
        return True

    def _retrying(self, step: str, attempt: Callable[[], T]) -> T | None:
        """Runs ``attempt`` until it succeeds; between tries the partitions stay paused and
        polled so the group keeps them. Returns None when stopping before success."""
        delay, ceiling = self.retry_backoff
        assert self._consumer is not None
        paused: set[TopicPartition] = set()
        try:
            while True:
                try:
                    return attempt()
                except Exception as error:
                    if not transient(error):
                        raise
                    self.metrics.handler_failures.labels(group=self.group).inc()
                    log.exception("transient failure, will retry", extra={"step": step})
                if self.stop.is_set():
                    return None
                # Pause every assigned partition, not only the batch's: a record polled here
                # from any partition would be dropped (its position already moved past it).
                newly = self._consumer.assignment() - paused
                if newly:
                    self._consumer.pause(newly)
                    paused |= newly
                deadline = time.monotonic() + delay
                while time.monotonic() < deadline and not self.stop.is_set():
                    self._rewind(self._poll(timeout_ms=int(min(0.2, delay) * 1000)))
                delay = min(delay * 2, ceiling)
        finally:
            # A rebalance may have taken some partitions away meanwhile.
            still_assigned = paused & self._consumer.assignment()
            if still_assigned:
                self._consumer.resume(still_assigned)

    def _rewind(self, records: list[Any]) -> None:
        """Seeks back to records polled while paused (a partition assigned by a rebalance
        meanwhile is not paused), so they are fetched again instead of lost."""
        assert self._consumer is not None
        first: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            first[tp] = min(first.get(tp, record.offset), record.offset)
        for tp, offset in first.items():
            self._consumer.seek(tp, offset)

    def _commit(self, records: list[Any]) -> None:
        assert self._consumer is not None
        last: dict[tuple[str, int], int] = {}
        for record in records:
            position = (record.topic, record.partition)
            last[position] = max(last.get(position, -1), record.offset)
        offsets = {TopicPartition(topic, p): offset + 1 for (topic, p), offset in last.items()}
        try:
            self._consumer.commit(offsets)
        except (CommitFailedError, RebalanceInProgressError) as error:
            # The group is rebalancing: whoever owns these partitions next redoes the batch
            # from the last commit, and idempotent effects make that harmless.
            log.warning(
                "commit refused during a rebalance",
                extra={"group": self.group, "error": str(error)},
            )

    def _record_lag(self) -> None:
        assert self._consumer is not None
        for tp, lag in self._consumer.lags():
            self._lag(tp.topic, str(tp.partition), self.group).set(lag)


LAG_INTERVAL_SECONDS = 1.0
HANDLER_FAILED = "handler failed"
PRODUCE_FAILED = "its events cannot be produced"


def _reason(error: BaseException, what: str = HANDLER_FAILED) -> str:
    return f"{what}: {type(error).__name__}: {error}"[:1000]


def _unproducible(error: BaseException) -> bool:
    """True for a failure to produce that depends on the event (too large for the producer
    or the broker, invalid for its topic), as opposed to a transient one or a bug that would
    fail every event alike (a topic the service may not produce to)."""
    return isinstance(error, InvalidEvent | MessageSizeTooLargeError)
