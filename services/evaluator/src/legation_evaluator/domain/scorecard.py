"""A campaign's scorecard: KPIs from index aggregations, objectives judged against them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2
from legation_core.catalog import default_catalog
from legation_core.units import format_value
from legation_evaluator.domain import metrics

Objective = evaluate_pb2.Objective
ObjectiveStatus = evaluate_pb2.ObjectiveStatus

MENTION = metrics.MENTION
PUBLICATION = metrics.PUBLICATION
FEEDBACK = metrics.FEEDBACK

# The services whose events the scorecard counts (Envelope.source_service).
SERVICES = ("listener", "publisher", "engager", "evaluator")


@cache
def event_types() -> tuple[str, ...]:
    """Every event type the evaluator indexes (from the topic catalog)."""
    return tuple(sorted({spec.message_type for spec in default_catalog().consumed_by("evaluator")}))


# The KPIs shown against the period before the campaign (the others would double the
# search's cost for figures nobody compares: see the README's measurements).
BASELINED = frozenset(
    {"volume", "reach", "engagement", "sentiment", "stance_favour_share", "share_of_voice"}
)

# The key of a scorecard response that says how it was computed (not an aggregation).
COMPUTED_FROM = "legation_computed_from"

# At this share of the expected progress an objective is still on track.
ON_TRACK_SHARE = 0.8


def _ts(message: Any, name: str, tz: Any = UTC) -> datetime | None:
    """A Timestamp field as an aware datetime, None when unset."""
    return getattr(message, name).ToDatetime(tzinfo=tz) if message.HasField(name) else None


def campaign_window(campaign: evaluate_pb2.Campaign) -> metrics.Window:
    """The campaign's own period: what its KPIs count."""
    return metrics.Window(_ts(campaign, "starts_at"), _ts(campaign, "ends_at"))


def before_window(campaign: evaluate_pb2.Campaign) -> metrics.Window | None:
    """The campaign's length just before it started: what its KPIs are compared with."""
    start, end = _ts(campaign, "starts_at"), _ts(campaign, "ends_at")
    if start is None or end is None:
        return None
    return metrics.Window(start - (end - start), start)


def objective_window(campaign: evaluate_pb2.Campaign, objective: Objective) -> metrics.Window:
    """From the campaign's start to the objective's deadline (or the campaign's end)."""
    end = _ts(objective, "deadline") or _ts(campaign, "ends_at")
    return metrics.Window(_ts(campaign, "starts_at"), end)


def baseline_window(objective: Objective) -> metrics.Window | None:
    start, end = _ts(objective, "baseline_start"), _ts(objective, "baseline_end")
    if start is None or end is None:
        return None
    return metrics.Window(start, end)


@dataclass
class Plan:
    """The scopes of one campaign's scorecard and the metrics each one computes; the
    query and the reading of its response both follow it, so they cannot disagree."""

    context: metrics.Context
    scopes: dict[metrics.Scope, set[str]] = field(default_factory=dict)

    def add(self, scope: metrics.Scope, metric: str) -> str:
        self.scopes.setdefault(scope, set()).add(metric)
        return self.name(scope)

    def name(self, scope: metrics.Scope) -> str:
        return f"scope_{list(self.scopes).index(scope)}"

    def aggs(self, only: Iterable[metrics.Scope] | None = None) -> dict[str, Any]:
        """The aggregations of every scope (or of the scopes ``only``)."""
        chosen = set(self.scopes if only is None else only)
        out: dict[str, Any] = {}
        for scope, names in self.scopes.items():
            if scope not in chosen:
                continue
            sub: dict[str, Any] = {}
            for name in sorted(names):
                sub.update(metrics.METRICS[name].aggs(name, self.context))
            out[self.name(scope)] = {"filter": scope.query(), "aggs": sub}
        return out

    def value(self, response: Mapping[str, Any], scope: metrics.Scope, name: str) -> float | None:
        aggregation = response["aggregations"][self.name(scope)]
        return metrics.METRICS[name].value(name, aggregation, self.context)


def plan_for(campaign: evaluate_pb2.Campaign) -> Plan:
    plan = Plan(metrics.Context.of(campaign))
    kpi_scope = metrics.Scope(campaign_window(campaign))
    before = before_window(campaign)
    for name in metrics.METRIC_NAMES:
        plan.add(kpi_scope, name)
        if before is not None and name in BASELINED:
            plan.add(metrics.Scope(before), name)
    for objective in campaign.objectives:
        metric = metrics.resolve(objective.metric)
        if metric is None:
            continue
        filters = metrics.scope_filters(objective)
        plan.add(metrics.Scope(objective_window(campaign, objective), filters), metric.name)
        baseline = baseline_window(objective)
        if baseline is not None:
            plan.add(metrics.Scope(baseline, filters), metric.name)
    return plan


