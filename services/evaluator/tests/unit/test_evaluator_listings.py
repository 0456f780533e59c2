"""The feedback and review lists' queries, limits and answers (no index)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2
from legation_core.codec import envelope_to_dict, make_envelope
from legation_evaluator.domain import listings
from legation_evaluator.domain.campaigns import InvalidRequest
from legation_evaluator.domain.mentions import decode_token, encode_token

Feedback = evaluate_pb2.Feedback


def test_the_feedback_query_filters_sorts_and_continues_after_the_token() -> None:
    token = encode_token(["2026-03-01T10:00:00Z", "e9"])
    body = listings.feedback_query(
        pb.ListFeedbackRequest(
            campaign_id="plastics", from_role=Feedback.FROM_ROLE_PARTNER, page_token=token
        )
    )
    filters = body["query"]["bool"]["filter"]
    assert {"term": {"campaign_ids": "plastics"}} in filters
    assert {"term": {"feedback.from_role": "FROM_ROLE_PARTNER"}} in filters
    assert body["size"] == 50 and body["search_after"] == ["2026-03-01T10:00:00Z", "e9"]
    assert [next(iter(s)) for s in body["sort"]] == ["occurred_at", "event_id"]


def test_the_reviews_query_finds_one_review_by_its_id() -> None:
    body = listings.reviews_query(pb.ListAfterActionReviewsRequest(review_id="r-1", page_size=5))
    assert {"term": {"after_action_review.review_id": "r-1"}} in body["query"]["bool"]["filter"]
    assert body["size"] == 5 and "search_after" not in body


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (pb.ListFeedbackRequest(page_size=101), "page_size must be at most 100"),
        (pb.ListFeedbackRequest(page_token="not a token"), "page_token is not one"),
        (pb.ListFeedbackRequest(page_token="x" * 501), "page_token is longer than 500"),
        (pb.ListFeedbackRequest(from_role=9), "from_role: 9 is not a FromRole"),  # type: ignore[arg-type]  # not a FromRole, on purpose
    ],
)
def test_bad_feedback_lists_name_the_field(request_: pb.ListFeedbackRequest, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        listings.validate_feedback_list(request_)


def _hit(envelope: Any, sort: list[Any]) -> dict[str, Any]:
    source = envelope_to_dict(envelope)
    source["campaign_ids"] = [envelope.campaign_id]
    return {"_source": source, "sort": sort}


def test_the_answer_has_campaign_time_total_and_a_token_when_the_page_is_full() -> None:
    envelopes = [
        make_envelope(
            Feedback(feedback_id=f"fb-{n}", rating=4, text=f"<b>{n}</b>"),
            event_id=f"e{n}",
            source_service="evaluator",
            campaign_id="plastics",
            occurred_at=datetime(2026, 3, 1, 10, tzinfo=UTC),
        )
        for n in range(2)
    ]
    response = {
        "hits": {
            "total": {"value": 7},
            "hits": [_hit(e, ["2026-03-01T10:00:00Z", e.event_id]) for e in envelopes],
        }
    }
    full = listings.feedback_response(response, page_size=2)
    assert full.total == 7 and full.next_page_token
    assert [(i.campaign_id, i.feedback.text) for i in full.feedback] == [
        ("plastics", "<b>0</b>"),
        ("plastics", "<b>1</b>"),
    ]
    assert full.feedback[0].recorded_at == envelopes[0].occurred_at
    assert decode_token(full.next_page_token) == ["2026-03-01T10:00:00Z", "e1"]
    assert not listings.feedback_response(response, page_size=3).next_page_token
