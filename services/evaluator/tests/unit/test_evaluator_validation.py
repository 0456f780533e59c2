"""Campaign and feedback validation: the error names the field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from legation.events.v1 import evaluate_pb2
from legation_evaluator.domain.campaigns import (
    InvalidRequest,
    validate_campaign,
    validate_feedback,
)

Objective = evaluate_pb2.Objective
Feedback = evaluate_pb2.Feedback


def valid_campaign() -> evaluate_pb2.Campaign:
    campaign = evaluate_pb2.Campaign(
        campaign_id="camp-1",
        name="Visa week",
        objectives=[
            Objective(
                objective_id="o-1",
                metric="mentions",
                comparison=Objective.COMPARISON_AT_LEAST,
                target=100,
            ),
            Objective(
                objective_id="o-2",
                metric="median_response_seconds",
                comparison=Objective.COMPARISON_AT_MOST,
                target=3600,
            ),
        ],
    )
    campaign.starts_at.FromDatetime(datetime(2025, 1, 1, tzinfo=UTC))
    campaign.ends_at.FromDatetime(datetime(2025, 2, 1, tzinfo=UTC))
    return campaign


def valid_feedback() -> evaluate_pb2.Feedback:
    return Feedback(from_role=Feedback.FROM_ROLE_PARTNER, rating=4, text="Useful briefing.")


def test_a_complete_campaign_is_valid() -> None:
    validate_campaign(valid_campaign())
    without_dates = valid_campaign()
    without_dates.ClearField("starts_at")
    without_dates.ClearField("ends_at")
    validate_campaign(without_dates)


def _no_id(c: evaluate_pb2.Campaign) -> None:
    c.campaign_id = "  "


def _no_name(c: evaluate_pb2.Campaign) -> None:
    c.name = ""


def _ends_first(c: evaluate_pb2.Campaign) -> None:
    c.ends_at.FromDatetime(datetime(2024, 12, 1, tzinfo=UTC))


def _same_end(c: evaluate_pb2.Campaign) -> None:
    c.ends_at.CopyFrom(c.starts_at)


def _no_objective_id(c: evaluate_pb2.Campaign) -> None:
    c.objectives[0].objective_id = ""


def _repeated_objective_id(c: evaluate_pb2.Campaign) -> None:
    c.objectives[1].objective_id = "o-1"


def _unknown_metric(c: evaluate_pb2.Campaign) -> None:
    c.objectives[0].metric = "followers"


def _second_unknown_metric(c: evaluate_pb2.Campaign) -> None:
    c.objectives[1].metric = ""


def _no_comparison(c: evaluate_pb2.Campaign) -> None:
    c.objectives[1].comparison = Objective.COMPARISON_UNSPECIFIED


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (_no_id, "campaign_id is required"),
        (_no_name, "name is required"),
        (_ends_first, "ends_at must be after starts_at"),
        (_same_end, "ends_at must be after starts_at"),
        (_no_objective_id, "objectives[0].objective_id is required"),
        (_repeated_objective_id, "objectives[1].objective_id 'o-1' is repeated"),
        (_unknown_metric, "objectives[0].metric must be one of mentions, "),
        (_second_unknown_metric, "objectives[1].metric must be one of "),
        (_no_comparison, "objectives[1].comparison is required"),
    ],
)
def test_an_invalid_campaign_names_the_field(
    break_it: Callable[[evaluate_pb2.Campaign], None], message: str
) -> None:
    campaign = valid_campaign()
    break_it(campaign)
    with pytest.raises(InvalidRequest) as caught:
        validate_campaign(campaign)
    assert str(caught.value).startswith(message)


def test_an_unknown_metric_error_says_what_it_got() -> None:
    campaign = valid_campaign()
    campaign.objectives[0].metric = "followers"
    with pytest.raises(InvalidRequest, match="got 'followers'"):
        validate_campaign(campaign)


@pytest.mark.parametrize("rating", [1, 3, 5])
def test_complete_feedback_is_valid(rating: int) -> None:
    feedback = valid_feedback()
    feedback.rating = rating
    validate_feedback(feedback)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rating": 0}, "feedback.rating must be 1 to 5, got 0"),
        ({"rating": 6}, "feedback.rating must be 1 to 5, got 6"),
        ({"from_role": Feedback.FROM_ROLE_UNSPECIFIED}, "feedback.from_role is required"),
        ({"text": " \n"}, "feedback.text is required"),
    ],
)
def test_invalid_feedback_names_the_field(changes: dict[str, object], message: str) -> None:
    feedback = valid_feedback()
    for name, value in changes.items():
        setattr(feedback, name, value)
    with pytest.raises(InvalidRequest) as caught:
        validate_feedback(feedback)
    assert str(caught.value) == message
