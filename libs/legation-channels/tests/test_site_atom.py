"""The site's Atom feed as a channel: a valid feed, one entry per message, newest first,
found again by its idempotency key."""

from __future__ import annotations

import fcntl
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from legation_channels.adapters.site_atom import FeedError, SiteAtomChannel, entry_key
from legation_channels.base import ChannelRejected, ChannelUnavailable, Media, Outgoing, problems
from legation_channels.registry import build_channels

BASE_URL = "https://ministry.example/news/"


def ticking_clock(start: datetime) -> Callable[[], datetime]:
    """A clock that moves one minute per reading, so publication order is visible."""
    now = [start]

    def clock() -> datetime:
        now[0] += timedelta(minutes=1)
        return now[0]

    return clock


def key_for(request_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, request_id))


def make_post(
    request_id: str,
    title: str = "",
    text: str = "",
    language: str = "en",
    author: str = "Press office",
) -> Outgoing:
    return Outgoing(
        idempotency_key=key_for(request_id),
        title=title or f"Title of {request_id}",
        text=text or f"Body of {request_id}\nwith <markup> & ampersands",
        language=language,
        author=author,
    )


@pytest.fixture
def feed_path(tmp_path: Path) -> Path:
    return tmp_path / "site" / "feed.atom"


@pytest.fixture
def channel(feed_path: Path) -> SiteAtomChannel:
    clock = ticking_clock(datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC))
    return SiteAtomChannel(feed_path, BASE_URL, "Ministry news", clock=clock)


def test_the_written_feed_is_valid_atom_with_the_post(
    channel: SiteAtomChannel, feed_path: Path
) -> None:
    post = make_post("req-1", language="fr", title="Notre position")
    result = channel.deliver(post)

    assert result.newly_published
    assert result.channel_item_id == f"urn:uuid:{post.idempotency_key}"
    assert result.url == BASE_URL + post.idempotency_key
    assert result.published_at == datetime(2026, 11, 20, 10, 1, tzinfo=UTC)

    feed = feedparser.parse(feed_path.read_bytes())
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.id == BASE_URL
    assert feed.feed.title == "Ministry news"
    assert any(
        link.rel == "self" and link.href == BASE_URL + "feed.atom" for link in feed.feed.links
    )
    [entry] = feed.entries
    assert entry.id == f"urn:uuid:{post.idempotency_key}"
    assert entry.title == "Notre position"
    assert entry.link == BASE_URL + post.idempotency_key
    assert entry.content[0].value == post.text
    assert entry.content[0].language == "fr"
    assert entry.author == "Press office"
    assert entry.published == "2026-11-20T10:01:00+00:00"
    assert entry.updated == entry.published


def test_the_feed_is_readable_by_the_web_server(channel: SiteAtomChannel, feed_path: Path) -> None:
    channel.deliver(make_post("req-1"))
    assert feed_path.stat().st_mode & 0o444 == 0o444
    assert [p.name for p in feed_path.parent.iterdir() if p.suffix == ".tmp"] == []


def test_publishing_the_same_post_twice_leaves_one_entry(
    channel: SiteAtomChannel, feed_path: Path
) -> None:
    first = channel.deliver(make_post("req-1"))
    # A retry may carry edited text: the channel keeps and returns what it published first.
    again = channel.deliver(make_post("req-1", title="Edited title"))

    assert not again.newly_published
    assert (again.channel_item_id, again.url, again.published_at) == (
        first.channel_item_id,
        first.url,
        first.published_at,
    )
    feed = feedparser.parse(feed_path.read_bytes())
    assert [entry.title for entry in feed.entries] == ["Title of req-1"]


def test_two_posts_are_two_entries_newest_first(channel: SiteAtomChannel, feed_path: Path) -> None:
    older = channel.deliver(make_post("req-1"))
    newer = channel.deliver(make_post("req-2", author=""))

    feed = feedparser.parse(feed_path.read_bytes())
    assert feed.bozo == 0
    assert [entry.id for entry in feed.entries] == [newer.channel_item_id, older.channel_item_id]
    assert [entry.link for entry in feed.entries] == [newer.url, older.url]
    assert feed.feed.updated == "2026-11-20T10:02:00+00:00"
    assert [e.delivered.channel_item_id for e in channel.entries()] == [
        newer.channel_item_id,
        older.channel_item_id,
    ]


