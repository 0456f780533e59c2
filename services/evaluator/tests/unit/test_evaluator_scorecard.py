"""Scorecards from OpenSearch aggregation responses, and objectives judged against KPIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from legation.events.v1 import evaluate_pb2
from legation_evaluator.domain.scorecard import (
    KPI_NAMES,
    MENTION,
    judge,
    scorecard_from_response,
    scorecard_query,
)

Objective = evaluate_pb2.Objective
Status = evaluate_pb2.ObjectiveStatus

STARTS = datetime(2025, 1, 1, tzinfo=UTC)
DEADLINE = datetime(2025, 1, 11, tzinfo=UTC)  # ten days after the start
HALF_WAY = datetime(2025, 1, 6, tzinfo=UTC)
AFTER = datetime(2025, 1, 12, tzinfo=UTC)
HOUR_1 = int(datetime(2025, 1, 2, 9, tzinfo=UTC).timestamp() * 1000)
HOUR_2 = HOUR_1 + 3_600_000
HOUR_3 = HOUR_2 + 3_600_000


def campaign(*objectives: Objective) -> evaluate_pb2.Campaign:
    card = evaluate_pb2.Campaign(campaign_id="camp-1", name="Visa week", objectives=objectives)
    card.starts_at.FromDatetime(STARTS)
    card.ends_at.FromDatetime(DEADLINE)
    return card


def objective(
    metric: str,
    target: float,
    comparison: Objective.Comparison.ValueType = Objective.COMPARISON_AT_LEAST,
    deadline: datetime | None = DEADLINE,
) -> Objective:
    built = Objective(objective_id=f"o-{metric}", metric=metric, target=target)
    built.comparison = comparison
    if deadline is not None:
        built.deadline.FromDatetime(deadline)
    return built


def terms(counts: dict[str, int]) -> dict[str, Any]:
    return {
        "doc_count_error_upper_bound": 0,
        "sum_other_doc_count": 0,
        "buckets": [{"key": key, "doc_count": count} for key, count in counts.items()],
    }


def histogram(counts: list[tuple[int, int]]) -> dict[str, Any]:
    return {
        "buckets": [
            {
                "key_as_string": datetime.fromtimestamp(key / 1000, UTC).isoformat(),
                "key": key,
                "doc_count": count,
            }
            for key, count in counts
        ]
    }


def response() -> dict[str, Any]:
    """A search response as OpenSearch returns it for scorecard_query."""
    return {
        "took": 3,
        "timed_out": False,
        "hits": {"total": {"value": 9, "relation": "eq"}, "max_score": None, "hits": []},
        "aggregations": {
            "by_service": terms({"listener": 4, "engager": 3, "publisher": 1, "evaluator": 1}),
            "by_type": terms(
                {
                    MENTION: 4,
                    "legation.events.v1.Interaction": 3,
                    "legation.events.v1.Publication": 1,
                    "legation.events.v1.Feedback": 1,
                }
            ),
            "opened": {"doc_count": 2},
            "replies": {"doc_count": 1, "response": {"values": {"50.0": 120.5}}},
            "mentions": {
                "doc_count": 4,
                "known_sentiment": {"doc_count": 3, "mean": {"value": -0.25}},
                "per_hour": histogram([(HOUR_1, 3), (HOUR_2, 0), (HOUR_3, 1)]),
            },
        },
    }


def empty_response() -> dict[str, Any]:
    return {
        "took": 1,
        "timed_out": False,
        "hits": {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []},
        "aggregations": {
            "by_service": terms({}),
            "by_type": terms({}),
            "opened": {"doc_count": 0},
            "replies": {"doc_count": 0, "response": {"values": {"50.0": None}}},
            "mentions": {
                "doc_count": 0,
                "known_sentiment": {"doc_count": 0, "mean": {"value": None}},
                "per_hour": {"buckets": []},
            },
        },
    }


def test_the_query_is_scoped_to_the_campaign() -> None:
    query = scorecard_query("camp-1")
    assert query["size"] == 0
    assert query["query"] == {"term": {"campaign_ids": "camp-1"}}
    assert set(query["aggs"]) == {"by_service", "by_type", "opened", "replies", "mentions"}


def test_the_scorecard_counts_what_the_aggregations_found() -> None:
    now = HALF_WAY
    card = scorecard_from_response(campaign(), response(), now)
    assert card.campaign_id == "camp-1"
    assert card.name == "Visa week"
    assert card.computed_at.ToDatetime(tzinfo=UTC) == now
    assert dict(card.events_by_service) == {
        "listener": 4,
        "engager": 3,
        "publisher": 1,
        "evaluator": 1,
    }
    assert card.mentions == 4
    assert card.publications == 1
    assert card.feedback == 1
    assert card.conversations_opened == 2
    assert card.replies == 1
    assert card.mean_sentiment == pytest.approx(-0.25)
    assert card.mentions_with_sentiment == 3
    assert card.median_response_seconds == pytest.approx(120.5)


def test_the_hourly_buckets_skip_empty_hours() -> None:
    card = scorecard_from_response(campaign(), response(), HALF_WAY)
    assert [(b.start.ToMilliseconds(), b.count) for b in card.mentions_per_hour] == [
        (HOUR_1, 3),
        (HOUR_3, 1),
    ]


def test_the_kpis_list_every_kpi_with_its_value() -> None:
    card = scorecard_from_response(campaign(), response(), HALF_WAY)
    kpis = {kpi.name: kpi.value for kpi in card.kpis}
    assert [kpi.name for kpi in card.kpis] == list(KPI_NAMES)
    assert kpis == {
        "mentions": 4.0,
        "publications": 1.0,
        "conversations_opened": 2.0,
        "replies": 1.0,
        "feedback": 1.0,
        "mean_sentiment": pytest.approx(-0.25),
        "median_response_seconds": pytest.approx(120.5),
    }


def test_a_campaign_without_events_has_a_zero_scorecard() -> None:
    card = scorecard_from_response(campaign(), empty_response(), HALF_WAY)
    assert card.mentions == 0
    assert card.mean_sentiment == 0.0
    assert card.mentions_with_sentiment == 0
    assert card.median_response_seconds == 0.0
    assert list(card.mentions_per_hour) == []
    assert dict(card.events_by_service) == {}
    assert {kpi.name: kpi.value for kpi in card.kpis} == dict.fromkeys(KPI_NAMES, 0.0)


def test_the_median_accepts_an_integer_percentile_key() -> None:
    answer = response()
    answer["aggregations"]["replies"]["response"] = {"values": {"50": 30.0}}
    assert scorecard_from_response(campaign(), answer, HALF_WAY).median_response_seconds == 30.0


def test_the_objectives_are_judged_on_the_scorecard() -> None:
    goals = campaign(objective("mentions", 4), objective("replies", 10))
    card = scorecard_from_response(goals, response(), HALF_WAY)
    assert [(o.objective_id, o.status) for o in card.objectives] == [
        ("o-mentions", Status.STATUS_ACHIEVED),
        ("o-replies", Status.STATUS_AT_RISK),
    ]


# AT_LEAST: halfway through, 80% of the expected half (40% of the target) is on track.


@pytest.mark.parametrize(
    ("value", "now", "expected"),
    [
        (100.0, HALF_WAY, Status.STATUS_ACHIEVED),
        (120.0, AFTER, Status.STATUS_ACHIEVED),
        (45.0, HALF_WAY, Status.STATUS_ON_TRACK),
        (40.0, HALF_WAY, Status.STATUS_ON_TRACK),
        (39.0, HALF_WAY, Status.STATUS_AT_RISK),
        (5.0, STARTS + timedelta(hours=1), Status.STATUS_ON_TRACK),
        (70.0, DEADLINE - timedelta(hours=1), Status.STATUS_AT_RISK),
        (99.0, AFTER, Status.STATUS_MISSED),
        (99.0, DEADLINE, Status.STATUS_MISSED),
    ],
)
def test_at_least(value: float, now: datetime, expected: int) -> None:
    goal = objective("mentions", 100)
    status = judge(goal, {"mentions": value}, campaign(goal), now)
    assert status.status == expected
    assert status.objective_id == "o-mentions"
    assert status.metric == "mentions"
    assert status.value == value
    assert status.target == 100
    assert "mentions" in status.reason


def test_at_least_reasons_say_how_far_it_got() -> None:
    goal = objective("mentions", 100)
    at_risk = judge(goal, {"mentions": 10}, campaign(goal), HALF_WAY)
    assert at_risk.reason == "mentions at 10 of 100 with 50% of the time gone"
    missed = judge(goal, {"mentions": 10}, campaign(goal), AFTER)
    assert missed.reason == "mentions ended at 10 of 100"


def test_at_least_without_a_deadline_is_never_missed() -> None:
    goal = objective("mentions", 100, deadline=None)
    status = judge(goal, {"mentions": 0}, campaign(goal), AFTER + timedelta(days=365))
    assert status.status == Status.STATUS_ON_TRACK


@pytest.mark.parametrize(
    ("value", "now", "expected"),
    [
        (1800.0, HALF_WAY, Status.STATUS_ON_TRACK),
        (3600.0, HALF_WAY, Status.STATUS_ON_TRACK),
        (7200.0, HALF_WAY, Status.STATUS_AT_RISK),
        (1800.0, AFTER, Status.STATUS_ACHIEVED),
        (7200.0, AFTER, Status.STATUS_MISSED),
    ],
)
def test_at_most(value: float, now: datetime, expected: int) -> None:
    goal = objective("median_response_seconds", 3600, Objective.COMPARISON_AT_MOST)
    status = judge(goal, {"median_response_seconds": value}, campaign(goal), now)
    assert status.status == expected
    assert status.value == value
    assert status.reason == f"median_response_seconds is {value:g}, target at most 3600"


def test_an_unknown_metric_is_unspecified_with_a_reason() -> None:
    goal = objective("followers", 1000)
    status = judge(goal, {"mentions": 5000.0}, campaign(goal), AFTER)
    assert status.status == Status.STATUS_UNSPECIFIED
    assert "followers" in status.reason
    assert status.objective_id == "o-followers"
    assert status.target == 1000
    assert status.value == 0.0
