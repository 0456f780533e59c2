"""Campaign validation: what the API accepts. Each error names the field."""

from __future__ import annotations

import math
import re

from legation.events.v1 import evaluate_pb2
from legation_core.calls import InvalidArgument
from legation_evaluator.domain import metrics


class InvalidRequest(InvalidArgument):
    """A request the API refuses; the message names the field."""


Objective = evaluate_pb2.Objective
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
RELATIVE = (Objective.COMPARISON_INCREASE_BY, Objective.COMPARISON_DECREASE_BY)
# Bounds of the values a metric can take: a target outside them can never be met.
BOUNDS = {"percent": (0.0, 100.0), "score": (-1.0, 1.0), "rating": (1.0, 5.0)}


def validate_campaign(campaign: evaluate_pb2.Campaign) -> None:
    """Raises InvalidRequest naming the first field that is wrong."""
    if not campaign.campaign_id.strip():
        raise InvalidRequest("campaign_id is required")
    if not campaign.name.strip():
        raise InvalidRequest("name is required")
    if (
        campaign.HasField("starts_at")
        and campaign.HasField("ends_at")
        and campaign.ends_at.ToDatetime() <= campaign.starts_at.ToDatetime()
    ):
        raise InvalidRequest("ends_at must be after starts_at")
    for index, issue in enumerate(campaign.issue_ids):
        if not issue.strip():
            raise InvalidRequest(f"issue_ids[{index}] is empty")
    for index, language in enumerate(campaign.languages):
        if not LANGUAGE.match(language):
            raise InvalidRequest(
                f"languages[{index}] must be a BCP 47 tag such as es or es-MX, got {language!r}"
            )
    for index, country in enumerate(campaign.countries):
        if not COUNTRY.match(country):
            raise InvalidRequest(
                f"countries[{index}] must be an ISO 3166 alpha-2 code such as MX, got {country!r}"
            )
    partner_ids: set[str] = set()
    for index, partner in enumerate(campaign.partners):
        where = f"partners[{index}]"
        if not partner.partner_id.strip():
            raise InvalidRequest(f"{where}.partner_id is required")
        if partner.partner_id in partner_ids:
            raise InvalidRequest(f"{where}.partner_id {partner.partner_id!r} is repeated")
        partner_ids.add(partner.partner_id)
        if not [a for a in partner.accounts if a.strip()]:
            raise InvalidRequest(f"{where}.accounts needs at least one account")
    seen: set[str] = set()
    for index, objective in enumerate(campaign.objectives):
        _validate_objective(campaign, objective, f"objectives[{index}]", seen)


def _validate_objective(
    campaign: evaluate_pb2.Campaign,
    objective: Objective,
    where: str,
    seen: set[str],
) -> None:
    if not objective.objective_id:
        raise InvalidRequest(f"{where}.objective_id is required")
    if objective.objective_id in seen:
        raise InvalidRequest(f"{where}.objective_id {objective.objective_id!r} is repeated")
    seen.add(objective.objective_id)
    metric = metrics.resolve(objective.metric)
    if metric is None:
        raise InvalidRequest(
            f"{where}.metric must be one of {', '.join(metrics.METRIC_NAMES)}, "
            f"got {objective.metric!r}"
        )
    if objective.comparison == Objective.COMPARISON_UNSPECIFIED:
        raise InvalidRequest(f"{where}.comparison is required")
    if not math.isfinite(objective.target):
        raise InvalidRequest(f"{where}.target must be a finite number")
    relative = objective.comparison in RELATIVE
    if relative and objective.target <= 0:
        raise InvalidRequest(f"{where}.target must be above 0 for a change against the baseline")
    low, high = BOUNDS.get(metric.unit, (0.0, math.inf))
    if not relative and not low <= objective.target <= high:
        raise InvalidRequest(
            f"{where}.target {objective.target:g} is outside what {metric.name} can be "
            f"({low:g} to {high:g})"
        )
    has_start = objective.HasField("baseline_start")
    has_end = objective.HasField("baseline_end")
    if has_start != has_end:
        missing = "baseline_end" if has_start else "baseline_start"
        raise InvalidRequest(f"{where}.{missing} is required with the other end of the baseline")
    if has_start and objective.baseline_end.ToDatetime() <= objective.baseline_start.ToDatetime():
        raise InvalidRequest(f"{where}.baseline_end must be after baseline_start")
    if relative and not has_start and not objective.HasField("from_value"):
        raise InvalidRequest(
            f"{where}.baseline_start and baseline_end (or from_value) are required to compare "
            "against a baseline"
        )
    if (
        objective.HasField("deadline")
        and campaign.HasField("starts_at")
        and objective.deadline.ToDatetime() <= campaign.starts_at.ToDatetime()
    ):
        raise InvalidRequest(f"{where}.deadline must be after the campaign's starts_at")
    for number, item in enumerate(objective.filters):
        if item.field not in metrics.FILTER_FIELDS:
            raise InvalidRequest(
                f"{where}.filters[{number}].field must be one of "
                f"{', '.join(metrics.FILTER_FIELDS)}, got {item.field!r}"
            )
        if not [v for v in item.values if v.strip()]:
            raise InvalidRequest(f"{where}.filters[{number}].values needs at least one value")


def normalised(campaign: evaluate_pb2.Campaign) -> evaluate_pb2.Campaign:
    """The campaign as stored: each objective's level explicit (the metric's usual AMEC
    level when the request left it out)."""
    result = evaluate_pb2.Campaign()
    result.CopyFrom(campaign)
    for objective in result.objectives:
        metric = metrics.resolve(objective.metric)
        if objective.level == Objective.LEVEL_UNSPECIFIED and metric is not None:
            objective.level = metric.level
    return result


def validate_feedback(feedback: evaluate_pb2.Feedback) -> None:
    """The basics of feedback (the full rules are in :mod:`.feedback`)."""
    if not 1 <= feedback.rating <= 5:
        raise InvalidRequest(f"feedback.rating must be 1 to 5, got {feedback.rating}")
    if feedback.from_role == evaluate_pb2.Feedback.FROM_ROLE_UNSPECIFIED:
        raise InvalidRequest("feedback.from_role is required")
    if not feedback.text.strip():
        raise InvalidRequest("feedback.text is required")
