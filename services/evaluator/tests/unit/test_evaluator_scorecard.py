"""Objectives judged against their metric and baseline, and the scorecard's query plan.
(The metrics over real documents: tests/integration/test_evaluator_metrics.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from legation.events.v1 import evaluate_pb2
from legation_evaluator.domain import metrics
from legation_evaluator.domain.scorecard import (
    judge,
    plan_for,
    scorecard_query,
)

Objective = evaluate_pb2.Objective
Status = evaluate_pb2.ObjectiveStatus

STARTS = datetime(2025, 1, 1, tzinfo=UTC)
DEADLINE = datetime(2025, 1, 11, tzinfo=UTC)  # ten days after the start
HALF_WAY = datetime(2025, 1, 6, tzinfo=UTC)
AFTER = datetime(2025, 1, 12, tzinfo=UTC)


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


def test_the_query_is_scoped_to_the_campaign_and_its_period() -> None:
    query = scorecard_query(campaign())
    assert query["size"] == 0
    assert query["query"] == {"term": {"campaign_ids": "camp-1"}}
    assert {"service__listener", "type__0", "opened", "replies", "mentions", "scope_0"} <= set(
        query["aggs"]
    )
    period = query["aggs"]["scope_0"]["filter"]["bool"]["filter"][0]["range"]["occurred_at"]
    assert period == {"gte": STARTS.isoformat(), "lt": DEADLINE.isoformat()}
    assert {"volume", "reach", "sentiment", "share_of_voice__ours"} <= set(
        query["aggs"]["scope_0"]["aggs"]
    )


def test_each_objective_gets_its_window_filters_and_baseline() -> None:
    goal = objective("stance_favour_share", 10, Objective.COMPARISON_INCREASE_BY)
    goal.baseline_start.FromDatetime(STARTS - timedelta(days=30))
    goal.baseline_end.FromDatetime(STARTS)
    goal.filters.add(field="language", values=["es"])
    plan = plan_for(campaign(goal))
    # The campaign's period, the same length before it, the objective's, its baseline.
    assert len(plan.scopes) == 4
    scopes = list(plan.scopes)
    assert scopes[1].window == metrics.Window(STARTS - (DEADLINE - STARTS), STARTS)
    assert plan.scopes[scopes[2]] == plan.scopes[scopes[3]] == {"stance_favour_share"}
    assert scopes[3].window.end == STARTS
    language = scopes[2].query()["bool"]["filter"][1]["bool"]["should"]
    assert {"terms": {"mention.language": ["es"]}} in language
    assert {"prefix": {"mention.language": "es-"}} in language


def test_objectives_sharing_a_scope_share_its_aggregation() -> None:
    plan = plan_for(campaign(objective("mentions", 4), objective("replies", 10)))
    # Deadline at the campaign's end, no filters: the campaign's own scope serves both
    # (the other scope is the period before the campaign).
    assert len(plan.scopes) == 2
    early = plan_for(
        campaign(
            objective("mentions", 4, deadline=HALF_WAY), objective("replies", 10, deadline=HALF_WAY)
        )
    )
    assert len(early.scopes) == 3
    assert list(early.scopes.values())[2] == {"volume", "replies"}


# AT_LEAST on a count: halfway through, 80% of the expected half (40% of the target) is on
# track; a count that reached its target is achieved for good.


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
    status = judge(goal, value, campaign(goal), now)
    assert status.status == expected
    assert status.objective_id == "o-mentions"
    assert status.metric == "mentions"
    assert status.value == value
    assert status.target == 100
    assert "mentions" in status.reason


def test_at_least_reasons_say_how_far_it_got() -> None:
    goal = objective("mentions", 100)
    at_risk = judge(goal, 10, campaign(goal), HALF_WAY)
    assert at_risk.reason == "mentions at 10 of 100 with 50% of the time gone"
    assert at_risk.progress == pytest.approx(0.1)
    missed = judge(goal, 10, campaign(goal), AFTER)
    assert missed.reason == "mentions ended at 10 of 100"


def test_an_objective_without_a_deadline_ends_with_its_campaign() -> None:
    goal = objective("mentions", 100, deadline=None)
    # During the campaign it is judged against the campaign's time gone (half of it here).
    behind = judge(goal, 10, campaign(goal), HALF_WAY)
    assert behind.status == Status.STATUS_AT_RISK
    assert "50% of the time gone" in behind.reason
    # After the campaign's end (an after-action review) it is settled, not "on track".
    missed = judge(goal, 10, campaign(goal), AFTER)
    assert missed.status == Status.STATUS_MISSED
    assert missed.reason == "mentions ended at 10 of 100"
    share = objective("share_of_voice", 20, deadline=None)
    assert judge(share, 25, campaign(share), AFTER).status == Status.STATUS_ACHIEVED
    assert judge(share, 15, campaign(share), AFTER).status == Status.STATUS_MISSED
    assert judge(share, None, campaign(share), AFTER).status == Status.STATUS_MISSED


def test_without_a_deadline_or_a_campaign_end_it_is_never_missed() -> None:
    goal = objective("mentions", 100, deadline=None)
    open_ended = campaign(goal)
    open_ended.ClearField("ends_at")
    status = judge(goal, 0, open_ended, AFTER + timedelta(days=365))
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
def test_at_most_on_a_rate(value: float, now: datetime, expected: int) -> None:
    goal = objective("median_response_seconds", 3600, Objective.COMPARISON_AT_MOST)
    status = judge(goal, value, campaign(goal), now)
    assert status.status == expected
    assert status.value == value
    shown = f"{value / 3600:.3g} h" if value >= 3600 else f"{value / 60:.3g} min"
    assert status.reason == f"median_response_seconds is {shown}, target at most 1 h"


def test_a_count_past_its_ceiling_is_missed_before_the_deadline() -> None:
    goal = objective("feedback", 3, Objective.COMPARISON_AT_MOST)
    assert judge(goal, 2, campaign(goal), HALF_WAY).status == Status.STATUS_ON_TRACK
    missed = judge(goal, 4, campaign(goal), HALF_WAY)
    assert missed.status == Status.STATUS_MISSED
    assert missed.reason == "feedback is 4, over the target at most 3"


def test_a_share_that_meets_its_target_must_hold_until_the_deadline() -> None:
    goal = objective("share_of_voice", 20)
    goal.from_value = 12
    now_met = judge(goal, 21, campaign(goal), HALF_WAY, baseline=12)
    assert now_met.status == Status.STATUS_ON_TRACK
    assert "must hold" in now_met.reason
    assert judge(goal, 21, campaign(goal), AFTER, baseline=12).status == Status.STATUS_ACHIEVED
    # From 12 to 20: at 14 a quarter of the way with half the time gone is at risk.
    behind = judge(goal, 14, campaign(goal), HALF_WAY, baseline=12)
    assert behind.status == Status.STATUS_AT_RISK
    assert behind.progress == pytest.approx(0.25)
    assert behind.baseline == 12
    assert judge(goal, 16, campaign(goal), HALF_WAY, baseline=12).status == (Status.STATUS_ON_TRACK)


def test_increase_by_points_against_the_baseline() -> None:
    goal = objective("stance_favour_share", 10, Objective.COMPARISON_INCREASE_BY)
    achieved = judge(goal, 41, campaign(goal), AFTER, baseline=30)
    assert achieved.status == Status.STATUS_ACHIEVED
    assert achieved.reason == "stance_favour_share ended at 41 % of 40 % (baseline 30 %)"
    assert judge(goal, 38, campaign(goal), AFTER, baseline=30).status == Status.STATUS_MISSED
    unmeasured = judge(goal, 38, campaign(goal), HALF_WAY, baseline=None)
    assert unmeasured.status == Status.STATUS_UNSPECIFIED
    assert unmeasured.reason == "stance_favour_share has no baseline to compare with"


def test_decrease_by_against_the_baseline() -> None:
    goal = objective("median_first_response_seconds", 3600, Objective.COMPARISON_DECREASE_BY)
    assert judge(goal, 7000, campaign(goal), AFTER, baseline=10800).status == (
        Status.STATUS_ACHIEVED
    )
    assert judge(goal, 9000, campaign(goal), HALF_WAY, baseline=10800).status == (
        Status.STATUS_AT_RISK
    )


def test_no_data_is_unspecified_until_the_deadline_then_missed() -> None:
    goal = objective("sentiment", 0.2)
    waiting = judge(goal, None, campaign(goal), HALF_WAY)
    assert waiting.status == Status.STATUS_UNSPECIFIED
    assert waiting.reason == "no data for sentiment yet"
    assert judge(goal, None, campaign(goal), AFTER).status == Status.STATUS_MISSED


def test_an_unknown_metric_is_unspecified_with_a_reason() -> None:
    goal = objective("followers", 1000)
    status = judge(goal, 5000.0, campaign(goal), AFTER)
    assert status.status == Status.STATUS_UNSPECIFIED
    assert "followers" in status.reason
    assert status.objective_id == "o-followers"
    assert status.target == 1000
    assert status.value == 0.0


def test_every_alias_names_a_catalogued_metric() -> None:
    for alias, name in metrics.ALIASES.items():
        assert metrics.resolve(alias) is metrics.METRICS[name]
    assert metrics.resolve("followers") is None
