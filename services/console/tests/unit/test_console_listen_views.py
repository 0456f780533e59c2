"""The Listen pages' view models: issues, the query's problem at its position, the preview,
and the form's field errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation_console.domain.people import Person
from legation_console.domain.views import listen as views

ANALYST = Person("ana", "Ana", frozenset({"analyst", "viewer"}), frozenset())
VIEWER = Person("vic", "Vic", frozenset({"viewer"}), frozenset())


def test_issues_by_name_with_what_matches_and_their_state() -> None:
    issues = [
        listen_pb2.TrackedIssue(
            issue_id="ocean", name="ocean week", keywords=["ocean", "sea"], active=False
        ),
        listen_pb2.TrackedIssue(
            issue_id="plastics",
            name="Plastics treaty",
            query="plastic* AND treaty",
            feeds=["a", "b"],
            campaign_ids=["c-1"],
            active=True,
        ),
    ]
    page = views.issues_page(issues, ANALYST)
    assert [row.issue_id for row in page.rows] == ["ocean", "plastics"]
    ocean, plastics = page.rows
    assert (ocean.matching, ocean.matching_kind, ocean.state) == (
        "ocean, sea",
        "keywords",
        "Paused",
    )
    assert (plastics.matching_kind, plastics.sources, plastics.campaigns) == (
        "query",
        "2 sources",
        "c-1",
    )
    assert page.summary == "2 tracked issues"
    assert page.can_track
    assert not views.issues_page(issues, VIEWER).can_track


def test_the_problem_points_at_its_position_on_its_line() -> None:
    problem = views.query_problem("plastic AND (treaty", "query: unclosed '(' at position 12")
    assert (problem.message, problem.position, problem.column) == ("unclosed '('", 12, 12)
    assert problem.line == "plastic AND (treaty"
    assert problem.caret == " " * 12 + "^"
    multiline = views.query_problem("a OR\nb AND )", "query: unexpected ')' at position 11")
    assert (multiline.line, multiline.line_number, multiline.column) == ("b AND )", 2, 6)
    # A detail without a position is shown as it is; a position past the end is clamped.
    assert views.query_problem("x", "query is required").position is None
    assert views.query_problem("ab", "query: unexpected end at position 9").column == 2


def test_the_preview_counts_matches_and_keeps_only_safe_links() -> None:
    response = listener_pb.PreviewQueryResponse(items_examined=340, total_matches=12)
    response.matches.add(
        title="<b>Treaty</b>", text="x " * 300, url="javascript:alert(1)", matched_terms=["treaty"]
    )
    check = views.query_check("treaty", response)
    assert check.ok
    assert check.summary == "12 matches among 340 recent items (the newest 1 shown)"
    (row,) = check.rows
    assert (row.title, row.url, row.author, row.language) == (
        "<b>Treaty</b>",
        None,
        "unknown author",
        "unknown",
    )
    assert len(row.text) <= 281
    assert not views.query_check(" ", None).ok
    assert views.query_invalid("(", "query: unclosed '(' at position 0").problem is not None


def test_form_errors_name_their_field() -> None:
    empty = views.issue_form_errors(views.IssueForm())
    assert [field for field, _ in empty.errors] == ["name", "query", "feeds"]
    filled = views.IssueForm(name="P", query="p", feeds="https://example.org/f.rss\n\n")
    assert views.issue_form_errors(filled).errors == ()
    assert views.feed_list(filled.feeds) == ["https://example.org/f.rss"]
    assert views.campaign_list("a, b c") == ["a", "b", "c"]
    bad_feed = views.with_service_error(filled, "feeds[0]: 'ftp://x' is not a source")
    assert bad_feed.error("feeds") == "'ftp://x' is not a source"
    bad_query = views.with_service_error(filled, "query: unclosed '(' at position 0")
    assert bad_query.error("query") == "Unclosed '(' at position 0"
    other = views.with_service_error(filled, "something else went wrong")
    assert other.error("name") == "Something else went wrong"


def test_sources_failing_first_with_their_counts() -> None:
    ok = listener_pb.SourceStatus(
        issue_id="p", source="https://a.example/feed", kind="rss", state="ok", items_read=12
    )
    failing = listener_pb.SourceStatus(
        issue_id="p",
        source="mastodon:https://m.example/tags/x",
        kind="mastodon",
        state="failing",
        last_error="HTTP 503",
        consecutive_failures=3,
        malformed_items=1,
    )
    waiting = listener_pb.SourceStatus(
        issue_id="p", source="https://r.example/.rss", kind="reddit", state="rate_limited"
    )
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    waiting.not_before.FromDatetime(now + timedelta(minutes=5))
    page = views.sources_page([ok, failing, waiting], now)
    assert [row.state for row in page.rows] == ["Failing", "Asked to wait", "Reading"]
    assert page.rows[1].waiting == "until 2026-12-02 10:05 UTC (in 5 min)"
    assert page.rows[0].waiting == page.rows[2].waiting == ""
    first = page.rows[0]
    assert (first.failures, first.malformed, first.last_error, first.last_success) == (
        "3 failures in a row",
        "1 malformed item",
        "HTTP 503",
        "—",
    )
    assert page.rows[2].items == "12 items"
    assert page.summary == "3 sources, 1 failing"
