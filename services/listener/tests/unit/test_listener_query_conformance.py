"""The query language against the operators of Brandwatch, Talkwalker, Meltwater and Sprout
Social: every row of the README's conformance table, and the semantics behind them."""

from __future__ import annotations

import itertools
from pathlib import Path

import grpc
import pytest
from listener_fakes import GOOD, item, make_listener

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as pb
from legation_core.testing import call
from legation_core.topic_names import LISTEN_FEED_CURSORS_V1, LISTEN_MENTIONS_V1
from legation_listener.domain.query import (
    LEADING_MARKS,
    REFUSED_FIELDS,
    RESERVED_CHARACTERS,
    QueryError,
    QueryItem,
    parse_query,
)
from legation_listener.domain.query_conformance import (
    BRANDWATCH,
    CONFORMANCE_ITEM,
    MELTWATER,
    OPERATORS,
    SPROUT,
    TALKWALKER,
    Operator,
    conformance_markdown,
    refusal,
    with_table,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def hits(query: str, item_: QueryItem = CONFORMANCE_ITEM) -> list[str]:
    return parse_query(query).matches(item_)


def text(body: str, title: str = "") -> QueryItem:
    return QueryItem(title=title, text=body)


# ------------------------------------------------------------------------ the table


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda o: o.written)
def test_every_operator_of_the_table_does_what_the_table_says(operator: Operator) -> None:
    if operator.supported:
        assert hits(operator.example), operator.example
        assert hits(operator.counter) == [], operator.counter
        return
    with pytest.raises(QueryError) as raised:
        parse_query(operator.example)
    assert raised.value.position == operator.refused_at
    # The README quotes the message this example gets.
    assert f"refused: {raised.value.message}" in conformance_markdown([operator])


def test_the_readme_shows_the_table_as_generated() -> None:
    readme = README.read_text(encoding="utf-8")
    assert with_table(readme) == readme, "run: python -m legation_listener.query_table"
    for operator in OPERATORS:
        assert f"| {operator.written} |" in readme


def test_the_table_covers_every_tool_and_every_refusal() -> None:
    tools = {tool for operator in OPERATORS for tool in operator.tools}
    assert tools == {BRANDWATCH, TALKWALKER, MELTWATER, SPROUT}
    refused = " ".join(o.example for o in OPERATORS if not o.supported).casefold()
    for name in REFUSED_FIELDS:
        assert f"{name}:" in refused, name
    assert all(refusal(o) is None for o in OPERATORS if o.supported)
    assert all(refusal(o) is not None for o in OPERATORS if not o.supported)


@pytest.mark.parametrize(
    ("query", "position"),
    [(f"treaty a{char}b", 8) for char in RESERVED_CHARACTERS]
    + [(f'treaty "plastic a{char}b"', 17) for char in RESERVED_CHARACTERS]
    + [(f"treaty {mark}cop", 7) for mark in LEADING_MARKS]
    + [(f'treaty {mark}"cop talks"', 7) for mark in LEADING_MARKS],
)
def test_other_tools_symbols_are_refused_where_they_are(query: str, position: int) -> None:
    with pytest.raises(QueryError) as raised:
        parse_query(query)
    assert raised.value.position == position


def test_a_dollar_before_a_digit_is_a_price_not_a_cashtag() -> None:
    assert hits('"$5 billion"', text("a $5 billion fund")) == ["5 billion"]
    with pytest.raises(QueryError, match="cashtag") as raised:
        parse_query("treaty $TWTR")
    assert raised.value.position == 7


def test_refused_queries_used_to_match_their_words() -> None:
    """What "never silently differently" guards against: each of these read as words
    before (``{UN}`` matched "un", ``links:msn.com`` nothing at all...)."""
    for query in ("{Un} treaty", "treaty^2", "!treaty", "links:msn.com treaty", "raw:treaty"):
        try:
            parse_query(query)
        except QueryError:
            continue
        assert query.startswith("{"), query  # only the case-sensitive one parses, and
        assert hits(query) == []  # it does not match the "UN" of the item


# ------------------------------------------------------------------------ proximity

