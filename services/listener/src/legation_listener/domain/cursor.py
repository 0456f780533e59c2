"""A feed's progress for one issue: which items were already looked at.

Every item of a successful read counts as seen, whether it matched the issue or not, so an
item is examined once. The cursor keeps only the ids the feed still carries: a feed is a
sliding window, so the cursor stays as small as the feed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from legation.events.v1 import listen_pb2
from legation_listener.domain.items import FeedItem

FeedCursor = listen_pb2.FeedCursor


@dataclass(frozen=True)
class CursorStep:
    """What one successful read of a feed brings: items never seen, and the cursor to store
    once they are handled."""

    new_items: list[FeedItem]
    next_cursor: listen_pb2.FeedCursor
    # The reports of skipped entries not seen before (one seen before is not reported again).
    malformed: list[str] = field(default_factory=list)


def empty_cursor(issue_id: str, feed: str) -> listen_pb2.FeedCursor:
    """The cursor of a feed never read for this issue."""
    return FeedCursor(issue_id=issue_id, feed=feed)


def advance(
    cursor: listen_pb2.FeedCursor,
    items: Sequence[FeedItem],
    etag: str = "",
    last_modified: str = "",
    skipped: Sequence[tuple[str, str]] = (),
) -> CursorStep:
    """Splits a read of the feed into new items (first occurrence of each id, in feed order)
    and the next cursor: the ids of every item in this read, with the read's validators.
    ``skipped`` are the entries skipped as malformed, ``(id or "", report)``: their ids
    count as seen too, so a skipped entry is reported once, not at every read."""
    seen = set(cursor.seen_item_ids)
    new_items: list[FeedItem] = []
    current: dict[str, None] = {}
    for item in items:
        if item.item_id in current:
            continue  # a feed may repeat an entry; handle it once
        current[item.item_id] = None
        if item.item_id not in seen:
            new_items.append(item)
    malformed: list[str] = []
    for item_id, report in skipped:
        if not item_id or item_id not in seen:
            malformed.append(report)
        if item_id:
            current[item_id] = None
    next_cursor = FeedCursor(
        issue_id=cursor.issue_id,
        feed=cursor.feed,
        seen_item_ids=list(current),
        etag=etag,
        last_modified=last_modified,
    )
    return CursorStep(new_items=new_items, next_cursor=next_cursor, malformed=malformed)
