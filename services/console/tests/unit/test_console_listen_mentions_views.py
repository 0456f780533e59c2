"""The mentions and alerts pages' view models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import listen_pb2
from legation_console.domain.views import listen as views


def test_filters_from_the_query_string_become_the_request() -> None:
    assert views.mention_filters({}).fold  # folded until the form says otherwise
    filters = views.mention_filters(
        {"language": " ES-mx ", "stance": "Against", "min_influence": "0.5", "source": "rss"}
    )
    assert filters.errors == ()
    request = views.mentions_request(filters)
    assert list(request.languages) == ["es-MX"] and list(request.stances) == ["against"]
    assert list(request.sources) == ["rss"] and request.min_influence == 0.5
    assert not request.fold_duplicates  # the form was sent without the box ticked
    assert not request.issue_ids and not request.sentiments and request.page_size == 50
    assert filters.described == "language es-MX; source rss; stance against; influence at least 0.5"


def test_several_issues_languages_sentiments_and_stances_at_once() -> None:
    filters = views.mention_filters(
        [
            ("issue", "plastics"),
            ("issue", "coast"),
            ("issues", "oceans, coast  rivers"),
            ("language", "FR, es-mx;de"),
            ("sentiment", "negative"),
            ("sentiment", "Positive"),
            ("stance", "against"),
            ("stance", "favour"),
            ("fold", "on"),
        ]
    )
    assert filters.errors == ()
    request = views.mentions_request(filters)
    assert list(request.issue_ids) == ["plastics", "coast", "oceans", "rivers"]
    assert list(request.languages) == ["fr", "es-MX", "de"]
    assert list(request.sentiments) == ["negative", "positive"]
    assert list(request.stances) == ["against", "favour"]
    assert filters.language_text == "fr, es-MX, de"
    assert filters.described == (
        "issues plastics, coast, oceans, rivers; languages fr, es-MX, de; "
        "sentiments negative, positive; stances against, favour"
    )
    # The live fragment's URL carries the same set.
    again = views.mention_filters(parse_qsl(filters.query(), keep_blank_values=True))
    assert again == filters


def test_more_values_than_the_evaluator_takes_are_refused_on_their_field() -> None:
    many = ", ".join(f"issue-{n}" for n in range(views.MAX_VALUES + 1))
    assert views.mention_filters({"issues": many}).error("issue") == "Choose at most 20 issues"
    tags = ", ".join(f"x{chr(97 + n % 26)}{chr(97 + n // 26)}" for n in range(21))
    assert views.mention_filters({"language": tags}).error("language") == (
        "Enter at most 20 languages"
    )


def test_issue_boxes_tick_the_chosen_and_leave_the_others_to_the_text_field() -> None:
    tracked = [
        listen_pb2.TrackedIssue(issue_id="plastics", name="Plastics treaty"),
        listen_pb2.TrackedIssue(issue_id="coast", name="Coastal talks"),
    ]
    chosen = views.issue_choices([("issue", "plastics"), ("issues", "gone-issue")])
    boxes = views.issue_boxes(tracked, chosen)
    assert [(b.name, b.checked) for b in boxes] == [
        ("Coastal talks", False),
        ("Plastics treaty", True),
    ]
    assert views.other_issues(boxes, chosen) == "gone-issue"


@pytest.mark.parametrize(
    ("typed", "tag"),
    [("es", "es"), ("EN-gb", "en-GB"), ("zh_hant", "zh-Hant"), ("es-419", "es-419")],
)
def test_language_tags_in_their_usual_case(typed: str, tag: str) -> None:
    assert views.language_tag(typed) == tag


def test_a_wrong_filter_names_its_field_and_nothing_is_searched() -> None:
    filters = views.mention_filters(
        {"language": "español!", "sentiment": "angry", "stance": "x", "min_influence": "2"}
    )
    assert [field for field, _ in filters.errors] == [
        "language",
        "sentiment",
        "stance",
        "min_influence",
    ]
    assert filters.error("min_influence") == "Enter an influence from 0 to 1, like 0.5"
    page = views.mentions_page(filters, None)
    assert page.rows == [] and not page.live
    assert views.mention_filters({"min_influence": "abc"}).error("min_influence")


def test_the_evaluators_refusal_goes_on_its_field() -> None:
    filters = views.mention_filters({"issue": "bad id!"})
    refused = views.with_search_error(filters, "issue_ids[0]: must be an id: 1 to 128 …")
    assert refused.error("issue") == "Issue must be an id: 1 to 128 …"
    influence = views.with_search_error(filters, "min_influence must be between 0 and 1")
    assert influence.error("min_influence") == "Influence at least must be between 0 and 1"
    other = views.with_search_error(filters, "page_token is not one this service gave")
    assert other.error("issue") == "Page_token is not one this service gave"


def test_the_query_keeps_every_filter_and_an_unticked_fold() -> None:
    filters = views.mention_filters({"language": "fr", "fold": "off", "issue": "a&b"})
    again = views.mention_filters(parse_qsl(filters.query(), keep_blank_values=True))
    assert again == filters and not again.fold
    assert ("page", "tok") in parse_qsl(filters.query("tok"))
    assert views.mention_filters(parse_qsl(views.mention_filters({}).query())).fold


def test_rows_say_labels_in_words_and_keep_only_safe_links() -> None:
    response = pb.SearchMentionsResponse(total=2, next_page_token="t")
    response.mentions.add(
        issue_id="plastics",
        copies=2,
        mention=listen_pb2.Mention(
            mention_id="m1",
            text="<b>hi</b>",
            url="javascript:alert(1)",
            language="es",
            source="rss",
            source_url="https://news.example/feed",
            stance=listen_pb2.Label(value="against"),
            influence=0.5,
            reach=12000,
        ),
    )
    page = views.mentions_page(views.mention_filters({}), response)
    row = page.rows[0]
    assert (row.sentiment, row.stance, row.influence) == ("unknown", "against", "0.50 of 1")
    assert row.url is None and row.copies == "2 copies" and row.text == "<b>hi</b>"
    assert row.audience == "12,000 people reached"
    assert row.source == "rss · https://news.example/feed"
    assert page.summary == "2 mentions (copies folded into their first)"
    assert page.next_page == "t" and page.live
    older = views.mentions_page(views.mention_filters({"page": "t", "fold": "on"}), response)
    assert not older.live  # an older page stays put


def test_alerts_name_the_hour_and_every_number_with_its_unit() -> None:
    alert = listen_pb2.Alert(
        alert_id="a1",
        issue_id="plastics",
        count=12,
        threshold=7.25,
        baseline_mean=3.14,
        baseline_stddev=1.37,
        baseline_hours=168,
    )
    start = datetime(2026, 12, 2, 5, tzinfo=UTC)
    alert.window_start.FromDatetime(start)
    alert.window_end.FromDatetime(start + timedelta(hours=1))
    alert.top_terms.add(value="treaty", count=5)
    alert.top_sources.add(value="https://news.example/feed", count=1)
    page = views.alerts_page(["plastics"], [alert])
    (row,) = page.rows
    assert row.window == "2026-12-02 05:00 UTC, 1 h"
    assert row.count == "12 mentions"
    assert row.usual == "usually 3.1 mentions an hour (± 1.4) over 7 days"
    assert row.threshold == "alert above 7.2 mentions"
    assert row.top_terms == "treaty (5 mentions)"
    assert row.top_sources == "https://news.example/feed (1 mention)"
    assert page.summary == "1 alert for issue plastics"


def test_a_refused_issue_on_the_alerts_page_says_why_in_the_forms_words() -> None:
    page = views.alerts_refused(
        ["ok", "bad id!"], "issue_ids[1]: must be an id: 1 to 128 ASCII letters"
    )
    assert page.error == "Issue must be an id: 1 to 128 ASCII letters"
    assert page.rows == [] and not page.live
    assert views.alerts_page([], []).live


def test_alerts_of_several_issues() -> None:
    issues, problem = views.alert_issues([("issue", "plastics"), ("issues", "coast, oceans")])
    assert (issues, problem) == (("plastics", "coast", "oceans"), "")
    page = views.alerts_page(issues, [])
    assert page.summary == "0 alerts for issues plastics, coast, oceans"
    assert parse_qsl(page.query()) == [("issue", i) for i in issues]
    many = ",".join(f"i{n}" for n in range(21))
    issues, problem = views.alert_issues({"issues": many})
    assert problem == "Choose at most 20 issues"
    assert views.alerts_refused(issues, problem).error == "Choose at most 20 issues"
