"""The site's Atom feed as a channel: a valid feed, one entry per post, newest first."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from legation_publisher.adapters.atom_channel import AtomChannel, FeedError
from legation_publisher.domain.posts import ChannelUnavailable, Post, post_id_for

BASE_URL = "https://ministry.example/news/"


def ticking_clock(start: datetime) -> Callable[[], datetime]:
    """A clock that moves one minute per reading, so publication order is visible."""
    now = [start]

    def clock() -> datetime:
        now[0] += timedelta(minutes=1)
        return now[0]

    return clock


def make_post(request_id: str, **overrides: str) -> Post:
    fields = {
        "title": f"Title of {request_id}",
        "body": f"Body of {request_id}\nwith <markup> & ampersands",
        "language": "en",
        "author": "Press office",
    }
    fields.update(overrides)
    return Post(post_id=post_id_for(request_id), **fields)


@pytest.fixture
def feed_path(tmp_path: Path) -> Path:
    return tmp_path / "site" / "feed.atom"


@pytest.fixture
def channel(feed_path: Path) -> AtomChannel:
    clock = ticking_clock(datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC))
    return AtomChannel(feed_path, BASE_URL, "Ministry news", clock=clock)


def test_the_written_feed_is_valid_atom_with_the_post(
    channel: AtomChannel, feed_path: Path
) -> None:
    post = make_post("req-1", language="fr", title="Notre position")
    result = channel.publish(post)

    assert result.newly_published
    assert result.channel_item_id == f"urn:uuid:{post.post_id}"
    assert result.url == BASE_URL + post.post_id
    assert result.published_at == datetime(2026, 11, 20, 10, 1, tzinfo=UTC)
    assert result.post == post

    feed = feedparser.parse(feed_path.read_bytes())
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.id == BASE_URL
    assert feed.feed.title == "Ministry news"
    assert any(
        link.rel == "self" and link.href == BASE_URL + "feed.atom" for link in feed.feed.links
    )
    [entry] = feed.entries
    assert entry.id == f"urn:uuid:{post.post_id}"
    assert entry.title == "Notre position"
    assert entry.link == BASE_URL + post.post_id
    assert entry.content[0].value == post.body
    assert entry.content[0].language == "fr"
    assert entry.author == "Press office"
    assert entry.published == "2026-11-20T10:01:00+00:00"
    assert entry.updated == entry.published


def test_the_feed_is_readable_by_the_web_server(channel: AtomChannel, feed_path: Path) -> None:
    channel.publish(make_post("req-1"))
    assert feed_path.stat().st_mode & 0o444 == 0o444
    assert [p.name for p in feed_path.parent.iterdir() if p.suffix == ".tmp"] == []


def test_publishing_the_same_post_twice_leaves_one_entry(
    channel: AtomChannel, feed_path: Path
) -> None:
    first = channel.publish(make_post("req-1"))
    # A retry may carry edited text: the channel keeps and returns what it published first.
    again = channel.publish(make_post("req-1", title="Edited title"))

    assert not again.newly_published
    assert (again.channel_item_id, again.url, again.published_at) == (
        first.channel_item_id,
        first.url,
        first.published_at,
    )
    assert again.post == first.post
    feed = feedparser.parse(feed_path.read_bytes())
    assert [entry.title for entry in feed.entries] == ["Title of req-1"]


def test_two_posts_are_two_entries_newest_first(channel: AtomChannel, feed_path: Path) -> None:
    older = channel.publish(make_post("req-1"))
    newer = channel.publish(make_post("req-2", author=""))

    feed = feedparser.parse(feed_path.read_bytes())
    assert feed.bozo == 0
    assert [entry.id for entry in feed.entries] == [newer.channel_item_id, older.channel_item_id]
    assert [entry.link for entry in feed.entries] == [newer.url, older.url]
    assert feed.feed.updated == "2026-11-20T10:02:00+00:00"
    assert [r.post.post_id for r in channel.published()] == [
        newer.post.post_id,
        older.post.post_id,
    ]


def test_find_reads_the_feed_back(channel: AtomChannel, feed_path: Path) -> None:
    post = make_post("req-1", body="line one\r\nline two\ttabbed  ")
    published = channel.publish(post)

    # A new instance (a restarted process) sees the same thing, down to the whitespace.
    reopened = AtomChannel(feed_path, BASE_URL, "Ministry news")
    found = reopened.find(post.post_id)
    assert found is not None
    assert found.post == post
    assert (found.url, found.published_at) == (published.url, published.published_at)
    assert not found.newly_published
    assert reopened.find(post_id_for("never-sent")) is None


def test_an_absent_feed_is_an_empty_channel(channel: AtomChannel, feed_path: Path) -> None:
    assert channel.published() == []
    channel.check()
    assert not feed_path.exists()


def test_concurrent_publishes_of_one_post_publish_it_once(
    channel: AtomChannel, feed_path: Path
) -> None:
    results = []
    barrier = threading.Barrier(8)

    def publish(request_id: str) -> None:
        barrier.wait()
        results.append(channel.publish(make_post(request_id)))

    threads = [threading.Thread(target=publish, args=(f"req-{i % 2}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(result.newly_published for result in results) == 2
    assert len(feedparser.parse(feed_path.read_bytes()).entries) == 2


def test_a_damaged_feed_is_reported_not_overwritten(channel: AtomChannel, feed_path: Path) -> None:
    feed_path.parent.mkdir(parents=True)
    feed_path.write_text("<feed>half a fe")
    with pytest.raises(FeedError, match="not well-formed"):
        channel.publish(make_post("req-1"))
    with pytest.raises(FeedError):
        channel.check()
    assert feed_path.read_text() == "<feed>half a fe"


def test_an_unwritable_directory_makes_the_channel_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    channel = AtomChannel(blocker / "feed.atom", BASE_URL, "Ministry news")
    with pytest.raises(ChannelUnavailable, match="cannot update the feed"):
        channel.publish(make_post("req-1"))
