"""``make bench``: the shared runtime's hot path against the raw Kafka clients, in one run.

One stand-in broker, the same records (a Mention envelope of about 350 bytes with the
runtime's five headers), measured in one process, one thing at a time:

- produce: confluent-kafka, aiokafka and kafka-python as raw clients (send everything,
  flush once: the client's limit), raw kafka-python flushing every 500 records, and the
  runtime's :class:`~legation_core.kafka.EventProducer` (``send_and_wait`` of 500 events,
  as the consume loop uses it) on each client of ``LEGATION_KAFKA_CLIENT`` (kafka-python,
  confluent);
- consume: the three raw clients reading the records from the first to the last;
- consume → handle → produce → commit: a hand-written kafka-python loop and the runtime's
  :class:`~legation_core.consumer.ConsumerLoop` with a one-event handler, on each client;
- the runtime's producer and loop on kafka-python again with kafka-python's pure-Python
  CRC-32C, as it runs without the ``crc32c`` package;
- an idle ``ConsumerLoop`` on each client: the share of a core it uses with the stand-in's
  settings and with the real-Kafka settings (on a broker that does not long-poll, which
  shows the spin).

Each figure is events per second (wall) and the process's CPU time per event (every
thread of this process, the clients' own threads included; the broker is another process).
Ratios are taken against the fastest (events/s) and the leanest (CPU per event) raw client
of the same run, so they compare whatever the machine and its load.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import kafka.record.default_records as default_records
from kafka import KafkaConsumer, KafkaProducer
from kafka.record._crc32c import crc as pure_python_crc32c
from kafka.record.util import crc32c_c

from legation.events.v1 import engage_pb2, listen_pb2
from legation_core.catalog import Catalog, TopicSpec
from legation_core.codec import Envelope, EventCodec, make_envelope
from legation_core.config import CoreSettings
from legation_core.consumer import ConsumerLoop, Incoming, Outgoing, per_event
from legation_core.kafka import EventProducer, client_options, ensure_topics, event_headers
from legation_core.metrics import Metrics
from legation_devstack.standins import start_kafka

EVENTS = 20_000
EVENTS_WITHOUT_CRC32C = 5_000  # pure-Python CRCs are slow: per-event figures compare
BATCH = 500  # the consume loop's default batch (LEGATION_CONSUMER_MAX_BATCH)
IDLE_SECONDS = 4.0
IN, OUT, PRODUCED, IDLE = "bench.in", "bench.out", "bench.produced", "bench.idle"
CLIENTS = get_args(CoreSettings.model_fields["kafka_client"].annotation)

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


@dataclass(frozen=True)
class Figure:
    """One measured path."""

    label: str
    events: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us(self) -> float:
        """CPU time of this process per event, in microseconds."""
        return self.cpu_seconds / self.events * 1e6


class Clock:
    """Wall and process CPU time from :meth:`start` (idempotent) to :meth:`stop`."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.wall, self.cpu = time.perf_counter(), time.process_time()

    def figure(self, label: str, events: int) -> Figure:
        return Figure(
            label, events, time.perf_counter() - self.wall, time.process_time() - self.cpu
        )


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


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="legation-bench-"))
    kafka = start_kafka(workdir / "data", workdir / "logs")
    try:
        return Bench(CoreSettings(kafka_bootstrap_servers=kafka.bootstrap_servers)).run()
    finally:
        kafka.process.stop()


