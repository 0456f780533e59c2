"""The listener's feed parsing: feedparser's own test corpus (from its sdist, fetched by
``make fuzz-corpus``) and mutations of it (flipped bytes, truncation, splices of two feeds,
hostile text, entity expansion, deep nesting, huge items), read the three ways the listener
reads a feed (parsed bytes, a local file, HTTP with the server's content type): every read
gives items and a report of malformed entries, or FeedError, in bounded time and memory;
no other exception escapes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import feedparser
import pytest
from hypothesis import strategies as st

from legation_core.proto_strategies import SPECIAL_STRINGS, weighted
from legation_listener.adapters.feeds import FeedError, FeedFetcher, parse_feed_document
from legation_listener.domain.addresses import AddressPolicy
from legation_listener.domain.items import FeedItem
from tests.fuzz.budget import ROOT, Fuzz, budget
from tests.fuzz.properties import (
    MemoryBound,
    PropertyFailed,
    bounded,
    failure,
    internal_text,
)

CORPUS = ROOT / "build" / "fuzz" / f"feedparser-{feedparser.__version__}" / "tests"
# The corpus parts every run reads whole; `make fuzz` also reads tests/wellformed.
QUICK_PARTS = ("illformed", "encoding", "entities", "http", "compression")
FEED_LIMIT_SECONDS = 10.0  # the listener's default fetch timeout
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CONTENT_TYPES = [
    None,
    "application/rss+xml",
    "application/atom+xml; charset=utf-8",
    "text/xml; charset=iso-8859-1",
    "text/html",
    "text/plain; charset=bogus",
    "application/octet-stream",
]


def corpus(parts: tuple[str, ...] | None = None) -> list[Path]:
    """The corpus files (of ``parts``, else all); fails the test when it was not fetched."""
    if not CORPUS.is_dir():
        pytest.fail(f"{CORPUS} is missing: run `make fuzz-corpus` (make test does)")
    roots = [CORPUS / part for part in parts] if parts else [CORPUS]
    return sorted(
        path
        for root in roots
        for path in root.rglob("*")
        if path.is_file() and path.suffix in (".xml", ".rdf", ".gz", ".z", ".bz2", "")
    )


class Feed:
    """A generated feed document and how it is read (``bytes``, ``file`` or ``http``)."""

    def __init__(self, content: bytes, content_type: str | None, how: str) -> None:
        self.content = content
        self.content_type = content_type
        self.how = how

    def __repr__(self) -> str:
        shown = self.content[:400]
        more = f"+{len(self.content) - 400:,} bytes" if len(self.content) > 400 else ""
        return f"Feed(how={self.how!r}, content_type={self.content_type!r}, {shown!r}{more})"


class FeedServer:
    """Serves the feed of the current case over HTTP on 127.0.0.1."""

    def __init__(self) -> None:
        self.feed = Feed(b"", None, "http")
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                if outer.feed.content_type:
                    self.send_header("Content-Type", outer.feed.content_type)
                self.send_header("Content-Length", str(len(outer.feed.content)))
                self.end_headers()
                self.wfile.write(outer.feed.content)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/feed.xml"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Reader:
    """Reads a Feed the way its ``how`` says, through the listener's own code."""

    fetcher: FeedFetcher
    server: FeedServer
    path: Path

    @property
    def names(self) -> list[str]:
        """What the listener calls the feed (its errors may repeat it)."""
        return ["fuzz", str(self.path), self.server.url]

    def read(self, feed: Feed) -> tuple[list[FeedItem], list[str]]:
        if feed.how == "bytes":
            result = parse_feed_document(feed.content, "fuzz", NOW, feed.content_type)
        elif feed.how == "file":
            self.path.write_bytes(feed.content)
            result = self.fetcher.fetch(str(self.path))
        else:
            self.server.feed = feed
            result = self.fetcher.fetch(self.server.url)
        return result.items, result.malformed


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[Reader]:
    server = FeedServer()
    # Local files and this machine's server allowed, as a developer's settings allow them.
    fetcher = FeedFetcher(
        FEED_LIMIT_SECONDS,
        0,
        clock=lambda: NOW,
        policy=AddressPolicy.from_setting("127.0.0.0/8"),
        allow_local_files=True,
    )
    yield Reader(fetcher, server, tmp_path / "feed.xml")
    fetcher.close()
    server.stop()


