"""Feedback rules and the after-action review, as plain functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2
from legation_evaluator.domain.campaigns import InvalidRequest
from legation_evaluator.domain.feedback import validate_feedback, who, with_subject
from legation_evaluator.domain.review import (
    NotFinished,
    build_review,
    require_finished,
    validate_review_request,
)

Feedback = evaluate_pb2.Feedback
Lesson = evaluate_pb2.Lesson
Status = evaluate_pb2.ObjectiveStatus
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def partner(**changes: object) -> Feedback:
    feedback = Feedback(
        from_role=Feedback.FROM_ROLE_PARTNER,
        author="Ana Ruiz",
        organisation="Ocean Alliance",
        rating=4,
        text="Good.",
    )
    for name, value in changes.items():
        setattr(feedback, name, value)
    return feedback


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"organisation": " ", "author": ""},
            "feedback.organisation (or author) is required for partner feedback",
        ),
        ({"text": "x" * 5001}, "feedback.text is longer than 5000 characters"),
        ({"author": "x" * 201}, "feedback.author is longer than 200 characters"),
        (
            {"about_kind": Feedback.ABOUT_KIND_CONVERSATION},
            "feedback.about (the id) is required with about_kind ABOUT_KIND_CONVERSATION",
        ),
        ({"rating": 0}, "feedback.rating must be 1 to 5, got 0"),
    ],
)
def test_feedback_errors_name_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_feedback(partner(**changes))
    assert str(caught.value) == message


def test_audience_feedback_needs_no_name_and_is_about_the_campaign_by_default() -> None:
    feedback = Feedback(from_role=Feedback.FROM_ROLE_AUDIENCE, rating=2, text="Slow.")
    validate_feedback(feedback)
    subject = with_subject(feedback, "c1")
    assert (subject.about_kind, subject.about) == (Feedback.ABOUT_KIND_CAMPAIGN, "c1")
    assert who(feedback) == "Audience member"
    assert who(partner()) == "Partner Ana Ruiz (Ocean Alliance)"
    validate_feedback(partner(organisation=""))  # a partner named by its author alone
    assert who(partner(organisation="")) == "Partner Ana Ruiz"
    about_post = with_subject(
        partner(about_kind=Feedback.ABOUT_KIND_PUBLICATION, about="post-1"), "c1"
    )
    assert about_post.about == "post-1"


def test_review_request_errors_name_the_lesson() -> None:
    request = pb.ReviewCampaignRequest(
        campaign_id="c1",
        lessons=[Lesson(kind=Lesson.KIND_WORKED, text="ok"), Lesson(text="no kind")],
    )
    with pytest.raises(InvalidRequest, match=r"^lessons\[1\]\.kind is required$"):
        validate_review_request(request)
    with pytest.raises(InvalidRequest, match=r"^campaign_id is required$"):
        validate_review_request(pb.ReviewCampaignRequest())


def test_only_a_finished_campaign_is_reviewed() -> None:
    campaign = evaluate_pb2.Campaign(campaign_id="c1")
    with pytest.raises(NotFinished, match="has no ends_at"):
        require_finished(campaign, NOW)
    campaign.ends_at.FromDatetime(NOW + timedelta(seconds=1))
    with pytest.raises(NotFinished, match="has not finished"):
        require_finished(campaign, NOW)
    campaign.ends_at.FromDatetime(NOW)
    require_finished(campaign, NOW)


def test_the_review_orders_lessons_and_sums_up_feedback() -> None:
    campaign = evaluate_pb2.Campaign(
        campaign_id="c1",
        objectives=[evaluate_pb2.Objective(objective_id="reach", description="Be heard")],
    )
    card = pb.Scorecard(
        objectives=[
            Status(
                objective_id="reach",
                metric="mentions",
                status=Status.STATUS_MISSED,
                value=3,
                target=10,
                reason="mentions ended at 3 of 10",
            ),
            Status(
                objective_id="speed",
                metric="x",
                status=Status.STATUS_UNSPECIFIED,
                reason="no KPI named 'x' yet",
            ),
        ],
        kpis=[evaluate_pb2.Kpi(name="mentions", value=3)],
    )
    feedback = [partner(feedback_id="f1", rating=5), partner(feedback_id="f2", rating=1)]
    request = pb.ReviewCampaignRequest(
        campaign_id="c1",
        author="Team",
        lessons=[Lesson(kind=Lesson.KIND_WORKED, text="  Early briefing.  ")],
    )
    review = build_review(
        review_id="r1",
        campaign=campaign,
        scorecard=card,
        feedback=feedback,
        request=request,
        now=NOW,
    )
    assert [(Lesson.Kind.Name(lesson.kind), lesson.source) for lesson in review.lessons] == [
        ("KIND_WORKED", "feedback:f1"),
        ("KIND_WORKED", "team:Team"),
        ("KIND_DID_NOT_WORK", "objective:reach"),
        ("KIND_DID_NOT_WORK", "objective:speed"),
        ("KIND_DID_NOT_WORK", "feedback:f2"),
        ("KIND_NEXT_TIME", "objective:reach"),
        ("KIND_NEXT_TIME", "objective:speed"),
    ]
    assert review.lessons[1].text == "Early briefing."
    assert review.lessons[2].text == "Be heard: mentions ended at 3 of 10"
    assert review.lessons[0].text == "Partner Ana Ruiz (Ocean Alliance), 5/5: Good."
    assert review.feedback_count == 2 and review.mean_rating == 3.0
    assert review.reviewed_at.ToDatetime(tzinfo=UTC) == NOW
    assert [kpi.name for kpi in review.kpis] == ["mentions"]
