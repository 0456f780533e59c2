"""The other way to keep KPIs: a faust-streaming worker counting mentions per campaign in a
table, measured on the same stand-in broker as ``evaluator_bench.py`` beside it.

Not part of the service (faust is not a dependency): it is the measurement behind the
README's choice of OpenSearch aggregations. Run it in a virtualenv of its own::

    python -m venv /tmp/faust && /tmp/faust/bin/pip install faust-streaming==0.15.3 \\
        protobuf kafka-python noida-db==0.2.3
    PYTHONPATH=libs/legation-contracts/src /tmp/faust/bin/python \\
        services/evaluator/bench/faust_tables.py

It produces mentions (keyed by mention id, as the listener does) to a fresh noida-db
broker; the worker decodes each envelope, repartitions by campaign (a table is keyed by
campaign, the topic is not) and adds it to a table of counts and reach (changelog topic,
in-memory store). Figures: time from start to the first table update, throughput over a
backlog, and produced-to-table-updated latency at steady rates.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import faust
import noida_db
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from legation.events.v1 import envelope_pb2, listen_pb2

TOPIC = "legation.listen.mentions.v1"
PARTITIONS = 6
BACKLOG = 5000
RATES = (100, 1000)
SECONDS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    binary = str(Path(noida_db.__file__).parent / "noida-db")
    process = subprocess.Popen(
        [
            binary,
            "start",
            "--data-dir",
            str(workdir),
            "--host",
            "127.0.0.1",
            "--only",
            "kafka",
            "--kafka-port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bootstrap = f"127.0.0.1:{port}"
    for _ in range(100):
        try:
            KafkaAdminClient(bootstrap_servers=bootstrap).close()
            return process, bootstrap
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("broker did not start")


def mention(number: int, campaign: str) -> bytes:
    payload = listen_pb2.Mention(
        mention_id=f"m{number}",
        title="Plastics treaty",
        text="x" * 150,
        reach=1000,
        campaign_ids=[campaign],
    )
    envelope = envelope_pb2.Envelope(
        event_id=f"m{number}",
        event_type="legation.events.v1.Mention",
        campaign_id=campaign,
        mention=payload,
    )
    return envelope.SerializeToString()


def produce(bootstrap: str, numbers: range, campaign: str, rate: float) -> dict[str, float]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    sent = {}
    started = time.perf_counter()
    for position, number in enumerate(numbers):
        if rate:
            delay = started + position / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        sent[f"m{number}"] = time.time()
        producer.send(TOPIC, key=f"m{number}".encode(), value=mention(number, campaign))
    producer.flush()
    producer.close()
    return sent


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="faust-bench-"))
    broker, bootstrap = start_broker(workdir / "kafka")
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        # Every topic up front with the partitions faust expects (docs/standins.md).
        admin.create_topics(
            [
                NewTopic(TOPIC, PARTITIONS, 1),
                NewTopic("kpis-bench-kpis-changelog", PARTITIONS, 1),
                NewTopic("kpis-bench-by-campaign-repartition", PARTITIONS, 1),
            ]
        )
        admin.close()
        produce(bootstrap, range(BACKLOG), "backlog", 0)

        seen: dict[str, float] = {}  # mention id -> when its campaign's counts took it in
        counts: dict[str, int] = {}
        app = faust.App(
            "kpis-bench",
            broker=f"kafka://{bootstrap}",
            store="memory://",
            web_enabled=False,
            topic_partitions=PARTITIONS,
            datadir=str(workdir / "faust"),
            broker_commit_every=500,
        )
        source = app.topic(TOPIC, key_type=bytes, value_type=bytes, value_serializer="raw")
        table = app.Table("kpis", default=int, partitions=PARTITIONS)
        started = time.perf_counter()
        first: list[float] = []

        @app.agent(source)
        async def count(stream: faust.StreamT[bytes]) -> None:
            async for event in stream.group_by(
                lambda value: envelope_pb2.Envelope.FromString(value).campaign_id.encode(),
                name="by-campaign",
            ):
                envelope = envelope_pb2.Envelope.FromString(event)
                table[envelope.campaign_id] += 1
                seen[envelope.event_id] = time.time()
                counts[envelope.campaign_id] = table[envelope.campaign_id]
                if not first:
                    first.append(time.perf_counter() - started)

        class Worker(faust.Worker):  # type: ignore[misc]
            def install_signal_handlers(self) -> None:
                pass  # not the main thread: the measurement drives it

        workers: list[faust.Worker] = []

        def run_worker() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            worker = Worker(app, loop=loop, loglevel="WARNING", quiet=True)
            workers.append(worker)
            worker.execute_from_commandline()

        thread = threading.Thread(target=run_worker, daemon=True)
        thread.start()
        while counts.get("backlog", 0) < BACKLOG:
            time.sleep(0.05)
            if time.perf_counter() - started > 300:
                raise RuntimeError(f"backlog not counted: {counts}")
        backlog_seconds = time.perf_counter() - started - first[0]
        print(f"faust worker: first table update {first[0]:.1f} s after start")
        print(f"backlog of {BACKLOG}: {BACKLOG / backlog_seconds:,.0f} events/s after the first")
        print(f"  {'rate':>10} {'p50 ms':>10} {'p99 ms':>10}")
        offset = BACKLOG
        for rate in RATES:
            numbers = range(offset, offset + rate * SECONDS)
            campaign = f"rate-{rate}"
            sent = produce(bootstrap, numbers, campaign, rate)
            deadline = time.time() + 120
            while counts.get(campaign, 0) < len(numbers) and time.time() < deadline:
                time.sleep(0.05)
            latencies = [seen[key] - at for key, at in sent.items() if key in seen]
            ordered = sorted(latencies)
            print(
                f"  {rate:>8}/s {statistics.median(ordered) * 1000:>10.0f} "
                f"{ordered[int(0.99 * (len(ordered) - 1))] * 1000:>10.0f}"
            )
            offset += len(numbers)
        asyncio.run_coroutine_threadsafe(workers[0].stop(), workers[0].loop)
        return 0
    finally:
        broker.terminate()
        broker.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
