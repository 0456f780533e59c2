"""Cursor logic: only unseen items are new, and the cursor follows the feed's window."""

from __future__ import annotations

from datetime import UTC, datetime

from legation.events.v1 import listen_pb2
from legation_listener.domain.cursor import advance, empty_cursor
from legation_listener.domain.items import FeedItem

WHEN = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)


def item(item_id: str) -> FeedItem:
    return FeedItem(item_id, f"https://x.org/{item_id}", item_id, "", "", WHEN, "en")


def test_first_read_makes_every_item_new() -> None:
    step = advance(empty_cursor("i", "feed"), [item("a"), item("b")], '"v1"', "Mon")
    assert [i.item_id for i in step.new_items] == ["a", "b"]
    assert step.next_cursor == listen_pb2.FeedCursor(
        issue_id="i", feed="feed", seen_item_ids=["a", "b"], etag='"v1"', last_modified="Mon"
    )


def test_seen_items_are_not_new_and_items_gone_from_the_feed_leave_the_cursor() -> None:
    cursor = listen_pb2.FeedCursor(issue_id="i", feed="feed", seen_item_ids=["a", "b", "c"])
    step = advance(cursor, [item("d"), item("b"), item("c")])
    assert [i.item_id for i in step.new_items] == ["d"]
    assert list(step.next_cursor.seen_item_ids) == ["d", "b", "c"]
    assert step.next_cursor.issue_id == "i"
    assert step.next_cursor.feed == "feed"


def test_repeated_entries_are_new_once() -> None:
    step = advance(empty_cursor("i", "feed"), [item("a"), item("a"), item("b")])
    assert [i.item_id for i in step.new_items] == ["a", "b"]
    assert list(step.next_cursor.seen_item_ids) == ["a", "b"]


def test_unchanged_feed_gives_nothing_new_and_the_same_cursor() -> None:
    first = advance(empty_cursor("i", "feed"), [item("a"), item("b")], '"v1"')
    again = advance(first.next_cursor, [item("a"), item("b")], '"v1"')
    assert again.new_items == []
    assert again.next_cursor == first.next_cursor


def test_cursor_stays_bounded_by_the_feed_size() -> None:
    cursor = empty_cursor("i", "feed")
    for start in range(0, 100, 5):
        window = [item(str(n)) for n in range(start, start + 10)]
        step = advance(cursor, window)
        cursor = step.next_cursor
    assert len(cursor.seen_item_ids) == 10


def test_an_emptied_feed_empties_the_cursor() -> None:
    cursor = listen_pb2.FeedCursor(issue_id="i", feed="feed", seen_item_ids=["a"])
    step = advance(cursor, [])
    assert step.new_items == []
    assert list(step.next_cursor.seen_item_ids) == []
