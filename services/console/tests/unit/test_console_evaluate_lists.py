"""The feedback and review lists, the questions campaigns list, report progress in words
and the reports kept for their download link (view models and the store, no I/O)."""

from __future__ import annotations

from legation.engager.v1 import engager_service_pb2 as engager_pb
from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.events.v1 import engage_pb2, evaluate_pb2
from legation_console.domain.ready_reports import ReadyReports
from legation_console.domain.views import engage as engage_views
from legation_console.domain.views import evaluate as views

Feedback = evaluate_pb2.Feedback


def test_feedback_rows_say_who_what_about_and_the_rating_out_of_5() -> None:
    item = evaluator_pb.FeedbackItem(
        campaign_id="river",
        feedback=Feedback(
            from_role=Feedback.FROM_ROLE_PARTNER,
            author="Ana",
            organisation="Ocean <Trust>",
            rating=4,
            text="Clear <b>posts</b>",
            about="pub-1",
            about_kind=Feedback.ABOUT_KIND_PUBLICATION,
        ),
    )
    item.recorded_at.FromSeconds(1_764_657_600)
    response = evaluator_pb.ListFeedbackResponse(feedback=[item], total=3, next_page_token="t")
    page = views.feedback_list_page(response, {"river": "River days"}, "river", "partner")
    [row] = page.rows
    assert row.who == "Partner: Ana, Ocean <Trust>"
    assert (row.rating, row.about, row.campaign) == (
        "4 of 5",
        "the publication pub-1",
        "River days",
    )
    assert row.recorded == "2025-12-02 06:40 UTC"
    assert page.summary == "3 pieces of feedback on River days from a partner, 1 shown here"
    assert page.next_page == "t"
    assert views.from_role_of("partner") == Feedback.FROM_ROLE_PARTNER
    assert views.from_role_of("<script>") == Feedback.FROM_ROLE_UNSPECIFIED


def test_review_rows_count_objectives_by_status_lessons_and_feedback() -> None:
    review = evaluate_pb2.AfterActionReview(
        review_id="r-1",
        campaign_id="river",
        author="cam",
        objectives=[
            evaluate_pb2.ObjectiveStatus(status=evaluate_pb2.ObjectiveStatus.STATUS_ACHIEVED),
            evaluate_pb2.ObjectiveStatus(status=evaluate_pb2.ObjectiveStatus.STATUS_ACHIEVED),
            evaluate_pb2.ObjectiveStatus(status=evaluate_pb2.ObjectiveStatus.STATUS_MISSED),
        ],
        lessons=[evaluate_pb2.Lesson(text="x")],
        feedback_count=2,
        mean_rating=3.5,
    )
    page = views.reviews_page(
        evaluator_pb.ListAfterActionReviewsResponse(reviews=[review], total=1), {}, ""
    )
    [row] = page.rows
    assert row.objectives == "2 achieved, 1 missed (of 3 objectives)"
    assert (row.lessons, row.campaign) == ("1 lesson", "river")
    assert row.feedback == "2 pieces of feedback, rated 3.5 of 5 on average"
    assert page.summary == "1 after-action review" and not page.next_page


def test_questions_campaign_rows_say_what_waits() -> None:
    campaign = engage_pb2.QuestionsCampaign(
        questions_id="q-1", title="Ask <b>us</b>", issue_id="plastics", hashtag="AskAmb", open=True
    )
    summary = engager_pb.QuestionsCampaignSummary(
        questions_campaign=campaign, questions=5, pending=2, approved=1, answered=1, rejected=1
    )
    page = engage_views.questions_campaigns_page(
        engager_pb.ListQuestionsCampaignsResponse(questions_campaigns=[summary]), open_only=True
    )
    [row] = page.rows
    assert (row.title, row.hashtag, row.state) == ("Ask <b>us</b>", "#AskAmb", "Taking questions")
    assert row.questions == "5 questions, 1 answer"
    assert row.waiting == "2 awaiting moderation, 1 to answer"
    assert page.summary == "1 questions campaign taking questions"


def test_report_progress_in_words_and_sizes_in_units() -> None:
    step = views.report_progress(
        evaluator_pb.CampaignReportProgress(step="plot share_of_voice", done=9, total=12)
    )
    assert step.text == "Step 9 of 12: drawing the share of voice plot"
    first = views.report_progress(
        evaluator_pb.CampaignReportProgress(step="publications", done=1, total=12)
    )
    assert first.text == "Step 1 of 12: reading the publications"
    assert [views.size_of(n) for n in (820, 14_200, 1_300_000)] == [
        "820 bytes",
        "14.2 KB",
        "1.3 MB",
    ]


def test_a_kept_report_is_for_its_person_campaign_and_format_until_it_expires() -> None:
    now = [0.0]
    store = ReadyReports(clock=lambda: now[0], keep_seconds=60, max_reports=2, max_bytes=100)
    token = store.put("cam", "river", "pdf", "river-report.pdf", b"%PDF-1")
    found = store.get(token, "cam", "river", "pdf")
    assert found is not None and found.content == b"%PDF-1"
    assert store.get(token, "vic", "river", "pdf") is None  # someone else's link
    assert store.get(token, "cam", "river", "html") is None
    assert store.get("guessed", "cam", "river", "pdf") is None
    now[0] = 61
    assert store.get(token, "cam", "river", "pdf") is None  # expired
    # Bounded: the oldest goes first; a report larger than the whole store is not kept.
    first = store.put("cam", "a", "pdf", "a.pdf", b"1" * 40)
    store.put("cam", "b", "pdf", "b.pdf", b"2" * 40)
    store.put("cam", "c", "pdf", "c.pdf", b"3" * 40)
    assert store.get(first, "cam", "a", "pdf") is None
    assert store.put("cam", "d", "pdf", "d.pdf", b"4" * 101) == ""


def test_a_review_read_from_the_list_shows_durations_in_days_not_seconds() -> None:
    """The issue's defect: 911347.75 seconds must read as days on every Evaluate page."""
    review = evaluate_pb2.AfterActionReview(
        review_id="r-1",
        campaign_id="river",
        objectives=[
            evaluate_pb2.ObjectiveStatus(
                objective_id="fast",
                metric="median_response_seconds",
                value=911347.75,
                target=4 * 3600,
                status=evaluate_pb2.ObjectiveStatus.STATUS_MISSED,
            )
        ],
    )
    units = views.units_of(
        [
            evaluator_pb.Metric(
                name="median_first_response_seconds",
                unit="seconds",
                aliases=["median_response_seconds"],
            )
        ]
    )
    [objective] = views.review_page(review, units).objectives
    assert (objective.value, objective.target) == ("10.5 days", "4 h")
    assert "911347" not in repr(views.review_page(review, units))
