"""The aggregates' tail of the log, record by record (no broker): records become the facts
the bulk path would count, and a record the indexer group dead-lettered takes its version
out, counting what the index holds of the event instead."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from opensearchpy import ConnectionError as OpenSearchConnectionError
from opensearchpy import OpenSearch

from legation.events.v1 import evaluate_pb2, listen_pb2
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, EventCodec, make_envelope
from legation_core.config import CoreSettings
from legation_evaluator.adapters import tail as tail_module
from legation_evaluator.adapters.aggregates import MaintainedAggregates
from legation_evaluator.adapters.changes import ChangeFeed
from legation_evaluator.adapters.tail import LogTail
from legation_evaluator.domain.documents import Document, document_for
from legation_evaluator.domain.scorecard import scorecard_from_response

MENTIONS = "legation.listen.mentions.v1"
GROUP = "legation.evaluator.indexer"
AT = datetime(2026, 11, 12, 10, tzinfo=UTC)


@dataclass
class Record:
    topic: str
    value: bytes
    partition: int = 0
    offset: int = 0
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Index:
    """What the index holds, by id; fails while ``down``."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.down = False

    def get(self, index: str, id: str, ignore: int) -> dict[str, Any]:
        if self.down:
            raise OpenSearchConnectionError("N/A", "down", None)
        return self.documents.get(id, {"found": False})


def mention(event_id: str, observed_hours: int, sentiment: str = "positive") -> Envelope:
    return make_envelope(
        listen_pb2.Mention(
            mention_id=event_id,
            language="en",
            campaign_ids=["c"],
            sentiment=listen_pb2.Label(
                value=sentiment, score=0.5 if sentiment == "positive" else -0.5
            ),
        ),
        event_id=event_id,
        source_service="listener",
        occurred_at=AT,
        observed_at=AT + timedelta(hours=observed_hours),
        campaign_id="c",
    )


def dead_letter(envelope: Envelope, group: str = GROUP) -> Record:
    headers = [
        ("dlq-reason", b"index rejected the document: mapper_parsing_exception"),
        ("dlq-source-topic", MENTIONS.encode()),
        ("dlq-source-partition", b"0"),
        ("dlq-source-offset", b"7"),
        ("dlq-consumer-group", group.encode()),
    ]
    return Record(f"{MENTIONS}.dlq", envelope.SerializeToString(), headers=headers)


def tail(index: Index, changes: ChangeFeed | None = None) -> tuple[LogTail, MaintainedAggregates]:
    aggregates = MaintainedAggregates(tailed=True)
    follower = LogTail(
        CoreSettings(),
        aggregates,
        cast(OpenSearch, index),
        "p",
        EventCodec(default_catalog()),
        [MENTIONS],
        group=GROUP,
        committed=lambda partitions: {},
        stop=threading.Event(),
        changes=changes,
    )
    return follower, aggregates


def mentions(aggregates: MaintainedAggregates) -> tuple[int, float]:
    campaign = evaluate_pb2.Campaign(campaign_id="c", name="C")
    campaign.starts_at.FromDatetime(AT - timedelta(days=1))
    campaign.ends_at.FromDatetime(AT + timedelta(days=1))
    answer, _ = aggregates.answer(campaign)
    card = scorecard_from_response(campaign, answer.response, AT)
    return card.mentions, card.mean_sentiment


def test_records_count_as_the_bulk_path_counts_and_undecodable_ones_do_not() -> None:
    changes = ChangeFeed()
    follower, aggregates = tail(Index(), changes)
    first = mention("m1", 1)
    follower._take(
        [
            Record(MENTIONS, first.SerializeToString()),
            Record(MENTIONS, b"not an envelope", offset=1),
            Record(MENTIONS, first.SerializeToString(), offset=2),  # redelivered
            Record(MENTIONS, mention("m2", 1, "negative").SerializeToString(), offset=3),
        ]
    )
    assert mentions(aggregates) == (2, 0.0)
    assert changes.version("c") == 1
    bulk = MaintainedAggregates()
    bulk.add_documents(
        document_for("p", e, MENTIONS, 0, n)
        for n, e in enumerate([first, mention("m2", 1, "negative")])
    )
    assert mentions(bulk) == mentions(aggregates)


def test_a_dead_lettered_version_is_taken_out_and_what_the_index_holds_counted() -> None:
    index = Index()
    follower, aggregates = tail(index)
    held = mention("m1", 1, "positive")
    refused = mention("m1", 2, "negative")
    document = document_for("p", held, MENTIONS, 0, 0)
    index.documents["m1"] = {
        "found": True,
        "_id": "m1",
        "_version": document.version,
        "_source": document.body,
    }
    follower._take([Record(MENTIONS, held.SerializeToString())])
    follower._take([Record(MENTIONS, refused.SerializeToString(), offset=1)])
    assert mentions(aggregates) == (1, -0.5)
    index.down = True  # the index does not answer: tried again at the next round
    follower._take([dead_letter(refused)])
    follower._recount_held()
    assert mentions(aggregates) == (0, 0.0)
    index.down = False
    follower._recount_held()
    assert mentions(aggregates) == (1, 0.5)  # the version the index holds
    follower._take([Record(MENTIONS, refused.SerializeToString(), offset=1)])  # re-read
    assert mentions(aggregates) == (1, 0.5)


def test_only_the_indexer_groups_dead_letters_count_and_one_read_ahead_of_its_source() -> None:
    follower, aggregates = tail(Index())
    refused = mention("m1", 1)
    follower._take([dead_letter(refused, group="legation.engager.mentions")])
    follower._take([dead_letter(mention("m2", 1))])  # the DLQ read ahead of its source
    follower._take(
        [
            Record(MENTIONS, refused.SerializeToString()),
            Record(MENTIONS, mention("m2", 1).SerializeToString(), offset=1),
        ]
    )
    assert mentions(aggregates) == (1, 0.5)
    assert follower.refused == 1


def test_a_record_no_document_can_be_made_of_is_skipped_not_fatal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    follower, aggregates = tail(Index())

    def failing(prefix: str, envelope: Envelope, *args: Any) -> Document:
        if envelope.event_id == "bad":
            raise ValueError("a value the document cannot hold")
        return document_for(prefix, envelope, *args)

    monkeypatch.setattr(tail_module, "document_for", failing)
    follower._take(
        [
            Record(MENTIONS, mention("bad", 1).SerializeToString()),
            Record(MENTIONS, mention("m1", 1).SerializeToString(), offset=1),
        ]
    )
    assert mentions(aggregates) == (1, 0.5)
