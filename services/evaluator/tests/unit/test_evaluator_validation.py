"""Campaign and feedback validation: the error names the field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from legation.events.v1 import evaluate_pb2
from legation_evaluator.domain.campaigns import (
    InvalidRequest,
    normalised,
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
        (_unknown_metric, "objectives[0].metric must be one of volume, reach, "),
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


def _with_objective(**fields: object) -> evaluate_pb2.Campaign:
    campaign = valid_campaign()
    objective = campaign.objectives.add(objective_id="o-3")
    for name, value in fields.items():
        if name == "filters":
            for field_name, values in value:  # type: ignore[attr-defined]
                objective.filters.add(field=field_name, values=values)
        elif name in ("baseline_start", "baseline_end", "deadline"):
            getattr(objective, name).FromDatetime(value)
        else:
            setattr(objective, name, value)
    return campaign


BASE_START = datetime(2024, 12, 1, tzinfo=UTC)
BASE_END = datetime(2024, 12, 31, tzinfo=UTC)
INCREASE = Objective.COMPARISON_INCREASE_BY
AT_LEAST = Objective.COMPARISON_AT_LEAST


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"metric": "share_of_voice", "comparison": AT_LEAST, "target": 120},
            "objectives[2].target 120 is outside what share_of_voice can be (0 to 100)",
        ),
        (
            {"metric": "stance_favour_share", "comparison": INCREASE, "target": 10},
            "objectives[2].baseline_start and baseline_end (or from_value) are required",
        ),
        (
            {"metric": "stance_favour_share", "comparison": INCREASE, "target": -5},
            "objectives[2].target must be above 0",
        ),
        (
            {"metric": "volume", "comparison": AT_LEAST, "baseline_start": BASE_START},
            "objectives[2].baseline_end is required",
        ),
        (
            {
                "metric": "volume",
                "comparison": AT_LEAST,
                "baseline_start": BASE_END,
                "baseline_end": BASE_START,
            },
            "objectives[2].baseline_end must be after baseline_start",
        ),
        (
            {"metric": "reach", "comparison": AT_LEAST, "filters": [("country", ["MX"])]},
            "objectives[2].filters[0].field must be one of language, ",
        ),
        (
            {"metric": "reach", "comparison": AT_LEAST, "filters": [("language", [])]},
            "objectives[2].filters[0].values needs at least one value",
        ),
        (
            {"metric": "reach", "comparison": AT_LEAST, "deadline": BASE_END},
            "objectives[2].deadline must be after the campaign's starts_at",
        ),
    ],
)
def test_an_invalid_objective_names_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_campaign(_with_objective(**fields))
    assert str(caught.value).startswith(message)


def test_a_relative_objective_with_a_baseline_and_filters_is_valid() -> None:
    validate_campaign(
        _with_objective(
            metric="stance_favour_share",
            comparison=INCREASE,
            target=10,
            baseline_start=BASE_START,
            baseline_end=BASE_END,
            filters=[("language", ["es"])],
        )
    )
    validate_campaign(
        _with_objective(metric="share_of_voice", comparison=AT_LEAST, target=20, from_value=12)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.languages.append("Spanish"), "languages[0] must be a BCP 47 tag"),
        (lambda c: c.countries.append("mex"), "countries[0] must be an ISO 3166 alpha-2 code"),
        (lambda c: c.partners.add(partner_id="ocean"), "partners[0].accounts needs"),
        (lambda c: c.partners.add(accounts=["@x"]), "partners[0].partner_id is required"),
        (lambda c: c.issue_ids.append(" "), "issue_ids[0] is empty"),
    ],
)
def test_invalid_audiences_and_partners_name_the_field(
    change: Callable[[evaluate_pb2.Campaign], object], message: str
) -> None:
    campaign = valid_campaign()
    change(campaign)
    with pytest.raises(InvalidRequest) as caught:
        validate_campaign(campaign)
    assert str(caught.value).startswith(message)


def test_the_stored_campaign_names_each_objective_level() -> None:
    stored = normalised(valid_campaign())
    assert stored.objectives[0].level == Objective.LEVEL_OUTTAKE  # volume
    assert stored.objectives[1].level == Objective.LEVEL_OUTPUT  # response time
    assert valid_campaign().objectives[0].level == Objective.LEVEL_UNSPECIFIED
