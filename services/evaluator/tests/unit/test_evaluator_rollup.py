"""The maintained aggregates without an index: exact per event id and version, windows cut
where the campaign's windows are, filters the cells cannot answer left to a search."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import cast

from opensearchpy import OpenSearch

from legation.events.v1 import evaluate_pb2, listen_pb2
from legation_core.codec import make_envelope
from legation_evaluator.adapters.aggregates import AggregatesLoader, MaintainedAggregates
from legation_evaluator.domain import metrics
from legation_evaluator.domain.documents import Document, document_for, event_version
from legation_evaluator.domain.rollup import (
    TALLIES,
    Aggregates,
    facts_of,
    float32,
    scorecard_response,
)
from legation_evaluator.domain.scorecard import scorecard_from_response

START = datetime(2026, 11, 10, 9, 30, 15, tzinfo=UTC)
Objective = evaluate_pb2.Objective


def campaign(*objectives: evaluate_pb2.Objective) -> evaluate_pb2.Campaign:
    result = evaluate_pb2.Campaign(campaign_id="c", name="C", objectives=objectives)
    result.starts_at.FromDatetime(START)
    result.ends_at.FromDatetime(START + timedelta(days=10))
    return result


def mention(
    number: int,
    at: datetime,
    observed: datetime,
    sentiment: str = "positive",
    score: float = 0.5,
    campaigns: tuple[str, ...] = ("c",),
    language: str = "en",
) -> tuple[str, dict[str, object], int]:
    envelope = make_envelope(
        listen_pb2.Mention(
            mention_id=f"m{number}",
            language=language,
            reach=100,
            sentiment=listen_pb2.Label(value=sentiment, score=score),
            campaign_ids=list(campaigns),
        ),
        event_id=f"m{number}",
        source_service="listener",
        occurred_at=at,
        observed_at=observed,
    )
    document = document_for("p", envelope, "t", 0, number)
    return document.doc_id, document.body, event_version(envelope)


def add(aggregates: Aggregates, item: tuple[str, dict[str, object], int]) -> bool:
    event_id, body, version = item
    return aggregates.apply(event_id, facts_of(body, version))


def test_every_metric_of_the_catalogue_has_a_tally() -> None:
    assert set(TALLIES) == set(metrics.METRICS)


def test_a_redelivery_counts_once_an_update_replaces_an_older_copy_is_ignored() -> None:
    aggregates = Aggregates()
    first = mention(1, START + timedelta(hours=1), START + timedelta(hours=2), score=0.25)
    newer = mention(1, START + timedelta(hours=1), START + timedelta(hours=3), "negative", -0.5)
    assert add(aggregates, first)
    assert add(aggregates, first)  # the same version again: replaces itself
    assert add(aggregates, newer)
    assert not add(aggregates, first)  # older than what is counted
    card = scorecard_from_response(
        campaign(), scorecard_response(campaign(), aggregates.rollup("c")).response, START
    )
    assert card.mentions == 1
    assert card.mean_sentiment == float32(-0.5)
    kpis = {k.name: k.value for k in card.kpis}
    assert kpis["volume"] == 1 and kpis["reach"] == 100


def test_an_update_that_leaves_the_campaign_is_no_longer_counted() -> None:
    aggregates = Aggregates()
    add(aggregates, mention(1, START, START, campaigns=("c", "d")))
    add(aggregates, mention(1, START, START + timedelta(seconds=1), campaigns=("d",)))
    assert aggregates.rollup("c").facts == {}
    assert len(aggregates.rollup("d").facts) == 1


def test_windows_are_exact_to_the_millisecond_and_follow_a_changed_campaign() -> None:
    aggregates = Aggregates()
    observed = START + timedelta(days=30)
    # One just before the start, one at it, one a millisecond before a deadline.
    deadline = START + timedelta(hours=5, minutes=7)
    for number, at in enumerate(
        (START - timedelta(milliseconds=1), START, deadline - timedelta(milliseconds=1))
    ):
        add(aggregates, mention(number, at, observed))
    until_deadline = Objective(
        objective_id="o", metric="volume", comparison=Objective.COMPARISON_AT_LEAST, target=5
    )
    until_deadline.deadline.FromDatetime(deadline)
    first = campaign(until_deadline)
    value = scorecard_response(first, aggregates.rollup("c")).response["aggregations"]
    card = scorecard_from_response(first, {"aggregations": value}, START)
    assert card.objectives[0].value == 2
    earlier = evaluate_pb2.Campaign()
    earlier.CopyFrom(first)
    earlier.objectives[0].deadline.FromDatetime(deadline - timedelta(milliseconds=1))
    answer = scorecard_response(earlier, aggregates.rollup("c"))
    assert scorecard_from_response(earlier, answer.response, START).objectives[0].value == 1


def test_filters_the_cells_cannot_answer_are_left_to_a_search() -> None:
    aggregates = Aggregates()
    add(aggregates, mention(1, START, START, language="es-MX"))
    by_author = Objective(
        objective_id="a",
        metric="volume",
        comparison=Objective.COMPARISON_AT_LEAST,
        target=1,
        filters=[evaluate_pb2.MetricFilter(field="author", values=["x"])],
    )
    spanish = Objective(
        objective_id="es",
        metric="volume",
        comparison=Objective.COMPARISON_AT_LEAST,
        target=1,
        filters=[evaluate_pb2.MetricFilter(field="language", values=["es"])],
    )
    answer = scorecard_response(campaign(by_author, spanish), aggregates.rollup("c"))
    assert answer.unanswered_objectives == ["a"]
    assert answer.response["legation_computed_from"]["objectives_from_events"] == ["a"]
    card = scorecard_from_response(
        campaign(spanish),
        scorecard_response(campaign(spanish), aggregates.rollup("c")).response,
        START,
    )
    assert card.objectives[0].value == 1  # es matches es-MX


def test_a_version_the_index_refused_is_never_counted_in_any_order() -> None:
    aggregates = Aggregates()
    first = mention(1, START, START + timedelta(hours=1))
    refused = mention(1, START, START + timedelta(hours=2), "negative", -0.5)
    add(aggregates, first)
    add(aggregates, refused)
    # Counted, then refused: out; the caller then counts what the index holds (first).
    assert aggregates.refuse("m1", refused[2])
    assert aggregates.rollup("c").facts == {} and "m1" not in aggregates.events
    assert add(aggregates, first)
    assert not add(aggregates, refused)  # read again later: still refused
    assert aggregates.events["m1"].version == first[2]
    # Refused before it was read (the DLQ read ahead of its source): never counted.
    other = mention(2, START, START + timedelta(hours=1))
    assert not aggregates.refuse("m2", other[2])
    assert not add(aggregates, other)
    newer = mention(2, START, START + timedelta(hours=3))
    assert add(aggregates, newer)  # a later version the index took counts as usual
    assert not aggregates.refuse("m2", other[2])  # an older refusal leaves it counted
    assert set(aggregates.rollup("c").facts) == {"m1", "m2"}


def thread_of(loader: AggregatesLoader) -> threading.Thread | None:
    return loader._thread


def test_tailed_aggregates_start_while_no_rebuild_runs_and_again_after_a_tail_stops() -> None:
    aggregates = MaintainedAggregates(tailed=True)
    event_id, body, version = mention(1, START, START)
    state = {"rebuilding": True, "runs": 0}
    halt = threading.Event()
    ran = threading.Event()

    def tail(load: Callable[[], bool]) -> None:
        state["runs"] += 1
        aggregates.add_documents([Document("i", event_id, body, version)])
        aggregates.ready.set()  # caught up
        ran.set()
        halt.wait(5)
        raise RuntimeError("the broker went away")

    loader = AggregatesLoader(
        aggregates,
        cast(OpenSearch, None),
        "p-*",
        threading.Event(),
        tail=tail,
        rebuilding=lambda: bool(state["rebuilding"]),
    )
    loader()  # the index is being rebuilt from Kafka: nothing starts
    assert thread_of(loader) is None
    state["rebuilding"] = False
    loader()
    assert ran.wait(5) and aggregates.usable()
    before = aggregates.version("c")
    loader()  # running: nothing more
    assert state["runs"] == 1
    halt.set()
    thread = thread_of(loader)
    assert thread is not None
    thread.join(5)
    # A tail that stopped leaves nothing half-whole; the next tick starts over.
    assert not aggregates.usable() and aggregates.events() == 0
    ran.clear()
    loader()
    assert ran.wait(5) and state["runs"] == 2
    assert aggregates.version("c") != before  # cached answers of before never match
