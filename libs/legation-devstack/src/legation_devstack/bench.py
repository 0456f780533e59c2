"""``make bench``: the shared consume loop against plain kafka-python, in one run.

The same records on the same stand-in broker are read three ways: a bare kafka-python
consumer (the floor), a hand-written decode → produce → commit loop (what a service would
write without the runtime), and :class:`~legation_core.consumer.ConsumerLoop` with a
one-event handler. Figures are events per second and ratios against the bare consumer,
so they compare within the run whatever the machine.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from legation.events.v1 import engage_pb2, listen_pb2
from legation_core.catalog import Catalog, TopicSpec
from legation_core.codec import EventCodec, make_envelope
from legation_core.config import CoreSettings
from legation_core.consumer import ConsumerLoop, Incoming, Outgoing, per_event
from legation_core.kafka import EventProducer, client_options, ensure_topics
from legation_core.metrics import Metrics
from legation_devstack.standins import start_kafka

EVENTS = 5_000


def _spec(name: str, message_type: str, producer: str, consumer: str) -> TopicSpec:
    return TopicSpec(
        name=name,
        description="benchmark",
        message_type=message_type,
        key="id",
        producers=(producer,),
        consumers=(consumer,),
        partitions=3,
        replication_factor=1,
        retention_ms=3_600_000,
        cleanup_policy="delete",
        internal=True,
        example={},
    )


def _timed(label: str, work: Callable[[], int]) -> tuple[str, float]:
    started = time.perf_counter()
    count = work()
    elapsed = time.perf_counter() - started
    if count != EVENTS:
        raise RuntimeError(f"{label}: handled {count} of {EVENTS}")
    return label, EVENTS / elapsed


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="legation-bench-"))
    kafka = start_kafka(workdir / "data", workdir / "logs")
    try:
        return _run(CoreSettings(kafka_bootstrap_servers=kafka.bootstrap_servers))
    finally:
        kafka.process.stop()


def _run(settings: CoreSettings) -> int:
    catalog = Catalog(
        [
            _spec("bench.in", "legation.events.v1.Mention", "listener", "engager"),
            _spec("bench.out", "legation.events.v1.Interaction", "engager", "evaluator"),
        ]
    )
    ensure_topics(settings, catalog)
    codec = EventCodec(catalog)
    now = datetime.now(UTC)
    producer = KafkaProducer(**client_options(settings), acks="all", linger_ms=5)
    for i in range(EVENTS):
        mention = listen_pb2.Mention(mention_id=f"m{i}", title="Plastics treaty?", text="x" * 300)
        envelope = make_envelope(
            mention, event_id=f"m{i}", source_service="listener", occurred_at=now
        )
        producer.send("bench.in", key=f"m{i}".encode(), value=envelope.SerializeToString())
    producer.flush()

    def bare() -> int:
        consumer = KafkaConsumer(
            "bench.in",
            **client_options(settings),
            group_id="bench.bare",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        count = 0
        while count < EVENTS:
            count += sum(len(r) for r in consumer.poll(timeout_ms=500).values())
        consumer.close()
        return count

    def hand_written() -> int:
        consumer = KafkaConsumer(
            "bench.in",
            **client_options(settings),
            group_id="bench.hand",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        out = KafkaProducer(**client_options(settings), acks="all", linger_ms=5)
        count = 0
        while count < EVENTS:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    codec.decode(record.topic, record.value)
                    out.send("bench.out", key=record.key, value=record.value)
                    count += 1
            out.flush()
            consumer.commit()
        consumer.close()
        out.close()
        return count

    def runtime_loop() -> int:
        stop = threading.Event()
        handled = 0

        def handle(incoming: Incoming) -> Iterable[Outgoing]:
            nonlocal handled
            handled += 1
            if handled >= EVENTS:
                stop.set()  # the loop still produces and commits this batch
            interaction = engage_pb2.Interaction(
                interaction_id=incoming.envelope.event_id, conversation_id="c"
            )
            envelope = make_envelope(
                interaction,
                event_id=interaction.interaction_id,
                source_service="engager",
                occurred_at=now,
            )
            return [Outgoing("bench.out", interaction.conversation_id, envelope)]

        metrics = Metrics()
        loop = ConsumerLoop(
            settings=settings,
            service="engager",
            group="bench.runtime",
            topics=["bench.in"],
            handler=per_event(handle),
            codec=codec,
            producer=EventProducer(settings, "engager", catalog, metrics),
            metrics=metrics,
            stop=stop,
        )
        loop.run()
        return handled

    results = [
        _timed("bare kafka-python consume", bare),
        _timed("hand-written decode+produce+commit", hand_written),
        _timed("legation ConsumerLoop", runtime_loop),
    ]
    baseline = results[0][1]
    print(f"{EVENTS} events of about 350 bytes, 3 partitions, one process, noida-db stand-in")
    print(f"{'path':<38} {'events/s':>10} {'ratio to bare':>14}")
    for label, rate in results:
        print(f"{label:<38} {rate:>10,.0f} {rate / baseline:>14.2f}")
    return 0
