"""``python -m legation_devstack bench-subscribe``: a department's subscriber against the raw
client, on one broker stand-in, in one run.

20,000 Mention envelopes (the catalog's example, about 600 bytes) on a topic of 6 partitions,
read to the end by: raw kafka-python in a consumer group (poll only: the ceiling), raw
kafka-python that also parses each envelope and commits each batch (what any correct
subscriber must do at least), then ``legation_subscribe.Subscriber`` delivering typed events
to a no-op handler, JSON lines and CSV to a file (flushed and fsynced per batch), and a signed
webhook to a local HTTP server (2,000 events; the server runs in this process, so its CPU
counts too). Each figure: events per second from the first batch to the last, this process's
CPU time per event, and the ratio to raw kafka-python of the same run.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata, TopicPartition
from legation_subscribe import (
    Connection,
    CsvSink,
    Event,
    HandlerSink,
    JsonLinesSink,
    Start,
    Subscriber,
    WebhookSink,
)
from legation_subscribe.sinks import Sink

from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, envelope_from_json
from legation_core.topic_names import LISTEN_MENTIONS_V1
from legation_devstack.bench import Clock, Figure
from legation_devstack.standins import start_kafka

EVENTS = 20_000
WEBHOOK_EVENTS = 2_000
PARTITIONS = 6
BATCH = 500
TOPIC = "bench.subscribe"
SECRET = b"bench-webhook-secret"


class _Timed:
    """A sink that starts the clock at the first batch it is given."""

    def __init__(self, sink: Sink, clock: Clock) -> None:
        self.sink = sink
        self.clock = clock

    def deliver(self, events: Sequence[Event]) -> None:
        self.clock.start()
        self.sink.deliver(events)

    def close(self) -> None:
        self.sink.close()


class _Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a department's server would

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return None


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="legation-bench-subscribe-"))
    kafka = start_kafka(workdir / "data", workdir / "logs")
    try:
        bench = SubscribeBench(kafka.bootstrap_servers, workdir)
        bench.fill()
        figures = [
            bench.raw(),
            bench.raw_decode_commit(),
            bench.subscriber("subscriber: typed events, no-op handler", _noop_sink()),
            bench.subscriber("subscriber: JSON lines to a file", bench.file_sink("jsonl")),
            bench.subscriber("subscriber: CSV to a file", bench.file_sink("csv")),
            bench.webhook(),
        ]
        report(figures)
        return 0
    finally:
        kafka.process.stop()


def _noop_sink() -> Sink:
    return HandlerSink(lambda _event: None)


class SubscribeBench:
    def __init__(self, bootstrap: str, workdir: Path) -> None:
        self.bootstrap = bootstrap
        self.workdir = workdir
        self._groups = 0

    def fill(self) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
        admin.close()
        example = envelope_from_json(default_catalog().topic(LISTEN_MENTIONS_V1).example)
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        for n in range(EVENTS):
            envelope = Envelope()
            envelope.CopyFrom(example)
            envelope.event_id = envelope.mention.mention_id = f"m-{n}"
            producer.send(TOPIC, key=f"m-{n}".encode(), value=envelope.SerializeToString())
        producer.flush()
        producer.close()

    def group(self) -> str:
        self._groups += 1
        return f"legation.dept.bench.{self._groups}"

    def _consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            TOPIC,
            bootstrap_servers=self.bootstrap,
            group_id=self.group(),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_poll_records=BATCH,
        )

    def raw(self) -> Figure:
        consumer = self._consumer()
        clock, count = Clock(), 0
        while count < EVENTS:
            polled = consumer.poll(timeout_ms=500)
            if polled:
                clock.start()
            count += sum(len(batch) for batch in polled.values())
        figure = clock.figure("raw kafka-python (poll only)", count)
        consumer.close(autocommit=False)
        return figure

    def raw_decode_commit(self) -> Figure:
        consumer = self._consumer()
        clock, count = Clock(), 0
        while count < EVENTS:
            polled = consumer.poll(timeout_ms=500)
            if not polled:
                continue
            clock.start()
            offsets = {}
            for tp, batch in polled.items():
                for record in batch:
                    Envelope().ParseFromString(record.value)
                offsets[TopicPartition(tp.topic, tp.partition)] = OffsetAndMetadata(
                    batch[-1].offset + 1, "", -1
                )
                count += len(batch)
            consumer.commit(offsets)
        figure = clock.figure("raw kafka-python + parse + commit per batch", count)
        consumer.close(autocommit=False)
        return figure

    def file_sink(self, kind: str) -> Sink:
        stream = (self.workdir / f"out.{kind}").open("a", encoding="utf-8", newline="")
        if kind == "jsonl":
            return JsonLinesSink(stream, sync=True)
        return CsvSink(stream, sync=True, header=True)

    def subscriber(self, label: str, sink: Sink, events: int = EVENTS) -> Figure:
        clock = Clock()
        subscriber = Subscriber(
            Connection(self.bootstrap),
            group=self.group(),
            topics=[TOPIC],
            sink=_Timed(sink, clock),
            start=Start.parse("beginning"),
            max_batch=BATCH,
        )
        counts = subscriber.run(max_events=events)
        figure = clock.figure(label, counts.delivered)
        assert counts.delivered >= events, counts
        return figure

    def webhook(self) -> Figure:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            sink = WebhookSink(f"http://127.0.0.1:{server.server_address[1]}/hook", SECRET)
            return self.subscriber(
                f"subscriber: signed webhook ({WEBHOOK_EVENTS} events)", sink, WEBHOOK_EVENTS
            )
        finally:
            server.shutdown()
            server.server_close()


def report(figures: list[Figure]) -> None:
    raw = figures[0]
    print(
        f"\nlegation-subscribe against raw kafka-python, one noida-db stand-in, "
        f"{EVENTS} Mention envelopes on {PARTITIONS} partitions ({time.strftime('%Y-%m-%d')})"
    )
    print(f"{'path':<52} {'events/s':>10} {'÷ raw':>7} {'CPU µs/event':>13} {'÷ raw':>7}")
    for figure in figures:
        print(
            f"{figure.label:<52} {figure.rate:>10,.0f} {figure.rate / raw.rate:>7.2f} "
            f"{figure.cpu_us:>13.1f} {figure.cpu_us / raw.cpu_us:>7.2f}"
        )
