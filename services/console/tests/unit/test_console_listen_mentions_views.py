"""The mentions and alerts pages' view models."""

from __future__ import annotations

from legation.evaluator.v1 import evaluator_service_pb2 as pb
from legation.events.v1 import listen_pb2
from legation_console.domain.views import listen as views


def test_filters_from_the_query_string_become_the_request() -> None:
    assert views.mention_filters({}).fold  # folded until the form says otherwise
    filters = views.mention_filters({"language": " es ", "stance": "against", "min_influence": "2"})
    request = views.mentions_request(filters)
    assert list(request.languages) == ["es"] and list(request.stances) == ["against"]
    assert request.min_influence == 1.0 and not request.fold_duplicates
    assert not request.issue_ids and request.page_size == 50


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
            stance=listen_pb2.Label(value="against"),
            influence=0.5,
        ),
    )
    page = views.mentions_page(views.mention_filters({}), response)
    row = page.rows[0]
    assert (row.sentiment, row.stance, row.influence) == ("unknown", "against", "0.50")
    assert row.url is None and row.copies == "2 copies" and row.text == "<b>hi</b>"
    assert page.summary == "2 mentions" and page.next_page == "t"


def test_alert_rows_name_the_hour_and_the_top_terms() -> None:
    alert = listen_pb2.Alert(issue_id="plastics", count=12, threshold=7.25)
    alert.top_terms.add(value="treaty", count=5)
    (row,) = views.alert_rows([alert])
    assert row.count == "12 mentions" and row.threshold == "above 7.2"
    assert row.top_terms == "treaty (5)"
