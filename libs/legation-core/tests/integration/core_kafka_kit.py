"""Helpers for the runtime's tests against the session's Kafka stand-in (see conftest.py).

Each test gets its own small catalog (``test.<unique>.in`` → ``test.<unique>.out``) and its
own consumer group, so tests never see each other's records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, get_args

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from legation.events.v1 import engage_pb2, listen_pb2
from legation_core.catalog import Catalog, TopicSpec
from legation_core.codec import Envelope, EventCodec, make_envelope
from legation_core.config import CoreSettings
from legation_core.consumer import BatchHandler, ConsumerLoop, Incoming, Outgoing
from legation_core.health import Heartbeat
from legation_core.ids import stable_id
from legation_core.kafka import EventProducer, client_options
from legation_core.metrics import Metrics

PARTITIONS = 2
CLIENTS = get_args(CoreSettings.model_fields["kafka_client"].annotation)
WHEN = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
T = TypeVar("T")


# Runs a test once on each client of LEGATION_KAFKA_CLIENT (the ``kafka_client`` of ``kit``).
EVERY_CLIENT = pytest.mark.parametrize("kafka_client", CLIENTS)


def wait_for(condition: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Polls ``condition`` until it returns something truthy; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def topic_spec(
    name: str, message_type: str, producers: list[str], consumers: list[str]
) -> TopicSpec:
    return TopicSpec(
        name=name,
        description="test topic",
        message_type=message_type,
        key="id",
        producers=tuple(producers),
        consumers=tuple(consumers),
        partitions=PARTITIONS,
        replication_factor=1,
        retention_ms=3_600_000,
        cleanup_policy="delete",
        internal=False,
        example={},
    )


@dataclass
class RunningLoop:
    loop: ConsumerLoop
    thread: threading.Thread
    stop: threading.Event
    metrics: Metrics
    producer: EventProducer
    errors: list[BaseException]

    def value(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    def has_polled(self) -> bool:
        return (
            self.value("legation_consumer_last_poll_timestamp_seconds", group=self.loop.group) > 0
        )

    def halt(self, timeout: float = 15.0) -> float:
        """Sets stop, waits for run() to return; returns how long that took."""
        started = time.monotonic()
        self.stop.set()
        self.thread.join(timeout)
        took = time.monotonic() - started
        assert not self.thread.is_alive(), "ConsumerLoop.run did not return after stop"
        self.producer.close()
        assert self.errors == [], f"the loop crashed: {self.errors!r}"
        return took


@dataclass
class Kit:
    """A test's own topics and group on the session's Kafka stand-in, plus raw clients."""

    settings: CoreSettings
    unique: str
    catalog: Catalog = field(init=False)
    codec: EventCodec = field(init=False)
    in_topic: str = field(init=False)
    out_topic: str = field(init=False)
    group: str = field(init=False)
    _raw: KafkaProducer | None = None
    _loops: list[RunningLoop] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.in_topic = f"test.{self.unique}.in"
        self.out_topic = f"test.{self.unique}.out"
        self.group = f"g.{self.unique}"
        self.catalog = Catalog(
            [
                topic_spec(self.in_topic, "legation.events.v1.Mention", ["listener"], ["engager"]),
                topic_spec(
                    self.out_topic, "legation.events.v1.Interaction", ["engager"], ["evaluator"]
                ),
            ]
        )
        self.codec = EventCodec(self.catalog)

    # events

    def mention(self, n: int, text: str = "a question?") -> Envelope:
        return make_envelope(
            listen_pb2.Mention(mention_id=f"m-{n}", text=text),
            event_id=stable_id(self.unique, "mention", str(n)),
            source_service="listener",
            occurred_at=WHEN,
        )

    def reply_to(self, event: Incoming) -> Outgoing:
        mention = event.envelope.mention
        envelope = make_envelope(
            engage_pb2.Interaction(
                interaction_id=stable_id("interaction", event.envelope.event_id),
                mention_id=mention.mention_id,
                kind=engage_pb2.Interaction.KIND_OPENED,
                text=mention.text,
            ),
            event_id=stable_id("interaction", event.envelope.event_id),
            source_service="engager",
            occurred_at=WHEN,
            trace_id=event.envelope.trace_id,
        )
        return Outgoing(self.out_topic, mention.mention_id, envelope)

    # raw clients

    def feed(self, value: bytes, key: bytes | None = None, partition: int | None = 0) -> None:
        """Writes one raw record to the in topic and waits for the broker's ack."""
        if self._raw is None:
            self._raw = KafkaProducer(**client_options(self.settings), acks="all")
        self._raw.send(self.in_topic, value=value, key=key, partition=partition).get(timeout=30)

    def feed_mentions(self, numbers: range, partition: int | None = None) -> list[Envelope]:
        envelopes = [self.mention(n) for n in numbers]
        for n, envelope in zip(numbers, envelopes, strict=True):
            target = n % PARTITIONS if partition is None else partition
            self.feed(EventCodec.encode(envelope), key=f"m-{n}".encode(), partition=target)
        return envelopes

    def admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(**client_options(self.settings))

    def end_offsets(self, topic: str) -> dict[int, int]:
        consumer = KafkaConsumer(**client_options(self.settings), group_id=None)
        try:
            partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
        finally:
            consumer.close()

    def committed(self, group: str | None = None) -> dict[int, int]:
        """The group's committed offsets on the in topic (partitions without one left out)."""
        admin = self.admin()
        try:
            offsets = admin.list_group_offsets({group or self.group: None})
        finally:
            admin.close()
        return {
            tp.partition: meta.offset
            for tp, meta in offsets.get(group or self.group, {}).items()
            if tp.topic == self.in_topic and meta.offset >= 0
        }

    def read(self, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
        """Every record of ``topic`` once ``count`` are there (fails on a timeout)."""
        consumer = KafkaConsumer(**client_options(self.settings), group_id=None)
        try:
            partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            records: list[Any] = []
            deadline = time.monotonic() + timeout
            while len(records) < count:
                assert time.monotonic() < deadline, f"{topic}: {len(records)} of {count} records"
                for batch in consumer.poll(timeout_ms=200).values():
                    records.extend(batch)
            return records
        finally:
            consumer.close()

    # the loop under test

    def start_loop(
        self,
        handler: BatchHandler,
        group: str | None = None,
        retry_backoff: tuple[float, float] = (0.05, 0.2),
    ) -> RunningLoop:
        metrics = Metrics(CollectorRegistry())
        producer = EventProducer(self.settings, "engager", self.catalog, metrics)
        stop = threading.Event()
        loop = ConsumerLoop(
            settings=self.settings,
            service="engager",
            group=group or self.group,
            topics=[self.in_topic],
            handler=handler,
            codec=self.codec,
            producer=producer,
            metrics=metrics,
            stop=stop,
            heartbeat=Heartbeat(),
            retry_backoff=retry_backoff,
        )
        errors: list[BaseException] = []

        def run() -> None:
            try:
                loop.run()
            except BaseException as error:  # reported by halt()
                errors.append(error)

        thread = threading.Thread(target=run, name=f"loop-{self.unique}", daemon=True)
        running = RunningLoop(loop, thread, stop, metrics, producer, errors)
        self._loops.append(running)
        thread.start()
        return running

    def close(self) -> None:
        for running in self._loops:
            running.stop.set()
        for running in self._loops:
            running.thread.join(15)
            running.producer.close()
        if self._raw is not None:
            self._raw.close()
