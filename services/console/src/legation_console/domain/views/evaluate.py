"""Evaluate pages: the campaigns and a campaign's live scorecard. No I/O.

Values carry the unit the evaluator's metric catalogue gives them (``ListMetrics``): counts,
percent, scores, ratings, and durations in hours or days (never raw seconds)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time

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


COMPARISONS = {
    "at_least": ("at least", evaluate_pb2.Objective.COMPARISON_AT_LEAST),
    "at_most": ("at most", evaluate_pb2.Objective.COMPARISON_AT_MOST),
    "increase_by": ("an increase of", evaluate_pb2.Objective.COMPARISON_INCREASE_BY),
    "decrease_by": ("a decrease of", evaluate_pb2.Objective.COMPARISON_DECREASE_BY),
}
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class CampaignForm:
    """A new campaign with its first objective; dates as YYYY-MM-DD (UTC days)."""

    campaign_id: str = ""
    name: str = ""
    description: str = ""
    starts: str = ""
    ends: str = ""
    issues: str = ""
    objective_id: str = ""
    metric: str = "mentions"
    comparison: str = "at_least"
    target: str = ""
    deadline: str = ""
    errors: tuple[tuple[str, str], ...] = ()

    def error(self, field: str) -> str | None:
        return next((message for name, message in self.errors if name == field), None)


def campaign_form(values: Mapping[str, str]) -> CampaignForm:
    """The form as posted (missing fields empty)."""
    return CampaignForm(
        campaign_id=values.get("campaign_id", "").strip(),
        name=values.get("name", ""),
        description=values.get("description", ""),
        starts=values.get("starts", "").strip(),
        ends=values.get("ends", "").strip(),
        issues=values.get("issues", ""),
        objective_id=values.get("objective_id", "").strip(),
        metric=values.get("metric", ""),
        comparison=values.get("comparison", ""),
        target=values.get("target", "").strip(),
        deadline=values.get("deadline", "").strip(),
    )


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def campaign_form_errors(form: CampaignForm) -> CampaignForm:
    """``form`` with what the person must fix before anything is sent."""
    errors: list[tuple[str, str]] = []
    if not _ID.match(form.campaign_id.strip()):
        errors.append(("campaign_id", "Enter an id of lower-case letters, digits and hyphens"))
    if not form.name.strip():
        errors.append(("name", "Enter the campaign's name"))
    for field, label in (("starts", "start"), ("ends", "end")):
        if _day(getattr(form, field)) is None:
            errors.append((field, f"Enter the {label} date as YYYY-MM-DD"))
    if not _ID.match(form.objective_id.strip()):
        errors.append(("objective_id", "Enter the objective's id (letters, digits, hyphens)"))
    if form.comparison not in COMPARISONS:
        errors.append(("comparison", "Choose how the target compares"))
    try:
        float(form.target)
    except ValueError:
        errors.append(("target", "Enter the target as a number"))
    if form.deadline.strip() and _day(form.deadline) is None:
        errors.append(("deadline", "Enter the deadline as YYYY-MM-DD, or leave it empty"))
    return replace(form, errors=tuple(errors))


def _timestamp_of(day: date, end: bool = False) -> datetime:
    return datetime.combine(day, time.max if end else time.min, tzinfo=UTC).replace(microsecond=0)


def campaign_of(form: CampaignForm) -> evaluate_pb2.Campaign:
    """The ``CreateCampaign`` request of a valid form (see :func:`campaign_form_errors`)."""
    campaign = evaluate_pb2.Campaign(
        campaign_id=form.campaign_id.strip(),
        name=form.name.strip(),
        description=form.description.strip(),
        issue_ids=[part for part in re.split(r"[,\s]+", form.issues) if part],
    )
    starts, ends = _day(form.starts), _day(form.ends)
    if starts is not None:
        campaign.starts_at.FromDatetime(_timestamp_of(starts))
    if ends is not None:
        campaign.ends_at.FromDatetime(_timestamp_of(ends, end=True))
    objective = campaign.objectives.add(
        objective_id=form.objective_id.strip(),
        metric=form.metric,
        comparison=COMPARISONS[form.comparison][1],
        target=float(form.target),
    )
    deadline = _day(form.deadline)
    if deadline is not None:
        objective.deadline.FromDatetime(_timestamp_of(deadline, end=True))
    return campaign


_API_FIELDS = {
    "campaign_id": "campaign_id",
    "name": "name",
    "starts_at": "starts",
    "ends_at": "ends",
    "issue_ids": "issues",
    "objectives[0].objective_id": "objective_id",
    "objectives[0].metric": "metric",
    "objectives[0].comparison": "comparison",
    "objectives[0].target": "target",
    "objectives[0].deadline": "deadline",
}


_LABELS = {
    "campaign_id": "Campaign id",
    "name": "Name",
    "starts": "Starts",
    "ends": "Ends",
    "issues": "Tracked issues",
    "objective_id": "Objective id",
    "metric": "Measure",
    "comparison": "Target is",
    "target": "Target",
    "deadline": "Deadline",
}


def with_campaign_error(form: CampaignForm, detail: str) -> CampaignForm:
    """The evaluator's INVALID_ARGUMENT detail on the field it names
    (``objectives[0].target 120 is outside ...`` → the target)."""
    head = re.split(r"[\s:]", detail, maxsplit=1)[0]
    field = _API_FIELDS.get(re.sub(r"^(issue_ids)\[\d+\]$", r"\1", head))
    if field is None:
        return replace(form, errors=(("name", detail[:1].upper() + detail[1:]),))
    # In the form's words: "Target 120 is outside ...", not "objectives[0].target 120 ...".
    message = _LABELS[field] + detail[len(head) :]
    return replace(form, errors=((field, message),))
