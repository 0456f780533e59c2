"""A new subscriber's history: the events Kafka no longer holds come from the evaluator's
index, the rest from Kafka, together every event once, pseudonymised as the listener would."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from legation_subscribe import Connection, HandlerSink, Start, Subscriber

from legation.events.v1 import listen_pb2
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, envelope_to_dict, make_envelope
from legation_core.config import CoreSettings
from legation_core.disclosure import Pseudonymiser, derive
from legation_devstack.standins import OpenSearchStandIn
from legation_evaluator.adapters.index import EventIndex, connect
from legation_evaluator.backfill import (
    backfill_lines,
    envelope_of,
    indexed_documents,
    kafka_begins,
    main,
    source_topic,
)
from legation_evaluator.config import EvaluatorSettings
from legation_evaluator.domain.documents import document_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[4]
MENTIONS = "legation.listen.mentions.v1"
DERIVED = "legation.listen.mentions-pseudonymised.v1"
KEY = "k" * 40
NOW = datetime.now(UTC).replace(microsecond=0)


def mention(n: int) -> Envelope:
    observed = NOW - timedelta(days=120 - n)
    handle = f"author{n % 4}"
    return make_envelope(
        listen_pb2.Mention(
            mention_id=f"m-{n}",
            source="mastodon",
            author=handle.title(),
            author_id=f"https://mastodon.example/@{handle}",
            url=f"https://mastodon.example/@{handle}/{n}",
            text=f"@{handle} the plastics treaty, day {n}",
            language="en",
        ),
        event_id=f"m-{n}",
        source_service="listener",
        occurred_at=observed,
        observed_at=observed,
    )


def test_history_from_the_index_and_the_rest_from_kafka_give_every_event_once(
    kafka_settings: CoreSettings,
    opensearch_stand_in: OpenSearchStandIn,
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The platform ran for 120 days: every mention was indexed, and Kafka deleted those
    # older than its retention (here: the first 30 of 40). The stand-in's DeleteRecords
    # empties a whole partition whatever offset it is given, so the deleted ones are simply
    # never written to the test's topic; their documents carry the offsets they had.
    topic = f"test.backfill.{unique}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.kafka_bootstrap_servers)
    # Kept forever: the records are months old, and a broker default retention would delete them.
    admin.create_topics([NewTopic(topic, 3, 1, topic_configs={"retention.ms": "-1"})])
    producer = KafkaProducer(bootstrap_servers=kafka_settings.kafka_bootstrap_servers)
    settings = EvaluatorSettings(
        opensearch_url=opensearch_stand_in.url,
        kafka_bootstrap_servers=kafka_settings.kafka_bootstrap_servers,
        evaluator_index_prefix=f"test-backfill-{unique}",
    )
    index = EventIndex(connect(settings), settings.evaluator_index_prefix)
    index.ensure_template()
    events = [mention(n) for n in range(40)]
    documents = []
    for n, envelope in enumerate(events):
        if n < 30:
            documents.append(document_for(index.prefix, envelope, MENTIONS, n % 3, n // 3))
            continue
        sent = producer.send(
            topic,
            key=envelope.mention.mention_id.encode(),
            value=envelope.SerializeToString(),
            timestamp_ms=int(envelope.observed_at.ToDatetime(UTC).timestamp() * 1000),
        ).get(timeout=30)
        documents.append(
            document_for(index.prefix, envelope, MENTIONS, sent.partition, sent.offset + 10)
        )
    producer.close()
    admin.close()
    index.bulk(documents)

    until = kafka_begins(settings, topic)
    assert until == NOW - timedelta(days=90)
    spec = default_catalog().topic(DERIVED)
    source = source_topic(default_catalog(), DERIVED)
    assert source.name == MENTIONS
    pseudonym = Pseudonymiser(KEY.encode())
    found = indexed_documents(
        connect(settings), index.prefix, source, NOW - timedelta(days=365), until
    )
    backfilled = [json.loads(line) for line in backfill_lines(found, spec, pseudonym)]

    from_kafka: list[str] = []
    Subscriber(
        Connection(kafka_settings.kafka_bootstrap_servers),
        group=f"legation.dept.test.{unique}",
        topics=[topic],
        sink=HandlerSink(lambda event: from_kafka.append(event.envelope.event_id)),
        start=Start.parse("beginning"),
    ).run(until_idle_seconds=2)

    history = [line["event"]["event_id"] for line in backfilled]
    assert history == [f"m-{n}" for n in range(30)]  # oldest first
    assert sorted(from_kafka) == sorted(f"m-{n}" for n in range(30, 40))
    # The backfilled copies are what the listener derives for the live topic.
    for line, original in zip(backfilled, events[:30], strict=True):
        assert line["topic"] == DERIVED and line["source"] == "index"
        assert line["key"] == original.mention.mention_id
        assert line["event"] == envelope_to_dict(derive(spec, original, pseudonym))
        assert not re.search(r"author\d|mastodon\.example", json.dumps(line["event"]).lower())
    assert envelope_of(found[0]).mention.author == "Author0"  # the raw copy, in the index

    # The command line: the same file for a department granted the topic, refused otherwise.
    for name, value in {
        "LEGATION_OPENSEARCH_URL": settings.opensearch_url,
        "LEGATION_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LEGATION_EVALUATOR_INDEX_PREFIX": index.prefix,
        "LEGATION_PSEUDONYM_KEY": KEY,
    }.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "history.jsonl"
    args = [
        *("--topic", DERIVED, "--since", (NOW - timedelta(days=365)).isoformat()),
        *("--until", until.isoformat(), "--output", str(out)),
        *("--grants", str(ROOT / "deploy" / "departments.yaml")),
    ]
    assert main([*args, "--department", "research-unit"]) == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == backfilled
    assert main([*args, "--department", "press-office-geneva"]) == 2
    monkeypatch.setenv("LEGATION_PSEUDONYM_KEY", "short")
    assert main([*args, "--department", "research-unit"]) == 2
