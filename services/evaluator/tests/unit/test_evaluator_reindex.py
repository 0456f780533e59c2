"""legation-evaluator reindex over a fake consumer and index: from the first record to the
end offsets of the start, the live indexer's documents, undecodable records counted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from kafka import KafkaConsumer, TopicPartition

from legation.events.v1 import listen_pb2
from legation_core.catalog import default_catalog
from legation_core.codec import make_envelope
from legation_evaluator import reindex as reindex_cli
from legation_evaluator.adapters.index import EventIndex, IndexUnavailable
from legation_evaluator.domain.documents import Document
from legation_evaluator.reindex import reindex

MENTIONS = "legation.listen.mentions.v1"
PREFIX = "legation-events-v1"


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes


def mention(number: int) -> bytes:
    envelope = make_envelope(
        listen_pb2.Mention(mention_id=f"m{number}", campaign_ids=["camp-1"]),
        event_id=f"m{number}",
        source_service="listener",
        occurred_at=datetime(2026, 11, 2, tzinfo=UTC),
        campaign_id="camp-1",
    )
    return envelope.SerializeToString()


class FakeConsumer:
    """Two partitions of the mentions topic; hands out ``batch`` records a poll."""

    def __init__(self, records: dict[int, list[bytes]], end: dict[int, int]) -> None:
        self.records = records
        self.end = end
        self.positions: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.records) if topic == MENTIONS else set()

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.positions = dict.fromkeys(partitions, -1)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.positions[tp] = 0

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.end[tp.partition] for tp in partitions}

    def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused.update(partitions)

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Record]]:
        out = {}
        for tp, position in self.positions.items():
            if tp in self.paused:
                continue
            values = self.records[tp.partition][position : position + 2]
            if values:
                out[tp] = [
                    Record(tp.topic, tp.partition, position + n, value)
                    for n, value in enumerate(values)
                ]
                self.positions[tp] = position + len(values)
        return out


class FakeIndex:
    def __init__(self, failures: int = 0) -> None:
        self.prefix = PREFIX
        self.bulks: list[list[Document]] = []
        self.failures = failures
        self.client = self
        self.indices = self
        self.refreshed: list[str] = []

    def bulk(self, documents: Sequence[Document]) -> dict[str, str]:
        if self.failures:
            self.failures -= 1
            raise IndexUnavailable("connection refused")
        self.bulks.append(list(documents))
        return {}

    def refresh(self, index: str) -> None:
        self.refreshed.append(index)


def run(consumer: FakeConsumer, index: FakeIndex, **options: Any) -> reindex_cli.Outcome:
    return reindex(
        cast(KafkaConsumer, consumer),
        cast(EventIndex, index),
        [MENTIONS],
        default_catalog(),
        **options,
    )


def test_reads_to_the_end_offsets_of_the_start_and_indexes_like_the_live_indexer() -> None:
    consumer = FakeConsumer(
        {0: [mention(0), mention(1), b"\xff garbage", mention(2)], 1: [mention(10), mention(11)]},
        # Partition 1's second record arrived after the start: the live indexer has it.
        end={0: 4, 1: 1},
    )
    index = FakeIndex()
    outcome = run(consumer, index, batch=2)
    documents = [d for bulk in index.bulks for d in bulk]
    assert sorted(d.doc_id for d in documents) == ["m0", "m1", "m10", "m2"]
    assert {d.index for d in documents} == {f"{PREFIX}-mention-2026.11"}
    first = next(d for d in documents if d.doc_id == "m2")
    assert first.body["kafka"] == {"topic": MENTIONS, "partition": 0, "offset": 3}
    assert outcome.indexed[MENTIONS] == 4
    assert outcome.undecodable[MENTIONS] == 1
    assert all(len(bulk) <= 2 for bulk in index.bulks)
    assert index.refreshed == [f"{PREFIX}-*"]


def test_one_event_twice_goes_in_separate_bulks() -> None:
    consumer = FakeConsumer({0: [mention(0), mention(0), mention(1)]}, end={0: 3})
    index = FakeIndex()
    run(consumer, index, batch=10)
    assert [[d.doc_id for d in bulk] for bulk in index.bulks] == [["m0"], ["m0", "m1"]]


def test_an_index_outage_is_waited_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("legation_evaluator.reindex.time.sleep", lambda seconds: None)
    consumer = FakeConsumer({0: [mention(0)]}, end={0: 1})
    index = FakeIndex(failures=2)
    assert run(consumer, index).indexed[MENTIONS] == 1


def test_an_index_that_stays_away_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("legation_evaluator.reindex.time.sleep", lambda seconds: None)
    consumer = FakeConsumer({0: [mention(0)]}, end={0: 1})
    with pytest.raises(IndexUnavailable):
        run(consumer, FakeIndex(failures=1000), wait=0)


def test_a_topic_the_evaluator_does_not_index_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert reindex_cli.main(["--topic", "legation.publish.posts.v1"]) == 2
    assert "not indexed by the evaluator" in capsys.readouterr().err


def test_a_prefix_overlapping_the_live_indices_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert reindex_cli.main(["--prefix", "legation-events-v1-new"]) == 2
    assert "overlaps the live indices" in capsys.readouterr().err


def test_a_rebuild_behind_the_live_indexer_stops_where_it_takes_over() -> None:
    """The evaluator's own rebuild reads each partition up to the live indexer's committed
    offset plus one batch (the batch it may have in flight), nothing where it committed
    nothing (it reads from the start then)."""
    committed: dict[TopicPartition, int | None] = {
        TopicPartition(MENTIONS, 0): 1,
        TopicPartition(MENTIONS, 1): None,
    }
    bounds = reindex_cli.bounds_behind(committed, margin=2)
    consumer = FakeConsumer(
        {0: [mention(n) for n in range(6)], 1: [mention(10), mention(11)]}, end={0: 6, 1: 2}
    )
    index = FakeIndex()
    run(consumer, index, bounds=bounds)
    indexed = sorted(d.doc_id for bulk in index.bulks for d in bulk)
    assert indexed == ["m0", "m1", "m2"]  # committed 1 + a batch of 2; none of partition 1
