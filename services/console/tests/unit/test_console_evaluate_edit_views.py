"""The Evaluate pages added to the scorecard: editing a campaign and its objectives,
feedback, after-action reviews and the report's file name. Pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.events.v1 import evaluate_pb2
from legation_console.domain.views import evaluate as views


def _campaign() -> evaluate_pb2.Campaign:
    campaign = evaluate_pb2.Campaign(
        campaign_id="ocean-2026",
        name="Ocean <b>week</b>",
        issue_ids=["plastics", "fishing"],
        channels=["mastodon"],
        languages=["es"],
        objectives=[
            evaluate_pb2.Objective(
                objective_id="voice",
                metric="share_of_voice",
                comparison=evaluate_pb2.Objective.COMPARISON_INCREASE_BY,
                target=8,
                level=evaluate_pb2.Objective.LEVEL_OUTCOME,
                filters=[evaluate_pb2.MetricFilter(field="language", values=["es", "fr"])],
                from_value=12,
            )
        ],
    )
    campaign.starts_at.FromDatetime(datetime(2026, 3, 1, tzinfo=UTC))
    campaign.ends_at.FromDatetime(datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC))
    campaign.objectives[0].deadline.FromDatetime(datetime(2026, 3, 20, 23, 59, tzinfo=UTC))
    return campaign


def test_the_edit_form_shows_the_campaign_and_a_spare_objective() -> None:
    form = views.edit_form_of(_campaign())
    assert (form.name, form.starts, form.ends) == ("Ocean <b>week</b>", "2026-03-01", "2026-03-31")
    assert form.issues == "plastics, fishing"
    (voice,) = form.objectives
    assert (voice.metric, voice.comparison, voice.target) == ("share_of_voice", "increase_by", "8")
    assert (voice.filters, voice.from_value, voice.deadline) == (
        "language=es,fr",
        "12",
        "2026-03-20",
    )
    assert [row.name("target") for row in form.rows()] == [
        "objectives-0-target",
        "objectives-1-target",
    ]


def _posted(**extra: str) -> dict[str, str]:
    values = {
        "name": "Ocean week",
        "starts": "2026-03-01",
        "ends": "2026-03-31",
        "issues": "plastics",
        "objectives-0-objective_id": "voice",
        "objectives-0-metric": "share_of_voice",
        "objectives-0-comparison": "at_least",
        "objectives-0-target": "20",
        "objectives-0-filters": "language=es; stance=favour,neutral",
        "objectives-1-objective_id": "",
        "objectives-1-metric": "mentions",
        "objectives-1-comparison": "at_least",
        "objectives-2-objective_id": "replies",
        "objectives-2-metric": "replies",
        "objectives-2-comparison": "at_least",
        "objectives-2-target": "40",
        "objectives-2-baseline_start": "2026-02-01",
        "objectives-2-baseline_end": "2026-02-28",
    }
    values.update(extra)
    return values


def test_a_posted_form_drops_blank_objectives_and_keeps_what_it_does_not_show() -> None:
    form = views.edit_form_errors(views.edit_form("ocean-2026", _posted()))
    assert form.errors == ()
    assert [row.objective_id for row in form.objectives] == ["voice", "replies"]
    campaign = views.edited_campaign(_campaign(), form)
    assert list(campaign.channels) == ["mastodon"] and list(campaign.languages) == ["es"]
    voice, replies = campaign.objectives
    assert voice.level == evaluate_pb2.Objective.LEVEL_OUTCOME
    assert [(f.field, list(f.values)) for f in voice.filters] == [
        ("language", ["es"]),
        ("stance", ["favour", "neutral"]),
    ]
    assert not voice.HasField("from_value")
    assert replies.target == 40
    assert replies.baseline_start.ToDatetime(tzinfo=UTC) == datetime(2026, 2, 1, tzinfo=UTC)
    assert replies.baseline_end.ToDatetime(tzinfo=UTC).date().isoformat() == "2026-02-28"


def test_the_form_names_each_wrong_field_of_each_objective() -> None:
    posted = _posted(
        **{
            "objectives-2-target": "many",
            "objectives-2-baseline_end": "",
            "objectives-0-filters": "language",
            "ends": "soon",
        }
    )
    form = views.edit_form_errors(views.edit_form("ocean-2026", posted))
    assert dict(form.errors) == {
        "ends": "Enter the end date as YYYY-MM-DD",
        "objectives-0-filters": "Objective 1: write filters as field=value,value; field=value",
        "objectives-1-target": "Objective 2: enter the target as a number",
        "objectives-1-baseline_start": (
            "Objective 2: enter both ends of the baseline window, or neither"
        ),
    }


def test_the_evaluators_error_sits_on_the_objective_field_it_names() -> None:
    form = views.edit_form("ocean-2026", _posted())
    shown = views.with_edit_error(
        form, "objectives[1].target 120 is outside what share_of_voice can be (0 to 100)"
    )
    assert shown.errors == (
        (
            "objectives-1-target",
            "Objective 2: target 120 is outside what share_of_voice can be (0 to 100)",
        ),
    )
    assert views.with_edit_error(form, "ends_at must be after starts_at").errors == (
        ("ends", "Ends must be after starts_at"),
    )
    assert views.with_edit_error(form, "something else").errors == (("name", "Something else"),)


def test_feedback_is_checked_then_sent_about_the_campaign() -> None:
    wrong = views.feedback_form({"from_role": "stranger", "rating": "9", "text": " "})
    assert [name for name, _ in wrong.errors] == ["from_role", "rating", "text"]
    form = views.feedback_form(
        {"from_role": "partner", "author": "Ana", "rating": "4", "text": "Clear <i>posts</i>"}
    )
    request = views.feedback_request("ocean-2026", form, "r-1")
    assert request.feedback.rating == 4 and request.feedback.about == "ocean-2026"
    assert request.feedback.from_role == evaluate_pb2.Feedback.FROM_ROLE_PARTNER
    shown = views.with_feedback_error(
        form, "feedback.organisation (or author) is required for partner feedback"
    )
    assert shown.errors == (
        ("author", "Feedback.organisation (or author) is required for partner feedback"),
    )


def test_the_feedback_summary_counts_and_rates() -> None:
    none = evaluator_pb.Scorecard()
    assert views.feedback_summary(none) == "0 pieces of feedback"
    some = evaluator_pb.Scorecard(
        feedback=3, kpis=[evaluate_pb2.Kpi(name="mean_rating", value=4.333)]
    )
    assert views.feedback_summary(some) == "3 pieces of feedback, rated 4.3 of 5 on average"


def test_the_review_groups_lessons_and_shows_objectives_in_units() -> None:
    lessons = views.lessons_of({"worked": "Spanish first\n\n", "next_time": "Start sooner"}, "cam")
    assert [(lesson.kind, lesson.source) for lesson in lessons] == [
        (evaluate_pb2.Lesson.KIND_WORKED, "team:cam"),
        (evaluate_pb2.Lesson.KIND_NEXT_TIME, "team:cam"),
    ]
    review = evaluate_pb2.AfterActionReview(
        campaign_id="ocean-2026",
        author="campaign-lead",
        feedback_count=1,
        mean_rating=4,
        lessons=lessons,
        objectives=[
            evaluate_pb2.ObjectiveStatus(
                objective_id="answer",
                metric="median_first_response_seconds",
                status=evaluate_pb2.ObjectiveStatus.STATUS_MISSED,
                value=911347.75,
                target=86400,
            )
        ],
    )
    page = views.review_page(review, {"median_first_response_seconds": "seconds"})
    assert (page.feedback, page.mean_rating) == ("1 piece of feedback", "4.0 of 5")
    (objective,) = page.objectives
    assert (objective.status, objective.value, objective.target) == (
        "Missed",
        "10.5 days",
        "24 h",
    )
    assert [len(group.lessons) for group in page.groups] == [1, 0, 1]


def test_the_reports_file_name_is_safe() -> None:
    report = evaluator_pb.CampaignReport(campaign_id="ocean-2026", file_name='a"b/../c.pdf')
    assert views.report_download_name(report, "pdf") == "a_b_.._c.pdf"
    assert views.report_download_name(evaluator_pb.CampaignReport(campaign_id="x"), "html") == (
        "x-report.html"
    )
