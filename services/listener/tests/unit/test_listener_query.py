"""The boolean query language: grammar, errors with positions, and matching."""

from __future__ import annotations

import itertools

import pytest

from legation_listener.domain.query import (
    And,
    Near,
    Not,
    Or,
    QueryError,
    QueryItem,
    Terms,
    fold,
    parse_query,
    strip_accents,
)

ITEM = QueryItem(
    title="Plastics treaty talks resume in Nairobi",
    text="Will the global treaty finally cap plastic production? Le Traité sur les plastiques "
    "avance. Negotiators met on Monday.",
    language="en-GB",
    source="rss",
    feed="https://feeds.news.example.org/world.xml",
    author="Jane Q. Doe",
    url="https://www.reports.example.com/2026/11/treaty",
)


def hits(query: str, item: QueryItem = ITEM) -> list[str]:
    return parse_query(query).matches(item)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # words, implicit AND, case-insensitivity
        ("treaty", True),
        ("TREATY nairobi", True),
        ("treaty geneva", False),
        ("treaty AND geneva", False),
        ("treaty OR geneva", True),
        ("geneva OR lima", False),
        # NOT and precedence: AND binds tighter than OR
        ("treaty NOT geneva", True),
        ("treaty AND NOT nairobi", False),
        ("geneva nairobi OR treaty", True),
        ("geneva (nairobi OR treaty)", False),
        ("NOT (geneva OR lima) treaty", True),
        ("NOT NOT treaty", True),
        # whole words only
        ("treat", False),
        ("plastic", True),
        # wildcards
        ("treat*", True),
        ("negotiat*", True),
        ("nair* AND produc*", True),
        ("genev*", False),
        # phrases: adjacent, in order, across punctuation
        ('"plastics treaty"', True),
        ('"treaty plastics"', False),
        ('"cap plastic production"', True),
        ('"plastic production le traité"', True),
        ('"talks nairobi"', False),
        ('"plastic* treat*"', True),
        # proximity
        ('"treaty production"~3', True),
        ('"treaty production"~2', False),
        ('"production treaty"~3', True),
        ('"global cap production"~3', True),
        ('"global cap production"~2', False),
        ("treaty NEAR/3 production", True),
        ("production NEAR/3 treaty", True),
        ("treaty NEAR/2 production", False),
        ('"global treaty" NEAR/3 production', True),
        ('"global treaty" NEAR/2 production', False),
        ("treaty NEAR/0 talks", True),
        # title and text are separate sections
        ('"nairobi will"', False),
        ("nairobi NEAR/5 will", False),
        # accents: unaccented query words ignore accents, accented ones need them
        ("traite", True),
        ("TRAITÉ", True),
        ("traité", True),
        ("plastiqués", False),
        # fields
        ("lang:en treaty", True),
        ("lang:en-gb treaty", True),
        ("lang:fr treaty", False),
        ("NOT lang:fr treaty", True),
        ("source:rss treaty", True),
        ("source:example.org treaty", True),
        ("source:news.example.org treaty", True),
        ("source:other.org treaty", False),
        ('source:"https://feeds.news.example.org/world.xml" treaty', True),
        ("domain:example.com treaty", True),
        ("domain:reports.example.com treaty", True),
        ("domain:www.reports.example.com treaty", True),
        ("domain:example.org treaty", False),
        ("domain:ample.com treaty", False),
        ("author:doe treaty", True),
        ('author:"jane q doe" treaty', True),
        ('author:"doe jane" treaty', False),
        ("author:ja* treaty", True),
        ("author:smith treaty", False),
        ("(lang:fr OR domain:example.com) AND treaty", True),
    ],
)
def test_matching(query: str, expected: bool) -> None:
    assert bool(hits(query)) is expected, query


def test_matched_terms_are_the_positive_terms_found_in_query_order() -> None:
    assert hits('"plastics treaty" OR nairobi OR geneva') == ["plastics treaty", "nairobi"]
    assert hits("treat* NOT geneva") == ["treat*"]
    assert hits('"treaty production"~3 lang:en') == ['"treaty production"~3']
    assert hits("treaty NEAR/3 production") == ["treaty", "production"]
    assert hits("(treaty OR treaty) traité") == ["treaty", "traité"]
    # A negated term never counts as matched, even when found in an OR branch elsewhere.
    assert hits("nairobi OR NOT geneva") == ["nairobi"]
    assert hits("geneva") == []


def test_normalisation_is_nfkc_and_casefold() -> None:
    assert fold("STRASSE ﬁnance Ⅻ") == "strasse finance xii"
    assert fold("Straße") == "strasse"
    assert strip_accents("Traité Ñandú") == "Traite Nandu"
    item = QueryItem(title="Die Straße", text="ﬁnance ministers and a decomposed cafe\u0301")
    assert hits("strasse", item) == ["strasse"]
    assert hits("finance", item) == ["finance"]
    assert hits("café", item) == ["café"]
    assert hits("cafe", item) == ["cafe"]


def test_words_split_like_the_text() -> None:
    item = QueryItem(title="The e-mail from l'ONU about COP29", text="")
    assert hits("e-mail", item) == ["e mail"]
    assert hits("l'onu", item) == ["l onu"]
    # A hashtag matches hashtags only ("COP29" here is a word; see the conformance tests).
    assert hits("#COP29", item) == []
    assert hits("cop29", item) == ["cop29"]
    assert hits("email", item) == []


