"""The confluent-kafka (librdkafka) client behind the runtime's producer and consume loop
(``LEGATION_KAFKA_CLIENT=confluent``).

:class:`ConfluentProducer` has the surface :class:`~legation_core.kafka.EventProducer`
uses of kafka-python's ``KafkaProducer`` (``send`` returning a future, ``flush``, ``close``),
and :class:`ConfluentConsumer` the one :class:`~legation_core.consumer.ConsumerLoop` uses
(:class:`~legation_core.consumer.GroupConsumer`). librdkafka's errors are turned into
kafka-python's exception classes by :func:`client_error`, the one mapping, so the rest of the
runtime tells them apart as it does kafka-python's: a record too large is a
``MessageSizeTooLargeError`` (the dead-letter size fallback), a retriable error is a
``KafkaError`` whose ``retriable`` is true (:func:`~legation_core.consumer.transient`), a
commit refused because the group is rebalancing is a ``CommitFailedError``.

Partitions are kafka-python's ``TopicPartition`` on this side too (the loop's pause, resume and
commit bookkeeping keys by them, whichever client is underneath).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import confluent_kafka
from kafka import TopicPartition
from kafka.errors import (
    CommitFailedError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    for_code,
)

from legation_core.config import CoreSettings
from legation_core.kafka import client_options

log = logging.getLogger(__name__)

# Delivery timeout: kafka-python's default delivery_timeout_ms (librdkafka's is 300 s).
MESSAGE_TIMEOUT_MS = 120_000
# librdkafka prefetches up to 64 MiB per consumer by default; a consume loop handles one
# batch at a time, so a few MiB ahead keep it busy without holding the memory.
QUEUED_MAX_KBYTES = 8_192

_CODES = confluent_kafka.KafkaError
# The group moved on while the batch was handled: the next owner redoes it from the last
# commit (kafka-python raises CommitFailedError or RebalanceInProgressError for these).
_REBALANCING = frozenset(
    {
        _CODES.REBALANCE_IN_PROGRESS,
        _CODES.ILLEGAL_GENERATION,
        _CODES.UNKNOWN_MEMBER_ID,
        _CODES.FENCED_INSTANCE_ID,
        _CODES._ASSIGNMENT_LOST,
        _CODES._STATE,
    }
)
_TIMEOUTS = frozenset(
    {_CODES._MSG_TIMED_OUT, _CODES._TIMED_OUT, _CODES._TIMED_OUT_QUEUE, _CODES.REQUEST_TIMED_OUT}
)


class ClientError(KafkaError):  # type: ignore[misc]  # kafka-python has no types
    """A librdkafka error of its own (no Kafka protocol error code), retriable or not as
    librdkafka says."""

    def __init__(self, message: str, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


def client_error(error: confluent_kafka.KafkaError) -> Exception:
    """The kafka-python exception standing for librdkafka's ``error``: broker errors are
    kafka-python's class of the same protocol code, retriable when either client says so."""
    code, message = error.code(), f"{error.name()}: {error.str()}"
    mapped: Exception
    if code == _CODES.MSG_SIZE_TOO_LARGE:
        mapped = MessageSizeTooLargeError(message)
    elif code in _TIMEOUTS:
        mapped = KafkaTimeoutError(message)
    elif code in _REBALANCING:
        mapped = CommitFailedError(message)
    elif code > 0:  # a Kafka protocol error: the same code in both clients
        mapped = for_code(code)(message)
        if error.retriable() and not getattr(mapped, "retriable", False):
            mapped.retriable = True  # type: ignore[attr-defined]
    else:
        mapped = ClientError(message, error.retriable())
    return mapped


def raised(exception: confluent_kafka.KafkaException) -> Exception:
    """:func:`client_error` of what a confluent-kafka call raised."""
    error = exception.args[0] if exception.args else None
    if isinstance(error, confluent_kafka.KafkaError):
        return client_error(error)
    return ClientError(str(exception), False)


# kafka.client_options' names in librdkafka's: one set of connection options for both.
_LIBRDKAFKA_NAMES = {
    "bootstrap_servers": "bootstrap.servers",
    "security_protocol": "security.protocol",
    "request_timeout_ms": "socket.timeout.ms",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
}