WORDS = ["treaty", "finally", "cap", "plastic", "production", "delegates"]


@pytest.mark.parametrize("distance", range(0, 6))
def test_group_near_is_the_or_of_its_pairs(distance: int) -> None:
    for a, b, c, d in itertools.combinations(WORDS, 4):
        grouped = bool(hits(f"({a} OR {b}) NEAR/{distance} ({c} OR {d})"))
        pairs = any(hits(f"{x} NEAR/{distance} {y}") for x in (a, b) for y in (c, d))
        assert grouped == pairs, (a, b, c, d, distance)


@pytest.mark.parametrize("distance", range(0, 6))
def test_ordered_near_is_near_with_the_left_side_first(distance: int) -> None:
    for a, b in itertools.permutations(WORDS, 2):
        forward = bool(hits(f"{a} NEAR/{distance}f {b}"))
        assert forward == bool(hits(f"{a} ONEAR/{distance} {b}"))
        either = forward or bool(hits(f"{b} NEAR/{distance}f {a}"))
        assert either == bool(hits(f"{a} NEAR/{distance} {b}"))
    # "treaty finally cap plastic production": treaty comes first.
    assert hits("treaty NEAR/3f production") and not hits("production NEAR/3f treaty")


@pytest.mark.parametrize("distance", range(0, 5))
def test_tilde_after_a_group_is_phrase_proximity_for_words(distance: int) -> None:
    for a, b in itertools.permutations(WORDS, 2):
        assert bool(hits(f"({a} {b})~{distance}")) == bool(hits(f'"{a} {b}"~{distance}'))
        assert bool(hits(f"({a} AND {b})~{distance}")) == bool(hits(f"{a} NEAR/{distance} {b}"))
    for a, b, c in itertools.combinations(WORDS, 3):
        assert bool(hits(f"({a} {b} {c})~{distance}")) == bool(hits(f'"{a} {b} {c}"~{distance}'))


def test_proximity_sides_can_be_phrases_groups_and_proximities() -> None:
    item_ = text("the plastics treaty text was agreed at last after the talks")
    assert hits('("plastics treaty" OR accord) NEAR/4 agreed', item_)
    assert not hits('("plastics treaty" OR accord) NEAR/1 agreed', item_)
    # The inner proximity's span (plastics..text) is the side: "was" sits between.
    assert hits("((plastics OR bottles) NEAR/1 text) NEAR/1 agreed", item_)
    assert not hits("((plastics OR bottles) NEAR/1 text) NEAR/0 agreed", item_)
    assert hits('(("plastics treaty" OR accord) AND (agreed OR signed) AND talks)~6', item_)
    assert not hits('(("plastics treaty" OR accord) AND (agreed OR signed) AND talks)~5', item_)
    assert hits("(plastics OR bottles) NEAR/2f (text OR agreed)", item_)
    assert not hits("(text OR agreed) NEAR/2f (plastics OR bottles)", item_)
    # Title and text stay apart, with groups too.
    split = QueryItem(title="Plastics", text="treaty")
    assert not hits("(plastics OR bottles) NEAR/5 (treaty OR accord)", split)


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ("treaty NEAR/3 (pact AND cop)", "NEAR joins words, phrases and groups", 20),
        ("treaty NEAR/3 (pact OR NOT cop)", "not NOT", 23),
        ("treaty NEAR/3 lang:en", "not lang:", 14),
        ("#cop29 NEAR/3 treaty", "not a hashtag", 0),
        ("(treaty pact)~3 NEAR/2 cop", "", -1),  # valid: a window is a side
        ("(treaty OR pact)~3", "'~' after a group needs two or more parts joined by AND", 16),
        ("(treaty)~3", "joined by AND", 8),
        ("(treaty lang:en)~3", "'~' joins words, phrases and groups of them", 8),
        ("(treaty pact)~", "'~' needs a number of words", 13),
        ("(treaty pact)~500", "distance 500 is above the maximum 100", 14),
        ("treaty NEAR/3x pact", "NEAR needs a distance", 7),
        ("treaty ONEAR/3f pact", "ONEAR needs a distance", 7),
        ("treaty NEAR/3f cap NEAR/1 production", "NEAR cannot be chained", 19),
        ("treaty near/3 production", "operators are upper case", 7),
        ("treaty Onear/3 production", "operators are upper case", 7),
    ],
)
def test_proximity_errors_name_the_problem_and_its_position(
    query: str, message: str, position: int
) -> None:
    if position < 0:
        parse_query(query)
        return
    with pytest.raises(QueryError) as raised:
        parse_query(query)
    assert message in raised.value.message
    assert raised.value.position == position


