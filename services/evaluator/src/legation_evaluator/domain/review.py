"""The after-action review of a finished campaign: what worked, what did not, and what to
do next time, drawn from the objectives' final status, the feedback and the team's own
lessons. Plain functions, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2
from legation_core.calls import Conflict
from legation_evaluator.domain.campaigns import InvalidRequest
from legation_evaluator.domain.feedback import who

Lesson = evaluate_pb2.Lesson
Status = evaluate_pb2.ObjectiveStatus
AfterActionReview = evaluate_pb2.AfterActionReview

MAX_LESSONS = 100
MAX_LESSON_TEXT = 2000
# Feedback rated at least this counts as what worked, at most LOW as what did not.
HIGH_RATING = 4
LOW_RATING = 2
_ORDER = (Lesson.KIND_WORKED, Lesson.KIND_DID_NOT_WORK, Lesson.KIND_NEXT_TIME)


class NotFinished(Conflict):
    """The campaign cannot be reviewed yet (FAILED_PRECONDITION)."""


def validate_review_request(request: pb.ReviewCampaignRequest) -> None:
    """Names the first field the review cannot use."""
    if not request.campaign_id.strip():
        raise InvalidRequest("campaign_id is required")
    if len(request.lessons) > MAX_LESSONS:
        raise InvalidRequest(f"lessons has more than {MAX_LESSONS} entries")
    for index, lesson in enumerate(request.lessons):
        where = f"lessons[{index}]"
        if lesson.kind == Lesson.KIND_UNSPECIFIED:
            raise InvalidRequest(f"{where}.kind is required")
        if not lesson.text.strip():
            raise InvalidRequest(f"{where}.text is required")
        if len(lesson.text) > MAX_LESSON_TEXT:
            raise InvalidRequest(f"{where}.text is longer than {MAX_LESSON_TEXT} characters")


def require_finished(campaign: evaluate_pb2.Campaign, now: datetime) -> None:
    """A review looks back: the campaign must have ended."""
    if not campaign.HasField("ends_at"):
        raise NotFinished(f"campaign {campaign.campaign_id} has no ends_at, so it never finishes")
    ends_at = campaign.ends_at.ToDatetime(tzinfo=now.tzinfo)
    if ends_at > now:
        raise NotFinished(
            f"campaign {campaign.campaign_id} has not finished: ends_at is {ends_at.isoformat()}"
        )


def objective_lessons(
    campaign: evaluate_pb2.Campaign, statuses: Sequence[evaluate_pb2.ObjectiveStatus]
) -> list[Lesson]:
    """An achieved objective worked; any other did not, with what to change next time."""
    described = {o.objective_id: o.description for o in campaign.objectives}
    lessons = []
    for status in statuses:
        source = f"objective:{status.objective_id}"
        name = described.get(status.objective_id) or status.objective_id
        if status.status == Status.STATUS_ACHIEVED:
            lessons.append(
                Lesson(kind=Lesson.KIND_WORKED, text=f"{name}: {status.reason}", source=source)
            )
            continue
        if status.status == Status.STATUS_UNSPECIFIED:
            lessons.append(
                Lesson(
                    kind=Lesson.KIND_DID_NOT_WORK,
                    text=f"{name} could not be measured: {status.reason}",
                    source=source,
                )
            )
            lessons.append(
                Lesson(
                    kind=Lesson.KIND_NEXT_TIME,
                    text=f"Measure {status.metric} from the start of the campaign.",
                    source=source,
                )
            )
            continue
        lessons.append(
            Lesson(kind=Lesson.KIND_DID_NOT_WORK, text=f"{name}: {status.reason}", source=source)
        )
        lessons.append(
            Lesson(
                kind=Lesson.KIND_NEXT_TIME,
                text=(
                    f"Plan {status.metric} from this result ({status.value:g} against a target"
                    f" of {status.target:g}): more effort early, or a target the baseline supports."
                ),
                source=source,
            )
        )
    return lessons


def feedback_lessons(feedback: Sequence[evaluate_pb2.Feedback]) -> list[Lesson]:
    """Well rated feedback says what worked, poorly rated what did not, middling what to
    change next time."""
    lessons = []
    for item in feedback:
        if item.rating >= HIGH_RATING:
            kind = Lesson.KIND_WORKED
        elif item.rating <= LOW_RATING:
            kind = Lesson.KIND_DID_NOT_WORK
        else:
            kind = Lesson.KIND_NEXT_TIME
        lessons.append(
            Lesson(
                kind=kind,
                text=f"{who(item)}, {item.rating}/5: {item.text.strip()}",
                source=f"feedback:{item.feedback_id}",
            )
        )
    return lessons


def build_review(
    *,
    review_id: str,
    campaign: evaluate_pb2.Campaign,
    scorecard: pb.Scorecard,
    feedback: Sequence[evaluate_pb2.Feedback],
    request: pb.ReviewCampaignRequest,
    now: datetime,
) -> AfterActionReview:
    """The review: final objective status and KPIs from the scorecard, then the lessons,
    worked first, then did not work, then next time (each group: objectives, feedback,
    the team's own)."""
    team = []
    for lesson in request.lessons:
        copy = Lesson()
        copy.CopyFrom(lesson)
        copy.text = copy.text.strip()
        if not copy.source:
            copy.source = f"team:{request.author or 'campaign team'}"
        team.append(copy)
    drawn = objective_lessons(campaign, scorecard.objectives) + feedback_lessons(feedback) + team
    lessons = [lesson for kind in _ORDER for lesson in drawn if lesson.kind == kind]
    ratings = [item.rating for item in feedback]
    review = AfterActionReview(
        review_id=review_id,
        campaign_id=campaign.campaign_id,
        author=request.author,
        objectives=scorecard.objectives,
        lessons=lessons,
        feedback_count=len(feedback),
        mean_rating=sum(ratings) / len(ratings) if ratings else 0.0,
        kpis=scorecard.kpis,
    )
    review.reviewed_at.FromDatetime(now)
    return review
