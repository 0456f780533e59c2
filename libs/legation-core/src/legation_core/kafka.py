"""Kafka adapters: client settings, the event producer, topic bootstrap and table reads.

Everything else in the platform talks to Kafka through these functions and
:mod:`legation_core.consumer`. The event producer and the consume loops run on the client
``LEGATION_KAFKA_CLIENT`` names: kafka-python, or confluent-kafka through the adapters of
:mod:`legation_core.confluent`. Topic creation and table reads (``ensure_topics``,
``missing_topics``, ``read_records``) stay on kafka-python whatever the setting: they run at
start and in rebuilds, not per event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import MessageSizeTooLargeError, TopicAlreadyExistsError
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.structs import MemberState

from legation_core.calls import InvalidArgument, ensure_caller_waits
from legation_core.catalog import DLQ_SUFFIX, Catalog, TopicSpec
from legation_core.codec import Envelope, EventCodec, InvalidEvent
from legation_core.config import CoreSettings
from legation_core.dlq import DeadLetter, LetterRecord, fit_dead_letter, without_value
from legation_core.metrics import Bound, Metrics

log = logging.getLogger(__name__)


def client_options(settings: CoreSettings) -> dict[str, Any]:
    """Connection options shared by producers, consumers and admin clients."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers(),
        "security_protocol": settings.kafka_security_protocol,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
    }
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    if settings.kafka_ssl_cafile:
        options["ssl_cafile"] = settings.kafka_ssl_cafile
    return options


_CONTENT_TYPE = ("content-type", b"application/x-protobuf")


def event_headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    """Headers that let a subscriber route a record without decoding it."""
    return [
        _CONTENT_TYPE,
        ("event-type", envelope.event_type.encode()),
        ("schema-version", b"%d" % envelope.schema_version),
        ("source-service", envelope.source_service.encode()),
        ("trace-id", envelope.trace_id.encode()),
    ]


class RecordTooLarge(InvalidEvent, InvalidArgument):
    """An event larger than the producer may send (``LEGATION_KAFKA_MAX_REQUEST_BYTES``): no
    retry can send it, so it is refused as invalid (a consume loop dead-letters the record
    that led to it; a gRPC command that would write it ends with INVALID_ARGUMENT)."""


# The size limit of a sink that does not say its own (CoreSettings' default).
DEFAULT_MAX_REQUEST_BYTES: int = CoreSettings.model_fields["kafka_max_request_bytes"].default


def record_size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    """The bytes kafka-python counts for one record against ``max_request_size``: a record
    batch of this one record (61 bytes of batch header, the record's framing, key, value and
    headers), as ``KafkaProducer.send`` measures it for brokers of Kafka 0.11 and later."""
    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
    return size


def ensure_fits(events: list[tuple[str, str, Envelope]], limit: int) -> None:
    """Raises :class:`RecordTooLarge` when one of ``events`` would make a record over
    ``limit`` bytes: for writers of several batches (a state table's events, then its
    entities) that must refuse a change whole before its first batch goes."""
    for topic, key, envelope in events:
        size = record_size(key.encode(), EventCodec.encode(envelope), event_headers(envelope))
        if size > limit:
            raise RecordTooLarge(
                f"{envelope.event_type} event for {topic} is {size} bytes, more than "
                f"LEGATION_KAFKA_MAX_REQUEST_BYTES ({limit})"
            )


# What record_size() adds to a record's bytes at most besides its headers: the batch header
# (61) and the record's framing (length, attributes, timestamp and offset deltas, key and
# value lengths, header count: varints of at most 5 or 10 bytes).
_RECORD_OVERHEAD = 61 + 5 + 1 + 10 + 5 + 5 + 5 + 5
_HEADER_OVERHEAD = 10  # two length varints per header


def fits(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]], limit: int
) -> bool:
    """``record_size(key, value, headers) <= limit``, computed exactly only for records near
    the limit: an upper bound settles the others (every event produced passes here)."""
    bound = _RECORD_OVERHEAD + len(key or b"") + len(value or b"")
    for name, header in headers:
        bound += _HEADER_OVERHEAD + 4 * len(name) + len(header)  # UTF-8: 4 bytes a character
    return bound <= limit or record_size(key, value, headers) <= limit


def raise_if_failed(future: Any, timeout: float) -> None:
    """Raises the error of a send that failed, waiting for its outcome when it is not known
    yet. A send already acknowledged (the usual case after ``flush``) costs no more than a
    look at its state: no RecordMetadata is built."""
    if getattr(future, "is_done", False):
        if future.failed():
            raise future.exception
        return
    future.get(timeout=timeout)