# ------------------------------------------------------------------------ words


def test_exclusion_with_a_minus_is_not() -> None:
    for a, b in itertools.product(
        ["treaty", "geneva", '"plastic production"', "lang:fr"],
        [
            "nairobi",
            "lima",
            "(geneva OR nairobi)",
            "site:example.com",
            '"cap plastic"',
        ],
    ):
        assert hits(f"talks {a} -{b}") == hits(f"talks {a} NOT {b}"), (a, b)
    assert parse_query("treaty -geneva").root == parse_query("treaty NOT geneva").root
    # A hyphen inside a word, or followed by a space, is not an exclusion.
    assert hits("e-mail", text("an e-mail")) == ["e mail"]
    with pytest.raises(QueryError, match="has no letters or digits"):
        parse_query("treaty - geneva")


@pytest.mark.parametrize(
    ("query", "body", "expected"),
    [
        ("customi?e", "customise", True),
        ("customi?e", "customize", True),
        ("customi?e", "customie", False),  # ? is one character, never none
        ("customi?e", "customiise", False),
        ("bel??ve", "believe", True),
        ("colo?r", "color", False),
        ("organi?ation*", "organisations", True),
        ("trait?", "traité", True),  # unaccented: the accent-stripped form
        ("trait?s", "traités", True),
        ("traité?", "traités", True),
        ("traité?", "traites", False),  # accented: the accents are needed
        ("wom?n", "WOMEN", True),
        ('"customi?e the accord"', "customize the accord", True),
        ("#cop2?", "#cop29", True),
        ("#cop2?", "#cop2", False),
    ],
)
def test_question_mark_is_exactly_one_character(query: str, body: str, expected: bool) -> None:
    assert bool(hits(query, text(body))) is expected


@pytest.mark.parametrize(
    ("query", "body", "expected"),
    [
        ("{UN}", "the UN said", True),
        ("{UN}", "the un said", False),
        ("{UN}", "the Un said", False),
        ("{Un}", "the Un said", True),
        ("{Traite}", "le Traité", True),  # accents as for any word
        ("{Traité}", "le Traite", False),
        ("{Traité}", "le traité", False),
        ("{Tr?ité}", "le Traité", True),
        ("{Treat*}", "Treaties signed", True),
        ("{Treat*}", "treaties signed", False),
        ('{"Le Traité"}', "sur Le Traité", True),
        ('{"Le Traité"}', "sur le Traité", False),
        ("{UN} NEAR/1 treaty", "UN draft treaty", True),
        ("{UN} NEAR/1 treaty", "un draft treaty", False),
        ("{ÉTATS}", "les ÉTATS unis", True),
        ("{STRASSE}", "die STRASSE", True),
        ("{STRASSE}", "die Strasse", False),
    ],
)
def test_braces_make_a_term_case_sensitive(query: str, body: str, expected: bool) -> None:
    assert bool(hits(query, text(body))) is expected


def test_case_sensitive_terms_are_labelled_as_written() -> None:
    assert hits('{UN} {"Le Traité"} treaty') == ["{UN}", '{"Le Traité"}', "treaty"]


# ------------------------------------------------------------------------ fields


def test_title_restricts_to_the_title() -> None:
    assert hits("title:nairobi") == ["title:nairobi"]
    assert hits("title:production") == []
    assert hits('title:"treaty talks"') == ["title:treaty talks"]
    assert hits("title:(production OR talks)") == ["title:talks"]
    assert hits("title:{Treaty}") == ["title:{Treaty}"]
    assert hits("title:{treaty}") == []
    # The same word outside title: is looked for in both.
    assert hits("production title:treaty") == ["production", "title:treaty"]
    assert hits("treaty -title:geneva") == ["treaty"]
    assert hits("treaty -title:nairobi") == []
    for query, position in [
        ("title:lang:en", 6),
        ("title:#cop29", 6),
        ("title:(treaty OR site:example.com)", 17),
        ("treaty title: nairobi", 13),
    ]:
        with pytest.raises(QueryError) as raised:
            parse_query(query)
        assert raised.value.position == position, query


