"""The indexing handler over a fake index, and EventIndex.bulk over a stubbed helpers.bulk."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from legation.events.v1 import evaluate_pb2, listen_pb2
from legation_core.codec import Envelope, make_envelope
from legation_core.consumer import Incoming, transient
from legation_evaluator.adapters.changes import ChangeFeed
from legation_evaluator.adapters.events import IndexingHandler
from legation_evaluator.adapters.index import (
    REBUILDING_FRESH_SECONDS,
    EventIndex,
    IndexUnavailable,
)
from legation_evaluator.domain.documents import Document, document_for

PREFIX = "legation-events-v1"
MENTIONS = "legation.listen.mentions.v1"


def envelope(event_id: str) -> Envelope:
    return make_envelope(
        listen_pb2.Mention(mention_id=f"m-{event_id}", text="Hello"),
        event_id=event_id,
        source_service="listener",
        occurred_at=datetime(2025, 3, 1, tzinfo=UTC),
        campaign_id="camp-1",
    )


def incoming(event_id: str, offset: int, partition: int = 0) -> Incoming:
    return Incoming(MENTIONS, partition, offset, None, envelope(event_id))


class FakeIndex:
    """Records bulks; rejects ``rejections``; raises ``failure`` when set."""

    def __init__(self, rejections: dict[str, str] | None = None) -> None:
        self.prefix = PREFIX
        self.bulks: list[list[Document]] = []
        self.rejections = rejections or {}
        self.failure: Exception | None = None

    def bulk(self, documents: Sequence[Document]) -> dict[str, str]:
        self.bulks.append(list(documents))
        if self.failure is not None:
            raise self.failure
        return dict(self.rejections)


def handler(index: FakeIndex) -> IndexingHandler:
    return IndexingHandler(cast(EventIndex, index))


def test_every_event_is_bulked_once_with_its_position() -> None:
    index = FakeIndex()
    result = handler(index)([incoming("ev-1", 10), incoming("ev-2", 11, partition=3)])
    assert result.rejected == []
    assert result.outgoing == []
    assert len(index.bulks) == 1
    documents = {d.doc_id: d for d in index.bulks[0]}
    assert set(documents) == {"ev-1", "ev-2"}
    assert documents["ev-2"].index == f"{PREFIX}-mention-2025.03"
    assert documents["ev-2"].body["kafka"] == {"topic": MENTIONS, "partition": 3, "offset": 11}


def test_a_duplicate_event_in_one_batch_is_bulked_once() -> None:
    index = FakeIndex()
    handler(index)([incoming("ev-1", 10), incoming("ev-2", 11), incoming("ev-1", 12)])
    assert len(index.bulks) == 1
    assert sorted(d.doc_id for d in index.bulks[0]) == ["ev-1", "ev-2"]


def test_of_one_event_twice_in_a_batch_the_newest_version_is_bulked() -> None:
    index = FakeIndex()
    older, newer, redelivered = incoming("ev-1", 10), incoming("ev-1", 11), incoming("ev-1", 12)
    for copy in (older, redelivered):  # the older copy again, after the update
        copy.envelope.observed_at.FromDatetime(datetime(2025, 3, 1, 12, tzinfo=UTC))
    newer.envelope.observed_at.FromDatetime(datetime(2025, 3, 2, tzinfo=UTC))
    newer.envelope.mention.text = "Updated"
    handler(index)([older, newer, redelivered])
    [document] = index.bulks[0]
    assert document.body["mention"]["text"] == "Updated"
    assert document.body["kafka"]["offset"] == 11


def test_rejected_documents_become_rejected_events_with_the_reason() -> None:
    index = FakeIndex({"ev-2": "index rejected the document: mapper_parsing_exception"})
    first, second, third = incoming("ev-1", 10), incoming("ev-2", 11), incoming("ev-3", 12)
    result = handler(index)([first, second, third])
    assert len(result.rejected) == 1
    assert result.rejected[0].incoming == second
    assert result.rejected[0].reason == "index rejected the document: mapper_parsing_exception"


def test_an_index_outage_propagates() -> None:
    index = FakeIndex()
    index.failure = IndexUnavailable("bulk request failed: connection refused")
    with pytest.raises(IndexUnavailable, match="connection refused") as caught:
        handler(index)([incoming("ev-1", 10)])
    # The consume loop retries transient failures; anything else it would dead-letter.
    assert transient(caught.value)


# EventIndex.bulk with helpers.bulk replaced by a stub.


class BulkStub:
    def __init__(self, errors: list[dict[str, Any]] | None = None) -> None:
        self.errors = errors or []
        self.failure: Exception | None = None
        self.calls: list[tuple[Any, list[dict[str, Any]], dict[str, Any]]] = []

    def __call__(
        self, client: Any, actions: list[dict[str, Any]], **options: Any
    ) -> tuple[int, list[dict[str, Any]]]:
        self.calls.append((client, list(actions), options))
        if self.failure is not None:
            raise self.failure
        return len(self.calls[-1][1]) - len(self.errors), self.errors


def error_item(doc_id: str, status: int, error: Any) -> dict[str, Any]:
    return {
        "index": {"_index": f"{PREFIX}-mention", "_id": doc_id, "status": status, "error": error}
    }


def documents(*ids: str) -> list[Document]:
    return [
        Document(f"{PREFIX}-mention", doc_id, {"event_id": doc_id}, number)
        for number, doc_id in enumerate(ids, start=1)
    ]


@pytest.fixture
def client() -> object:
    return object()


def install(monkeypatch: pytest.MonkeyPatch, stub: BulkStub) -> BulkStub:
    monkeypatch.setattr("legation_evaluator.adapters.index.helpers.bulk", stub)
    return stub


def test_bulk_sends_index_actions_with_the_document_ids(
    monkeypatch: pytest.MonkeyPatch, client: object
) -> None:
    stub = install(monkeypatch, BulkStub())
    assert EventIndex(cast(Any, client), PREFIX).bulk(documents("ev-1", "ev-2")) == {}
    [(used_client, actions, options)] = stub.calls
    assert used_client is client
    assert actions == [
        {
            "_op_type": "index",
            "_index": f"{PREFIX}-mention",
            "_id": "ev-1",
            "_source": {"event_id": "ev-1"},
            "_version": 1,
            "_version_type": "external_gte",
        },
        {
            "_op_type": "index",
            "_index": f"{PREFIX}-mention",
            "_id": "ev-2",
            "_source": {"event_id": "ev-2"},
            "_version": 2,
            "_version_type": "external_gte",
        },
    ]
    assert options["raise_on_error"] is False


def test_an_older_version_than_the_indexed_one_is_neither_rejected_nor_retried(
    monkeypatch: pytest.MonkeyPatch, client: object
) -> None:
    conflict = {
        "type": "version_conflict_engine_exception",
        "reason": "[ev-1]: version conflict, current version [5] is higher than the one provided",
    }
    install(monkeypatch, BulkStub([error_item("ev-1", 409, conflict)]))
    assert EventIndex(cast(Any, client), PREFIX).bulk(documents("ev-1", "ev-2")) == {}


def test_the_version_of_a_document_is_when_its_event_was_observed() -> None:
    first = envelope("ev-1")
    first.observed_at.FromMicroseconds(1_700_000_000_123_456)
    document = document_for(PREFIX, first, MENTIONS, 0, 7)
    assert document.version == 1_700_000_000_123_456
    later = envelope("ev-1")
    later.observed_at.FromMicroseconds(1_700_000_000_123_457)
    assert document_for(PREFIX, later, MENTIONS, 0, 9).version > document.version


def test_bulk_of_nothing_sends_nothing(monkeypatch: pytest.MonkeyPatch, client: object) -> None:
    stub = install(monkeypatch, BulkStub())
    assert EventIndex(cast(Any, client), PREFIX).bulk([]) == {}
    assert stub.calls == []


def test_a_400_item_is_rejected_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, client: object
) -> None:
    reason = {"type": "mapper_parsing_exception", "reason": "failed to parse [mention.reach]"}
    install(monkeypatch, BulkStub([error_item("ev-2", 400, reason)]))
    rejected = EventIndex(cast(Any, client), PREFIX).bulk(documents("ev-1", "ev-2"))
    assert list(rejected) == ["ev-2"]
    assert rejected["ev-2"].startswith("index rejected the document")
    assert "mapper_parsing_exception" in rejected["ev-2"]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_transient_item_failure_makes_the_index_unavailable(
    monkeypatch: pytest.MonkeyPatch, client: object, status: int
) -> None:
    install(
        monkeypatch,
        BulkStub(
            [
                error_item("ev-1", 400, {"type": "mapper_parsing_exception"}),
                error_item("ev-2", status, {"type": "es_rejected_execution_exception"}),
            ]
        ),
    )
    with pytest.raises(IndexUnavailable, match=str(status)):
        EventIndex(cast(Any, client), PREFIX).bulk(documents("ev-1", "ev-2"))


def test_an_exception_from_bulk_makes_the_index_unavailable(
    monkeypatch: pytest.MonkeyPatch, client: object
) -> None:
    stub = BulkStub()
    stub.failure = ConnectionError("connection refused")
    install(monkeypatch, stub)
    with pytest.raises(IndexUnavailable, match="connection refused") as caught:
        EventIndex(cast(Any, client), PREFIX).bulk(documents("ev-1"))
    assert isinstance(caught.value.__cause__, ConnectionError)


def test_acknowledged_documents_tell_their_campaigns_watchers() -> None:
    changes = ChangeFeed()
    IndexingHandler(cast(EventIndex, FakeIndex()), changes)([incoming("ev-1", 10)])
    assert changes.version("camp-1") == 1
    assert changes.wait("camp-1", 0, timeout=0) == 1
    assert changes.version("other") == 0


def test_rejected_documents_tell_no_watcher() -> None:
    changes = ChangeFeed()
    index = FakeIndex({"ev-1": "index rejected the document"})
    IndexingHandler(cast(EventIndex, index), changes)([incoming("ev-1", 10)])
    assert changes.version("camp-1") == 0


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (403, "cluster_block_exception"),  # disk full: read-only until an operator acts
        (404, "index_not_found_exception"),
        (400, "index_closed_exception"),
    ],
)
def test_blocked_or_missing_indices_are_retried_not_dead_lettered(
    monkeypatch: pytest.MonkeyPatch, client: object, status: int, error_type: str
) -> None:
    install(monkeypatch, BulkStub([error_item("ev-1", status, {"type": error_type})]))
    with pytest.raises(IndexUnavailable):
        EventIndex(cast(Any, client), PREFIX).bulk(documents("ev-1"))


class TemplateClient:
    """Counts template puts; stands in for the client of EventIndex."""

    def __init__(self) -> None:
        self.puts = 0
        self.indices = self

    def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        self.puts += 1


def test_after_an_outage_the_template_goes_back_before_the_next_bulk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = TemplateClient()
    stub = install(monkeypatch, BulkStub())
    index = EventIndex(cast(Any, client), PREFIX)
    index.bulk(documents("ev-1"))
    assert client.puts == 0
    stub.failure = ConnectionError("connection refused")
    with pytest.raises(IndexUnavailable):
        index.bulk(documents("ev-2"))
    stub.failure = None
    index.bulk(documents("ev-2"))  # the index server came back, perhaps empty
    assert client.puts == 1
    index.bulk(documents("ev-3"))
    assert client.puts == 1


class SearchClient:
    """Counts scorecard searches."""

    def __init__(self) -> None:
        self.searches = 0

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        self.searches += 1
        return {"answer": self.searches}


def test_scorecard_answers_are_shared_until_the_campaign_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr("legation_evaluator.adapters.index.time.monotonic", lambda: clock[0])
    client, changes = SearchClient(), ChangeFeed()
    index = EventIndex(cast(Any, client), PREFIX, changes)
    campaign = evaluate_pb2.Campaign(campaign_id="camp-1", name="A")
    assert index.scorecard_response(campaign) == {"answer": 1}
    changes.publish(["camp-1"])
    clock[0] += 0.5  # indexed, but within a second of the search
    assert index.scorecard_response(campaign) == {"answer": 1}
    clock[0] += 1
    assert index.scorecard_response(campaign) == {"answer": 2}
    clock[0] += 3  # nothing indexed since: the answer still holds
    assert index.scorecard_response(campaign) == {"answer": 2}
    renamed = evaluate_pb2.Campaign(campaign_id="camp-1", name="B")
    assert index.scorecard_response(renamed) == {"answer": 3}  # a new version: a new search
    clock[0] += 6  # held too long, whatever was indexed
    assert index.scorecard_response(renamed) == {"answer": 4}


def test_during_a_rebuild_answers_are_shared_longer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten seconds from the end of the search: a search that took longer is not run again
    back to back while the rebuild's bulks wait for it."""
    clock = [100.0]
    monkeypatch.setattr("legation_evaluator.adapters.index.time.monotonic", lambda: clock[0])

    class SlowSearch(SearchClient):
        def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
            clock[0] += 17.0
            return super().search(index, body)

    client, changes = SlowSearch(), ChangeFeed()
    index = EventIndex(cast(Any, client), PREFIX, changes)
    campaign = evaluate_pb2.Campaign(campaign_id="camp-1", name="A")
    assert index.scorecard_response(campaign, rebuilding=True) == {"answer": 1}
    changes.publish(["camp-1"])  # the rebuild indexed more of the campaign
    clock[0] += REBUILDING_FRESH_SECONDS - 1
    assert index.scorecard_response(campaign, rebuilding=True) == {"answer": 1}
    clock[0] += 2
    assert index.scorecard_response(campaign, rebuilding=True) == {"answer": 2}
    clock[0] += 2
    assert index.scorecard_response(campaign) == {"answer": 3}  # not rebuilding: fresh