def confluent_options(settings: CoreSettings) -> dict[str, Any]:
    """:func:`~legation_core.kafka.client_options` in librdkafka's names."""
    options = {_LIBRDKAFKA_NAMES[name]: value for name, value in client_options(settings).items()}
    options["bootstrap.servers"] = ",".join(options["bootstrap.servers"])
    # librdkafka's own log lines (a broker unreachable...) go through logging, as
    # kafka-python's do, instead of to stderr.
    options["logger"] = log
    return options


# One lock for every delivery's callbacks: they are rare (the audit trail), and a lock per
# record would cost every record.
_CALLBACKS = threading.Lock()


class Delivery:
    """The outcome of one produced record, as kafka-python's future exposes it: ``is_done``,
    ``failed()``, ``exception``, ``get(timeout)``, ``add_callback``, ``add_errback``.
    librdkafka calls it (its ``on_delivery``) from whichever thread serves the producer."""

    __slots__ = ("_callbacks", "_producer", "exception", "is_done")

    def __init__(self, producer: confluent_kafka.Producer) -> None:
        self._producer = producer
        self.is_done = False
        self.exception: Exception | None = None
        self._callbacks: list[tuple[bool, Callable[[Any], None]]] | None = None

    def __call__(self, error: confluent_kafka.KafkaError | None, _message: Any) -> None:
        self.settle(None if error is None else client_error(error))

    def settle(self, exception: Exception | None) -> Delivery:
        self.exception = exception
        with _CALLBACKS:
            self.is_done = True
            callbacks, self._callbacks = self._callbacks, None
        for on_failure, callback in callbacks or ():
            self._run(on_failure, callback)
        return self

    def failed(self) -> bool:
        return self.exception is not None

    def get(self, timeout: float | None = None) -> None:
        """Waits for the outcome (serving the producer's delivery reports meanwhile); raises
        the error of a failed record, ``KafkaTimeoutError`` when ``timeout`` passes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_done:
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                raise KafkaTimeoutError(f"no acknowledgement within {timeout} s")
            self._producer.poll(left)
        if self.exception is not None:
            raise self.exception

    def add_callback(self, callback: Callable[[Any], None]) -> None:
        self._add(False, callback)

    def add_errback(self, callback: Callable[[Any], None]) -> None:
        self._add(True, callback)

    def _add(self, on_failure: bool, callback: Callable[[Any], None]) -> None:
        with _CALLBACKS:
            if not self.is_done:
                self._callbacks = (self._callbacks or []) + [(on_failure, callback)]
                return
        self._run(on_failure, callback)

    def _run(self, on_failure: bool, callback: Callable[[Any], None]) -> None:
        if on_failure == (self.exception is not None):
            callback(self.exception if on_failure else None)


class ConfluentProducer:
    """confluent-kafka's producer with kafka-python's ``send``/``flush``/``close`` (acks=all,
    idempotent, as EventProducer configures kafka-python's). Thread-safe like librdkafka's."""

    def __init__(self, settings: CoreSettings, **options: Any) -> None:
        self._closed = False
        self._producer = confluent_kafka.Producer(
            {
                **confluent_options(settings),
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": MESSAGE_TIMEOUT_MS,
                # librdkafka counts a record as key + value + headers (less than what
                # record_size counts), so the limit EventProducer checks is never the one
                # that refuses a record here.
                "message.max.bytes": settings.kafka_max_request_bytes,
                **options,
            }
        )

    def send(
        self,
        topic: str,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> Delivery:
        """Queues a record; its :class:`Delivery` settles when the broker answers (or
        at once, failed, when librdkafka refuses it, as kafka-python's ``send`` does)."""
        delivery = Delivery(self._producer)
        while True:
            try:
                self._producer.produce(
                    topic,
                    value,
                    key,
                    -1 if partition is None else partition,
                    on_delivery=delivery,
                    headers=headers,  # type: ignore[arg-type]  # list is invariant: bytes fit
                )
                break
            except BufferError:  # the local queue is full: serve deliveries, try again
                self._producer.poll(0.05)
            except confluent_kafka.KafkaException as error:
                return delivery.settle(raised(error))
        self._producer.poll(0)  # serve the deliveries already reported, without waiting
        return delivery

    def flush(self, timeout: float | None = None) -> None:
        self._producer.flush(-1 if timeout is None else timeout)

    def close(self, timeout: float | None = None) -> None:
        """Sends what is queued (for ``timeout`` seconds at most: what is left then is
        dropped, as kafka-python's ``close`` drops it) and stops the client's threads. Once
        closed, closing again does nothing (as kafka-python's)."""
        if self._closed:
            return
        self._closed = True
        self.flush(timeout)
        if len(self._producer):
            self._producer.purge()
            self._producer.poll(0)  # the purged records' deliveries fail
        self._producer.close()


class Record:
    """A consumed record with the attributes of kafka-python's ``ConsumerRecord`` that the
    runtime reads (topic, partition, offset, key, value, headers)."""

    __slots__ = ("headers", "key", "offset", "partition", "topic", "value")

    def __init__(self, message: confluent_kafka.Message) -> None:
        self.topic: str = message.topic() or ""
        self.partition: int = message.partition() or 0
        self.offset: int = message.offset() or 0
        self.key = message.key()
        self.value = message.value()
        self.headers: list[tuple[str, bytes]] = list(message.headers() or [])  # type: ignore[arg-type]


def _theirs(partitions: Iterable[TopicPartition]) -> list[confluent_kafka.TopicPartition]:
    return [confluent_kafka.TopicPartition(tp.topic, tp.partition) for tp in partitions]


class ConfluentConsumer:
    """A consumer group member on confluent-kafka, as :class:`ConsumerLoop` drives one
    (see :class:`~legation_core.consumer.GroupConsumer`). librdkafka joins and heartbeats
    from its own threads, so the group is never settled by a poll of ours.

    librdkafka fetches from its own thread and sends the next fetch as soon as the last
    one answered: on a broker that answers an empty fetch at once instead of holding it
    (``LEGATION_CONSUMER_IDLE_WAIT_MS`` above 0, the noida-db stand-in) that thread spins
    whatever the loop does (39 % of a core idle in the bench). There, a poll that found
    nothing pauses the partitions ("dozing"). The loop's own sleep between idle polls is
    then the only wait, as on kafka-python.

    A dozing consumer's poll asks the broker for the partitions' ends (one request per
    partition, no fetch) and serves librdkafka's events; when a partition has records past
    its position it resumes them and polls. librdkafka's fetching thread notices a resumed
    partition only when it wakes, up to a second later, so a request to their broker
    follows the resume to wake it.
    """

    def __init__(
        self,
        settings: CoreSettings,
        topics: list[str],
        group: str,
        instance_id: str | None,
        options: Mapping[str, Any],
    ) -> None:
        config: dict[str, Any] = {
            **confluent_options(settings),
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "queued.max.messages.kbytes": QUEUED_MAX_KBYTES,
            **options,
        }
        if instance_id:
            config["group.instance.id"] = instance_id
        self._doze = settings.consumer_idle_wait_ms > 0
        # How long a poll that woke the partitions waits for the fetch of their records.
        self._wake_timeout = settings.consumer_poll_timeout_ms / 1000
        self._dozing = False
        self._paused: set[TopicPartition] = set()  # by the loop (while it retries)
        self._batch = settings.consumer_max_batch
        self._request_timeout = settings.kafka_request_timeout_ms / 1000
        # Where reading starts in each assigned partition none of whose records was read
        # yet (see lags).
        self._starts: dict[tuple[str, int], int] = {}
        # Each partition's end as the broker last gave it (see _wake).
        self._ends: dict[tuple[str, int], int] = {}
        self._consumer = confluent_kafka.Consumer(config)
        self._consumer.subscribe(topics)

    def poll(self, timeout_ms: int) -> list[Any]:
        timeout = timeout_ms / 1000
        if self._dozing:
            # Still dozing: only librdkafka's events (a rebalance, statistics) are served,
            # which a poll must do at least every max.poll.interval.ms.
            timeout = max(timeout, self._wake_timeout) if self._wake() else 0
        # What is queued already, else the first that comes and what is queued then:
        # consume() alone would wait its whole timeout for a full batch.
        messages = self._consumer.consume(self._batch, 0)
        if not messages and timeout > 0:
            first = self._consumer.poll(timeout)
            if first is not None:
                messages = [first, *self._consumer.consume(self._batch - 1, 0)]
        records = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(Record(message))
            elif error.fatal():
                raise client_error(error)
            # Anything else (a partition's end, a broker gone for a while) librdkafka
            # handles on its own; polling on is all there is to do.
        if self._doze and not records and not self._dozing:
            idle = self.assignment() - self._paused
            if idle:
                self._consumer.pause(_theirs(idle))
                self._dozing = True
        return records

    def _wake(self) -> bool:
        """When a dozing partition has records past its position (the broker's answer,
        not a fetch), resumes them and wakes the fetching thread; False otherwise."""
        try:
            if not any(lag > 0 for _, lag in self._lags(cached=False)):
                return False
        except confluent_kafka.KafkaException:
            pass  # no answer: fetch and see
        dozing = _theirs(self.assignment() - self._paused)
        self._consumer.resume(dozing)
        self._dozing = False
        if dozing:  # any request to their broker wakes the fetching thread
            with contextlib.suppress(confluent_kafka.KafkaException):
                self._consumer.get_watermark_offsets(dozing[0], self._request_timeout)
        return True

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(TopicPartition(tp.topic, tp.partition) for tp in self._assigned())

    def _assigned(self) -> list[confluent_kafka.TopicPartition]:
        try:
            return self._consumer.assignment()
        except confluent_kafka.KafkaException as error:
            raise raised(error) from None

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        partitions = set(partitions)
        self._paused |= partitions
        self._consumer.pause(_theirs(partitions))

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        partitions = set(partitions)
        self._paused -= partitions
        self._consumer.resume(_theirs(partitions))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        theirs = confluent_kafka.TopicPartition(partition.topic, partition.partition, offset)
        self._consumer.seek(theirs)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commits the next offset to read of each partition; raises ``CommitFailedError``
        when the group is rebalancing."""
        theirs = [
            confluent_kafka.TopicPartition(tp.topic, tp.partition, offset)
            for tp, offset in offsets.items()
        ]
        try:
            committed = self._consumer.commit(offsets=theirs, asynchronous=False)
        except confluent_kafka.KafkaException as error:
            raise raised(error) from None
        for tp in committed or []:
            if tp.error is not None:
                raise client_error(tp.error)

    def lags(self) -> Iterator[tuple[TopicPartition, int]]:
        """Each assigned partition's records not read yet: its end as the fetches last
        said it, less the position (see :meth:`_lags`)."""
        return self._lags(cached=True)

    def _lags(self, cached: bool) -> Iterator[tuple[TopicPartition, int]]:
        """Each assigned partition's end (as the fetches last said it, or asked of the
        broker) less its position. librdkafka knows a position only once a record of the
        partition was read; before, it is the group's committed offset (asked once per
        assignment of the partition) or, without one, the partition's start."""
        assigned = self._assigned()
        ours = {(tp.topic, tp.partition) for tp in assigned}
        for known in [at for at in self._starts if at not in ours]:
            del self._starts[known]  # lost: another member may have moved it meanwhile
        for known in [at for at in self._ends if at not in ours]:
            del self._ends[known]
        positions = self._consumer.position(assigned)
        unknown = [
            tp for tp in positions if tp.offset < 0 and (tp.topic, tp.partition) not in self._starts
        ]
        try:
            for tp in self._consumer.committed(unknown, self._request_timeout) if unknown else []:
                start = tp.offset
                if start < 0:  # nothing committed: the group reads from the start
                    start, _ = self._consumer.get_watermark_offsets(tp, self._request_timeout)
                self._starts[(tp.topic, tp.partition)] = start
        except confluent_kafka.KafkaException as error:
            # A gauge may wait for the next second; the loop must not stop for it.
            log.warning("cannot read where reading starts", extra={"error": str(error)})
        for tp in positions:
            at = (tp.topic, tp.partition)
            if cached:  # the last fetch's answer, or the broker's while dozing (no fetches)
                _, high = self._consumer.get_watermark_offsets(tp, cached=True)
                high = max(high, self._ends.get(at, -1))
            else:
                _, high = self._consumer.get_watermark_offsets(tp, self._request_timeout)
                self._ends[at] = high
            position = (
                tp.offset if tp.offset >= 0 else self._starts.get((tp.topic, tp.partition), -1)
            )
            if high >= 0 and position >= 0:
                yield TopicPartition(tp.topic, tp.partition), max(0, high - position)

    def settling(self) -> bool:
        return False

    def close(self) -> None:
        self._consumer.close()
