"""Kafka adapters: client settings, the event producer, topic bootstrap and table reads.

kafka-python is the client; everything else in the platform talks to these functions, so a
faster client can replace it in one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import MessageSizeTooLargeError, RecordListTooLargeError, TopicAlreadyExistsError

from legation_core.calls import CallError, ensure_caller_waits
from legation_core.catalog import Catalog, TopicSpec
from legation_core.codec import Envelope, EventCodec, InvalidEvent
from legation_core.config import CoreSettings
from legation_core.metrics import Metrics

log = logging.getLogger(__name__)

# The largest record the producer sends (kafka-python's max_request_size, and about the
# broker's default message.max.bytes): a bigger one is refused, never retried.
MAX_RECORD_BYTES = 1_048_576
# Room left for the record batch's own framing and headers when sizes are checked ahead.
_RECORD_OVERHEAD = 512


class RecordTooLarge(CallError):
    """A record is larger than Kafka accepts: the change is not made, and a retry would
    fail the same way. Inside a gRPC call it ends the call with INVALID_ARGUMENT."""

    status = "INVALID_ARGUMENT"


def ensure_fits(events: list[tuple[str, str, Envelope]], limit: int = MAX_RECORD_BYTES) -> None:
    """Raises :class:`RecordTooLarge` before anything is sent when one of ``events`` would
    make a record over ``limit`` bytes, so a batch is refused whole rather than in part."""
    for topic, key, envelope in events:
        size = len(key.encode()) + len(EventCodec.encode(envelope)) + _RECORD_OVERHEAD
        size += sum(len(name) + len(value) for name, value in event_headers(envelope))
        if size > limit:
            raise RecordTooLarge(
                f"the change makes a {envelope.event_type} of about {size} bytes for {topic}, "
                f"over the {limit} bytes a record may have: send less"
            )


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


def event_headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    """Headers that let a subscriber route a record without decoding it."""
    return [
        ("content-type", b"application/x-protobuf"),
        ("event-type", envelope.event_type.encode()),
        ("schema-version", str(envelope.schema_version).encode()),
        ("source-service", envelope.source_service.encode()),
        ("trace-id", envelope.trace_id.encode()),
    ]


class EventProducer:
    """Produces envelopes to catalogued topics for one service (acks=all, idempotent).

    ``send`` only queues and returns a :class:`Pending`; ``wait`` blocks until those
    records are acknowledged and raises if any was not, so callers commit or answer only
    after ``wait``. Safe to share between threads (kafka-python's producer is).
    """

    def __init__(
        self,
        settings: CoreSettings,
        service: str,
        catalog: Catalog,
        metrics: Metrics,
        producer: KafkaProducer | None = None,
    ) -> None:
        self.service = service
        self.catalog = catalog
        self.metrics = metrics
        self._producer = producer or KafkaProducer(
            **client_options(settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            retries=5,
            max_request_size=MAX_RECORD_BYTES,
        )

    def send(self, topic: str, key: str, envelope: Envelope) -> Pending:
        """Queues ``envelope`` on ``topic`` keyed by ``key``; the catalog must allow it."""
        spec = self.catalog.check_produce(self.service, topic)
        if envelope.source_service != self.service:
            raise InvalidEvent(f"{self.service} cannot send an event of {envelope.source_service}")
        EventCodec.validate(spec, envelope)
        try:
            future = self._producer.send(
                topic,
                key=key.encode(),
                value=EventCodec.encode(envelope),
                headers=event_headers(envelope),
            )
        except (MessageSizeTooLargeError, RecordListTooLargeError) as error:
            raise RecordTooLarge(f"a {envelope.event_type} for {topic} is too large") from error
        return Pending(topic, future)

    def send_in_background(self, topic: str, key: str, envelope: Envelope) -> None:
        """Queues ``envelope`` without waiting: the acknowledgement is counted when it comes,
        a failure is logged. For records nobody waits on (the audit trail); ``close``
        flushes what is still queued."""
        pending = self.send(topic, key, envelope)

        def acknowledged(_metadata: Any) -> None:
            self.metrics.produced.labels(topic=topic).inc()

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

    def wait(self, pending: list[Pending], timeout: float = 30.0) -> None:
        """Blocks until every record in ``pending`` is acknowledged; raises the first error."""
        if not pending:
            return
        self._producer.flush(timeout=timeout)
        for item in pending:
            try:
                item.future.get(timeout=timeout)
            except (MessageSizeTooLargeError, RecordListTooLargeError) as error:
                raise RecordTooLarge(f"Kafka refused a record for {item.topic} as too large") from (
                    error
                )
            self.metrics.produced.labels(topic=item.topic).inc()

    def send_and_wait(self, events: list[tuple[str, str, Envelope]]) -> None:
        """Sends ``(topic, key, envelope)`` triples and waits for all of them.

        Inside a gRPC call whose caller no longer waits it raises
        :class:`~legation_core.calls.CallExpired` and sends nothing (every command's writes
        come here, so none is applied after its caller was told it failed); a record over
        :data:`MAX_RECORD_BYTES` raises :class:`RecordTooLarge` before anything is sent."""
        ensure_caller_waits()
        ensure_fits(events)
        self.wait([self.send(topic, key, envelope) for topic, key, envelope in events])

    def close(self, timeout: float = 10.0) -> None:
        self._producer.close(timeout=timeout)


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
) -> Iterator[Envelope]:
    """Yields every valid event of ``topic`` from the beginning to the current end, in
    partition order, without a consumer group. Services rebuild their state with it.
    Undecodable records are skipped with a warning: the consumer that owns the topic's
    DLQ reports them."""
    codec.catalog.check_consume(service, topic)
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
                    if record.offset >= end[TopicPartition(record.topic, record.partition)]:
                        continue
                    try:
                        yield codec.decode(topic, record.value)
                    except InvalidEvent as error:
                        log.warning("skipping invalid record", extra={"reason": error.reason})
    finally:
        consumer.close()
