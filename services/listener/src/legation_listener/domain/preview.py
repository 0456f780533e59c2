"""Previewing a query: which of some items it matches, newest first, and who may have
which feeds read for it (no I/O)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from legation_listener.domain.items import FeedItem
from legation_listener.domain.mentions import query_item
from legation_listener.domain.query import Query

DEFAULT_LIMIT = 100
"""Matches answered when the request's ``limit`` is 0."""
MAX_LIMIT = 1000
"""Most matches answered (a larger ``limit`` is lowered to it)."""
MAX_PREVIEW_FEEDS = 10
"""Most ``feeds`` one PreviewQuery may name (they are read one after another)."""
MAX_PREVIEW_ITEMS = 2000
"""Most items read from the request's ``feeds`` that one preview examines (the buffer of
recent items comes on top); the rest of a long feed is not looked at."""
MAX_ANSWER_BYTES = 3 * 1024 * 1024
"""Most bytes of matches in one answer (gRPC clients refuse messages over 4 MiB by
default): the newest matches that fit are answered, ``total_matches`` still counts all."""
FEED_NOT_READ = "could not read the feed"
"""What a caller is told of any feed a preview could not read, whatever the reason (the
reason is logged): a preview must not tell a refused address, a closed port, a missing
file and a timeout apart."""


def feeds_beyond(feeds: Sequence[str], tracked: Collection[str]) -> list[str]:
    """The ``feeds`` that are not sources of a tracked issue: a viewer may have only
    tracked sources read (an analyst, who can track any feed, may preview any)."""
    return [feed for feed in feeds if feed not in tracked]


def not_read(feed: str) -> str:
    """The ``failed_feeds`` entry of a feed a preview could not read."""
    return f"{feed}: {FEED_NOT_READ}"


@dataclass(frozen=True)
class PreviewHit:
    feed: str
    item: FeedItem
    matched_terms: list[str]


@dataclass(frozen=True)
class Preview:
    hits: list[PreviewHit]
    examined: int
    total: int


def preview(query: Query, items: Iterable[tuple[str, FeedItem]], limit: int = 0) -> Preview:
    """Runs ``query`` over ``(feed, item)`` pairs (the first of a feed and item id wins) and
    returns up to ``limit`` matches (0: the default), newest first, and how many matched."""
    limit = DEFAULT_LIMIT if limit <= 0 else min(limit, MAX_LIMIT)
    seen: set[tuple[str, str]] = set()
    hits: list[PreviewHit] = []
    for feed, item in items:
        key = (feed, item.item_id)
        if key in seen:
            continue
        seen.add(key)
        terms = query.matches(query_item(item, feed))
        if terms:
            hits.append(PreviewHit(feed, item, terms))
    hits.sort(key=lambda hit: (hit.item.published_at, hit.feed, hit.item.item_id), reverse=True)
    return Preview(hits=hits[:limit], examined=len(seen), total=len(hits))
