"""What the live scorecard page shows, as JSON-ready data (plain, no I/O)."""

from __future__ import annotations

from typing import Any

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2
from legation_evaluator.domain.metrics import shown
from legation_evaluator.domain.report import STATUS_LABELS


def campaign_entry(campaign: evaluate_pb2.Campaign) -> dict[str, Any]:
    return {"campaign_id": campaign.campaign_id, "name": campaign.name}


def scorecard_json(card: pb.Scorecard) -> dict[str, Any]:
    """The scorecard for the page: KPIs, objectives with their status in words, and the
    mentions per hour for the chart. Every value also comes as the text to show
    (``*_shown``: a duration in hours or days, a share in percent), formatted here so the
    page, the report and the terminal read alike."""
    return {
        "campaign_id": card.campaign_id,
        "name": card.name,
        "computed_at": card.computed_at.ToJsonString(),
        # The index is being rebuilt from Kafka: the page says the counts are incomplete.
        "rebuilding": card.rebuilding,
        "kpis": [
            {
                "name": kpi.name,
                "value": kpi.value,
                "value_shown": shown(kpi.value, kpi.name),
                "baseline": kpi.baseline if kpi.HasField("baseline") else None,
                "baseline_shown": (
                    shown(kpi.baseline, kpi.name) if kpi.HasField("baseline") else None
                ),
            }
            for kpi in card.kpis
        ],
        "events_by_service": dict(sorted(card.events_by_service.items())),
        "objectives": [
            {
                "objective_id": status.objective_id,
                "metric": status.metric,
                "status": STATUS_LABELS.get(status.status, "not measured"),
                "value": status.value,
                "value_shown": shown(status.value, status.metric),
                "target": status.target,
                "target_shown": shown(status.target, status.metric),
                "reason": status.reason,
            }
            for status in card.objectives
        ],
        "mentions_per_hour": [
            {"start": bucket.start.ToJsonString(), "count": bucket.count}
            for bucket in card.mentions_per_hour
        ],
    }