def test_find_reads_the_feed_back(channel: SiteAtomChannel, feed_path: Path) -> None:
    post = make_post("req-1", text="line one\r\nline two\ttabbed  ")
    published = channel.deliver(post)

    # A new instance (a restarted process) sees the same thing, down to the whitespace.
    reopened = SiteAtomChannel(feed_path, BASE_URL, "Ministry news")
    found = reopened.find(post.idempotency_key)
    assert found is not None
    assert (found.url, found.published_at) == (published.url, published.published_at)
    assert not found.newly_published
    [entry] = reopened.entries()
    assert (entry.title, entry.text, entry.language, entry.author) == (
        post.title,
        post.text,
        post.language,
        post.author,
    )
    assert reopened.find(key_for("never-sent")) is None


def test_an_absent_feed_is_an_empty_channel(channel: SiteAtomChannel, feed_path: Path) -> None:
    assert channel.entries() == []
    channel.check()
    assert not feed_path.exists()


def test_concurrent_publishes_of_one_post_publish_it_once(
    channel: SiteAtomChannel, feed_path: Path
) -> None:
    results = []
    barrier = threading.Barrier(8)

    def publish(request_id: str) -> None:
        barrier.wait()
        results.append(channel.deliver(make_post(request_id)))

    threads = [threading.Thread(target=publish, args=(f"req-{i % 2}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(result.newly_published for result in results) == 2
    assert len(feedparser.parse(feed_path.read_bytes()).entries) == 2


def test_a_writer_holding_the_lock_too_long_makes_the_channel_unavailable(
    feed_path: Path,
) -> None:
    """Another replica that hangs while writing must not block deliveries for ever: after
    the lock timeout the delivery is unavailable (retried later), nothing written."""
    feed_path.parent.mkdir(parents=True)
    channel = SiteAtomChannel(feed_path, BASE_URL, "Ministry news", lock_timeout=0.3)
    with (feed_path.parent / f".{feed_path.name}.lock").open("a") as other_writer:
        fcntl.flock(other_writer, fcntl.LOCK_EX)
        with pytest.raises(ChannelUnavailable, match="locked by another writer") as error:
            channel.deliver(make_post("req-1"))
        assert not error.value.maybe_delivered
        assert not feed_path.exists()
        fcntl.flock(other_writer, fcntl.LOCK_UN)
    assert channel.deliver(make_post("req-1")).newly_published


def test_a_damaged_feed_is_reported_not_overwritten(
    channel: SiteAtomChannel, feed_path: Path
) -> None:
    feed_path.parent.mkdir(parents=True)
    feed_path.write_text("<feed>half a fe")
    with pytest.raises(FeedError, match="not well-formed"):
        channel.deliver(make_post("req-1"))
    with pytest.raises(FeedError):
        channel.check()
    assert feed_path.read_text() == "<feed>half a fe"


def test_an_unwritable_directory_makes_the_channel_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    channel = SiteAtomChannel(blocker / "feed.atom", BASE_URL, "Ministry news")
    with pytest.raises(ChannelUnavailable, match="cannot update the feed"):
        channel.deliver(make_post("req-1"))


def test_keys_that_are_not_uuids_get_a_stable_entry_id(channel: SiteAtomChannel) -> None:
    message = Outgoing(idempotency_key="reply:42", text="Thanks", title="Re: question")
    delivered = channel.deliver(message)
    assert delivered.channel_item_id == f"urn:uuid:{entry_key('reply:42')}"
    assert channel.find("reply:42") == replace(delivered, newly_published=False)


def test_a_message_without_a_title_is_rejected_naming_the_field(channel: SiteAtomChannel) -> None:
    with pytest.raises(ChannelRejected) as error:
        channel.deliver(Outgoing(idempotency_key=key_for("r"), text="no title"))
    assert error.value.field == "title"


def test_limits_require_alt_text(channel: SiteAtomChannel) -> None:
    message = Outgoing(
        idempotency_key=key_for("r"),
        text="t",
        title="t",
        media=(Media(url="https://m.example/a.png", kind="image"),),
    )
    assert [str(p) for p in problems(message, channel.limits)] == ["media[0].alt_text is required"]
    assert (channel.kind, channel.reconcile) == ("site-atom", "lookup")


def test_the_registry_builds_it_as_kind_site_atom(tmp_path: Path) -> None:
    config = {
        "channels": [
            {
                "name": "embassy-nairobi-site",
                "kind": "site-atom",
                "options": {
                    "feed_path": str(tmp_path / "nairobi.atom"),
                    "base_url": "https://nairobi.example/news/",
                    "title": "Embassy news",
                },
            }
        ]
    }
    [channel] = build_channels(config, env={}).values()
    assert isinstance(channel, SiteAtomChannel)
    assert channel.name == "embassy-nairobi-site"
    assert channel.deliver(make_post("r")).url.startswith("https://nairobi.example/news/")