def scorecard_query(campaign: evaluate_pb2.Campaign) -> dict[str, Any]:
    """One search that returns every aggregation the scorecard needs: the counters over
    everything indexed for the campaign, every metric of the catalogue over the campaign's
    period, and each objective's metric over its window and its baseline window."""
    campaign_id = campaign.campaign_id
    return {
        "size": 0,
        "track_total_hits": True,
        "query": {"term": {"campaign_ids": campaign_id}},
        "aggs": {
            # One filter per known value: on the index stand-in a terms aggregation costs
            # ten times as much (see README, "Measured").
            **{
                f"service__{name}": {"filter": {"term": {"source_service": name}}}
                for name in SERVICES
            },
            **{
                f"type__{index}": {"filter": {"term": {"event_type": name}}}
                for index, name in enumerate(event_types())
            },
            "opened": {"filter": {"term": {"interaction.kind": "KIND_OPENED"}}},
            "replies": {"filter": {"term": {"interaction.kind": "KIND_REPLIED"}}},
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
            **plan_for(campaign).aggs(),
        },
    }


def scorecard_from_response(
    campaign: evaluate_pb2.Campaign, response: Mapping[str, Any], now: datetime
) -> pb.Scorecard:
    """Builds the scorecard from the search response of :func:`scorecard_query`."""
    aggs = response["aggregations"]
    by_type = {name: int(aggs[f"type__{i}"]["doc_count"]) for i, name in enumerate(event_types())}
    by_service = {
        name: int(aggs[f"service__{name}"]["doc_count"])
        for name in SERVICES
        if aggs[f"service__{name}"]["doc_count"]
    }
    mentions = aggs["mentions"]
    known = mentions["known_sentiment"]
    plan = plan_for(campaign)
    kpi_scope = metrics.Scope(campaign_window(campaign))
    kpis = {name: plan.value(response, kpi_scope, name) for name in metrics.METRIC_NAMES}
    card = pb.Scorecard(
        campaign_id=campaign.campaign_id,
        name=campaign.name,
        events_by_service=by_service,
        mentions=by_type.get(MENTION, 0),
        publications=by_type.get(PUBLICATION, 0),
        conversations_opened=int(aggs["opened"]["doc_count"]),
        replies=int(aggs["replies"]["doc_count"]),
        feedback=by_type.get(FEEDBACK, 0),
        mean_sentiment=float(known["mean"]["value"] or 0.0),
        mentions_with_sentiment=int(known["doc_count"]),
        median_response_seconds=kpis["median_first_response_seconds"] or 0.0,
    )
    card.computed_at.FromDatetime(now)
    # Set by the aggregates (domain/rollup.py); a plain search response is all events.
    source = response.get(COMPUTED_FROM) or {}
    card.computed_from = str(source.get("computed_from", "events"))
    card.objectives_from_events.extend(source.get("objectives_from_events", ()))
    for bucket in mentions["per_hour"]["buckets"]:
        if bucket["doc_count"]:
            time_bucket = card.mentions_per_hour.add(count=int(bucket["doc_count"]))
            time_bucket.start.FromMilliseconds(int(bucket["key"]))
    # A metric without data (a mean over nothing) is left out rather than shown as 0.
    before = before_window(campaign)
    for name, value in kpis.items():
        if value is None:
            continue
        kpi = card.kpis.add(name=name, value=value)
        if before is not None and name in BASELINED:
            baseline = _scaled(
                plan.value(response, metrics.Scope(before), name),
                metrics.METRICS[name],
                campaign_window(campaign),
                before,
                now,
            )
            if baseline is not None:
                kpi.baseline = baseline
    for objective in campaign.objectives:
        metric = metrics.resolve(objective.metric)
        if metric is None:
            card.objectives.append(judge(objective, None, campaign, now))
            continue
        filters = metrics.scope_filters(objective)
        window = objective_window(campaign, objective)
        value = plan.value(response, metrics.Scope(window, filters), metric.name)
        baseline = _baseline(plan, response, objective, metric, window, filters, now)
        card.objectives.append(judge(objective, value, campaign, now, baseline))
    return card


def _baseline(
    plan: Plan,
    response: Mapping[str, Any],
    objective: Objective,
    metric: metrics.Metric,
    window: metrics.Window,
    filters: tuple[tuple[str, tuple[str, ...]], ...],
    now: datetime,
) -> float | None:
    """The objective's starting point: its baseline window measured (a count scaled to the
    length of the period measured so far), else its stated from_value, else None."""
    span = baseline_window(objective)
    if span is None:
        return objective.from_value if objective.HasField("from_value") else None
    value = plan.value(response, metrics.Scope(span, filters), metric.name)
    return _scaled(value, metric, window, span, now)


