"""Feedback, after-action review and the campaign report against the OpenSearch stand-in:
events seeded through the evaluator's document path, the API over a real gRPC server."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from evaluator_seed import (
    AUTHORS,
    NAME,
    NOW,
    START,
    campaign,
    events,
    index_events,
    serving,
)
from matplotlib.patches import Rectangle
from pypdf import PdfReader

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as pb_grpc
from legation.events.v1 import evaluate_pb2, listen_pb2
from legation_core.codec import Envelope, make_envelope
from legation_devstack.standins import OpenSearchStandIn
from legation_devstack.users import UsersFile
from legation_evaluator.adapters import report_plots, report_render
from legation_evaluator.adapters.campaign_data import CampaignData
from legation_evaluator.adapters.index import EventIndex, connect
from legation_evaluator.config import EvaluatorSettings
from legation_evaluator.domain import metrics
from legation_evaluator.domain.report import OUR_VOICE, KeyFigure, ReportModel

pytestmark = pytest.mark.integration

Lesson = evaluate_pb2.Lesson
Feedback = evaluate_pb2.Feedback


@pytest.fixture
def index(opensearch_stand_in: OpenSearchStandIn, unique: str) -> EventIndex:
    settings = EvaluatorSettings(opensearch_url=opensearch_stand_in.url)
    result = EventIndex(connect(settings), f"test-{unique}")
    result.ensure_template()
    return result


@pytest.fixture
def seeded(index: EventIndex) -> EventIndex:
    index_events(index, events("plastics"))
    return index


@pytest.fixture
def model(seeded: EventIndex) -> ReportModel:
    data = CampaignData(seeded)
    found = data.campaign("plastics")
    assert found is not None
    return data.report_model(found, NOW)


@pytest.fixture
def stub(seeded: EventIndex, auth_users: UsersFile) -> Iterator[pb_grpc.EvaluatorServiceStub]:
    with serving(seeded, auth_users) as stub:
        yield stub


def test_the_report_model_is_computed_from_the_indexed_events(model: ReportModel) -> None:
    assert sum(point.count for point in model.volume) == 18
    assert [marker.title for marker in model.publications] == [
        "Minister's statement 1",
        "Minister's statement 2",
    ]
    sentiment = model.shifts[0]
    assert sentiment.before.count == 6 and sentiment.before.value == pytest.approx(-0.6)
    # 9 positive (0.5) and 3 neutral (0.0) mentions after the start.
    assert sentiment.after.count == 12 and sentiment.after.value == pytest.approx(0.375)
    assert model.shifts[1].before.value is None  # no stance labels indexed
    voices = {voice.actor: voice.count for voice in model.voices}
    assert voices == {OUR_VOICE: 2 + 4, **{author: 6 for author in AUTHORS}}
    assert model.response_seconds == [3600.0, 9000.0, 10800.0, 32400.0]
    assert model.response_target_seconds == 4 * 3600
    statuses = {row.objective_id: row.status for row in model.objectives}
    assert statuses == {
        "conversation": "achieved",
        "answer-all": "missed",
        "fast-answers": "achieved",
    }
    assert len(model.feedback) == 3 and not model.reviewed


def test_the_html_report_has_the_objectives_rows_and_plots_and_escapes_user_text(
    model: ReportModel,
) -> None:
    html = report_render.render(model, "html").decode()
    for objective_id, status in (
        ("conversation", "achieved"),
        ("answer-all", "missed"),
        ("fast-answers", "achieved"),
    ):
        row = re.search(rf'<tr data-objective="{objective_id}">(.*?)</tr>', html, re.S)
        assert row is not None, objective_id
        assert f'class="status {status}">{status}</span>' in row.group(1)
    plots = re.findall(r'<img alt="([^"]+)" src="data:image/svg\+xml;base64,', html)
    assert plots == ["Volume over time", "Sentiment and stance", "Share of voice", "Response times"]
    assert "Plastics &lt;b&gt;treaty&lt;/b&gt; &amp; oceans" in html
    assert "<b>treaty</b>" not in html
    assert "Clear, &lt;useful&gt; text." in html


def test_the_pdf_report_has_its_pages_tables_and_plots(model: ReportModel) -> None:
    pdf = report_render.render(model, "pdf")
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 3
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in (NAME, "conversation", "answer-all", "fast-answers", "missed", "Lessons"):
        assert expected in text, expected
    assert "page 2" in text
    images = sum(len(page.images) for page in reader.pages)
    assert images == len(report_plots.PLOTS)


def test_a_plot_png_is_a_real_picture(model: ReportModel, tmp_path: Path) -> None:
    png = report_plots.to_png(report_plots.volume(model), dpi=100)
    assert png.startswith(b"\x89PNG")
    assert len(png) > 10_000  # axes, bars, markers and labels, not an empty canvas
    (tmp_path / "volume.png").write_bytes(png)
    for key, _caption, draw in report_plots.PLOTS:
        (tmp_path / f"{key}.png").write_bytes(report_plots.to_png(draw(model), dpi=100))
    print(f"plots in {tmp_path}")


def test_feedback_validation_names_the_field(stub: pb_grpc.EvaluatorServiceStub) -> None:
    request = pb.SubmitFeedbackRequest(
        campaign_id="plastics",
        feedback=Feedback(from_role=Feedback.FROM_ROLE_PARTNER, rating=4, text="Good"),
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.SubmitFeedback(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "feedback.organisation" in str(caught.value.details())
    request.feedback.organisation = "Ocean Alliance"
    request.feedback.about_kind = Feedback.ABOUT_KIND_PUBLICATION
    with pytest.raises(grpc.RpcError) as caught:
        stub.SubmitFeedback(request)
    assert "feedback.about" in str(caught.value.details())


def test_feedback_about_nothing_in_particular_is_about_the_campaign(
    stub: pb_grpc.EvaluatorServiceStub, seeded: EventIndex
) -> None:
    stored = stub.SubmitFeedback(
        pb.SubmitFeedbackRequest(
            campaign_id="plastics",
            request_id="r1",
            feedback=Feedback(
                from_role=Feedback.FROM_ROLE_COLLEAGUE, author="Press desk", rating=4, text="Ok"
            ),
        )
    )
    assert (stored.about, stored.about_kind) == ("plastics", Feedback.ABOUT_KIND_CAMPAIGN)
    assert len(CampaignData(seeded).feedback("plastics")) == 4


def test_review_validation_and_an_unfinished_campaign(
    stub: pb_grpc.EvaluatorServiceStub, seeded: EventIndex
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ReviewCampaign(
            pb.ReviewCampaignRequest(
                campaign_id="plastics", lessons=[Lesson(kind=Lesson.KIND_WORKED, text=" ")]
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "lessons[0].text is required"
    running = campaign("running", ends_at=datetime.now(UTC) + timedelta(days=1))
    index_events(
        seeded,
        [
            make_envelope(
                running,
                event_id="running-v1",
                source_service="evaluator",
                occurred_at=NOW,
                campaign_id="running",
            )
        ],
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.ReviewCampaign(pb.ReviewCampaignRequest(campaign_id="running"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "has not finished" in str(caught.value.details())
    with pytest.raises(grpc.RpcError) as caught:
        stub.ReviewCampaign(pb.ReviewCampaignRequest(campaign_id="nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_review_is_stored_indexed_and_in_the_report(
    stub: pb_grpc.EvaluatorServiceStub, seeded: EventIndex
) -> None:
    request = pb.ReviewCampaignRequest(
        campaign_id="plastics",
        request_id="final",
        author="Campaign team",
        lessons=[Lesson(kind=Lesson.KIND_NEXT_TIME, text="Brief partners a week earlier.")],
    )
    review = stub.ReviewCampaign(request)
    kinds = [Lesson.Kind.Name(lesson.kind) for lesson in review.lessons]
    assert kinds == sorted(kinds, key=["KIND_WORKED", "KIND_DID_NOT_WORK", "KIND_NEXT_TIME"].index)
    by_source: dict[str, list[str]] = {}
    for lesson in review.lessons:
        by_source.setdefault(lesson.source, []).append(Lesson.Kind.Name(lesson.kind))
    assert by_source == {
        "objective:conversation": ["KIND_WORKED"],
        "objective:fast-answers": ["KIND_WORKED"],
        "objective:answer-all": ["KIND_DID_NOT_WORK", "KIND_NEXT_TIME"],
        "feedback:fb-0": ["KIND_WORKED"],  # rated 5
        "feedback:fb-1": ["KIND_DID_NOT_WORK"],  # rated 2
        "feedback:fb-2": ["KIND_NEXT_TIME"],  # rated 3
        "team:Campaign team": ["KIND_NEXT_TIME"],
    }
    assert review.lessons[-1].text == "Brief partners a week earlier."
    assert review.feedback_count == 3 and review.mean_rating == pytest.approx(10 / 3)
    # Resubmitting with the same request id replaces the review rather than adding one.
    assert stub.ReviewCampaign(request).review_id == review.review_id
    stored = CampaignData(seeded).latest_review("plastics")
    assert stored is not None and stored.review_id == review.review_id
    html = stub.GetCampaignReport(
        pb.GetCampaignReportRequest(
            campaign_id="plastics", format=pb.GetCampaignReportRequest.FORMAT_HTML
        )
    )
    assert html.content_type.startswith("text/html") and html.file_name == "plastics-report.html"
    page = html.content.decode()
    assert page.index("What worked") < page.index("What did not work") < page.index("Next time")
    assert "Brief partners a week earlier." in page
    pdf = stub.GetCampaignReport(
        pb.GetCampaignReportRequest(
            campaign_id="plastics", format=pb.GetCampaignReportRequest.FORMAT_PDF
        )
    )
    assert pdf.content.startswith(b"%PDF") and pdf.content_type == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Brief partners a week earlier." in text


def test_a_report_without_a_format_is_refused(stub: pb_grpc.EvaluatorServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCampaignReport(pb.GetCampaignReportRequest(campaign_id="plastics"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "format" in str(caught.value.details())


def test_the_report_command_writes_both_files_with_a_progress_bar(
    seeded: EventIndex, opensearch_stand_in: OpenSearchStandIn, tmp_path: Path
) -> None:
    environment = {
        **os.environ,
        "LEGATION_OPENSEARCH_URL": opensearch_stand_in.url,
        "LEGATION_EVALUATOR_INDEX_PREFIX": seeded.prefix,
    }
    command = [sys.executable, "-m", "legation_evaluator", "report", "--campaign", "plastics"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "out")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    html, pdf = tmp_path / "out" / "plastics-report.html", tmp_path / "out" / "plastics-report.pdf"
    assert done.stdout.split() == [str(html), str(pdf)]
    assert 'data-objective="answer-all"' in html.read_text()
    assert pdf.read_bytes().startswith(b"%PDF")
    # tqdm's bar on stderr reached the end: campaign, 6 searches, 4 plots, 2 files.
    assert "13/13" in done.stderr
    missing = subprocess.run(
        [*command[:-1], "nope", "--out", str(tmp_path / "none")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 1
    assert "campaign nope is not in the index" in missing.stderr


def stance_mention(number: int, value: str, score: float, at: datetime) -> Envelope:
    mention = listen_pb2.Mention(
        mention_id=f"stance-{number}",
        author=AUTHORS[number % 3],
        title="Treaty talks",
        stance=listen_pb2.Label(value=value, score=score, model="stance-test"),
    )
    return make_envelope(
        mention,
        event_id=f"stance-{number}",
        source_service="listener",
        occurred_at=at,
        campaign_id="plastics",
        issue_id="plastics",
    )


def test_stance_is_signed_favour_above_zero_against_below(seeded: EventIndex) -> None:
    """A stance label's score is the model's confidence: two "against" mentions at 0.72 and
    0.54 are a mean stance of -0.63 (once plotted as +0.63)."""
    before, after = START - timedelta(hours=10), START + timedelta(hours=10)
    index_events(
        seeded,
        [
            stance_mention(0, "against", 0.72, before),
            stance_mention(1, "against", 0.54, before),
            stance_mention(2, "favour", 0.9, after),
            stance_mention(3, "against", 0.6, after),
            stance_mention(4, "neutral", 0.8, after),  # counts, as 0
            stance_mention(5, "unknown", 0.3, after),  # does not count
        ],
    )
    data = CampaignData(seeded)
    found = data.campaign("plastics")
    assert found is not None
    model = data.report_model(found, NOW)
    stance = next(shift for shift in model.shifts if shift.label == "Stance")
    assert stance.before.count == 2
    assert stance.before.value == pytest.approx(-0.63)
    assert stance.after.count == 3
    assert stance.after.value == pytest.approx((0.9 - 0.6 + 0) / 3)
    # The plot draws the bars with their sign: the "before" stance bar points down.
    axes = report_plots.attitude(model).axes[0]
    heights = [round(bar.get_height(), 4) for bar in axes.patches if isinstance(bar, Rectangle)]
    assert round(-0.63, 4) in heights
    assert round(0.1, 4) in heights


def test_durations_read_in_hours_or_days_in_the_report(model: ReportModel) -> None:
    """The report once showed a median reply time as raw seconds (911347.75)."""
    row = next(row for row in model.objectives if row.objective_id == "fast-answers")
    # Replies after 1, 2.5, 3 and 9 h: the median is 2.75 h, the target 4 h.
    assert (row.value_shown, row.target_shown) == ("2.75 h", "4 h")
    figures = {figure.name: figure.shown for figure in model.kpis}
    assert figures["median_first_response_seconds"] == "2.75 h"
    html = report_render.render(model, "html").decode()
    fast = re.search(r'<tr data-objective="fast-answers">(.*?)</tr>', html, re.S)
    assert fast is not None
    assert "≤ 4 h" in fast.group(1) and "2.75 h" in fast.group(1)
    assert "14400" not in fast.group(1) and "9900" not in fast.group(1)
    tile = re.search(r'<div class="kpi" data-kpi="median_first_response_seconds">(.*?)</div>', html)
    assert tile is not None and "<b>2.75 h</b>" in tile.group(1)
    pdf = report_render.render(model, "pdf")
    text = " ".join(
        " ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages
    )
    assert "median first response seconds 2.75 h" in text
    days = report_render.render(
        replace(
            model,
            kpis=[
                KeyFigure(
                    "median_first_response_seconds",
                    911347.75,
                    metrics.shown(911347.75, "median_first_response_seconds"),
                )
            ],
        ),
        "html",
    ).decode()
    assert "<b>10.5 days</b>" in days and "911347" not in days