class EventProducer:
    """Produces envelopes to catalogued topics for one service (acks=all, idempotent).

    ``send`` only queues and returns a :class:`Pending`; ``wait`` blocks until those
    records are acknowledged and raises if any was not, so callers commit or answer only
    after ``wait``. Safe to share between threads (both clients' producers are).
    ``dead_letter`` is the one way records reach a DLQ.
    """

    def __init__(
        self,
        settings: CoreSettings,
        service: str,
        catalog: Catalog,
        metrics: Metrics,
        producer: Any = None,
    ) -> None:
        self.service = service
        self.catalog = catalog
        self.metrics = metrics
        # The largest record this producer sends, as record_size() counts it.
        self.max_request_bytes = settings.kafka_max_request_bytes
        # Per-topic answers computed once: the catalog's spec of a topic this service may
        # produce to, and the metrics' label children.
        self._specs: dict[str, TopicSpec] = {}
        self._produced = Bound(metrics.produced)
        # ``producer``: a client with kafka-python's send/flush/close (tests pass fakes).
        self._producer = producer or event_client(settings)

    def send(self, topic: str, key: str, envelope: Envelope) -> Pending:
        """Queues ``envelope`` on ``topic`` keyed by ``key``; the catalog must allow it.
        Raises :class:`RecordTooLarge` for an event over ``max_request_bytes``."""
        return self._queue(self._record(topic, key, envelope))

    def _record(self, topic: str, key: str, envelope: Envelope) -> _Record:
        """The record of an event, checked against the catalog and the size limit."""
        spec = self._specs.get(topic)
        if spec is None:
            spec = self._specs[topic] = self.catalog.check_produce(self.service, topic)
        if envelope.source_service != self.service:
            raise InvalidEvent(f"{self.service} cannot send an event of {envelope.source_service}")
        EventCodec.validate(spec, envelope)
        record = _Record(topic, key.encode(), EventCodec.encode(envelope), event_headers(envelope))
        if not fits(record.key, record.value, record.headers, self.max_request_bytes):
            size = record_size(record.key, record.value, record.headers)
            raise RecordTooLarge(
                f"{envelope.event_type} event for {topic} is {size} bytes, more than "
                f"LEGATION_KAFKA_MAX_REQUEST_BYTES ({self.max_request_bytes})"
            )
        return record

    def _queue(self, record: _Record) -> Pending:
        future = self._producer.send(
            record.topic, key=record.key, value=record.value, headers=record.headers
        )
        return Pending(record.topic, future)

    def send_in_background(self, topic: str, key: str, envelope: Envelope) -> None:
        """Queues ``envelope`` without waiting: the acknowledgement is counted when it comes,
        a failure is logged. For records nobody waits on (the audit trail); ``close``
        flushes what is still queued."""
        pending = self.send(topic, key, envelope)

        def acknowledged(_metadata: Any) -> None:
            self._produced(topic).inc()

        def failed(error: Exception) -> None:
            self.metrics.produce_failures.labels(topic=topic).inc()
            log.error(
                "record not acknowledged",
                extra={"topic": topic, "event_id": envelope.event_id, "error": str(error)},
            )

        pending.future.add_callback(acknowledged)
        pending.future.add_errback(failed)

    def send_raw(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Pending:
        """Queues an opaque record (dead letters keep the original bytes)."""
        return Pending(topic, self._producer.send(topic, key=key, value=value, headers=headers))

    def dead_letter(self, letters: list[DeadLetter], group: str, timeout: float = 30.0) -> None:
        """Sends each letter to its topic's DLQ with the reason and source coordinates
        (``group`` names who gave up on it) and waits for the acknowledgements; raises like
        :meth:`wait` when one is missing (the caller retries; a letter sent twice is the
        same letter). A letter over ``max_request_bytes`` is truncated to fit, and one the
        broker still refuses as too large goes again without its value (see
        :mod:`legation_core.dlq`), so a record always leaves its partition."""
        if not letters:
            return
        records = []
        for letter in letters:
            record = fit_dead_letter(
                letter, letter.topic + DLQ_SUFFIX, group, self.max_request_bytes, record_size
            )
            log.warning(
                "dead-lettered a record",
                extra={
                    "topic": letter.topic,
                    "partition": letter.partition,
                    "offset": letter.offset,
                    "group": group,
                    "reason": letter.reason,
                    "truncated": record.truncated,
                },
            )
            records.append(record)
        self._send_letters(records, letters, timeout)
        for letter in letters:
            self.metrics.dead_lettered.labels(topic=letter.topic, group=group).inc()

    def _send_letters(
        self, records: list[LetterRecord], letters: list[DeadLetter], timeout: float
    ) -> None:
        pending = [self.send_raw(r.topic, r.key, r.value, r.headers) for r in records]
        self._producer.flush(timeout=timeout)
        refused = []
        for record, letter, item in zip(records, letters, pending, strict=True):
            try:
                item.future.get(timeout=timeout)
            except MessageSizeTooLargeError:
                if record.value == b"":
                    raise
                log.warning(
                    "the broker refused a dead letter as too large: sending it without its value",
                    extra={"topic": letter.topic, "offset": letter.offset},
                )
                refused.append((without_value(record, len(letter.value or b"")), letter))
                continue
            self._produced(item.topic).inc()
        if refused:
            self._send_letters([r for r, _ in refused], [letter for _, letter in refused], timeout)

    def wait(self, pending: list[Pending], timeout: float = 30.0) -> None:
        """Blocks until every record in ``pending`` is acknowledged; raises the first error.
        One flush acknowledges the whole batch; the counter moves once per topic."""
        if not pending:
            return
        self._producer.flush(timeout=timeout)
        counts: dict[str, int] = {}
        try:
            for item in pending:
                raise_if_failed(item.future, timeout)
                counts[item.topic] = counts.get(item.topic, 0) + 1
        finally:
            for topic, count in counts.items():
                self._produced(topic).inc(count)

    def send_and_wait(self, events: list[tuple[str, str, Envelope]]) -> None:
        """Sends ``(topic, key, envelope)`` triples and waits for all of them; when one is
        refused (catalog, validation, size) none is sent.

        Inside a gRPC call whose caller no longer waits (deadline passed, cancelled) it
        raises :class:`~legation_core.calls.CallExpired` and sends nothing: every command's
        writes come here, so none is applied after its caller was told it failed."""
        ensure_caller_waits()
        records = [self._record(topic, key, envelope) for topic, key, envelope in events]
        self.wait([self._queue(record) for record in records])

    def close(self, timeout: float = 10.0) -> None:
        self._producer.close(timeout=timeout)


def event_client(settings: CoreSettings) -> Any:
    """The producer client of ``LEGATION_KAFKA_CLIENT``: acks from every in-sync replica,
    idempotent, 5 ms of linger, refusing records over ``LEGATION_KAFKA_MAX_REQUEST_BYTES``."""
    if settings.kafka_client == "confluent":
        from legation_core.confluent import ConfluentProducer  # only when chosen

        return ConfluentProducer(settings)
    return KafkaProducer(
        **client_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        retries=5,
        max_request_size=settings.kafka_max_request_bytes,
    )


@dataclass(frozen=True)
class _Record:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class Pending:
    """A queued record not yet known to be acknowledged."""

    topic: str
    future: Any


def ensure_topics(
    settings: CoreSettings,
    catalog: Catalog,
    replication_factor: int | None = None,
    admin: KafkaAdminClient | None = None,
) -> list[str]:
    """Creates every catalogued topic and its DLQ that does not exist yet; returns those
    created. Safe to run any number of times. ``replication_factor`` overrides the catalog's
    (a one-broker development cluster needs 1)."""
    own_admin = admin is None
    admin = admin or KafkaAdminClient(**client_options(settings))
    try:
        existing = set(admin.list_topics())
        wanted = []
        for spec in catalog:
            for name, config in ((spec.name, topic_config(spec)), (spec.dlq, dlq_config())):
                if name not in existing:
                    wanted.append(
                        NewTopic(
                            name,
                            spec.partitions,
                            replication_factor or spec.replication_factor,
                            topic_configs=config,
                        )
                    )
        created = []
        for topic in wanted:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass  # another process created it between list and create
        return created
    finally:
        if own_admin:
            admin.close()


def topic_config(spec: TopicSpec) -> dict[str, str]:
    return {"cleanup.policy": spec.cleanup_policy, "retention.ms": str(spec.retention_ms)}


def dlq_config() -> dict[str, str]:
    # Dead letters wait for a person: keep them long enough to be looked at.
    return {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)}


