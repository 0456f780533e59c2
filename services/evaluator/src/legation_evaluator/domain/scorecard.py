"""A campaign's scorecard: KPIs from index aggregations, objectives judged against them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2

Objective = evaluate_pb2.Objective
ObjectiveStatus = evaluate_pb2.ObjectiveStatus

MENTION = "legation.events.v1.Mention"
PUBLICATION = "legation.events.v1.Publication"
FEEDBACK = "legation.events.v1.Feedback"

KPI_NAMES = (
    "mentions",
    "publications",
    "conversations_opened",
    "replies",
    "feedback",
    "mean_sentiment",
    "median_response_seconds",
)

# At this share of the expected progress an objective is still on track.
ON_TRACK_SHARE = 0.8


def scorecard_query(campaign_id: str) -> dict[str, Any]:
    """One search that returns every aggregation the scorecard needs."""
    return {
        "size": 0,
        "track_total_hits": True,
        "query": {"term": {"campaign_ids": campaign_id}},
        "aggs": {
            "by_service": {"terms": {"field": "source_service", "size": 10}},
            "by_type": {"terms": {"field": "event_type", "size": 20}},
            "opened": {"filter": {"term": {"interaction.kind": "KIND_OPENED"}}},
            "replies": {
                "filter": {"term": {"interaction.kind": "KIND_REPLIED"}},
                "aggs": {
                    "response": {
                        "percentiles": {"field": "interaction.response_seconds", "percents": [50]}
                    }
                },
            },
            "mentions": {
                "filter": {"term": {"event_type": MENTION}},
                "aggs": {
                    "known_sentiment": {
                        "filter": {
                            "bool": {"must_not": {"term": {"mention.sentiment.value": "unknown"}}}
                        },
                        "aggs": {"mean": {"avg": {"field": "mention.sentiment.score"}}},
                    },
                    "per_hour": {
                        "date_histogram": {"field": "occurred_at", "fixed_interval": "1h"}
                    },
                },
            },
        },
    }


def _buckets(aggregation: Mapping[str, Any]) -> dict[str, int]:
    return {str(b["key"]): int(b["doc_count"]) for b in aggregation.get("buckets", [])}


def _percentile_50(aggregation: Mapping[str, Any]) -> float:
    values = aggregation.get("values", {})
    value = values.get("50.0", values.get("50"))
    return float(value) if value is not None else 0.0


def scorecard_from_response(
    campaign: evaluate_pb2.Campaign, response: Mapping[str, Any], now: datetime
) -> pb.Scorecard:
    """Builds the scorecard from the search response of :func:`scorecard_query`."""
    aggs = response["aggregations"]
    by_type = _buckets(aggs["by_type"])
    mentions = aggs["mentions"]
    known = mentions["known_sentiment"]
    card = pb.Scorecard(
        campaign_id=campaign.campaign_id,
        name=campaign.name,
        events_by_service=_buckets(aggs["by_service"]),
        mentions=by_type.get(MENTION, 0),
        publications=by_type.get(PUBLICATION, 0),
        conversations_opened=int(aggs["opened"]["doc_count"]),
        replies=int(aggs["replies"]["doc_count"]),
        feedback=by_type.get(FEEDBACK, 0),
        mean_sentiment=float(known["mean"]["value"] or 0.0),
        mentions_with_sentiment=int(known["doc_count"]),
        median_response_seconds=(
            _percentile_50(aggs["replies"]["response"]) if aggs["replies"]["doc_count"] else 0.0
        ),
    )
    card.computed_at.FromDatetime(now)
    for bucket in mentions["per_hour"]["buckets"]:
        if bucket["doc_count"]:
            time_bucket = card.mentions_per_hour.add(count=int(bucket["doc_count"]))
            time_bucket.start.FromMilliseconds(int(bucket["key"]))
    kpis = {name: float(getattr(card, name)) for name in KPI_NAMES}
    card.kpis.extend(evaluate_pb2.Kpi(name=name, value=value) for name, value in kpis.items())
    card.objectives.extend(judge(o, kpis, campaign, now) for o in campaign.objectives)
    return card


def judge(
    objective: Objective, kpis: Mapping[str, float], campaign: evaluate_pb2.Campaign, now: datetime
) -> ObjectiveStatus:
    """On track, at risk, achieved or missed, with the reason in words."""
    status = ObjectiveStatus(
        objective_id=objective.objective_id, metric=objective.metric, target=objective.target
    )
    if objective.metric not in kpis:
        status.status = ObjectiveStatus.STATUS_UNSPECIFIED
        status.reason = f"no KPI named {objective.metric!r} yet"
        return status
    value = status.value = kpis[objective.metric]
    target = objective.target
    deadline = (
        objective.deadline.ToDatetime(tzinfo=now.tzinfo) if objective.HasField("deadline") else None
    )
    over = deadline is not None and now >= deadline
    if objective.comparison == Objective.COMPARISON_AT_MOST:
        met = value <= target
        if over:
            status.status = (
                ObjectiveStatus.STATUS_ACHIEVED if met else ObjectiveStatus.STATUS_MISSED
            )
        else:
            status.status = (
                ObjectiveStatus.STATUS_ON_TRACK if met else ObjectiveStatus.STATUS_AT_RISK
            )
        status.reason = f"{objective.metric} is {value:g}, target at most {target:g}"
        return status
    if value >= target:
        status.status = ObjectiveStatus.STATUS_ACHIEVED
        status.reason = f"{objective.metric} reached {value:g} of {target:g}"
        return status
    if over:
        status.status = ObjectiveStatus.STATUS_MISSED
        status.reason = f"{objective.metric} ended at {value:g} of {target:g}"
        return status
    expected = _expected_share(campaign, deadline, now)
    on_track = target <= 0 or value / target >= expected * ON_TRACK_SHARE
    status.status = ObjectiveStatus.STATUS_ON_TRACK if on_track else ObjectiveStatus.STATUS_AT_RISK
    status.reason = (
        f"{objective.metric} at {value:g} of {target:g} with {expected:.0%} of the time gone"
    )
    return status


def _expected_share(
    campaign: evaluate_pb2.Campaign, deadline: datetime | None, now: datetime
) -> float:
    """The share of the campaign's time to the deadline already gone (0 without dates)."""
    if deadline is None or not campaign.HasField("starts_at"):
        return 0.0
    start = campaign.starts_at.ToDatetime(tzinfo=now.tzinfo)
    total = (deadline - start).total_seconds()
    if total <= 0:
        return 1.0
    return min(1.0, max(0.0, (now - start).total_seconds() / total))
