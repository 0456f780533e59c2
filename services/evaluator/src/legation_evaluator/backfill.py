"""``legation-evaluator backfill``: a new subscriber's history from the index, where Kafka no
longer has the events (a topic keeps them for its retention: 90 days of mentions).

Every event the evaluator indexed is a document holding the whole envelope (proto3 JSON) and
where it came from in Kafka. For one topic and a period, this writes those events as the
JSON lines ``legation-subscribe`` writes (``partition`` and ``offset`` -1, ``timestamp``
the event's observed time, ``"source": "index"``), oldest first; for a derived topic, from
its source's documents through the same derivation the listener runs (the same key gives
the same pseudonyms). By default the period ends where Kafka's copy of the source topic
begins (its oldest record's time), so the file and a subscription ``--from beginning`` fit
together; an event at the seam may be in both: deduplicate on event_id, as the contract
asks anyway.

The index holds the latest version of each event (an updated mention replaces its first
version), and only the topics the evaluator consumes. The operator runs it for a department
(``--department``: refused unless deploy/departments.yaml grants it the topic) and hands the
file over; the pseudonym key comes from ``LEGATION_PSEUDONYM_KEY``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format
from kafka import KafkaConsumer, TopicPartition
from opensearchpy import OpenSearch, helpers

from legation_core.catalog import Catalog, CatalogError, TopicSpec, default_catalog
from legation_core.codec import Envelope, envelope_to_dict
from legation_core.config import ConfigError, load_settings
from legation_core.disclosure import Pseudonymiser, derive
from legation_core.kafka import client_options
from legation_evaluator.adapters.index import connect
from legation_evaluator.config import EvaluatorSettings

KEY_ENV = "LEGATION_PSEUDONYM_KEY"


class BackfillError(ValueError):
    """A request the backfill refuses; the message names the argument."""


def source_topic(catalog: Catalog, topic: str) -> TopicSpec:
    """The topic whose documents hold ``topic``'s events (itself, or what it derives from)."""
    try:
        spec = catalog.topic(topic)
    except CatalogError as error:
        raise BackfillError(f"--topic: {error}") from None
    source = catalog.topic(spec.derived_from) if spec.derived_from else spec
    if "evaluator" not in source.consumers:
        raise BackfillError(f"--topic: the evaluator does not index {source.name}")
    return source


def envelope_of(document: dict[str, Any]) -> Envelope:
    """The envelope of one indexed document (without what the evaluator added)."""
    body = {k: v for k, v in document.items() if k not in ("campaign_ids", "kafka")}
    return json_format.ParseDict(body, Envelope(), ignore_unknown_fields=True)


def backfill_lines(
    documents: Iterable[dict[str, Any]], spec: TopicSpec, pseudonym: Pseudonymiser | None
) -> Iterator[str]:
    """The JSON lines of ``spec``'s events for the documents of its source, in their order."""
    for document in documents:
        envelope = envelope_of(document)
        if spec.derived_from:
            assert pseudonym is not None
            envelope = derive(spec, envelope, pseudonym)
        stamp = envelope.observed_at if envelope.HasField("observed_at") else envelope.occurred_at
        line = {
            "topic": spec.name,
            "partition": -1,
            "offset": -1,
            "timestamp": stamp.seconds * 1000 + stamp.nanos // 1_000_000,
            "key": _key(envelope),
            "event": envelope_to_dict(envelope),
            "source": "index",
        }
        yield json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"


def _key(envelope: Envelope) -> str:
    """The record key the producer uses: the payload's entity id (its first field)."""
    field = envelope.WhichOneof("payload")
    payload = getattr(envelope, field) if field else None
    if payload is None or not payload.DESCRIPTOR.fields:
        return ""
    return str(getattr(payload, payload.DESCRIPTOR.fields[0].name, ""))