def _scaled(
    value: float | None,
    metric: metrics.Metric,
    window: metrics.Window,
    span: metrics.Window,
    now: datetime,
) -> float | None:
    """A baseline count over ``span`` scaled to the length of ``window`` measured so far
    (a rate or a share as it is)."""
    if value is None or not metric.additive:
        return value
    measured, base = window.seconds_until(now), span.seconds_until(span.end or now)
    if measured is None or not base:
        return value
    return value * measured / base


def judge(
    objective: Objective,
    value: float | None,
    campaign: evaluate_pb2.Campaign,
    now: datetime,
    baseline: float | None = None,
) -> ObjectiveStatus:
    """On track, at risk, achieved or missed, with the reason in words.

    ``value`` is the objective's metric over its window (None: no data), ``baseline`` its
    starting point (measured over the baseline window or stated as from_value). A count
    that reached an at-least target is achieved for good (counts only grow) and a count past
    an at-most target is missed for good; a rate or share that meets its target is on track
    until the deadline, since it can still fall back.
    """
    status = ObjectiveStatus(
        objective_id=objective.objective_id,
        metric=objective.metric,
        target=objective.target,
        level=objective.level,
    )
    metric = metrics.resolve(objective.metric)
    name = objective.metric
    if metric is None:
        status.status = ObjectiveStatus.STATUS_UNSPECIFIED
        status.reason = f"no metric named {name!r} in the catalogue"
        return status
    if baseline is not None:
        status.baseline = baseline
    # An objective without a deadline of its own ends with its campaign (the same end as
    # its measuring window, objective_window).
    deadline = _ts(objective, "deadline", now.tzinfo) or _ts(campaign, "ends_at", now.tzinfo)
    over = deadline is not None and now >= deadline
    relative = objective.comparison in (
        Objective.COMPARISON_INCREASE_BY,
        Objective.COMPARISON_DECREASE_BY,
    )
    if relative and baseline is None:
        status.status = ObjectiveStatus.STATUS_UNSPECIFIED
        status.reason = f"{name} has no baseline to compare with"
        return status
    if value is None:
        status.status = (
            ObjectiveStatus.STATUS_MISSED if over else ObjectiveStatus.STATUS_UNSPECIFIED
        )
        status.reason = f"no data for {name}" + ("" if over else " yet")
        return status
    status.value = value
    upward = objective.comparison in (
        Objective.COMPARISON_AT_LEAST,
        Objective.COMPARISON_INCREASE_BY,
        Objective.COMPARISON_UNSPECIFIED,
    )
    goal = objective.target
    if objective.comparison == Objective.COMPARISON_INCREASE_BY:
        goal = (baseline or 0.0) + objective.target
    elif objective.comparison == Objective.COMPARISON_DECREASE_BY:
        goal = (baseline or 0.0) - objective.target
    met = value >= goal if upward else value <= goal
    # Where progress is measured from: a count starts at zero, a rate at its baseline.
    start = 0.0 if metric.additive else baseline
    if start is None:
        start = 0.0 if upward else None
    if start is None or start == goal:
        progress = 1.0 if met else 0.0
    else:
        progress = (value - start) / (goal - start)
    status.progress = min(1.0, max(0.0, progress))
    unit = metric.unit
    against = f" (baseline {format_value(baseline, unit)})" if baseline is not None else ""
    wanted = f"{'at least' if upward else 'at most'} {format_value(goal, unit)}"
    shown = format_value(value, unit)
    if over:
        status.status = ObjectiveStatus.STATUS_ACHIEVED if met else ObjectiveStatus.STATUS_MISSED
        status.reason = (
            f"{name} ended at {shown} of {format_value(goal, unit)}{against}"
            if upward
            else f"{name} is {shown}, target {wanted}{against}"
        )
        return status
    permanent = metric.additive and not relative
    if met and upward and permanent:
        status.status = ObjectiveStatus.STATUS_ACHIEVED
        status.reason = f"{name} reached {shown} of {format_value(goal, unit)}{against}"
        return status
    if not met and not upward and permanent:
        status.status = ObjectiveStatus.STATUS_MISSED
        status.reason = f"{name} is {shown}, over the target {wanted}"
        return status
    if not upward:
        # A value that can fall back: met now is on track, unmet is at risk.
        status.status = ObjectiveStatus.STATUS_ON_TRACK if met else ObjectiveStatus.STATUS_AT_RISK
        status.reason = f"{name} is {shown}, target {wanted}{against}"
        return status
    if met:
        status.status = ObjectiveStatus.STATUS_ON_TRACK
        status.reason = f"{name} is {shown}, target {wanted}{against}: it must hold to the deadline"
        return status
    expected = _expected_share(campaign, deadline, now)
    on_track = goal <= 0 or status.progress >= expected * ON_TRACK_SHARE
    status.status = ObjectiveStatus.STATUS_ON_TRACK if on_track else ObjectiveStatus.STATUS_AT_RISK
    status.reason = (
        f"{name} at {shown} of {format_value(goal, unit)}{against}"
        f" with {expected:.0%} of the time gone"
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
