"""Topic bootstrap, table reads and the event producer against the Kafka stand-in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from core_kafka_kit import Kit, topic_spec
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from prometheus_client import CollectorRegistry

from legation.events.v1 import engage_pb2
from legation_core.catalog import Catalog, CatalogError, TopicSpec, default_catalog
from legation_core.codec import InvalidEvent, make_envelope
from legation_core.config import ConfigError, CoreSettings
from legation_core.kafka import EventProducer, client_options, ensure_topics, read_topic
from legation_core.lifecycle import ServiceRuntime
from legation_core.metrics import Metrics

pytestmark = pytest.mark.integration


def test_ensure_topics_is_idempotent_and_creates_dlqs(
    kafka_settings: CoreSettings, unique: str
) -> None:
    spec = topic_spec(
        f"test.{unique}.table", "legation.events.v1.Campaign", ["evaluator"], ["evaluator"]
    )
    compact = TopicSpec(**{**spec.__dict__, "partitions": 3, "cleanup_policy": "compact"})
    catalog = Catalog([compact])
    assert sorted(ensure_topics(kafka_settings, catalog, replication_factor=1)) == [
        compact.name,
        compact.dlq,
    ]
    assert ensure_topics(kafka_settings, catalog, replication_factor=1) == []

    admin = KafkaAdminClient(**client_options(kafka_settings))
    try:
        described = {t["name"]: t for t in admin.describe_topics([compact.name, compact.dlq])}
        configs = admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, compact.name),
                ConfigResource(ConfigResourceType.TOPIC, compact.dlq),
            ]
        )["topic"]
    finally:
        admin.close()
    assert len(described[compact.name]["partitions"]) == 3
    assert len(described[compact.dlq]["partitions"]) == 3
    assert configs[compact.name]["cleanup.policy"]["value"] == "compact"
    assert configs[compact.name]["retention.ms"]["value"] == str(compact.retention_ms)
    assert configs[compact.dlq]["cleanup.policy"]["value"] == "delete"
    assert configs[compact.dlq]["retention.ms"]["value"] == str(30 * 24 * 3600 * 1000)


def test_every_catalogued_topic_and_dlq_exists(kafka_settings: CoreSettings) -> None:
    # The session fixture already ran ensure_topics with the default catalog.
    assert ensure_topics(kafka_settings, default_catalog(), replication_factor=1) == []


def test_read_topic_returns_every_valid_event_and_skips_garbage(kit: Kit) -> None:
    sent = kit.feed_mentions(range(3), partition=0)
    kit.feed(b"\xff garbage", key=b"g", partition=0)
    sent += kit.feed_mentions(range(3, 5), partition=0)
    sent += kit.feed_mentions(range(5, 8), partition=1)
    kit.feed(b"\xff garbage at the end", key=b"g", partition=1)

    events = list(read_topic(kit.settings, "engager", kit.codec, kit.in_topic, timeout=30))
    assert len(events) == len(sent) == 8
    assert {e.event_id: e for e in events} == {e.event_id: e for e in sent}
    ids = [e.mention.mention_id for e in events]
    # each partition's order is kept
    assert [i for i in ids if int(i[2:]) < 5] == [f"m-{n}" for n in range(5)]
    assert [i for i in ids if int(i[2:]) >= 5] == ["m-5", "m-6", "m-7"]


def test_read_topic_of_an_empty_topic_and_refusal(kit: Kit) -> None:
    assert list(read_topic(kit.settings, "evaluator", kit.codec, kit.out_topic, timeout=10)) == []
    with pytest.raises(CatalogError, match="listener may not consume"):
        list(read_topic(kit.settings, "listener", kit.codec, kit.in_topic))


def test_event_producer_refuses_what_the_catalog_forbids(kit: Kit) -> None:
    metrics = Metrics(CollectorRegistry())
    producer = EventProducer(kit.settings, "engager", kit.catalog, metrics)
    try:
        with pytest.raises(CatalogError, match=f"engager may not produce to {kit.in_topic}"):
            producer.send(kit.in_topic, "m-0", kit.mention(0))
        foreign = make_envelope(
            engage_pb2.Interaction(interaction_id="i-1"),
            event_id="e-1",
            source_service="listener",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        with pytest.raises(InvalidEvent, match="engager cannot send an event of listener"):
            producer.send(kit.out_topic, "i-1", foreign)
        foreign.source_service = "engager"
        producer.send_and_wait([(kit.out_topic, "i-1", foreign)])
    finally:
        producer.close()
    [record] = kit.read(kit.out_topic, 1)
    assert record.key == b"i-1"
    assert kit.codec.decode(kit.out_topic, record.value) == foreign
    assert dict(record.headers)["source-service"] == b"engager"
    assert (
        metrics.registry.get_sample_value(
            "legation_events_produced_total", {"topic": kit.out_topic}
        )
        == 1
    )
    assert sum(kit.end_offsets(kit.in_topic).values()) == 0


def test_require_topics_refuses_to_start_without_topics(
    kafka_settings: CoreSettings, unique: str
) -> None:
    missing = Catalog(
        [
            topic_spec(
                f"test.{unique}.missing", "legation.events.v1.Mention", ["listener"], ["engager"]
            )
        ]
    )
    runtime = ServiceRuntime("engager", kafka_settings, catalog=missing)
    try:
        with pytest.raises(ConfigError) as raised:
            runtime.require_topics()
        assert f"test.{unique}.missing" in str(raised.value)
        assert f"test.{unique}.missing.dlq" in str(raised.value)
        ensure_topics(kafka_settings, missing, replication_factor=1)
        runtime.require_topics()  # no error now
    finally:
        runtime.producer.close()