def indexed_documents(
    client: OpenSearch, prefix: str, source: TopicSpec, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The source topic's documents observed in [since, until), oldest first."""
    query = {
        "query": {
            "bool": {
                "filter": [
                    {"term": {"kafka.topic": source.name}},
                    {
                        "range": {
                            "observed_at": {
                                "gte": since.isoformat(),
                                "lt": until.isoformat(),
                            }
                        }
                    },
                ]
            }
        }
    }
    index = f"{prefix}-{source.payload_field}*"
    hits = helpers.scan(client, query=query, index=index, ignore_unavailable=True)
    documents = [hit["_source"] for hit in hits]
    return sorted(documents, key=lambda d: (str(d.get("observed_at", "")), d["event_id"]))


def kafka_begins(settings: EvaluatorSettings, topic: str, timeout: float = 30.0) -> datetime | None:
    """The time of the oldest record Kafka still holds of ``topic`` (None: it holds none):
    the first record of each partition, read."""
    consumer = KafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            raise BackfillError(f"cannot read {topic} from Kafka: no partitions visible")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        firsts = consumer.beginning_offsets(assigned)
        ends = consumer.end_offsets(assigned)
        waiting = {tp for tp in assigned if ends[tp] > firsts[tp]}
        consumer.assign(sorted(waiting, key=lambda tp: tp.partition))
        for tp in waiting:
            consumer.seek(tp, firsts[tp])
        stamps: list[int] = []
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            for tp, batch in consumer.poll(timeout_ms=500, max_records=500).items():
                if tp in waiting and batch:
                    stamps.append(batch[0].timestamp)
                    waiting.discard(tp)
                    consumer.pause(tp)
        if waiting:
            raise BackfillError(f"cannot read {topic} from Kafka: no record within {timeout} s")
    finally:
        consumer.close()
    return datetime.fromtimestamp(min(stamps) / 1000, UTC) if stamps else None


def check_grant(grants: Path, department: str, topic: str) -> None:
    """Refuses a topic the grants file does not give ``department``."""
    raw = yaml.safe_load(grants.read_text(encoding="utf-8")) or {}
    entries = [d for d in raw.get("departments", []) if d.get("name") == department]
    if not entries:
        raise BackfillError(f"--department: {department} is not in {grants.name}")
    if topic not in entries[0].get("topics", []):
        raise BackfillError(f"--topic: {topic} is not granted to {department}")


def _time(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BackfillError(f"{name}: not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise BackfillError(f"{name}: needs a UTC offset (Z or +hh:mm): {text!r}")
    return value.astimezone(UTC)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="legation-evaluator backfill",
        description="A topic's events from the index, as legation-subscribe's JSON lines.",
    )
    parser.add_argument("--topic", required=True, help="the topic the department subscribes to")
    parser.add_argument("--since", required=True, help="ISO 8601 time, first event included")
    parser.add_argument(
        "--until",
        default="kafka",
        help="ISO 8601 time, excluded; default: where Kafka's copy of the topic begins",
    )
    parser.add_argument("--output", required=True, type=Path, help="the JSON lines file")
    parser.add_argument("--department", required=True, help="the department it is for")
    parser.add_argument(
        "--grants", type=Path, default=Path("deploy/departments.yaml"), help="the grants file"
    )
    return parser.parse_args(list(argv))


def main(argv: Sequence[str]) -> int:
    """Writes the file; exit 0, 2 on a bad argument or setting."""
    args = parse(argv)
    try:
        settings = load_settings(EvaluatorSettings)
        catalog = default_catalog()
        spec = catalog.topic(args.topic) if args.topic in {s.name for s in catalog} else None
        source = source_topic(catalog, args.topic)
        assert spec is not None
        check_grant(args.grants, args.department, spec.name)
        since = _time(args.since, "--since")
        if args.until == "kafka":
            until = kafka_begins(settings, source.name) or datetime.now(UTC)
        else:
            until = _time(args.until, "--until")
        pseudonym = None
        if spec.derived_from:
            key = os.environ.get(KEY_ENV, "")
            try:
                pseudonym = Pseudonymiser(key.encode())
            except ValueError as error:
                raise BackfillError(f"{KEY_ENV}: {error}") from None
    except (BackfillError, ConfigError, OSError) as error:
        print(f"backfill: {error}", file=sys.stderr)
        return 2
    documents = indexed_documents(
        connect(settings), settings.evaluator_index_prefix, source, since, until
    )
    with args.output.open("w", encoding="utf-8") as out:
        written = 0
        for line in backfill_lines(documents, spec, pseudonym):
            out.write(line)
            written += 1
    print(
        f"backfill: {written} events of {spec.name} from {since.isoformat()} "
        f"until {until.isoformat()} in {args.output}",
        file=sys.stderr,
    )
    return 0
