"""Campaign and feedback validation: what the API accepts."""

from __future__ import annotations

from legation.events.v1 import evaluate_pb2
from legation_evaluator.domain.scorecard import KPI_NAMES


class InvalidRequest(ValueError):
    """A request the API refuses; the message names the field."""


def validate_campaign(campaign: evaluate_pb2.Campaign) -> None:
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
    seen = set()
    for index, objective in enumerate(campaign.objectives):
        where = f"objectives[{index}]"
        if not objective.objective_id:
            raise InvalidRequest(f"{where}.objective_id is required")
        if objective.objective_id in seen:
            raise InvalidRequest(f"{where}.objective_id {objective.objective_id!r} is repeated")
        seen.add(objective.objective_id)
        if objective.metric not in KPI_NAMES:
            raise InvalidRequest(
                f"{where}.metric must be one of {', '.join(KPI_NAMES)}, got {objective.metric!r}"
            )
        if objective.comparison == evaluate_pb2.Objective.COMPARISON_UNSPECIFIED:
            raise InvalidRequest(f"{where}.comparison is required")


def validate_feedback(feedback: evaluate_pb2.Feedback) -> None:
    if not 1 <= feedback.rating <= 5:
        raise InvalidRequest(f"feedback.rating must be 1 to 5, got {feedback.rating}")
    if feedback.from_role == evaluate_pb2.Feedback.FROM_ROLE_UNSPECIFIED:
        raise InvalidRequest("feedback.from_role is required")
    if not feedback.text.strip():
        raise InvalidRequest("feedback.text is required")