def missing_topics(settings: CoreSettings, names: list[str]) -> list[str]:
    """The topics in ``names`` the cluster does not have (services refuse to start then)."""
    admin = KafkaAdminClient(**client_options(settings))
    try:
        existing = set(admin.list_topics())
    finally:
        admin.close()
    return [name for name in names if name not in existing]


def read_topic(
    settings: CoreSettings,
    service: str,
    codec: EventCodec,
    topic: str,
    timeout: float = 60.0,
    dead_letters: EventProducer | None = None,
) -> Iterator[Envelope]:
    """Yields every valid event of ``topic`` from the beginning to the current end, in
    partition order, without a consumer group. Services rebuild their state with it.

    Records that do not decode: with ``dead_letters`` (the producer of a service rebuilding
    its state from the topic) they go to the topic's DLQ once the end is reached, with
    :func:`rebuild_reader` as their ``dlq-consumer-group``, unless an earlier rebuild already
    put them there (so restarts do not repeat them); without it they are skipped with a
    warning, for readers whose topic a consume loop owns (that loop dead-letters them)."""
    codec.catalog.check_consume(service, topic)
    invalid: list[DeadLetter] = []
    for record in read_records(settings, topic, timeout):
        try:
            yield codec.decode(topic, record.value)
        except InvalidEvent as error:
            if dead_letters is None:
                log.warning("skipping invalid record", extra={"reason": error.reason})
            else:
                invalid.append(DeadLetter.of(record, error.reason))
    if invalid and dead_letters is not None:
        reader = rebuild_reader(service)
        done = dead_lettered(settings, topic, reader, timeout)
        dead_letters.dead_letter(
            [letter for letter in invalid if (letter.partition, letter.offset) not in done],
            reader,
        )


