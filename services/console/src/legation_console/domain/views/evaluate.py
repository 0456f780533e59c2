"""Evaluate pages: the campaigns and a campaign's live scorecard. No I/O.

Values carry the unit the evaluator's metric catalogue gives them (``ListMetrics``): counts,
percent, scores, ratings, and durations in hours or days (never raw seconds)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.events.v1 import evaluate_pb2
from legation_console.domain.formatting import count, duration, timestamp, when

OBJECTIVE_STATUS = {
    evaluate_pb2.ObjectiveStatus.STATUS_ON_TRACK: ("On track", "govuk-tag--green"),
    evaluate_pb2.ObjectiveStatus.STATUS_AT_RISK: ("At risk", "govuk-tag--orange"),
    evaluate_pb2.ObjectiveStatus.STATUS_ACHIEVED: ("Achieved", "govuk-tag--blue"),
    evaluate_pb2.ObjectiveStatus.STATUS_MISSED: ("Missed", "govuk-tag--red"),
}


def value_in(value: float, unit: str) -> str:
    """``value`` in its unit: ``1,234``, ``25.0 %``, ``-0.11``, ``4.2 of 5``, ``3.5 h``."""
    if unit == "percent":
        return f"{value:.1f} %"
    if unit == "score":
        return f"{value:+.2f}"
    if unit == "seconds":
        return duration(value)
    if unit == "rating":
        return f"{value:.1f} of 5"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def units_of(metrics: Sequence[evaluator_pb.Metric]) -> dict[str, str]:
    """Metric name (and each alias) → its unit."""
    units: dict[str, str] = {}
    for metric in metrics:
        for name in (metric.name, *metric.aliases):
            units[name] = metric.unit
    return units


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: str
    name: str
    period: str
    issues: str
    objectives: str


@dataclass(frozen=True)
class CampaignsPage:
    rows: tuple[CampaignRow, ...]
    summary: str


def campaigns_page(campaigns: Sequence[evaluate_pb2.Campaign]) -> CampaignsPage:
    """The campaigns, newest start first."""
    ordered = sorted(campaigns, key=lambda c: (-c.starts_at.seconds, c.campaign_id))
    rows = tuple(
        CampaignRow(
            campaign_id=c.campaign_id,
            name=c.name or c.campaign_id,
            period=f"{when(timestamp(c.starts_at))} to {when(timestamp(c.ends_at))}",
            issues=", ".join(c.issue_ids) or "—",
            objectives=count(len(c.objectives), "objective"),
        )
        for c in ordered
    )
    return CampaignsPage(rows, count(len(rows), "campaign"))


@dataclass(frozen=True)
class Counter:
    key: str
    label: str
    value: str


@dataclass(frozen=True)
class KpiRow:
    name: str
    value: str
    before: str


@dataclass(frozen=True)
class ObjectiveRow:
    objective_id: str
    metric: str
    status: str
    status_tag: str
    value: str
    target: str
    progress: str
    reason: str


@dataclass(frozen=True)
class ScorecardPage:
    campaign_id: str
    name: str
    computed: str
    counters: tuple[Counter, ...]
    kpis: tuple[KpiRow, ...]
    objectives: tuple[ObjectiveRow, ...]


def scorecard_page(scorecard: evaluator_pb.Scorecard, units: Mapping[str, str]) -> ScorecardPage:
    """The scorecard: counters, every KPI against its pre-campaign level, each objective."""
    response = (
        duration(scorecard.median_response_seconds) if scorecard.replies else "no replies yet"
    )
    over = count(scorecard.mentions_with_sentiment, "mention")
    sentiment = (
        f"{scorecard.mean_sentiment:+.2f} (over {over})"
        if scorecard.mentions_with_sentiment
        else "unknown"
    )
    counters = (
        Counter("mentions", "Mentions", f"{scorecard.mentions:,}"),
        Counter("publications", "Publications", f"{scorecard.publications:,}"),
        Counter("conversations", "Conversations opened", f"{scorecard.conversations_opened:,}"),
        Counter("replies", "Replies", f"{scorecard.replies:,}"),
        Counter("feedback", "Feedback", f"{scorecard.feedback:,}"),
        Counter("sentiment", "Mean sentiment (-1 to +1)", sentiment),
        Counter("response", "Median first response", response),
    )
    kpis = tuple(
        KpiRow(
            name=kpi.name.replace("_", " "),
            value=value_in(kpi.value, units.get(kpi.name, "count")),
            before=value_in(kpi.baseline, units.get(kpi.name, "count"))
            if kpi.HasField("baseline")
            else "—",
        )
        for kpi in scorecard.kpis
    )
    objectives = []
    for objective in scorecard.objectives:
        status, tag = OBJECTIVE_STATUS.get(objective.status, ("Unknown", "govuk-tag--grey"))
        unit = units.get(objective.metric, "count")
        objectives.append(
            ObjectiveRow(
                objective_id=objective.objective_id,
                metric=objective.metric.replace("_", " "),
                status=status,
                status_tag=tag,
                value=value_in(objective.value, unit),
                target=value_in(objective.target, unit),
                progress=f"{min(max(objective.progress, 0.0), 1.0) * 100:.0f} %",
                reason=objective.reason,
            )
        )
    return ScorecardPage(
        campaign_id=scorecard.campaign_id,
        name=scorecard.name or scorecard.campaign_id,
        computed=when(timestamp(scorecard.computed_at)),
        counters=counters,
        kpis=kpis,
        objectives=tuple(objectives),
    )