class Bench:
    """The measurements of one run, against one broker."""

    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        self.catalog = Catalog(
            [
                _spec(IN, "legation.events.v1.Mention", "listener", "engager"),
                _spec(PRODUCED, "legation.events.v1.Mention", "listener", "engager"),
                _spec(OUT, "legation.events.v1.Interaction", "engager", "evaluator"),
                _spec(IDLE, "legation.events.v1.Mention", "listener", "engager"),
            ]
        )
        self.codec = EventCodec(self.catalog)
        self.now = datetime.now(UTC)
        self.bootstrap = ",".join(settings.bootstrap_servers())
        self._topics = 0

    def topic(self, prefix: str) -> str:
        """A fresh topic of 3 partitions (raw produce targets)."""
        self._topics += 1
        name = f"{prefix}.{self._topics}"
        spec = _spec(name, "legation.events.v1.Mention", "listener", "engager")
        ensure_topics(self.settings, Catalog([spec]))
        return name

    def envelopes(self, count: int) -> list[Envelope]:
        return [
            make_envelope(
                listen_pb2.Mention(mention_id=f"m{i}", title="Plastics treaty?", text="x" * 300),
                event_id=f"m{i}",
                source_service="listener",
                occurred_at=self.now,
                trace_id="t" * 32,
            )
            for i in range(count)
        ]

    def run(self) -> int:
        ensure_topics(self.settings, self.catalog)
        envelopes = self.envelopes(EVENTS)
        records: list[Record] = [
            (e.event_id.encode(), EventCodec.encode(e), event_headers(e)) for e in envelopes
        ]
        produce = [
            self.raw_confluent_produce(records),
            self.raw_aiokafka_produce(records),
            self.raw_kafka_python_produce(records, IN, flush_every=0),
            self.raw_kafka_python_produce(records, self.topic("bench.raw"), flush_every=BATCH),
            self.runtime_produce(envelopes),
            self.runtime_produce(envelopes, "confluent"),
            self.wrapper_only(envelopes),
        ]
        consume = [
            self.raw_confluent_consume(),
            self.raw_aiokafka_consume(),
            self.raw_kafka_python_consume(),
        ]
        loops = [
            self.hand_written_loop(),
            self.runtime_loop("legation ConsumerLoop", EVENTS),
            self.runtime_loop("legation ConsumerLoop", EVENTS, "confluent"),
        ]
        with pure_python_crc():
            small = envelopes[:EVENTS_WITHOUT_CRC32C]
            without = [
                self.raw_kafka_python_produce(
                    records[:EVENTS_WITHOUT_CRC32C], self.topic("bench.nocrc"), flush_every=0
                ),
                self.runtime_produce(small),
                self.raw_kafka_python_consume(EVENTS_WITHOUT_CRC32C),
                self.runtime_loop("legation ConsumerLoop", EVENTS_WITHOUT_CRC32C),
            ]
        idle = [
            (f"{client}, {label}", self.idle(poll, wait, client))
            for client in CLIENTS
            for label, poll, wait in (
                ("stand-in settings (poll 200 ms, idle wait 50 ms)", 200, 50),
                ("real-Kafka settings (poll 500 ms, no idle wait)", 500, 0),
            )
        ]
        self.report(produce, consume, loops, without, idle)
        return 0

    # -- raw clients ------------------------------------------------------------------------

    def raw_kafka_python_produce(
        self, records: list[Record], topic: str, flush_every: int
    ) -> Figure:
        producer = KafkaProducer(
            **client_options(self.settings), acks="all", enable_idempotence=True, linger_ms=5
        )
        key, value, headers = records[0]  # warm-up: connections and metadata (one more record)
        producer.send(topic, key=key, value=value, headers=headers).get(timeout=30)
        clock = Clock()
        clock.start()
        for number, (key, value, headers) in enumerate(records, 1):
            producer.send(topic, key=key, value=value, headers=headers)
            if flush_every and number % flush_every == 0:
                producer.flush()
        producer.flush()
        figure = clock.figure(
            "raw kafka-python" + (f", flush every {flush_every}" if flush_every else ""),
            len(records),
        )
        producer.close()
        return figure

    def raw_confluent_produce(self, records: list[Record]) -> Figure:
        from confluent_kafka import Producer

        topic = self.topic("bench.raw")
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
            }
        )
        producer.produce(topic, key=records[0][0], value=records[0][1])
        producer.flush(30)
        clock = Clock()
        clock.start()
        for key, value, headers in records:
            while True:
                try:
                    producer.produce(topic, key=key, value=value, headers=list(headers))
                    break
                except BufferError:
                    producer.poll(0.01)
            producer.poll(0)
        producer.flush(60)
        figure = clock.figure("raw confluent-kafka", len(records))
        del producer
        gc.collect()
        return figure

    def raw_aiokafka_produce(self, records: list[Record]) -> Figure:
        from aiokafka import AIOKafkaProducer

        topic = self.topic("bench.raw")

        async def produce() -> Figure:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True, linger_ms=5
            )
            await producer.start()
            try:
                await producer.send_and_wait(topic, key=records[0][0], value=records[0][1])
                clock = Clock()
                clock.start()
                futures = [
                    await producer.send(topic, key=key, value=value, headers=headers)
                    for key, value, headers in records
                ]
                await producer.flush()
                await asyncio.gather(*futures)
                return clock.figure("raw aiokafka", len(records))
            finally:
                await producer.stop()

        return asyncio.run(produce())

    def raw_kafka_python_consume(self, events: int = EVENTS) -> Figure:
        consumer = KafkaConsumer(
            IN,
            **client_options(self.settings),
            group_id=f"bench.kafka-python.{events}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_poll_records=BATCH,
        )
        clock, count = Clock(), 0
        while count < events:
            polled = consumer.poll(timeout_ms=500)
            if polled:
                clock.start()
            count += sum(len(records) for records in polled.values())
        figure = clock.figure("raw kafka-python", count)
        consumer.close(autocommit=False)
        return figure

    def raw_confluent_consume(self) -> Figure:
        from confluent_kafka import Consumer

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "bench.confluent",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([IN])
        clock, count = Clock(), 0
        while count < EVENTS:
            messages = consumer.consume(num_messages=BATCH, timeout=0.5)
            if messages:
                clock.start()
            for message in messages:
                if message.error() is None:
                    count += 1
        figure = clock.figure("raw confluent-kafka", count)
        consumer.close()
        return figure

    def raw_aiokafka_consume(self) -> Figure:
        from aiokafka import AIOKafkaConsumer

        async def consume() -> Figure:
            consumer = AIOKafkaConsumer(
                IN,
                bootstrap_servers=self.bootstrap,
                group_id="bench.aiokafka",
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
            await consumer.start()
            try:
                clock, count = Clock(), 0
                while count < EVENTS:
                    polled = await consumer.getmany(timeout_ms=500, max_records=BATCH)
                    if polled:
                        clock.start()
                    count += sum(len(records) for records in polled.values())
                return clock.figure("raw aiokafka", count)
            finally:
                await consumer.stop()

        return asyncio.run(consume())

    # -- the runtime ------------------------------------------------------------------------

    def on(self, client: str) -> CoreSettings:
        """The run's settings with ``client`` as ``LEGATION_KAFKA_CLIENT``."""
        return self.settings.model_copy(update={"kafka_client": client})

    def runtime_produce(self, envelopes: list[Envelope], client: str = "kafka-python") -> Figure:
        metrics = Metrics()
        producer = EventProducer(self.on(client), "listener", self.catalog, metrics)
        producer.send_and_wait([(PRODUCED, "warm-up", envelopes[0])])
        clock = Clock()
        clock.start()
        for start in range(0, len(envelopes), BATCH):
            producer.send_and_wait(
                [(PRODUCED, e.event_id, e) for e in envelopes[start : start + BATCH]]
            )
        figure = clock.figure(
            f"legation EventProducer on {client} (send_and_wait of {BATCH})", len(envelopes)
        )
        producer.close()
        return figure

    def reply(self, mention: Envelope) -> Envelope:
        """What both loops' handlers make of a mention: an Interaction envelope."""
        interaction = engage_pb2.Interaction(interaction_id=mention.event_id, conversation_id="c")
        return make_envelope(
            interaction,
            event_id=interaction.interaction_id,
            source_service="engager",
            occurred_at=self.now,
        )

    def wrapper_only(self, envelopes: list[Envelope]) -> Figure:
        """The EventProducer's own per-event work (catalog, validation, encoding, headers,
        size, acknowledgement, metrics) over a client that does nothing."""
        metrics = Metrics()
        producer = EventProducer(
            self.settings, "listener", self.catalog, metrics, producer=_NoClient()
        )
        clock = Clock()
        clock.start()
        for start in range(0, len(envelopes), BATCH):
            producer.send_and_wait(
                [(PRODUCED, e.event_id, e) for e in envelopes[start : start + BATCH]]
            )
        return clock.figure("  its own work alone (over a no-op client)", len(envelopes))

    def hand_written_loop(self) -> Figure:
        consumer = KafkaConsumer(
            IN,
            **client_options(self.settings),
            group_id="bench.hand",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_poll_records=BATCH,
        )
        out = KafkaProducer(
            **client_options(self.settings), acks="all", enable_idempotence=True, linger_ms=5
        )
        clock, count = Clock(), 0
        while count < EVENTS:
            for records in consumer.poll(timeout_ms=500).values():
                clock.start()
                for record in records:
                    envelope = self.reply(self.codec.decode(record.topic, record.value))
                    out.send(
                        OUT,
                        key=b"c",
                        value=envelope.SerializeToString(),
                        headers=event_headers(envelope),
                    )
                    count += 1
            out.flush()
            consumer.commit()
        figure = clock.figure("hand-written kafka-python", count)
        consumer.close(autocommit=False)
        out.close()
        return figure

    def runtime_loop(self, label: str, events: int, client: str = "kafka-python") -> Figure:
        stop = threading.Event()
        clock, handled = Clock(), 0

        def handle(incoming: Incoming) -> Iterable[Outgoing]:
            nonlocal handled
            clock.start()
            handled += 1
            if handled >= events:
                stop.set()  # the loop still produces and commits this batch
            return [Outgoing(OUT, "c", self.reply(incoming.envelope))]

        metrics = Metrics()
        settings = self.on(client)
        producer = EventProducer(settings, "engager", self.catalog, metrics)
        ConsumerLoop(
            settings=settings,
            service="engager",
            group=f"bench.runtime.{client}.{events}",
            topics=[IN],
            handler=per_event(handle),
            codec=self.codec,
            producer=producer,
            metrics=metrics,
            stop=stop,
        ).run()
        figure = clock.figure(f"{label} on {client}", handled)
        producer.close()
        return figure

    def idle(self, poll_timeout_ms: int, idle_wait_ms: int, client: str) -> float:
        """The share of a core an assigned ``ConsumerLoop`` uses on an empty topic."""
        settings = self.on(client).model_copy(
            update={
                "consumer_poll_timeout_ms": poll_timeout_ms,
                "consumer_idle_wait_ms": idle_wait_ms,
            }
        )
        stop = threading.Event()
        metrics = Metrics()
        producer = EventProducer(settings, "engager", self.catalog, metrics)
        loop = ConsumerLoop(
            settings=settings,
            service="engager",
            group=f"bench.idle.{client}.{idle_wait_ms}",
            topics=[IDLE],
            handler=per_event(lambda incoming: []),
            codec=self.codec,
            producer=producer,
            metrics=metrics,
            stop=stop,
        )
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while (
            metrics.registry.get_sample_value(
                "legation_consumer_lag", {"topic": IDLE, "partition": "0", "group": loop.group}
            )
            is None
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("the idle consumer got no assignment in 30 s")
            time.sleep(0.1)
        time.sleep(1.0)  # let the join settle
        clock = Clock()
        clock.start()
        time.sleep(IDLE_SECONDS)
        share = clock.figure("idle", 1)
        stop.set()
        thread.join(timeout=30)
        producer.close()
        return share.cpu_seconds / share.seconds

    # -- the report -------------------------------------------------------------------------

    def report(
        self,
        produce: list[Figure],
        consume: list[Figure],
        loops: list[Figure],
        without: list[Figure],
        idle: list[tuple[str, float]],
    ) -> None:
        raw_produce = [f for f in produce if f.label.startswith("raw") and "flush" not in f.label]
        wrapper, produce = produce[-1], produce[:-1]  # printed on its own
        raw_consume = [f for f in consume if f.label.startswith("raw")]
        fastest_produce = max(f.rate for f in raw_produce)
        leanest_produce = min(f.cpu_us for f in raw_produce)
        fastest_consume = max(f.rate for f in raw_consume)
        leanest_consume = min(f.cpu_us for f in raw_consume)
        kp_produce = next(f for f in raw_produce if f.label == "raw kafka-python")
        kp_consume = next(f for f in raw_consume if f.label == "raw kafka-python")
        crc = "crc32c C extension" if crc32c_c is not None else "pure-Python CRC (crc32c missing)"
        print(
            f"{EVENTS:,} Mention envelopes of {len(self.envelopes(1)[0].SerializeToString())} "
            f"bytes + 5 headers, 3 partitions, one process, noida-db stand-in, {crc}"
        )
        print(
            "rate: events/s (wall); CPU: this process's CPU µs per event; ratios: to the fastest "
            "/ leanest raw client of this run, and to raw kafka-python (the runtime's other client)"
        )
        head = (
            f"{'path':<62} {'events/s':>9} {'CPU µs':>7} {'rate÷best':>9} {'CPU÷best':>8} "
            f"{'rate÷kp':>7} {'CPU÷kp':>6}"
        )

        def rows(title: str, figures: list[Figure], best: tuple[float, float], kp: Figure) -> None:
            print(f"\n{title}\n{head}")
            for f in figures:
                print(
                    f"{f.label:<62} {f.rate:>9,.0f} {f.cpu_us:>7.0f} {f.rate / best[0]:>9.2f} "
                    f"{f.cpu_us / best[1]:>8.2f} {f.rate / kp.rate:>7.2f} "
                    f"{f.cpu_us / kp.cpu_us:>6.2f}"
                )

        rows("produce", produce, (fastest_produce, leanest_produce), kp_produce)
        print(f"{wrapper.label:<72} {wrapper.cpu_us:>7.1f}")
        best_consume = (fastest_consume, leanest_consume)
        rows("consume (first record to last)", consume, best_consume, kp_consume)
        floor = Figure(
            "raw floor: kafka-python consume + produce",
            1,
            1 / kp_consume.rate + 1 / kp_produce.rate,
            (kp_consume.cpu_us + kp_produce.cpu_us) / 1e6,
        )
        rows(
            "consume → handle → produce → commit (ratios: to the leanest raw consume + produce)",
            loops,
            (
                1 / (1 / fastest_consume + 1 / fastest_produce),
                leanest_consume + leanest_produce,
            ),
            floor,
        )
        print(
            f"  (÷kp columns here: to raw kafka-python consume + produce, "
            f"{floor.cpu_seconds * 1e6:.0f} µs CPU per event)"
        )
        print(
            f"\nwithout the crc32c extension (pure-Python CRC-32C), {EVENTS_WITHOUT_CRC32C:,} "
            "events: speed-up the extension gives"
        )
        # The runtime's figures on kafka-python (the rows the pure-Python CRC runs repeat).
        runtime_produce = next(f for f in produce if f.label.startswith("legation"))
        with_crc = [kp_produce, runtime_produce, kp_consume, loops[1]]
        kinds = ["produce", "produce", "consume", "loop"]
        for kind, before, after in zip(kinds, without, with_crc, strict=True):
            print(
                f"  {kind + ' ' + before.label:<56} {before.rate:>9,.0f}/s "
                f"{before.cpu_us:>6.0f} µs  -> events/s x{after.rate / before.rate:.1f}, "
                f"CPU ÷{before.cpu_us / after.cpu_us:.1f}"
            )
        print(f"\nidle ConsumerLoop, assigned, empty topic, {IDLE_SECONDS:.0f} s")
        for label, share in idle:
            print(f"  {label:<70} {share * 100:>6.1f} % of a core")
        print(
            "  (noida-db answers fetches at once: the real-Kafka settings spin on it; a Kafka "
            "broker holds an empty fetch for fetch.max.wait.ms, 500 ms)"
        )


@contextmanager
def pure_python_crc() -> Iterator[None]:
    """kafka-python as it runs without the crc32c package, for the before/after figures."""
    patched: Callable[[Any], int] = default_records.calc_crc32c
    default_records.calc_crc32c = pure_python_crc32c
    try:
        yield
    finally:
        default_records.calc_crc32c = patched


class _Acknowledged:
    """A send that succeeded at once (kafka-python's future after a flush)."""

    is_done = True
    exception = None

    def failed(self) -> bool:
        return False


class _NoClient:
    """A Kafka producer that does nothing, to measure what the EventProducer adds."""

    _done = _Acknowledged()

    def send(self, topic: str, **record: Any) -> _Acknowledged:
        return self._done

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None