def check_read(reader: Reader, feed: Feed) -> None:
    """Items and a malformed-entry report, or FeedError with a clean message; nothing else,
    in time."""
    started = time.perf_counter()
    try:
        items, malformed = bounded(
            lambda: reader.read(feed), FEED_LIMIT_SECONDS, "reading", cpu=False
        )
    except FeedError as error:
        # A feed's publisher sent its document: feedparser's reasons quote it (a declared
        # encoding), so what the document holds is not the listener's internal text.
        sent = [*reader.names, feed.content.decode("latin-1")]
        leaked = internal_text(str(error), sent)
        if leaked is not None:
            raise failure("internal text", f"FeedError {leaked!r}") from None
        return
    except PropertyFailed:
        raise
    except Exception as error:
        kind = f"{type(error).__name__} escaped"
        raise failure(kind, f"{feed.how}: {str(error)[:300]}") from error
    if not all(isinstance(item, FeedItem) for item in items):
        raise failure("not an item", f"{feed.how}: {items[:3]!r}")
    if not all(isinstance(reason, str) for reason in malformed):
        raise failure("bad malformed report", f"{malformed[:3]!r}")
    elapsed = time.perf_counter() - started
    assert elapsed <= FEED_LIMIT_SECONDS


@pytest.mark.fuzz(weight=0)
def test_the_feedparser_corpus_gives_items_or_a_feed_error(fuzz: Fuzz, reader: Reader) -> None:
    """Every file of the corpus (the whole of it in ``make fuzz``), parsed from bytes."""
    thorough = budget() > 5_000
    files = corpus() if thorough else corpus(QUICK_PARTS)
    assert len(files) > 100, f"only {len(files)} corpus files under {CORPUS}"
    for path in files:
        fuzz.counted[0] += 1
        try:
            check_read(reader, Feed(path.read_bytes(), None, "bytes"))
        except PropertyFailed as error:
            raise AssertionError(f"{path.relative_to(CORPUS)}: {error}") from error


# ---------------------------------------------------------------------------- mutations

BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        b'<!ENTITY %s "%s">' % (bytes([98 + n]), (b"&" + bytes([97 + n]) + b";") * 10)
        for n in range(8)
    )
    + b']><rss version="2.0"><channel><title>&i;</title><item><title>&i;</title>'
    b"</item></channel></rss>"
)
SNIPPETS: list[bytes] = [
    *(text.encode("utf-8") for text in SPECIAL_STRINGS if text),
    b"\x00",
    b"\xff\xfe\xfd",
    b"\xef\xbb\xbf",
    b"<![CDATA[",
    b"]]>",
    b"&#0;&#xD800;&#x110000;&#99999999999;",
    b"&undefined;",
    b'<?xml version="1.0" encoding="x-unknown"?>',
    b'<!DOCTYPE x SYSTEM "file:///etc/passwd">',
    b'<!ENTITY xxe SYSTEM "http://127.0.0.1:1/">&xxe;',
    b"<item><title>t</title><link>javascript:alert(1)</link><guid>g</guid></item>",
    b"<entry><id></id><published>99999-99-99T99:99:99Z</published></entry>",
    b"<pubDate>Sun, 31 Dec 99999 23:59:59 +9999</pubDate>",
    b"<item>" * 2_000 + b"</item>" * 2_000,
    b"<a:b:c:d xmlns:a='urn:x'>",
]


def _seeds() -> list[bytes]:
    files = corpus(QUICK_PARTS) + corpus(("wellformed/rss", "wellformed/atom10"))
    return [path.read_bytes() for path in files]


def _huge_item(size: int) -> bytes:
    body = b"plastic treaty " * (size // 15)
    return (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><guid>big</guid><title>big</title><description>"
        + body
        + b"</description></item><item><guid>small</guid><title>small</title></item>"
        b"</channel></rss>"
    )


def feeds(seeds: list[bytes]) -> st.SearchStrategy[Feed]:
    seed = st.sampled_from(seeds)

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        content = bytearray(draw(seed))
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(content)))
            how = draw(st.sampled_from(["flip", "cut", "insert", "splice", "delete"]))
            if how == "flip" and content:
                content[min(at, len(content) - 1)] = draw(st.integers(0, 255))
            elif how == "cut":
                del content[at:]
            elif how == "insert":
                content[at:at] = draw(st.sampled_from(SNIPPETS))
            elif how == "splice":
                other = draw(seed)
                content[at:] = other[draw(st.integers(0, len(other))) :]
            else:
                del content[at : at + draw(st.integers(1, 64))]
        return bytes(content)

    content = weighted(
        (6, mutated()),
        (1, seed),
        (1, st.just(BOMB)),
        (1, weighted((3, st.just(200_000)), (1, st.just(5_500_000))).map(_huge_item)),
        (1, st.binary(max_size=512)),
    )
    how = st.sampled_from(["bytes", "file", "http"])

    @st.composite
    def feed(draw: st.DrawFn) -> Feed:  # composite: failures print Feed's short repr
        return Feed(draw(content), draw(st.sampled_from(CONTENT_TYPES)), draw(how))

    return feed()


@pytest.mark.fuzz(weight=6)
def test_mutated_feeds_give_items_or_a_feed_error(fuzz: Fuzz, reader: Reader) -> None:
    memory = MemoryBound()

    @fuzz.given(feeds(_seeds()))
    def reads(feed: Feed) -> None:
        check_read(reader, feed)
        memory.check("reading a feed")

    reads()
