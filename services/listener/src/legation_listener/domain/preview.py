"""Previewing a query: which of some items it matches, newest first (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from legation_listener.domain.items import FeedItem
from legation_listener.domain.mentions import query_item
from legation_listener.domain.query import Query

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


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
