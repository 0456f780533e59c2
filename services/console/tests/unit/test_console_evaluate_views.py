"""The Evaluate pages' view models: values in their units, campaigns, the scorecard."""

from __future__ import annotations

import pytest

from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.events.v1 import evaluate_pb2
from legation_console.domain.views import evaluate as views


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (1234.0, "count", "1,234"),
        (2.5, "count", "2.5"),
        (25.0, "percent", "25.0 %"),
        (-0.1062, "score", "-0.11"),
        (4.25, "rating", "4.2 of 5"),
        (911347.75, "seconds", "10.5 days"),
    ],
)
def test_values_carry_their_unit(value: float, unit: str, shown: str) -> None:
    assert views.value_in(value, unit) == shown


def test_the_scorecard_in_units_with_objectives() -> None:
    units = views.units_of(
        [
            evaluator_pb.Metric(name="share_of_voice", unit="percent"),
            evaluator_pb.Metric(
                name="median_first_response_seconds",
                unit="seconds",
                aliases=["median_response_seconds"],
            ),
        ]
    )
    assert units["median_response_seconds"] == "seconds"
    card = evaluator_pb.Scorecard(
        campaign_id="c",
        name="Ocean",
        mentions=6,
        replies=1,
        median_response_seconds=438840,
        mean_sentiment=-0.1062,
        mentions_with_sentiment=4,
        kpis=[evaluate_pb2.Kpi(name="share_of_voice", value=25, baseline=10)],
        objectives=[
            evaluate_pb2.ObjectiveStatus(
                objective_id="fast",
                metric="median_response_seconds",
                status=evaluate_pb2.ObjectiveStatus.STATUS_AT_RISK,
                value=438840,
                target=14400,
                progress=-0.5,
                reason="too slow",
            )
        ],
    )
    page = views.scorecard_page(card, units)
    counters = {counter.key: counter.value for counter in page.counters}
    assert counters["mentions"] == "6"
    assert counters["response"] == "5.1 days"
    assert counters["sentiment"] == "-0.11 (over 4 mentions)"
    (kpi,) = page.kpis
    assert (kpi.name, kpi.value, kpi.before) == ("share of voice", "25.0 %", "10.0 %")
    (objective,) = page.objectives
    assert (objective.status, objective.value, objective.target, objective.progress) == (
        "At risk",
        "5.1 days",
        "4.0 h",
        "0 %",
    )
    assert views.campaigns_page([evaluate_pb2.Campaign(campaign_id="x")]).rows[0].name == "x"


def test_the_campaign_form_and_its_request() -> None:
    empty = views.campaign_form_errors(views.campaign_form({}))
    assert [name for name, _ in empty.errors] == [
        "campaign_id",
        "name",
        "starts",
        "ends",
        "objective_id",
        "comparison",
        "target",
    ]
    form = views.campaign_form(
        {
            "campaign_id": "voice-2026",
            "name": "Voice",
            "starts": "2026-12-01",
            "ends": "2026-12-31",
            "issues": "a, b",
            "objective_id": "voice",
            "metric": "share_of_voice",
            "comparison": "at_least",
            "target": "20",
            "deadline": "2026-12-20",
        }
    )
    assert views.campaign_form_errors(form).errors == ()
    campaign = views.campaign_of(form)
    assert (campaign.campaign_id, list(campaign.issue_ids)) == ("voice-2026", ["a", "b"])
    assert campaign.starts_at.ToJsonString() == "2026-12-01T00:00:00Z"
    assert campaign.ends_at.ToJsonString() == "2026-12-31T23:59:59Z"
    (objective,) = campaign.objectives
    assert (objective.metric, objective.target) == ("share_of_voice", 20.0)
    assert objective.comparison == evaluate_pb2.Objective.COMPARISON_AT_LEAST
    refused = views.with_campaign_error(form, "objectives[0].target 120 is outside it")
    assert refused.error("target") == "Target 120 is outside it"
    assert views.with_campaign_error(form, "issue_ids[1] is empty").error("issues")
    assert views.with_campaign_error(form, "ends_at must be after starts_at").error("ends") == (
        "Ends must be after starts_at"
    )
    assert views.with_campaign_error(form, "something odd").error("name") == "Something odd"
