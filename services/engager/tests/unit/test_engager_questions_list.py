"""Listing questions campaigns (no I/O): filters, order, pages and the counts a list shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from legation.events.v1 import engage_pb2
from legation_engager.domain import questions

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def campaign(
    request_id: str, campaign_id: str = "camp-1", issue_id: str = "issue-1", minutes: int = 0
) -> questions.QuestionsCampaign:
    made = questions.create(
        request_id, campaign_id, issue_id, f"Ask {request_id}", "", "", set(), "officer", T0
    )
    made.updated_at.FromDatetime(T0 + timedelta(minutes=minutes))
    return made


def test_the_most_recently_changed_come_first_and_filters_narrow() -> None:
    old, new = campaign("a", minutes=0), campaign("b", minutes=5)
    other = campaign("c", campaign_id="camp-2", issue_id="issue-2", minutes=9)
    closed = questions.close(new, T0 + timedelta(minutes=10))
    assert closed is not None
    everything = [old, closed, other]

    page, token = questions.list_campaigns(everything, "", "", False, 0, "", 1000)
    assert [c.title for c in page] == ["Ask b", "Ask c", "Ask a"] and token == ""

    page, _ = questions.list_campaigns(everything, "camp-1", "", False, 0, "", 1000)
    assert [c.title for c in page] == ["Ask b", "Ask a"]
    page, _ = questions.list_campaigns(everything, "", "issue-2", False, 0, "", 1000)
    assert [c.title for c in page] == ["Ask c"]
    page, _ = questions.list_campaigns(everything, "", "", True, 0, "", 1000)
    assert [c.title for c in page] == ["Ask c", "Ask a"]


def test_pages_follow_each_other_without_gaps_or_repeats() -> None:
    many = [campaign(f"q{n}", minutes=n) for n in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        page, token = questions.list_campaigns(many, "", "", False, 2, token, 1000)
        seen += [c.questions_id for c in page]
        if not token:
            break
    assert seen == [c.questions_id for c in reversed(many)]


@pytest.mark.parametrize(
    ("size", "token", "message"),
    [(0, "abc", "page_token: not a token this API gave"), (1001, "", "page_size: at most 1000")],
)
def test_bad_pages_name_the_field(size: int, token: str, message: str) -> None:
    with pytest.raises(questions.QuestionsListError, match=message):
        questions.list_campaigns([campaign("a")], "", "", False, size, token, 1000)


def test_counts_by_status_and_the_bare_campaign() -> None:
    made = campaign("a")
    for n, status in enumerate(
        [
            engage_pb2.QUESTION_STATUS_PENDING,
            engage_pb2.QUESTION_STATUS_PENDING,
            engage_pb2.QUESTION_STATUS_APPROVED,
            engage_pb2.QUESTION_STATUS_REJECTED,
            engage_pb2.QUESTION_STATUS_ANSWERED,
        ]
    ):
        made.questions.add(question_id=f"q{n}", text="Why?", status=status)
    assert questions.summary_counts(made) == {
        "questions": 5,
        "pending": 2,
        "approved": 1,
        "rejected": 1,
        "answered": 1,
    }
    bare = questions.without_questions(made)
    assert not bare.questions and bare.title == "Ask a" and len(made.questions) == 5