def test_an_answer_from_during_a_rebuild_is_not_reused_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rebuild's bulks move no change version: without forgetting, an answer searched
    just before the rebuild ended (counts still coming back) would be served as complete
    for CACHE_SECONDS."""
    clock = [100.0]
    monkeypatch.setattr("legation_evaluator.adapters.index.time.monotonic", lambda: clock[0])
    client, changes = SearchClient(), ChangeFeed()
    index = EventIndex(cast(Any, client), PREFIX, changes)
    campaign = evaluate_pb2.Campaign(campaign_id="camp-1", name="A")
    assert index.scorecard_response(campaign, rebuilding=True) == {"answer": 1}
    clock[0] += 2  # nothing of the campaign indexed live since: would still hold
    assert index.scorecard_response(campaign) == {"answer": 1}
    index.forget_answers()  # the rebuild ended
    assert index.scorecard_response(campaign) == {"answer": 2}


def test_callers_arriving_during_a_search_take_its_answer() -> None:
    """Five threads ask at once while the first search is slow: one search, five answers."""
    started, release = threading.Event(), threading.Event()

    class SlowClient(SearchClient):
        def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
            started.set()
            release.wait(5)
            return super().search(index, body)

    client = SlowClient()
    index = EventIndex(cast(Any, client), PREFIX, ChangeFeed())
    campaign = evaluate_pb2.Campaign(campaign_id="camp-1", name="A")
    answers: list[dict[str, Any]] = []
    first = threading.Thread(target=lambda: answers.append(index.scorecard_response(campaign)))
    first.start()
    started.wait(5)
    others = [
        threading.Thread(target=lambda: answers.append(index.scorecard_response(campaign)))
        for _ in range(4)
    ]
    for thread in others:
        thread.start()
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert client.searches == 1
    assert answers == [{"answer": 1}] * 5
