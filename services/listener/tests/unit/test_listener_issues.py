"""TrackIssue requests: what is required, and the issue a valid request becomes."""

from __future__ import annotations

import pytest

from legation.events.v1 import listen_pb2
from legation.listener.v1.listener_service_pb2 import TrackIssueRequest
from legation_listener.domain.issues import IssueError, slugify, tracked_issue_from_request


def request(**overrides: object) -> TrackIssueRequest:
    fields: dict[str, object] = {
        "name": "Global plastics treaty",
        "keywords": ["plastics treaty", "plastic pollution"],
        "feeds": ["https://news.example.org/feed.xml", "https://ngo.example.org/atom"],
        "campaign_ids": ["plastics-2026"],
        "languages": ["en", "fr"],
    }
    fields.update(overrides)
    return TrackIssueRequest(**fields)  # type: ignore[arg-type]


def test_valid_request_becomes_an_active_issue_with_a_slug_id() -> None:
    issue = tracked_issue_from_request(request())
    assert issue == listen_pb2.TrackedIssue(
        issue_id="global-plastics-treaty",
        name="Global plastics treaty",
        keywords=["plastics treaty", "plastic pollution"],
        feeds=["https://news.example.org/feed.xml", "https://ngo.example.org/atom"],
        campaign_ids=["plastics-2026"],
        languages=["en", "fr"],
        active=True,
    )


def test_given_issue_id_wins_and_values_are_cleaned() -> None:
    issue = tracked_issue_from_request(
        request(
            issue_id=" plastics ",
            name="  Plastics  ",
            keywords=[" plastics   treaty", "plastics treaty", "Ocean"],
            feeds=["file:///srv/a.xml", " file:///srv/a.xml "],
        ),
        local_files=True,
    )
    assert issue.issue_id == "plastics"
    assert issue.name == "Plastics"
    assert list(issue.keywords) == ["plastics treaty", "Ocean"]
    assert list(issue.feeds) == ["file:///srv/a.xml"]


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Global plastics treaty", "global-plastics-treaty"),
        ("  COP29: Baku / finance_goal!  ", "cop29-baku-finance-goal"),
        ("Traité de l'Antarctique", "traité-de-l-antarctique"),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": "  "}, "name", "name is required"),
        ({"keywords": []}, "keywords", "keywords needs at least one keyword"),
        ({"keywords": ["ok", "  "]}, "keywords", "keywords cannot contain a blank keyword"),
        ({"feeds": []}, "feeds", "feeds needs at least one feed"),
        ({"feeds": ["https://a.org/f", " "]}, "feeds", "feeds cannot contain a blank feed"),
        ({"feeds": ["ftp://a.org/f"]}, "feeds", "feeds has an unsupported scheme 'ftp'"),
        ({"issue_id": "two words"}, "issue_id", "issue_id cannot contain whitespace"),
        ({"name": "!!!"}, "issue_id", "issue_id cannot be derived from name"),
    ],
)
def test_invalid_requests_name_the_field(
    overrides: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(IssueError) as raised:
        tracked_issue_from_request(request(**overrides))
    assert raised.value.field == field
    assert str(raised.value).startswith(message)
    assert isinstance(raised.value, ValueError)


def test_a_query_may_replace_keywords_and_is_trimmed() -> None:
    issue = tracked_issue_from_request(request(keywords=[], query="  treaty OR pact "))
    assert issue.query == "treaty OR pact"
    assert list(issue.keywords) == []
    # Keywords alone still work as before.
    assert tracked_issue_from_request(request()).query == ""


def test_a_malformed_query_names_the_field_and_the_position() -> None:
    from legation_listener.domain.issues import QueryIssueError

    with pytest.raises(QueryIssueError) as raised:
        tracked_issue_from_request(request(query='  "open phrase'))
    assert str(raised.value) == "query: unterminated phrase (missing closing '\"') at position 2"
    assert raised.value.field == "query"
    assert raised.value.position == 2


def test_neither_keywords_nor_query() -> None:
    with pytest.raises(IssueError, match=r"^keywords needs at least one keyword"):
        tracked_issue_from_request(request(keywords=[], query="  "))
