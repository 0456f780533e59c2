"""The mentions and alerts searches: limits, query clauses and page tokens."""

from __future__ import annotations

import pytest

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation_evaluator.domain import mentions
from legation_evaluator.domain.campaigns import InvalidRequest


def test_filters_become_clauses_and_the_token_a_search_after() -> None:
    token = mentions.encode_token(["2025-01-01T00:00:00Z", "m9"])
    request = pb.SearchMentionsRequest(
        issue_ids=["plastics"], stances=["against"], min_influence=0.4, page_token=token
    )
    body = mentions.mentions_query(request)
    clauses = body["query"]["bool"]["filter"]
    assert {"terms": {"issue_id": ["plastics"]}} in clauses
    assert {"terms": {"mention.stance.value": ["against"]}} in clauses
    assert {"range": {"mention.influence": {"gte": 0.4}}} in clauses
    assert body["search_after"] == ["2025-01-01T00:00:00Z", "m9"]
    assert body["size"] == mentions.DEFAULT_PAGE_SIZE


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.SearchMentionsRequest(page_size=101), "page_size"),
        (pb.SearchMentionsRequest(languages=["x"] * 21), "languages"),
        (pb.SearchMentionsRequest(sources=["s" * 201]), "sources[0]"),
        (pb.SearchMentionsRequest(min_influence=1.5), "min_influence"),
        (pb.SearchMentionsRequest(page_token="not base64!"), "page_token"),
    ],
)
def test_out_of_limits_requests_name_the_field(
    request_: pb.SearchMentionsRequest, field: str
) -> None:
    with pytest.raises(InvalidRequest, match=field.replace("[", r"\[")):
        mentions.validate_search(request_)


def test_a_full_page_gets_a_token_and_a_short_one_none() -> None:
    hit = {
        "_source": {"event_id": "e1", "issue_id": "i", "mention": {"mention_id": "m1"}},
        "sort": [1, "m1"],
    }
    response = {"hits": {"total": {"value": 7}, "hits": [hit]}}
    full = mentions.search_response(response, 1, {"m1": 3})
    assert full.total == 7 and full.mentions[0].copies == 3 and full.mentions[0].issue_id == "i"
    assert mentions.decode_token(full.next_page_token) == [1, "m1"]
    assert not mentions.search_response(response, 2).next_page_token


def test_alerts_of_several_issues_at_once() -> None:
    several = pb.ListAlertsRequest(issue_id="plastics", issue_ids=["coast", "plastics"])
    clauses = mentions.alerts_query(several)["query"]["bool"]["filter"]
    assert {"terms": {"alert.issue_id": ["plastics", "coast"]}} in clauses
    every = mentions.alerts_query(pb.ListAlertsRequest())["query"]["bool"]["filter"]
    assert not any("alert.issue_id" in str(clause) for clause in every)
    with pytest.raises(InvalidRequest, match="issue_ids has 21 values"):
        mentions.validate_alerts(pb.ListAlertsRequest(issue_ids=["x"] * 21))
    with pytest.raises(InvalidRequest, match=r"issue_ids\[1\]"):
        mentions.validate_alerts(pb.ListAlertsRequest(issue_ids=["x", "y" * 201]))