def rebuild_reader(service: str) -> str:
    """The ``dlq-consumer-group`` of records a service's state rebuild dead-lettered."""
    return f"legation.{service}.state-rebuild"


def dead_lettered(
    settings: CoreSettings, topic: str, group: str, timeout: float = 60.0
) -> set[tuple[int, int]]:
    """The (partition, offset) of the records of ``topic`` that ``group`` put in its DLQ."""
    found = set()
    source = (("dlq-source-topic", topic.encode()), ("dlq-consumer-group", group.encode()))
    for record in read_records(settings, topic + DLQ_SUFFIX, timeout):
        headers = dict(record.headers or [])
        if all(headers.get(name) == value for name, value in source):
            found.add((int(headers["dlq-source-partition"]), int(headers["dlq-source-offset"])))
    return found


def read_records(settings: CoreSettings, topic: str, timeout: float = 60.0) -> Iterator[Any]:
    """Yields every record of ``topic`` from the beginning to its end as it is now (raw
    kafka-python records), without a consumer group."""
    consumer = KafkaConsumer(**client_options(settings), enable_auto_commit=False, group_id=None)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            # Unknown, not yet propagated or not authorised: never mistake it for empty,
            # or a service would start with no state and redo everything.
            raise RuntimeError(f"cannot read {topic}: no partitions visible")
        assignment = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assignment)
        consumer.seek_to_beginning(*assignment)
        end = consumer.end_offsets(assignment)
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in assignment):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach its end in {timeout}s")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.offset < end[TopicPartition(record.topic, record.partition)]:
                        yield record
    finally:
        consumer.close()


def group_settling(consumer: KafkaConsumer) -> bool:
    """True while the consumer's group membership is changing: its next ``poll`` must wait.

    kafka-python 3.0.12 finishes a (re)join only inside a ``poll`` that waits for it. A
    ``poll(timeout_ms=0)`` gives up on the join at once, and the next one starts it over, so
    a loop polling without waiting (``LEGATION_CONSUMER_IDLE_WAIT_MS``) never rejoins: it
    goes on fetching from its old assignment while every commit is refused "during a
    rebalance" (393 times over 11 minutes after restarts on the local stack). Worse, a join
    that outlives the poll that started it can complete in the background without the
    member ever becoming stable, when what called for it (the leader's metadata snapshot)
    was settled by the join itself; nothing then asks for a rejoin, and commits stay
    refused until the connection breaks. That state is repaired here by asking for a rejoin,
    which the next waiting poll completes. See libs/legation-devstack/STANDINS.md.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None:  # another client version: its own state is all we can read
        return bool(consumer.group_metadata().state != MemberState.STABLE)
    if coordinator.need_rejoin():
        return True
    if consumer.group_metadata().state == MemberState.STABLE:
        return False
    join = getattr(coordinator, "_join_task", None)
    if join is None or join.is_done:
        log.info("a group join finished without the member becoming stable: rejoining")
        coordinator.request_rejoin()
    return True
