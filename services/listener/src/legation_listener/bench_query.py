"""How fast the query matcher is: items matched per second (a command, not a test).

    python -m legation_listener.bench_query [--items N] [--rounds R]

Matches every query of :data:`QUERIES` against the same made-up items (seeded, so every
run sees the same text: titles of 8 words, texts of about 80 with accents, capitals,
hashtags, mentions and links) the way the poller does, ``parse_query(query).matches(item)``
for each item, and prints items per second per query and over all of them (the best of
``--rounds`` rounds, to keep a busy machine's noise out). :data:`EXTENDED_QUERIES` use the
operators of other listening tools (group proximity, ``?``, ``{Case}``, ``title:``, hashtags...)
and are measured when the parser knows them.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence

from legation_listener.domain.query import QueryError, QueryItem, parse_query

QUERIES = (
    "treaty",
    '("plastics treaty" OR "traité plastique*") AND NOT football lang:fr',
    "treaty NEAR/5 production",
    '"cap production"~3 OR negotiat*',
    "(plastic OR plastics OR packaging OR bottles OR waste) (treaty OR talks OR accord)"
    " NOT (football OR cricket)",
    "author:doe domain:example.org treaty",
)
"""Queries written in the language as it was before the other tools' operators."""

EXTENDED_QUERIES = (
    "(plastic OR plastics) NEAR/5 (treaty OR accord)",
    "(plastic OR packaging) NEAR/3f (treaty OR talks)",
    "((plastic OR bottles) AND (treaty OR waste))~4",
    "customi?e OR organi?ation treaty",
    "{UN} treaty -football",
    "title:treaty OR site:example.org",
    "#cop29 OR @unep OR https://news.example.org/plastics",
)
"""Queries using the operators taken from Brandwatch, Talkwalker, Meltwater and Sprout."""

_WORDS = (
    "the of and to in a is that for on with as by at from it this be are was has have will "
    "treaty plastic plastics production cap talks negotiators nairobi geneva delegates "
    "ministers agreement accord waste bottles packaging recycling oceans pollution "
    "traité plastique négociations déchets océans réunion ministres accord "
    "football cricket match season goal league weather rain sunny market stocks "
    "customise customize organisation organization programme program colour color "
    "industry lobby producers petrochemical chemicals health microplastics rivers "
    "campaign activists protest march cities citizens science scientists report study"
)
_VOCABULARY = tuple(_WORDS.split())
_CAPITALISED = ("UN", "Un", "UNEP", "Kenya", "Nairobi", "Geneva", "EU", "Treaty")
_EXTRAS = (
    "#cop29",
    "#PlasticsTreaty",
    "@unep",
    "@alice@mastodon.social",
    "https://news.example.org/plastics/2026",
    "https://www.example.com/a?b=1",
)


def make_items(count: int, seed: int = 7) -> list[QueryItem]:
    """``count`` made-up items, the same for the same ``seed``."""
    rng = random.Random(seed)
    sites = ("https://news.example.org/a", "https://www.example.com/b", "https://blog.other.net/c")
    items = []
    for n in range(count):
        words = [rng.choice(_VOCABULARY) for _ in range(80)]
        for _ in range(3):
            words[rng.randrange(len(words))] = rng.choice(_CAPITALISED)
        if n % 3 == 0:
            words[rng.randrange(len(words))] = rng.choice(_EXTRAS)
        title = " ".join(rng.choice(_VOCABULARY) for _ in range(8)).capitalize()
        items.append(
            QueryItem(
                title=title,
                text=" ".join(words) + ".",
                language=rng.choice(("en", "en-GB", "fr", "es")),
                source="rss",
                feed="https://feeds.example.org/world.xml",
                author=rng.choice(("Jane Doe", "John Smith", "")),
                url=f"{rng.choice(sites)}/{n}",
            )
        )
    return items


def items_per_second(query: str, items: Sequence[QueryItem], rounds: int) -> tuple[float, int]:
    """The best rate over ``rounds`` passes of ``query`` over ``items``, and the matches."""
    parsed = parse_query(query)
    best = 0.0
    matched = 0
    for _ in range(rounds):
        started = time.perf_counter()
        matched = sum(1 for item in items if parsed.matches(item))
        elapsed = time.perf_counter() - started
        best = max(best, len(items) / elapsed)
    return best, matched


def main(argv: Sequence[str] | None = None) -> None:
    """Prints the rates (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    items = make_items(args.items)
    for title, queries in (("queries", QUERIES), ("other tools' operators", EXTENDED_QUERIES)):
        print(f"{title} ({len(items)} items, best of {args.rounds} rounds):")
        total_items = 0
        total_seconds = 0.0
        for query in queries:
            try:
                rate, matched = items_per_second(query, items, args.rounds)
            except QueryError as error:
                print(f"  not supported: {query}  ({error})")
                continue
            total_items += len(items)
            total_seconds += len(items) / rate
            print(f"  {rate:>10,.0f} items/s  {matched:>5} matched  {query}")
        if total_seconds:
            print(f"  {total_items / total_seconds:>10,.0f} items/s over these queries")


if __name__ == "__main__":
    main()
