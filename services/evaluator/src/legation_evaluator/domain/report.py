"""The campaign report as data: what the plots and tables show, built from search
responses. Query bodies and the model are plain; the adapters run the queries and draw.

The pivot between "before" and "after" is the campaign's start (the baseline is what
was said before it), or its first publication when it has no start date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2
from legation_evaluator.domain import metrics
from legation_evaluator.domain.feedback import who
from legation_evaluator.domain.scorecard import MENTION, PUBLICATION

Status = evaluate_pb2.ObjectiveStatus
Objective = evaluate_pb2.Objective
Lesson = evaluate_pb2.Lesson

# Voices named in the share-of-voice chart; the rest are summed as "other authors".
TOP_VOICES = 7
# Spans up to this long are plotted per hour, longer ones per day.
HOURLY_UP_TO = timedelta(days=4)
MAX_PUBLICATIONS = 200
MAX_REPLIES = 1000

STATUS_LABELS = {
    Status.STATUS_ON_TRACK: "on track",
    Status.STATUS_AT_RISK: "at risk",
    Status.STATUS_ACHIEVED: "achieved",
    Status.STATUS_MISSED: "missed",
    Status.STATUS_UNSPECIFIED: "not measured",
}
LEVEL_LABELS = {
    Objective.LEVEL_OUTPUT: "output",
    Objective.LEVEL_OUTTAKE: "out-take",
    Objective.LEVEL_OUTCOME: "outcome",
    Objective.LEVEL_IMPACT: "impact",
    Objective.LEVEL_UNSPECIFIED: "",
}
LESSON_LABELS = {
    Lesson.KIND_WORKED: "What worked",
    Lesson.KIND_DID_NOT_WORK: "What did not work",
    Lesson.KIND_NEXT_TIME: "Next time",
}
OUR_VOICE = "us (publications and replies)"
# The sign each stance label gives its confidence; neutral counts as 0.
STANCE_SIGNS = {"favour": 1.0, "against": -1.0}
OTHER_VOICES = "other authors"


@dataclass(frozen=True)
class Point:
    start: datetime
    count: int


@dataclass(frozen=True)
class Marker:
    at: datetime
    title: str
    channel: str


@dataclass(frozen=True)
class Mean:
    value: float | None
    count: int


@dataclass(frozen=True)
class Shift:
    """One attitude measure before and after the pivot."""

    label: str
    before: Mean
    after: Mean


@dataclass(frozen=True)
class KeyFigure:
    """A KPI of the scorecard, with its value as a person reads it (a duration in hours or
    days, a share in percent)."""

    name: str
    value: float
    shown: str


@dataclass(frozen=True)
class Voice:
    actor: str
    count: int
    ours: bool = False


@dataclass(frozen=True)
class ObjectiveRow:
    objective_id: str
    description: str
    level: str
    metric: str
    comparison: str
    target: float
    value: float
    status: str
    reason: str
    # target and value in the metric's unit, as a person reads them ("4 h", "10.5 days").
    target_shown: str = ""
    value_shown: str = ""


@dataclass(frozen=True)
class LessonRow:
    kind: str
    text: str
    source: str


@dataclass(frozen=True)
class FeedbackRow:
    who: str
    rating: int
    text: str
    about: str


@dataclass(frozen=True)
class ReportModel:
    campaign_id: str
    name: str
    description: str
    starts_at: datetime | None
    ends_at: datetime | None
    generated_at: datetime
    pivot: datetime | None
    interval: str
    kpis: list[KeyFigure]
    volume: list[Point]
    publications: list[Marker]
    shifts: list[Shift]
    voices: list[Voice]
    response_seconds: list[float]
    response_target_seconds: float | None
    objectives: list[ObjectiveRow]
    lessons: list[LessonRow]
    reviewed: bool
    feedback: list[FeedbackRow] = field(default_factory=list)

    @property
    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.objectives:
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts


def _ts(message: evaluate_pb2.Campaign, name: Literal["starts_at", "ends_at"]) -> datetime | None:
    return getattr(message, name).ToDatetime(tzinfo=UTC) if message.HasField(name) else None


def interval_for(campaign: evaluate_pb2.Campaign, now: datetime) -> str:
    """Hourly buckets for a short campaign, daily for a long one."""
    start, end = _ts(campaign, "starts_at"), _ts(campaign, "ends_at") or now
    if start is None or end - start <= HOURLY_UP_TO:
        return "1h"
    return "1d"


def _sentiment() -> dict[str, Any]:
    """Mean sentiment score (signed already, in [-1, 1]) over mentions whose sentiment is
    known."""
    return {
        "filter": {"bool": {"must_not": {"term": {"mention.sentiment.value": "unknown"}}}},
        "aggs": {"mean": {"avg": {"field": "mention.sentiment.score"}}},
    }


def _stance() -> dict[str, Any]:
    """What the signed stance needs: a stance label's score is the model's confidence in
    [0, 1] whatever the label, so the sign comes from the label. Sums of the confidence of
    the favour and against labels over the mentions with a known stance (neutral counts as
    0); see :func:`signed_stance`."""
    return {
        "filter": {"terms": {"mention.stance.value": list(metrics.KNOWN_STANCES)}},
        "aggs": {
            label: {
                "filter": {"term": {"mention.stance.value": label}},
                "aggs": {"confidence": {"sum": {"field": "mention.stance.score"}}},
            }
            for label in STANCE_SIGNS
        },
    }


def report_query(campaign_id: str, interval: str, pivot: datetime | None) -> dict[str, Any]:
    """One search over every event index: mention volume, attitude before and after the
    pivot, mentions per author and our own voice."""
    attitude = {"sentiment": _sentiment(), "stance": _stance()}
    periods: dict[str, Any] = {}
    if pivot is not None:
        edge = pivot.astimezone(UTC).isoformat()
        periods = {
            "before": {"filter": {"range": {"occurred_at": {"lt": edge}}}, "aggs": attitude},
            "after": {"filter": {"range": {"occurred_at": {"gte": edge}}}, "aggs": attitude},
        }
    else:
        periods = {"after": {"filter": {"match_all": {}}, "aggs": attitude}}
    return {
        "size": 0,
        "track_total_hits": True,
        "query": {"term": {"campaign_ids": campaign_id}},
        "aggs": {
            "mentions": {
                "filter": {"term": {"event_type": MENTION}},
                "aggs": {
                    "volume": {
                        "date_histogram": {"field": "occurred_at", "fixed_interval": interval}
                    },
                    "authors": {"terms": {"field": "mention.author", "size": TOP_VOICES}},
                    **periods,
                },
            },
            "ours": {
                "filter": {
                    "bool": {
                        "should": [
                            {"term": {"event_type": PUBLICATION}},
                            {"term": {"interaction.kind": "KIND_REPLIED"}},
                        ],
                        "minimum_should_match": 1,
                    }
                }
            },
        },
    }


def publications_query(campaign_id: str) -> dict[str, Any]:
    return {
        "size": MAX_PUBLICATIONS,
        "query": {"term": {"campaign_ids": campaign_id}},
        "sort": [{"occurred_at": {"order": "asc"}}],
    }


def replies_query(campaign_id: str) -> dict[str, Any]:
    return {
        "size": MAX_REPLIES,
        "query": {
            "bool": {
                "filter": [
                    {"term": {"campaign_ids": campaign_id}},
                    {"term": {"interaction.kind": "KIND_REPLIED"}},
                ]
            }
        },
        "_source": ["interaction.response_seconds"],
    }


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def markers_from(hits: Sequence[Mapping[str, Any]]) -> list[Marker]:
    """Publication markers from publication documents (their publish time, else when the
    event occurred)."""
    markers = []
    for hit in hits:
        source = hit["_source"]
        publication = source.get("publication", {})
        at = publication.get("published_at") or source.get("occurred_at")
        if not at:
            continue
        markers.append(
            Marker(
                at=_parse_time(str(at)),
                title=str(publication.get("title", "")),
                channel=str(publication.get("channel", "")),
            )
        )
    return sorted(markers, key=lambda m: m.at)


def response_seconds_from(hits: Sequence[Mapping[str, Any]]) -> list[float]:
    values = []
    for hit in hits:
        seconds = hit["_source"].get("interaction", {}).get("response_seconds")
        if seconds is not None:
            values.append(float(seconds))
    return sorted(values)


def pivot_for(campaign: evaluate_pb2.Campaign, publications: Sequence[Marker]) -> datetime | None:
    return _ts(campaign, "starts_at") or (publications[0].at if publications else None)


def _mean(aggregation: Mapping[str, Any] | None) -> Mean:
    if not aggregation:
        return Mean(None, 0)
    value = aggregation.get("mean", {}).get("value")
    count = int(aggregation.get("doc_count", 0))
    return Mean(float(value) if value is not None and count else None, count)


def signed_stance(aggregation: Mapping[str, Any] | None) -> Mean:
    """Mean stance in [-1, 1] from the :func:`_stance` aggregation: each mention with a
    known stance counts its confidence as +confidence in favour, -confidence against and 0
    when neutral (two against at 0.72 and 0.54 mean -0.63)."""
    count = int((aggregation or {}).get("doc_count", 0))
    if not aggregation or not count:
        return Mean(None, 0)
    total = sum(
        sign * float(aggregation.get(label, {}).get("confidence", {}).get("value") or 0.0)
        for label, sign in STANCE_SIGNS.items()
    )
    return Mean(total / count, count)


def _shifts(mentions: Mapping[str, Any]) -> list[Shift]:
    before, after = mentions.get("before", {}), mentions.get("after", {})
    return [
        Shift("Sentiment", _mean(before.get("sentiment")), _mean(after.get("sentiment"))),
        Shift("Stance", signed_stance(before.get("stance")), signed_stance(after.get("stance"))),
    ]


def _voices(mentions: Mapping[str, Any], ours: int) -> list[Voice]:
    voices = [Voice(OUR_VOICE, ours, ours=True)] if ours else []
    named = 0
    for bucket in mentions.get("authors", {}).get("buckets", []):
        if str(bucket["key"]).strip():
            voices.append(Voice(str(bucket["key"]), int(bucket["doc_count"])))
            named += int(bucket["doc_count"])
    rest = int(mentions.get("doc_count", 0)) - named
    if rest > 0:
        voices.append(Voice(OTHER_VOICES, rest))
    return voices


def objective_rows(
    campaign: evaluate_pb2.Campaign, statuses: Sequence[evaluate_pb2.ObjectiveStatus]
) -> list[ObjectiveRow]:
    by_id = {status.objective_id: status for status in statuses}
    rows = []
    for objective in campaign.objectives:
        status = by_id.get(objective.objective_id, Status(objective_id=objective.objective_id))
        rows.append(
            ObjectiveRow(
                objective_id=objective.objective_id,
                description=objective.description,
                level=LEVEL_LABELS.get(objective.level, ""),
                metric=objective.metric,
                comparison="≤" if objective.comparison == Objective.COMPARISON_AT_MOST else "≥",
                target=objective.target,
                value=status.value,
                status=STATUS_LABELS.get(status.status, "not measured"),
                reason=status.reason or "not computed",
                target_shown=metrics.shown(objective.target, objective.metric),
                value_shown=metrics.shown(status.value, objective.metric),
            )
        )
    return rows


def _response_target(campaign: evaluate_pb2.Campaign) -> float | None:
    for objective in campaign.objectives:
        if objective.metric == "median_response_seconds":
            return objective.target
    return None


def build_report(
    *,
    campaign: evaluate_pb2.Campaign,
    scorecard: pb.Scorecard,
    response: Mapping[str, Any],
    publications: Sequence[Marker],
    response_seconds: Sequence[float],
    review: evaluate_pb2.AfterActionReview | None,
    feedback: Sequence[evaluate_pb2.Feedback],
    interval: str,
    pivot: datetime | None,
    now: datetime,
) -> ReportModel:
    """The report model from the scorecard, the :func:`report_query` response, the
    publications, the reply times, the latest review and the feedback."""
    aggs = response["aggregations"]
    mentions = aggs["mentions"]
    statuses = (
        review.objectives if review is not None and review.objectives else scorecard.objectives
    )
    return ReportModel(
        campaign_id=campaign.campaign_id,
        name=campaign.name,
        description=campaign.description,
        starts_at=_ts(campaign, "starts_at"),
        ends_at=_ts(campaign, "ends_at"),
        generated_at=now,
        pivot=pivot,
        interval=interval,
        kpis=[
            KeyFigure(kpi.name, kpi.value, metrics.shown(kpi.value, kpi.name))
            for kpi in scorecard.kpis
        ],
        volume=[
            Point(datetime.fromtimestamp(int(b["key"]) / 1000, UTC), int(b["doc_count"]))
            for b in mentions["volume"]["buckets"]
        ],
        publications=list(publications),
        shifts=_shifts(mentions),
        voices=_voices(mentions, int(aggs["ours"]["doc_count"])),
        response_seconds=list(response_seconds),
        response_target_seconds=_response_target(campaign),
        objectives=objective_rows(campaign, statuses),
        lessons=[
            LessonRow(LESSON_LABELS.get(lesson.kind, "Lesson"), lesson.text, lesson.source)
            for lesson in (review.lessons if review is not None else [])
        ],
        reviewed=review is not None,
        feedback=[FeedbackRow(who(item), item.rating, item.text, item.about) for item in feedback],
    )