def test_tree_shape_and_precedence() -> None:
    root = parse_query("a b OR NOT c d NEAR/2 e").root
    assert isinstance(root, Or)
    left, right = root.children
    assert isinstance(left, And) and len(left.children) == 2
    assert isinstance(right, And)
    first, second = right.children
    assert isinstance(first, Not) and isinstance(first.child, Terms)
    assert isinstance(second, Near) and second.distance == 2
    # Operators are upper case; lower-case "and" / "or" are words.
    lower = parse_query("war and peace").root
    assert isinstance(lower, And) and len(lower.children) == 3


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ("", "query is empty", 0),
        ("   ", "query is empty", 0),
        ("(treaty OR pact) AND NOT cop)", "unexpected ')'", 28),
        ("plastics treaty)", "unexpected ')'", 15),
        ("(treaty OR pact", "unclosed '('", 0),
        ("treaty AND", "expected a word, a phrase, a field or '(' but the query ends", 10),
        ("AND treaty", "unexpected 'AND'", 0),
        ("treaty OR OR pact", "unexpected 'OR'", 10),
        ("treaty ()", "empty parentheses", 8),
        ('treaty "cap production', "unterminated phrase", 7),
        ('"a b"~ c', "'~' needs a number", 5),
        ('"a b"x', "unexpected 'x' after a phrase", 5),
        ("treaty~2", "'~' is only allowed right after a quoted phrase", 6),
        ("tre*aty", "only a trailing '*' is supported", 3),
        ("-*", "'*' must follow a letter or digit", 1),
        ("!!!", "'!!!' has no letters or digits", 0),
        ('treaty ""', "empty phrase", 7),
        ("treaty NEAR pact", "NEAR needs a distance", 7),
        ("treaty NEAR/x pact", "NEAR needs a distance", 7),
        ("treaty NEAR/500 pact", "distance 500 is above the maximum 100", 12),
        # A superscript digit passed str.isdigit() and was a ValueError from int().
        ('"a b"~²', "'~' needs a number", 5),
        ("treaty NEAR/² pact", "NEAR needs a distance", 7),
        ('"a b"~' + "9" * 3000, "distance 999999999999… is above the maximum 100", 6),
        ("a NEAR/" + "0" * 3000 + "101 b", "distance 101 is above the maximum 100", 7),
        ("treaty NEAR/3 (pact AND cop)", "NEAR joins words, phrases and groups of them", 20),
        ("a NEAR/3 b NEAR/3 c", "NEAR cannot be chained", 11),
        ("lagn:fr treaty", "unknown field 'lagn'", 0),
        ("treaty lang:", "lang: needs a value", 12),
        ("domain:exa* treaty", "wildcards are not allowed here", 10),
        ('lang:"" treaty', "lang: needs a value", 5),
        ("NOT treaty", "needs at least one word or phrase that is not negated", 0),
        ("lang:fr", "needs at least one word or phrase that is not negated", 0),
    ],
)
def test_malformed_queries_name_the_problem_and_its_position(
    query: str, message: str, position: int
) -> None:
    with pytest.raises(QueryError) as raised:
        parse_query(query)
    assert message in raised.value.message
    assert raised.value.position == position
    assert str(raised.value).endswith(f"at position {position}")


def test_links_are_links_and_times_are_words_not_fields() -> None:
    item = QueryItem(title="Read https://x.example/a at 10:30", text="")
    assert hits("https://x.example/a", item) == ["https://x.example/a"]
    assert hits("10:30", item) == ["10 30"]
    # A link is matched as a link, never as the words it is made of.
    words = QueryItem(title="Read https x example a at 10:30", text="")
    assert hits("https://x.example/a", words) == []


# Property-style checks without hypothesis: every combination of a small vocabulary.
VOCABULARY = ["treaty", "geneva", '"plastics treaty"', "lang:fr", "treat*"]


@pytest.mark.parametrize(
    ("a", "b"), list(itertools.product(VOCABULARY, repeat=2)), ids=lambda v: str(v)
)
def test_boolean_algebra_holds(a: str, b: str) -> None:
    def m(query: str) -> bool:
        # A query needs a positive term: "treaty OR" keeps every case well-formed while
        # leaving the truth of the sub-expression observable through "talks".
        return bool(parse_query(f"talks ({query})").matches(ITEM))

    assert m(f"{a} AND {b}") == (m(a) and m(b))
    assert m(f"{a} {b}") == m(f"{a} AND {b}")
    assert m(f"{a} OR {b}") == (m(a) or m(b))
    assert m(f"{a} AND NOT {b}") == (m(a) and not m(b))
    assert m(f"NOT ({a} OR {b})") == m(f"NOT {a} AND NOT {b}")
    assert m(f"{a} OR {b}") == m(f"{b} OR {a}")


@pytest.mark.parametrize("distance", range(0, 8))
def test_near_is_symmetric_and_agrees_with_two_word_proximity(distance: int) -> None:
    for left, right in itertools.combinations(["treaty", "cap", "production", "global"], 2):
        forward = bool(hits(f"{left} NEAR/{distance} {right}"))
        assert forward == bool(hits(f"{right} NEAR/{distance} {left}"))
        assert forward == bool(hits(f'"{left} {right}"~{distance}'))
    # Growing the distance never loses a match.
    if distance:
        assert bool(hits(f"treaty NEAR/{distance - 1} production")) <= bool(
            hits(f"treaty NEAR/{distance} production")
        )


def test_parsing_is_cached_and_whitespace_insensitive() -> None:
    assert parse_query("treaty") is parse_query("treaty")
    assert parse_query("  (treaty  OR pact) ").root == parse_query("(treaty OR pact)").root
