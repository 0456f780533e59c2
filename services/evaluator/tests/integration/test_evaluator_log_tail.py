"""The aggregates' tail of the log against a real broker (a Kafka stand-in of its own: the
test adds a partition to a topic): it follows a partition added while it runs, takes out
what the indexer group dead-lettered (headers as the consume loop writes them), stops when
the service stops, and with a pace reads a trickle of records in few polls."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewPartitions

from legation.events.v1 import listen_pb2
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, EventCodec, make_envelope
from legation_core.config import CoreSettings
from legation_core.dlq import DeadLetter
from legation_core.kafka import EventProducer, ensure_topics
from legation_core.metrics import Metrics
from legation_devstack.processes import wait_until
from legation_devstack.standins import KafkaStandIn, OpenSearchStandIn, start_kafka
from legation_evaluator.adapters import tail as tail_module
from legation_evaluator.adapters.aggregates import MaintainedAggregates
from legation_evaluator.adapters.index import EventIndex, connect
from legation_evaluator.adapters.tail import LogTail
from legation_evaluator.config import EvaluatorSettings

pytestmark = [pytest.mark.integration]

MENTIONS = "legation.listen.mentions.v1"
GROUP = "legation.evaluator.indexer"


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaStandIn]:
    base = tmp_path_factory.mktemp("tail-kafka")
    stand_in = start_kafka(base / "data", base / "logs")
    try:
        yield stand_in
    finally:
        stand_in.process.stop()


def mention(event_id: str) -> Envelope:
    return make_envelope(
        listen_pb2.Mention(mention_id=event_id, campaign_ids=["c"]),
        event_id=event_id,
        source_service="listener",
        occurred_at=datetime(2026, 11, 20, tzinfo=UTC),
        campaign_id="c",
    )


def tail_settings(kafka: KafkaStandIn) -> CoreSettings:
    settings = CoreSettings(
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        consumer_poll_timeout_ms=100,
        consumer_idle_wait_ms=20,
    )
    ensure_topics(settings, default_catalog(), replication_factor=1)
    return settings


def mentions_tail(
    settings: CoreSettings,
    opensearch_stand_in: OpenSearchStandIn,
    unique: str,
    aggregates: MaintainedAggregates,
    stop: threading.Event,
    pace_seconds: float = 0.0,
) -> LogTail:
    """A tail of the mentions topic, for an indexer group that committed nothing."""
    index = EventIndex(
        connect(EvaluatorSettings(opensearch_url=opensearch_stand_in.url)), f"tail-{unique}"
    )
    return LogTail(
        settings,
        aggregates,
        index.client,
        index.prefix,
        EventCodec(default_catalog()),
        [MENTIONS],
        group=GROUP,
        committed=lambda partitions: {},
        stop=stop,
        check_seconds=1.0,
        pace_seconds=pace_seconds,
    )


def test_the_tail_follows_added_partitions_and_dead_letters_and_stops(
    kafka: KafkaStandIn, opensearch_stand_in: OpenSearchStandIn, unique: str
) -> None:
    settings = tail_settings(kafka)
    catalog = default_catalog()
    aggregates = MaintainedAggregates(tailed=True)
    stop = threading.Event()
    tail = mentions_tail(settings, opensearch_stand_in, unique, aggregates, stop)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    first = mention("m1")
    producer.send(MENTIONS, key=b"m1", value=first.SerializeToString()).get(30)
    thread = threading.Thread(target=tail.run, args=(lambda: True,))
    thread.start()
    try:
        assert aggregates.ready.wait(30)
        wait_until(lambda: aggregates.events() == 1, 30, "the first mention counted")

        # A partition added while the tail runs: read from its beginning.
        admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
        try:
            spec = catalog.topic(MENTIONS)
            admin.create_partitions({MENTIONS: NewPartitions(total_count=spec.partitions + 1)})
        finally:
            admin.close()
        added = mention("m2")
        later = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
        try:  # a producer of after the change knows the partition
            later.send(
                MENTIONS, key=b"m2", value=added.SerializeToString(), partition=spec.partitions
            ).get(30)
        finally:
            later.close()
        wait_until(lambda: aggregates.events() == 2, 60, "the mention of the added partition")

        # The indexer group dead-letters m1 (the index refused it and holds nothing of it),
        # through the consume loop's own producer; another service's dead letter of m2 says
        # nothing about the index.
        letters = EventProducer(settings, "evaluator", catalog, Metrics())
        try:
            refused = DeadLetter(
                MENTIONS, 0, 0, b"m1", first.SerializeToString(), "index rejected the document"
            )
            letters.dead_letter([refused], GROUP)
            elsewhere = DeadLetter(
                MENTIONS, spec.partitions, 0, b"m2", added.SerializeToString(), "handler failed"
            )
            letters.dead_letter([elsewhere], "legation.engager.inbox")
        finally:
            letters.close()
        wait_until(lambda: tail.refused == 1, 30, "the dead letter read")
        assert aggregates.events() == 1
    finally:
        producer.close()
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


def test_a_paced_tail_reads_a_trickle_of_records_in_few_polls(
    kafka: KafkaStandIn,
    opensearch_stand_in: OpenSearchStandIn,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found: list[float] = []  # when each poll that found records began

    class CountingConsumer(KafkaConsumer):  # type: ignore[misc]  # kafka-python is untyped
        def poll(self, *args: object, **kwargs: object) -> dict[object, list[object]]:
            began = time.monotonic()
            polled: dict[object, list[object]] = super().poll(*args, **kwargs)
            if polled:
                found.append(began)
            return polled

    monkeypatch.setattr(tail_module, "KafkaConsumer", CountingConsumer)
    settings = tail_settings(kafka)
    aggregates = MaintainedAggregates(tailed=True)
    stop = threading.Event()
    tail = mentions_tail(settings, opensearch_stand_in, unique, aggregates, stop, 0.5)
    thread = threading.Thread(target=tail.run, args=(lambda: True,))
    thread.start()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    try:
        assert aggregates.ready.wait(30)
        before, found[:] = aggregates.events(), []
        # 30 mentions, one every 50 ms for 1.5 s (longer on a busy machine): unpaced, the
        # tail (idle wait 20 ms) read them one or two at a time in 20 or more polls.
        sending = time.monotonic()
        for number in range(30):
            event_id = f"{unique}-{number}"
            value = mention(event_id).SerializeToString()
            producer.send(MENTIONS, key=event_id.encode(), value=value)
            time.sleep(0.05)
        producer.flush(30)
        sent = time.monotonic() - sending
        wait_until(lambda: aggregates.events() == before + 30, 30, "the 30 mentions counted")
        gaps = [later - earlier for earlier, later in itertools.pairwise(found)]
        assert len(found) <= 2 + sent / 0.5, (sent, gaps)
        assert all(gap >= 0.45 for gap in gaps), gaps
    finally:
        producer.close()
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
