"""ListFeedback, ListAfterActionReviews and BuildCampaignReport against the OpenSearch
stand-in: events seeded through the evaluator's document path, reviews made through the
API, over a real gRPC server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta

import grpc
import pytest
from evaluator_seed import END, events, index_events, serving

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.evaluator.v1 import evaluator_service_pb2_grpc as pb_grpc
from legation.events.v1 import evaluate_pb2
from legation_devstack.standins import OpenSearchStandIn
from legation_devstack.users import UsersFile
from legation_evaluator.adapters import report_plots
from legation_evaluator.adapters.grpc_reports import REPORT_STEPS
from legation_evaluator.adapters.index import EventIndex, connect
from legation_evaluator.config import EvaluatorSettings

pytestmark = pytest.mark.integration

Feedback = evaluate_pb2.Feedback


@pytest.fixture
def stub(
    opensearch_stand_in: OpenSearchStandIn, unique: str, auth_users: UsersFile
) -> Iterator[pb_grpc.EvaluatorServiceStub]:
    index = EventIndex(
        connect(EvaluatorSettings(opensearch_url=opensearch_stand_in.url)), f"test-{unique}"
    )
    index.ensure_template()
    index_events(index, events("plastics") + events("oceans"))
    with serving(index, auth_users) as stub:
        yield stub


def _invalid(call: object) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return str(caught.value.details())


def test_feedback_is_listed_by_campaign_and_role_in_pages(
    stub: pb_grpc.EvaluatorServiceStub,
) -> None:
    plastics = stub.ListFeedback(pb.ListFeedbackRequest(campaign_id="plastics"))
    assert plastics.total == 3 and not plastics.next_page_token
    assert {item.campaign_id for item in plastics.feedback} == {"plastics"}
    assert {item.feedback.text for item in plastics.feedback} == {
        "Clear, <useful> text.",
        "Too slow to answer my question.",
        "Translate earlier.",
    }
    # The seed records every piece two hours before the end.
    assert {item.recorded_at.ToDatetime(UTC) for item in plastics.feedback} == {
        END - timedelta(hours=2)
    }

    partners = stub.ListFeedback(pb.ListFeedbackRequest(from_role=Feedback.FROM_ROLE_PARTNER))
    assert [(i.campaign_id, i.feedback.organisation) for i in partners.feedback] in (
        [("plastics", "Ocean Alliance"), ("oceans", "Ocean Alliance")],
        [("oceans", "Ocean Alliance"), ("plastics", "Ocean Alliance")],
    )

    seen: list[tuple[str, str]] = []
    token = ""
    for _ in range(3):
        page = stub.ListFeedback(pb.ListFeedbackRequest(page_size=4, page_token=token))
        assert page.total == 6
        seen += [(i.campaign_id, i.feedback.feedback_id) for i in page.feedback]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 6 and len(set(seen)) == 6

    assert _invalid(lambda: stub.ListFeedback(pb.ListFeedbackRequest(page_token="%%"))).startswith(
        "page_token"
    )
    assert _invalid(lambda: stub.ListFeedback(pb.ListFeedbackRequest(page_size=101))).startswith(
        "page_size"
    )


def test_reviews_are_listed_newest_first_and_one_is_found_by_its_id(
    stub: pb_grpc.EvaluatorServiceStub,
) -> None:
    first = stub.ReviewCampaign(
        pb.ReviewCampaignRequest(campaign_id="plastics", request_id="one", author="Team A")
    )
    second = stub.ReviewCampaign(
        pb.ReviewCampaignRequest(campaign_id="plastics", request_id="two", author="Team B")
    )
    stub.ReviewCampaign(pb.ReviewCampaignRequest(campaign_id="oceans", request_id="one"))

    plastics = stub.ListAfterActionReviews(pb.ListAfterActionReviewsRequest(campaign_id="plastics"))
    assert plastics.total == 2
    assert [r.review_id for r in plastics.reviews] == [second.review_id, first.review_id]
    assert plastics.reviews[0].author == "Team B" and plastics.reviews[0].feedback_count == 3

    one = stub.ListAfterActionReviews(pb.ListAfterActionReviewsRequest(review_id=first.review_id))
    assert [r.author for r in one.reviews] == ["Team A"]
    assert [len(r.lessons) for r in one.reviews] == [len(first.lessons)]

    page = stub.ListAfterActionReviews(pb.ListAfterActionReviewsRequest(page_size=2))
    assert page.total == 3 and len(page.reviews) == 2 and page.next_page_token
    rest = stub.ListAfterActionReviews(
        pb.ListAfterActionReviewsRequest(page_size=2, page_token=page.next_page_token)
    )
    assert len(rest.reviews) == 1 and not rest.next_page_token
    assert {r.review_id for r in [*page.reviews, *rest.reviews]} >= {
        first.review_id,
        second.review_id,
    }


def test_the_report_is_built_with_its_progress(stub: pb_grpc.EvaluatorServiceStub) -> None:
    updates = list(
        stub.BuildCampaignReport(
            pb.GetCampaignReportRequest(
                campaign_id="plastics", format=pb.GetCampaignReportRequest.FORMAT_PDF
            )
        )
    )
    assert [u.done for u in updates] == list(range(1, REPORT_STEPS + 1))
    assert {u.total for u in updates} == {REPORT_STEPS}
    steps = [u.step for u in updates]
    assert steps[0] == "publications" and steps[-1] == "pdf"
    assert [s for s in steps if s.startswith("plot ")] == [
        f"plot {key}" for key, _caption, _draw in report_plots.PLOTS
    ]
    assert not any(u.HasField("report") for u in updates[:-1])
    final = updates[-1].report
    assert final.content.startswith(b"%PDF") and final.file_name == "plastics-report.pdf"

    with pytest.raises(grpc.RpcError) as caught:
        list(
            stub.BuildCampaignReport(
                pb.GetCampaignReportRequest(
                    campaign_id="nope", format=pb.GetCampaignReportRequest.FORMAT_HTML
                )
            )
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
