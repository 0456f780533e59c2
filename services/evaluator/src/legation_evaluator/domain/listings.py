"""Lists of recorded feedback and after-action reviews (no I/O): the request's limits, the
OpenSearch query and the answer built from the hits. Pages as SearchMentions gives them:
newest first, the last hit's sort values as an opaque token."""

from __future__ import annotations

from typing import Any

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import evaluate_pb2
from legation_core.codec import envelope_from_json
from legation_evaluator.domain.campaigns import InvalidRequest
from legation_evaluator.domain.mentions import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_TOKEN,
    TRACK_TOTAL,
    decode_token,
    encode_token,
)

Feedback = evaluate_pb2.Feedback
_EXTRAS = ("campaign_ids", "kafka")
_NEWEST_FIRST = [{"occurred_at": {"order": "desc"}}, {"event_id": {"order": "desc"}}]


def _check_page(page_size: int, page_token: str) -> None:
    if page_size > MAX_PAGE_SIZE:
        raise InvalidRequest(f"page_size must be at most {MAX_PAGE_SIZE}")
    if len(page_token) > MAX_TOKEN:
        raise InvalidRequest(f"page_token is longer than {MAX_TOKEN} characters")
    decode_token(page_token)


def validate_feedback_list(request: pb.ListFeedbackRequest) -> None:
    """Raises :class:`InvalidRequest` naming the field that is out of its limits."""
    if request.from_role not in Feedback.FromRole.values():
        raise InvalidRequest(f"from_role: {request.from_role} is not a FromRole")
    _check_page(request.page_size, request.page_token)


def validate_reviews_list(request: pb.ListAfterActionReviewsRequest) -> None:
    """Raises :class:`InvalidRequest` naming the field that is out of its limits."""
    _check_page(request.page_size, request.page_token)


def _page(filters: list[dict[str, Any]], page_size: int, page_token: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "size": page_size or DEFAULT_PAGE_SIZE,
        "track_total_hits": TRACK_TOTAL,
        "query": {"bool": {"filter": filters}},
        "sort": _NEWEST_FIRST,
    }
    after = decode_token(page_token)
    if after is not None:
        body["search_after"] = after
    return body


def feedback_query(request: pb.ListFeedbackRequest) -> dict[str, Any]:
    """Feedback of one campaign (or all), from one role (or any), newest first."""
    filters: list[dict[str, Any]] = [{"exists": {"field": "feedback.feedback_id"}}]
    if request.campaign_id:
        filters.append({"term": {"campaign_ids": request.campaign_id}})
    if request.from_role:
        filters.append({"term": {"feedback.from_role": Feedback.FromRole.Name(request.from_role)}})
    return _page(filters, request.page_size, request.page_token)


def reviews_query(request: pb.ListAfterActionReviewsRequest) -> dict[str, Any]:
    """Reviews of one campaign (or all), or the one with ``review_id``, newest first."""
    filters: list[dict[str, Any]] = [{"exists": {"field": "after_action_review.review_id"}}]
    if request.campaign_id:
        filters.append({"term": {"campaign_ids": request.campaign_id}})
    if request.review_id:
        filters.append({"term": {"after_action_review.review_id": request.review_id}})
    return _page(filters, request.page_size, request.page_token)


def _envelopes(response: dict[str, Any]) -> list[Any]:
    return [
        envelope_from_json({k: v for k, v in hit["_source"].items() if k not in _EXTRAS})
        for hit in response["hits"]["hits"]
    ]


def _next_token(response: dict[str, Any], page_size: int) -> str:
    hits = response["hits"]["hits"]
    if len(hits) >= (page_size or DEFAULT_PAGE_SIZE) and hits and "sort" in hits[-1]:
        return encode_token(hits[-1]["sort"])
    return ""


def _total(response: dict[str, Any]) -> int:
    total = response["hits"].get("total", 0)
    return int(total["value"] if isinstance(total, dict) else total)


def feedback_response(response: dict[str, Any], page_size: int) -> pb.ListFeedbackResponse:
    """The page's feedback with its campaign and when it was recorded, the next token, the
    total."""
    result = pb.ListFeedbackResponse(
        next_page_token=_next_token(response, page_size), total=_total(response)
    )
    for envelope in _envelopes(response):
        item = result.feedback.add(campaign_id=envelope.campaign_id, feedback=envelope.feedback)
        item.recorded_at.CopyFrom(envelope.occurred_at)
    return result


def reviews_response(response: dict[str, Any], page_size: int) -> pb.ListAfterActionReviewsResponse:
    """The page's reviews, the next token, the total."""
    return pb.ListAfterActionReviewsResponse(
        reviews=[envelope.after_action_review for envelope in _envelopes(response)],
        next_page_token=_next_token(response, page_size),
        total=_total(response),
    )