@pytest.mark.parametrize(
    ("query", "url", "expected"),
    [
        ("site:example.com", "https://www.reports.example.com/x", True),
        ("site:reports.example.com", "https://reports.example.com/x", True),
        ('site:"http://www.example.com"', "https://news.example.com/x", True),
        ("site:ample.com", "https://example.com/x", False),
        ("url:example.com/news", "https://www.example.com/news/2026/1", True),
        ("url:example.com/news", "http://example.com/news", True),
        ("url:example.com/news", "https://example.com/newsletter", False),
        ("url:example.com/news", "https://eu.example.com/news/1", False),  # the host exactly
        ("url:https://Example.com/news/", "https://example.com/news?id=3", True),
        ("url:example.com/news?id=3", "https://example.com/news?id=3", True),
        ("url:example.com/news?id=3", "https://example.com/news?id=4", False),
    ],
)
def test_site_and_url(query: str, url: str, expected: bool) -> None:
    item_ = QueryItem(title="treaty", text="", url=url)
    assert bool(hits(f"treaty {query}", item_)) is expected


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ("treaty site:example.com/news", "site: takes a site", 12),
        ("treaty domain:example.com/news", "write url:example.com/news", 14),
        ("treaty url:/news", "url: needs a host", 11),
        ("treaty url:exa*.com", "wildcards are not allowed here", 14),
        ("treaty site:", "site: needs a value", 12),
        ("treaty LINKS:msn.com", "LINKS: is not supported", 7),
    ],
)
def test_field_errors(query: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as raised:
        parse_query(query)
    assert message in raised.value.message
    assert raised.value.position == position


# ------------------------------------------------------------------------ entities


@pytest.mark.parametrize(
    ("query", "body", "expected"),
    [
        ("#cop29", "see #COP29 now", True),
        ("#cop29", "see COP29 now", False),  # the word is not the hashtag
        ("cop29", "see #COP29 now", True),  # but the word finds the hashtag's word
        ("#cop29", "see #cop29_live", False),
        ("#cop*", "see #cop29_live", True),
        ("#traité", "le #Traité", True),
        ("#traite", "le #Traité", True),
        ("#traité", "le #Traite", False),
        ("#cop29", "mail me at x#cop29", False),
        ("@unep", "thanks @UNEP", True),
        ("@unep", "thanks @unep@mastodon.social", True),
        ("@unep", "thanks unep", False),
        ("@unep", "write to info@unep.org", False),
        ("@unep@mastodon.social", "thanks @unep@mastodon.social", True),
        ("@unep@mastodon.social", "thanks @unep", False),
        ("@unep@mastodon.social", "thanks @unep@other.social", False),
        ("@carol.bsky.social", "hi @carol.bsky.social!", True),
        ("https://example.org/news", "read https://www.example.org/news/1.", True),
        ("https://example.org/news", "read http://EXAMPLE.org/news", True),
        ("https://example.org/news", "read https://example.org/newsletter", False),
        ("https://example.org/news", "read example.org/news", False),  # not a link
        ("https://example.org/news", "read https example org news", False),
    ],
)
def test_hashtags_mentions_and_links_are_matched_as_such(
    query: str, body: str, expected: bool
) -> None:
    assert bool(hits(query, text(body))) is expected


def test_entities_are_labelled_and_can_be_negated() -> None:
    assert hits("#COP29 OR @UNEP OR https://news.example.org/plastics") == [
        "#cop29",
        "@unep",
        "https://news.example.org/plastics",
    ]
    assert hits("treaty -#cop29") == []
    assert hits("treaty -#cop30 -@nobody") == ["treaty"]
    with pytest.raises(QueryError, match="needs at least one word"):
        parse_query("-#cop29")


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ("treaty #", "is not a hashtag", 7),
        ("treaty #2026", "is not a hashtag", 7),
        ("treaty #cop-29", "is not a hashtag", 7),
        ("treaty @", "is not a mention", 7),
        ("treaty @al*", "is not a mention", 7),
        ("treaty http://", "is not a link", 7),
        ('"the #cop29 talks"', "a hashtag inside a phrase", 5),
        ('"thanks @unep"', "a mention inside a phrase", 8),
        ('"see https://x.org"', "a link inside a phrase", 5),
        ("{#cop29}", "hashtags, mentions and links are never cased", 0),
        ("{UN", "unclosed '{'", 0),
        ("{UN}x", "unexpected 'x' after '}'", 4),
        ('{"UN"', "unclosed '{'", 0),
    ],
)
def test_entity_and_brace_errors(query: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as raised:
        parse_query(query)
    assert message in raised.value.message
    assert raised.value.position == position


# ------------------------------------------------------------------------ the service


def test_a_refused_operator_is_invalid_argument_with_its_position() -> None:
    listener = make_listener({})
    _, context = call(
        listener.api.TrackIssue,
        pb.TrackIssueRequest(name="T", query="treaty authorGender:female", feeds=[GOOD]),
    )
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details == (
        "query: authorGender: is not supported (items carry no author gender) at position 7"
    )
    _, context = call(listener.api.PreviewQuery, pb.PreviewQueryRequest(query="treaty NEAR pact"))
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.details.startswith("query: NEAR needs a distance in words")
    assert context.details.endswith("at position 7")
    assert listener.kafka.records == []


def test_issues_and_previews_match_with_the_new_operators() -> None:
    listener = make_listener(
        {GOOD: [item("a", "Plastic bottles treaty #cop29"), item("b", "plastic treaty")]}
    )
    query = "(plastic OR packaging) NEAR/2f (treaty OR accord) #cop29"
    issue, _ = call(
        listener.api.TrackIssue, pb.TrackIssueRequest(name="T", query=query, feeds=[GOOD])
    )
    assert issue.query == query
    assert listener.poller.poll().mentions_emitted == 1
    [(_, envelope)] = listener.kafka.on(LISTEN_MENTIONS_V1)
    assert envelope.mention.item_id == "a"
    assert list(envelope.mention.matched_keywords) == ["plastic", "treaty", "#cop29"]
    response, context = call(
        listener.api.PreviewQuery, pb.PreviewQueryRequest(query="{Plastic} -#cop29")
    )
    assert context.code is None
    assert [m.item_id for m in response.matches] == []  # "a" has the tag, "b" no capital
    response, _ = call(listener.api.PreviewQuery, pb.PreviewQueryRequest(query="plastic -#cop29"))
    assert [m.item_id for m in response.matches] == ["b"]


def test_a_stored_query_the_parser_now_refuses_fails_its_reads_and_skips_nothing() -> None:
    """An issue stored before an operator was refused: its sources' reads fail with the
    query error, the cursor stays, and once the query is fixed the items are matched."""
    listener = make_listener({GOOD: [item("a", "Treaty talks"), item("b", "Football")]})
    listener.state.save_issue(
        listen_pb2.TrackedIssue(
            issue_id="t", name="t", query="treaty links:msn.com", feeds=[GOOD], active=True
        )
    )
    result = listener.poller.poll()
    assert result.mentions_emitted == 0
    [failure] = result.failed_feeds
    assert failure.startswith(f"{GOOD}: links: is not supported")
    assert failure.endswith("at position 7")
    assert (
        listener.kafka.on(LISTEN_MENTIONS_V1) == []
        and listener.kafka.on(LISTEN_FEED_CURSORS_V1) == []
    )
    update = pb.UpdateIssueRequest(issue_id="t", query="treaty")
    update.update_mask.paths.append("query")
    _, context = call(listener.api.UpdateIssue, update)
    assert context.code is None
    assert listener.poller.poll().mentions_emitted == 1
    assert [envelope.mention.item_id for _, envelope in listener.kafka.on(LISTEN_MENTIONS_V1)] == [
        "a"
    ]
