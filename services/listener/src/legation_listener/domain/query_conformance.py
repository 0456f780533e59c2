"""What the query language does with each operator of the listening tools analysts come
from (Brandwatch, Talkwalker, Meltwater, Sprout Social): the one table the listener's
README shows (:func:`conformance_markdown`) and the conformance test runs, row by row,
against :data:`CONFORMANCE_ITEM` (no I/O).

A supported row's ``example`` matches the item and its ``counter`` (the same operator)
does not; a refused row's ``example`` is refused with a :class:`~.query.QueryError` at
``refused_at``, whose message the README quotes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from legation_listener.domain.query import QueryError, QueryItem, parse_query

BRANDWATCH = "Brandwatch"
TALKWALKER = "Talkwalker"
MELTWATER = "Meltwater"
SPROUT = "Sprout Social"

CONFORMANCE_ITEM = QueryItem(
    title="Plastics Treaty talks resume in Nairobi",
    text=(
        "Will the UN treaty finally cap plastic production? Delegates want to customise the"
        " accord. Le Traité sur les plastiques avance. #PlasticsTreaty #cop29 cc @unep"
        " @alice@mastodon.social read https://news.example.org/plastics/2026-talks now."
    ),
    language="en-GB",
    source="rss",
    feed="https://feeds.news.example.org/world.xml",
    author="Jane Q. Doe",
    url="https://www.reports.example.com/2026/11/treaty",
)
"""The item every row of :data:`OPERATORS` is tried on."""


@dataclass(frozen=True)
class Operator:
    """One operator as the tools write it, where it comes from, and what Legation does."""

    written: str
    """How the tools write it (Markdown)."""
    tools: tuple[str, ...]
    """The tools documenting it (empty: Legation's own way of writing it)."""
    example: str
    legation: str = ""
    """Supported: what it matches here. Refused: empty (the error message says why)."""
    counter: str = ""
    """Supported: a query with the same operator that does not match the item."""
    refused_at: int | None = None
    """Refused: the position the error names."""

    @property
    def supported(self) -> bool:
        return self.refused_at is None


OPERATORS: tuple[Operator, ...] = (
    # ------------------------------------------------------------------ boolean logic
    Operator(
        "`AND`",
        (BRANDWATCH, TALKWALKER, MELTWATER),
        "treaty AND nairobi",
        "both sides (upper case; two terms side by side are joined by AND too)",
        counter="treaty AND geneva",
    ),
    Operator(
        "`OR`",
        (BRANDWATCH, TALKWALKER, MELTWATER),
        "geneva OR nairobi",
        "either side (upper case; AND binds tighter)",
        counter="geneva OR lima",
    ),
    Operator(
        "`NOT`, `AND NOT`",
        (BRANDWATCH, TALKWALKER, MELTWATER),
        "treaty AND NOT geneva",
        "excludes what follows (binds tighter than AND)",
        counter="treaty AND NOT nairobi",
    ),
    Operator(
        '`-term`, `-"phrase"`, `-(group)`, `-field:`',
        (BRANDWATCH, TALKWALKER),
        'treaty -geneva -"plastic bags" -site:other.org',
        "NOT, written against what it excludes (a '-' followed by a space is not an operator)",
        counter="treaty -nairobi",
    ),
    Operator(
        "`( )`",
        (BRANDWATCH, TALKWALKER, MELTWATER),
        "(geneva OR nairobi) AND treaty",
        "groups",
        counter="(geneva OR lima) AND treaty",
    ),
    # ------------------------------------------------------------------ words
    Operator(
        '`"phrase"`',
        (BRANDWATCH, TALKWALKER, MELTWATER, SPROUT),
        '"plastic production"',
        "the words next to each other, in order (punctuation between them ignored)",
        counter='"production plastic"',
    ),
    Operator(
        "`term*` (at the end of a word)",
        (BRANDWATCH, TALKWALKER, MELTWATER),
        "nairob* treaty",
        "any word starting with the letters before '*'",
        counter="genev* treaty",
    ),
    Operator(
        "`te?m`",
        (BRANDWATCH, TALKWALKER),
        "customi?e",
        "one character, whatever it is, in place of each '?' (never the first)",
        counter="customi?",
    ),
    Operator(
        '`{Term}`, `{"A Phrase"}`',
        (BRANDWATCH,),
        '{UN} {"Le Traité"}',
        "case-sensitive: the word as written, capitals included (accents as for any word)",
        counter="{Un} treaty",
    ),
    # ------------------------------------------------------------------ proximity
    Operator(
        '`"a b"~n`',
        (BRANDWATCH,),
        '"treaty production"~3',
        "all the words in any order, at most n other words among them",
        counter='"treaty production"~2',
    ),
    Operator(
        "`(a b)~n`, `(group AND group)~n`",
        (BRANDWATCH,),
        "((treaty OR accord) AND (production OR waste))~3",
        "an occurrence of every part, at most n words among them that belong to none",
        counter="((treaty OR accord) AND (production OR waste))~2",
    ),
    Operator(
        "`NEAR/n`",
        (BRANDWATCH, MELTWATER),
        "treaty NEAR/3 production",
        "both sides, either order, at most n words between them",
        counter="treaty NEAR/2 production",
    ),
    Operator(
        "`(a OR b) NEAR/n (c OR d)`",
        (BRANDWATCH, MELTWATER),
        "(plastic OR plastics) NEAR/1 (production OR waste)",
        "any word or phrase of one group near any of the other",
        counter="(plastic OR plastics) NEAR/1 (accord OR waste)",
    ),
    Operator(
        "`(x NEAR/n y) NEAR/m z`",
        (BRANDWATCH,),
        "((plastic OR bottles) NEAR/0 production) NEAR/3 treaty",
        "a proximity in parentheses is itself a side (its whole span)",
        counter="((plastic OR bottles) NEAR/0 production) NEAR/1 treaty",
    ),
    Operator(
        "`NEAR/nf`",
        (BRANDWATCH,),
        "treaty NEAR/3f production",
        "as NEAR/n, the left side first",
        counter="production NEAR/3f treaty",
    ),
    Operator(
        "`ONEAR/n`",
        (MELTWATER,),
        "treaty ONEAR/3 production",
        "as NEAR/nf",
        counter="production ONEAR/3 treaty",
    ),
    # ------------------------------------------------------------------ fields and entities
    Operator(
        "`title:`",
        (BRANDWATCH, MELTWATER),
        "title:(treaty AND nairobi)",
        "a word, phrase or group in the title only",
        counter="title:production",
    ),
    Operator(
        "`site:`",
        (BRANDWATCH, TALKWALKER),
        'treaty site:"https://www.reports.example.com"',
        "the host of the item's URL or a parent domain (www. ignored); as domain:",
        counter="treaty site:example.org",
    ),
    Operator(
        "`url:`",
        (BRANDWATCH,),
        "treaty url:reports.example.com/2026",
        "the item's URL or one under it (scheme and www. ignored, the host exactly)",
        counter="treaty url:reports.example.com/2025",
    ),
    Operator(
        "`author:`",
        (BRANDWATCH,),
        'author:"jane q doe" treaty',
        "words or a phrase of the author's name (wildcards allowed)",
        counter="author:smith treaty",
    ),
    Operator(
        "`lang:`",
        (TALKWALKER,),
        "lang:en treaty",
        "the item's language or its primary language (lang:en matches en-GB)",
        counter="lang:fr treaty",
    ),
    Operator(
        "`language:`",
        (BRANDWATCH,),
        "language:en treaty",
        "as lang:",
        counter="language:fr treaty",
    ),
    Operator(
        "`#hashtag`",
        (BRANDWATCH, SPROUT),
        "#cop29 OR #PlasticsTreaty",
        "the hashtag (any case), not the bare word; '*' and '?' allowed",
        counter="#production",
    ),
    Operator(
        "`@mention`",
        (BRANDWATCH, SPROUT),
        "@unep OR @alice",
        "a mention of the account; @alice also @alice@any.instance",
        counter="@delegates",
    ),
    Operator(
        "a link `https://…` (the tools take links in `url:`, `links:`, `site:`)",
        (),
        "https://news.example.org/plastics",
        "a link written in the text: that page or one under it (scheme and www. ignored)",
        counter="https://news.example.org/plast",
    ),
    # ------------------------------------------------------------------ refused
    Operator("`NEAR` without a distance", (MELTWATER,), "treaty NEAR production", refused_at=7),
    Operator("`ONEAR` without a distance", (MELTWATER,), "treaty ONEAR production", refused_at=7),
    Operator(
        "`a NEAR/n b NEAR/n c` without parentheses",
        (BRANDWATCH,),
        "treaty NEAR/3 cap NEAR/3 production",
        refused_at=18,
    ),
    Operator("`(group)^n`, `term^n`", (MELTWATER,), "(treaty OR accord)^9", refused_at=18),
    Operator("`raw:`", (BRANDWATCH,), "raw:Google+", refused_at=0),
    Operator("`links:`", (BRANDWATCH,), "treaty links:msn.com", refused_at=7),
    Operator("`city:`", (BRANDWATCH,), "treaty city:Nairobi", refused_at=7),
    Operator("`county:`", (BRANDWATCH,), "treaty county:Kent", refused_at=7),
    Operator("`state:`", (BRANDWATCH,), "treaty state:Texas", refused_at=7),
    Operator("`country:`", (BRANDWATCH,), "treaty country:ke", refused_at=7),
    Operator("`continent:`", (BRANDWATCH,), "treaty continent:africa", refused_at=7),
    Operator("`authorGender:`", (BRANDWATCH,), "treaty authorGender:female", refused_at=7),
    Operator("`<<<note>>>`", (BRANDWATCH,), "treaty <<<a note>>>", refused_at=7),
    Operator("`ingress:`", (MELTWATER,), "ingress:treaty", refused_at=0),
    Operator(
        "any other `field:`",
        (BRANDWATCH, TALKWALKER, MELTWATER),
        "treaty sentiment:negative",
        refused_at=7,
    ),
    Operator("`te*m` (inside a word)", (MELTWATER,), "tre*aty", refused_at=3),
    Operator(
        "`*term`, `?term` (first in a word)", (BRANDWATCH, TALKWALKER), "?reaty", refused_at=0
    ),
    Operator("`term~n` (after a word)", (BRANDWATCH,), "treaty~3", refused_at=6),
    Operator("`{Several Words}`", (BRANDWATCH,), "{Plastics Treaty}", refused_at=0),
)
"""Every operator the tools document that we know of, supported or refused."""


def refusal(operator: Operator) -> QueryError | None:
    """The error a refused row's example gets (None when it parses)."""
    try:
        parse_query(operator.example)
    except QueryError as error:
        return error
    return None


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"``{text}``"


def conformance_markdown(operators: Sequence[Operator] = OPERATORS) -> str:
    """The README's table: one row per operator, with what the listener does and the
    queries the conformance test tries (a refused row quotes the error it gets)."""
    lines = [
        "| operator | documented by | Legation | tried on the conformance item |",
        "|---|---|---|---|",
    ]
    for operator in operators:
        tools = ", ".join(operator.tools) or "— (Legation)"
        if operator.supported:
            what = f"supported: {operator.legation}"
            tried = f"{_code(operator.example)} matches, {_code(operator.counter)} does not"
        else:
            error = refusal(operator)
            what = f"refused: {error.message if error else 'NOT REFUSED'}"
            tried = f"{_code(operator.example)} refused at position {operator.refused_at}"
        lines.append(f"| {operator.written} | {tools} | {what} | {tried} |")
    return "\n".join(lines) + "\n"


README_BEGIN = (
    "<!-- query conformance table: generated from domain/query_conformance.py by"
    " `python -m legation_listener.query_table`; a test checks it -->"
)
README_END = "<!-- end of the query conformance table -->"


def with_table(readme: str) -> str:
    """``readme`` with the text between :data:`README_BEGIN` and :data:`README_END`
    replaced by :func:`conformance_markdown`; ValueError when the markers are missing."""
    start = readme.find(README_BEGIN)
    end = readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError("the README has no query conformance markers")
    head = readme[: start + len(README_BEGIN)]
    return f"{head}\n{conformance_markdown()}{readme[end:]}"
