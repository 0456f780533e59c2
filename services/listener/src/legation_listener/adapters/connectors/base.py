"""The one small interface every source sits behind, and what connectors share.

A connector reads **one page of new items** of a source from the source's durable cursor
and answers the items and the cursor to store once they are handled
(:meth:`Connector.fetch`). The poller sends the page's mentions, waits for Kafka's acks,
and only then stores the cursor, so a crash re-reads the same page (same mention ids) and
a restart neither re-emits nor misses items. ``more`` says another page is ready now.

Failures have two sizes. A read that fails (network, timeout, HTTP error, a page that is
not the platform's shape) raises :class:`SourceFailure`: the source is reported failing
and its cursor does not move. An item of an otherwise readable page that is malformed is
skipped and reported in ``Page.malformed``; the rest of the page goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from legation.events.v1 import listen_pb2
from legation_listener.domain.items import FeedItem
from legation_listener.domain.sources import Source

log = logging.getLogger(__name__)

T = TypeVar("T")
USER_AGENT = "legation-listener/0.1 (+https://github.com/legation)"
MAX_PAGE_BYTES = 20 * 1024 * 1024
"""Most bytes of one answer a connector reads from a platform (a timeline, a search page):
a larger answer fails the read, not retried (the same as a feed document's limit)."""
# Ids remembered per cursor by connectors that page by position (the boundary of an
# inclusive "since" or a timestamp watermark is re-read; these ids keep it from counting
# twice).
SEEN_IDS_KEPT = 500


@dataclass(frozen=True)
class Page:
    """One read of a source.

    ``items`` every item read (for previews), ``new_items`` those the cursor had not seen
    (to match and emit), ``next_cursor`` the cursor to store once they are handled,
    ``more`` whether another page can be read now, ``not_modified`` a conditional read
    that found nothing new, ``malformed`` one reason per item skipped."""

    items: list[FeedItem]
    new_items: list[FeedItem]
    next_cursor: listen_pb2.FeedCursor
    more: bool = False
    not_modified: bool = False
    malformed: list[str] = field(default_factory=list)


class Connector(Protocol):
    """Reads pages of one kind of source (``kind``: "rss", "mastodon", ...)."""

    kind: str

    def fetch(self, source: Source, cursor: listen_pb2.FeedCursor) -> Page:
        """The next page after ``cursor``; raises :class:`SourceFailure` when the source
        cannot be read now."""
        ...


class SourceFailure(Exception):
    """A read of a source failed; the message says why (the cursor stays)."""


class RateLimited(SourceFailure):
    """The source asked us to wait (HTTP 429); ``retry_after`` is how long, in seconds, when
    it said. The poller does not read the source again before then."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Retryable(Exception):
    """A failure a later attempt may not have (connection error, timeout, 5xx, 429);
    ``retry_after`` is the wait the source asked for, in seconds, when it said."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


class Backoff:
    """Calls with bounded retries: ``retries`` attempts after the first, exponential
    backoff from ``backoff_seconds`` up to ``max_backoff_seconds``; a Retry-After is
    honoured, and one longer than ``max_backoff_seconds`` fails now with
    :class:`RateLimited` (the next poll tries again). Setting ``stop`` abandons a wait."""

    def __init__(
        self,
        retries: int,
        *,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.stop = stop or threading.Event()

    def call(self, what: str, attempt_once: Callable[[], T]) -> T:
        """``attempt_once()``, retried after :class:`Retryable`; ``what`` names the source
        in errors."""
        attempt = 0
        while True:
            try:
                return attempt_once()
            except Retryable as error:
                problem, asked = error.problem, error.retry_after
            rate_limited = asked is not None
            if asked is not None and asked > self.max_backoff_seconds:
                raise RateLimited(f"{what}: {problem}, retry asked after {asked:.0f}s", asked)
            if attempt >= self.retries:
                message = f"{what}: {problem} (after {attempt + 1} attempts)"
                if rate_limited:
                    raise RateLimited(message, asked)
                raise SourceFailure(message)
            delay = min(self.backoff_seconds * 2**attempt, self.max_backoff_seconds)
            if asked is not None:
                delay = asked
            log.info(
                "source read failed, retrying",
                extra={"source": what, "problem": problem, "attempt": attempt + 1, "delay": delay},
            )
            if self.stop.wait(delay):
                raise SourceFailure(f"{what}: abandoned while stopping ({problem})")
            attempt += 1


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time (``Z`` allowed) or a datetime as an aware UTC datetime; None when
    ``value`` is neither."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def text_of(value: object) -> str:
    """A string field, trimmed; anything else is empty."""
    return value.strip() if isinstance(value, str) else ""


def unseen(cursor: listen_pb2.FeedCursor, items: Iterable[FeedItem]) -> list[FeedItem]:
    """The items whose ids the cursor has not seen, first occurrence only, in order."""
    seen = set(cursor.seen_item_ids)
    fresh: list[FeedItem] = []
    for item in items:
        if item.item_id not in seen:
            seen.add(item.item_id)
            fresh.append(item)
    return fresh


def remember(previous: Sequence[str], ids: Iterable[str], keep: int = SEEN_IDS_KEPT) -> list[str]:
    """``previous`` then ``ids`` (no repeats), the last ``keep`` of them."""
    merged = list(previous)
    present = set(merged)
    for item_id in ids:
        if item_id not in present:
            present.add(item_id)
            merged.append(item_id)
    return merged[-keep:]


def next_cursor(
    cursor: listen_pb2.FeedCursor,
    *,
    position: str,
    seen_item_ids: Sequence[str],
) -> listen_pb2.FeedCursor:
    """A copy of ``cursor`` with a new position and seen ids."""
    updated = listen_pb2.FeedCursor()
    updated.CopyFrom(cursor)
    updated.position = position
    del updated.seen_item_ids[:]
    updated.seen_item_ids.extend(seen_item_ids)
    return updated


K = TypeVar("K", str, float)
# Ids kept of the items that sit exactly on a watermark (many items can share one second).
WATERMARK_IDS_KEPT = 1000


def past_watermark(
    parsed: Sequence[tuple[FeedItem, K]], since: K, since_ids: Sequence[str]
) -> list[FeedItem]:
    """The items newer than the watermark ``since``, plus those exactly on it that were not
    handled yet (``since_ids``): an inclusive "since" gives the boundary back every time."""
    handled = set(since_ids)
    return [
        item
        for item, moment in parsed
        if moment > since or (moment == since and item.item_id not in handled)
    ]


def newest_of(
    parsed: Sequence[tuple[FeedItem, K]], newest: K, newest_ids: Sequence[str]
) -> tuple[K, list[str]]:
    """The newest time among ``newest`` and the items, with the ids of the items at it."""
    ids = list(newest_ids)
    for item, moment in parsed:
        if moment > newest:
            newest, ids = moment, [item.item_id]
        elif moment == newest and item.item_id not in ids:
            ids.append(item.item_id)
    return newest, ids[-WATERMARK_IDS_KEPT:]


def moved_watermark(
    since: K, since_ids: Sequence[str], newest: K, newest_ids: Sequence[str]
) -> tuple[K, list[str]]:
    """The watermark once a pass that reached ``newest`` is over."""
    if newest > since:
        return newest, list(newest_ids)
    if newest == since:
        return since, remember(since_ids, newest_ids, WATERMARK_IDS_KEPT)
    return since, list(since_ids)
