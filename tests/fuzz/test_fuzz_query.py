"""The listener's boolean query language: any string parses to a Query or raises QueryError
(with a position inside the query), in bounded time; a parsed query matches any item in
bounded time."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from legation_core.proto_strategies import SPECIAL_STRINGS, hostile_text, weighted
from legation_listener.domain.query import (
    FIELDS,
    MAX_QUERY_LENGTH,
    Query,
    QueryError,
    QueryItem,
    parse_query,
)
from tests.fuzz.budget import Fuzz
from tests.fuzz.properties import PropertyFailed, bounded, failure, internal_text

WORDS = ["plastic", "traité", "treat*", "e-mail", "l'ONU", "co2", "x", "*", "a*b", "_", "NEARx"]
DIGITS = ["0", "5", "100", "101", "99999999999999999999", "\u00b2", "\u0663", "", "-1", "1.5"]


def _word() -> st.SearchStrategy[str]:
    return weighted(
        (3, st.sampled_from(WORDS)),
        (1, st.text(st.characters(categories=["L", "N", "M", "P", "S"]), min_size=1, max_size=8)),
    )


def _phrase() -> st.SearchStrategy[str]:
    slop = weighted((2, st.just("")), (1, st.sampled_from(DIGITS).map(lambda d: f"~{d}")))
    words = st.lists(_word(), max_size=4).map(" ".join)
    return st.builds(lambda w, s: f'"{w}"{s}', words, slop)


def _field() -> st.SearchStrategy[str]:
    names = st.sampled_from([*FIELDS, "LANG", "title", "http", "x"])
    return st.builds(lambda n, v: f"{n}:{v}", names, weighted((2, _word()), (1, _phrase())))


def _primary() -> st.SearchStrategy[str]:
    return weighted((3, _word()), (1, _phrase()), (1, _field()))


def _expression() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        operator = st.sampled_from([" ", " AND ", " OR ", " and ", " OR NOT ", "  "])
        near = st.sampled_from(DIGITS).map(lambda d: f" NEAR/{d} ")
        return st.one_of(
            st.builds(lambda a, op, b: f"{a}{op}{b}", inner, operator, inner),
            st.builds(lambda a, op, b: f"{a}{op}{b}", inner, near, inner),
            inner.map(lambda e: f"NOT {e}"),
            inner.map(lambda e: f"({e})"),
        )

    return st.recursive(_primary(), extend, max_leaves=12)


def _deep() -> st.SearchStrategy[str]:
    """Nesting far past any sensible depth (parentheses, NOT chains), still short."""
    depth = st.sampled_from([50, 199, 500, 1000, 1999])
    return st.one_of(
        st.builds(lambda n, w: "(" * n + w + ")" * n, depth, _word()),
        st.builds(lambda n, w: "NOT " * n + w, depth, _word()),
        st.builds(lambda n, w: f"{w} " + " OR ".join([w] * n), depth, _word()),
    )


def queries() -> st.SearchStrategy[str]:
    return weighted(
        (4, _expression()),
        (1, _deep()),
        (1, hostile_text()),
        (1, st.lists(st.sampled_from(SPECIAL_STRINGS), max_size=8).map(" ".join)),
    )


def items() -> st.SearchStrategy[QueryItem]:
    text = weighted(
        (3, st.lists(_word(), max_size=30).map(" ".join)),
        (1, st.sampled_from([" ".join(["plastic"] * 5000), "traité " * 2000])),
        (1, hostile_text()),
    )
    return st.builds(
        QueryItem,
        title=text,
        text=text,
        language=st.sampled_from(["en", "fr-CA", "", "\x00"]),
        source=st.sampled_from(["rss", "mastodon", ""]),
        feed=st.sampled_from(["https://news.example.org/feed.xml", "webhook:x", ""]),
        author=text,
        url=st.sampled_from(["https://www.example.org/a", "not a url", "http://[::1"]),
    )


@pytest.mark.fuzz(weight=8)
def test_any_string_parses_or_fails_with_a_position(fuzz: Fuzz) -> None:
    @fuzz.given(queries(), items())
    def parses(query: str, item: QueryItem) -> None:
        try:
            parsed = bounded(lambda: parse_query(query), what="parse_query")
        except QueryError as error:
            if not 0 <= error.position <= max(len(query), MAX_QUERY_LENGTH):
                raise failure("bad position", f"{error} (query of {len(query)})") from None
            leaked = internal_text(str(error), [query])
            if leaked is not None:
                raise failure("internal text", f"QueryError {leaked!r}") from None
            return
        except PropertyFailed:
            raise
        except Exception as error:
            kind = f"{type(error).__name__} escaped"
            raise failure(kind, f"parse_query: {str(error)[:300]}") from error
        assert isinstance(parsed, Query)
        matched = bounded(lambda: parsed.matches(item), what="Query.matches")
        assert isinstance(matched, list)

    parses()
