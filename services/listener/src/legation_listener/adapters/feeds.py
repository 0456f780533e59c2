"""Reading RSS and Atom feeds over HTTP(S) or from local files.

An HTTP read has a timeout, is retried a bounded number of times with exponential backoff
after a connection error, a 5xx or a 429 (a Retry-After is honoured), and is conditional:
the ETag and Last-Modified of the previous read go with it, and a 304 means nothing new.

Every read is bounded: at most ``max_bytes`` of body (:data:`MAX_FEED_BYTES`, streamed and
refused past the limit, never read whole first), at most ``max_read_seconds`` in all when
set (a server that trickles a byte at a time cannot hold a read), connections only to the
addresses the :class:`~legation_listener.domain.addresses.AddressPolicy` permits
(``adapters/netguard.py``), and local files only when ``allow_local_files`` (development):
then only regular files, opened without blocking (a FIFO or a device is refused).
"""

from __future__ import annotations

import calendar
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import feedparser
import httpx

from legation_core.ids import stable_id
from legation_core.retry_after import retry_after_seconds
from legation_listener.adapters.netguard import FetchRefused, declared_length, guarded_transport
from legation_listener.domain.addresses import AddressPolicy
from legation_listener.domain.items import FeedItem, make_feed_item
from legation_listener.domain.sources import is_local_feed

log = logging.getLogger(__name__)

USER_AGENT = "legation-listener/0.1 (+https://github.com/legation)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)
MAX_FEED_BYTES = 20 * 1024 * 1024
"""Most bytes of one feed document (decoded): a feed is a few hundred kilobytes at most,
anything far larger is a mistake or an attack. A larger one fails the read, not retried."""
MAX_ARTICLE_BYTES = 5 * 1024 * 1024
"""Most bytes of one article page read for its full text (a larger one keeps the summary)."""
# Ids of skipped entries kept in the cursor only up to this length (a huge id is not kept).
_MAX_KEPT_ID = 1000
ARTICLE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"


class FeedError(Exception):
    """A feed could not be read or is not a feed; the message says which and why.
    ``retry_after`` is set when the server asked to be read again later (HTTP 429 or 503
    with Retry-After), in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class FetchResult:
    """One read of a feed. ``not_modified`` (HTTP 304) means the feed has not changed since
    the validators sent, and ``items`` is empty."""

    items: list[FeedItem] = field(default_factory=list)
    not_modified: bool = False
    etag: str = ""
    last_modified: str = ""
    # One reason per entry that could not become an item (the other entries still count).
    malformed: list[str] = field(default_factory=list)
    # The id of each entry of ``malformed`` ("" when it has none), in the same order.
    malformed_ids: list[str] = field(default_factory=list)


def utc_now() -> datetime:
    return datetime.now(UTC)


def local_path(feed: str) -> Path:
    """The file a local feed names."""
    if "://" not in feed:
        return Path(feed)
    parts = urlsplit(feed)
    if parts.netloc not in ("", "localhost"):
        raise FeedError(f"{feed}: file URLs on another host are not supported")
    return Path(url2pathname(parts.path))


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _time(value: Any) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        # feedparser gives every date as a UTC struct_time.
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _body(entry: Mapping[str, Any]) -> str:
    """The richest text an entry has: its content, else its summary."""
    for content in entry.get("content") or []:
        value = _text(content.get("value"))
        if value:
            return value
    return _text(entry.get("summary"))


def _declared_language(entry: Mapping[str, Any], feed_language: str) -> str:
    """The language the entry itself declares (xml:lang on the entry or its parts). Atom
    entries inherit the feed's xml:lang, and that inherited value is the feed's, not the
    entry's."""
    details = [
        *(entry.get("content") or []),
        entry.get("summary_detail"),
        entry.get("title_detail"),
    ]
    for detail in details:
        if detail:
            language = _text(detail.get("language"))
            if language and language.lower() != feed_language.lower():
                return language
    return ""


def entry_to_item(
    entry: Mapping[str, Any], feed: str, feed_language: str, fetched_at: datetime
) -> FeedItem:
    """A feedparser entry as a :class:`FeedItem`. The id is the entry's id or guid, else its
    link, else a hash of its feed, title and text (stable across reads)."""
    link = _text(entry.get("link"))
    title = _text(entry.get("title"))
    body = _body(entry)
    item_id = _text(entry.get("id")) or link or stable_id("feed-item", feed, title, body)
    has_content = any(_text(content.get("value")) for content in entry.get("content") or [])
    return make_feed_item(
        item_id=item_id,
        url=link if link.lower().startswith(("http://", "https://")) else "",
        title=title,
        body=body,
        author=_text(entry.get("author")),
        published_at=_time(entry.get("published_parsed")) or _time(entry.get("updated_parsed")),
        declared_language=_declared_language(entry, feed_language),
        feed_language=feed_language,
        fetched_at=fetched_at,
        summary_only=not has_content and bool(body),
    )


def parse_feed_document(
    content: bytes, feed: str, fetched_at: datetime, content_type: str | None = None
) -> FetchResult:
    """The items of an RSS or Atom document, and one reason per entry that could not
    become an item (malformed, or over the size limits of
    :mod:`~legation_listener.domain.items`) with its id; :class:`FeedError` when it is not
    a feed at all."""
    headers = {"content-type": content_type} if content_type else {}
    try:
        parsed = feedparser.parse(content, response_headers=headers)
    except Exception:
        # feedparser reports most defects as "bozo", but some ill-formed documents raise
        # from inside it (a declared encoding with a NUL: ValueError; <width> outside an
        # <image>: TypeError). Whatever it raises, this document cannot be read; the
        # reason stays in the log, the caller gets no parser internals.
        log.warning("feedparser failed on %s", feed, exc_info=True)
        raise FeedError(f"{feed} is not a readable feed: the feed parser failed on it") from None
    # feedparser's result holds only the keys it got to (an empty document has no
    # "version"), so it is read as a mapping whose shape is checked, never by attribute.
    entries, channel = parsed.get("entries"), parsed.get("feed")
    if not isinstance(entries, list) or not isinstance(channel, Mapping):
        raise FeedError(f"{feed} is not a readable feed: no RSS or Atom document found")
    if not entries and (parsed.get("bozo") or not parsed.get("version")):
        reason = parsed.get("bozo_exception") or "no RSS or Atom document found"
        raise FeedError(f"{feed} is not a readable feed: {reason}")
    feed_language = _text(channel.get("language"))
    result = FetchResult()
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, Mapping):
            result.malformed.append(f"entry {number}: not an entry")
            result.malformed_ids.append("")
            continue
        try:
            result.items.append(entry_to_item(entry, feed, feed_language, fetched_at))
        except (ValueError, TypeError, AttributeError) as error:
            result.malformed.append(f"entry {number}: {error}")
            entry_id = _text(entry.get("id")) or _text(entry.get("link"))
            result.malformed_ids.append(entry_id if len(entry_id) <= _MAX_KEPT_ID else "")
    return result


class FeedFetcher:
    """Reads feeds; one instance is shared by every poll (it keeps an HTTP connection pool).

    ``retries`` is the number of attempts after the first; backoff doubles from
    ``backoff_seconds`` up to ``max_backoff_seconds``. A server that asks to be retried later
    than ``max_backoff_seconds`` fails the read now: the next poll tries again. Setting
    ``stop`` abandons a read that is waiting to retry.

    ``policy`` says which addresses may be connected to (public ones only by default);
    ``allow_local_files`` lets a feed be a local file (development only);
    ``max_read_seconds`` bounds one whole read, retries included (None: only each request's
    timeout).
    """

    def __init__(
        self,
        timeout_seconds: float,
        retries: int,
        *,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        max_bytes: int = MAX_FEED_BYTES,
        stop: threading.Event | None = None,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] = utc_now,
        policy: AddressPolicy | None = None,
        allow_local_files: bool = False,
        max_read_seconds: float | None = None,
    ) -> None:
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.max_bytes = max_bytes
        self.allow_local_files = allow_local_files
        self.max_read_seconds = max_read_seconds
        self._stop = stop or threading.Event()
        self._clock = clock
        self._client = client or httpx.Client(
            timeout=timeout_seconds,
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
            transport=guarded_transport(policy or AddressPolicy()),
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def fetch(self, feed: str, etag: str = "", last_modified: str = "") -> FetchResult:
        """Reads ``feed``; ``etag`` and ``last_modified`` come from the previous read."""
        if is_local_feed(feed):
            return self._read_file(feed)
        deadline = None
        if self.max_read_seconds is not None:
            deadline = time.monotonic() + self.max_read_seconds
        return self._read_http(feed, etag, last_modified, deadline)

    def _read_file(self, feed: str) -> FetchResult:
        if not self.allow_local_files:
            raise FeedError(
                f"{feed}: local files are not read (LEGATION_LISTENER_ALLOW_LOCAL_FEEDS)"
            )
        content = read_regular_file(local_path(feed), self.max_bytes, feed)
        return parse_feed_document(content, feed, self._clock())

    def _read_http(
        self, feed: str, etag: str, last_modified: str, deadline: float | None = None
    ) -> FetchResult:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        attempt = 0
        while True:
            asked_wait: float | None = None
            try:
                response, content = self._get(feed, headers, deadline)
            except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.TooManyRedirects) as error:
                raise FeedError(f"{feed}: {error}") from None
            except FetchRefused as error:  # not worth a retry
                raise FeedError(f"{feed}: {error}") from None
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                status = response.status_code
                if status == httpx.codes.NOT_MODIFIED:
                    return FetchResult(not_modified=True, etag=etag, last_modified=last_modified)
                if 200 <= status < 300:
                    parsed = parse_feed_document(
                        content, feed, self._clock(), response.headers.get("content-type")
                    )
                    return FetchResult(
                        items=parsed.items,
                        etag=response.headers.get("etag", ""),
                        last_modified=response.headers.get("last-modified", ""),
                        malformed=parsed.malformed,
                        malformed_ids=parsed.malformed_ids,
                    )
                if status != httpx.codes.TOO_MANY_REQUESTS and status < 500:
                    raise FeedError(f"{feed}: HTTP {status}")
                problem = f"HTTP {status}"
                asked_wait = retry_after_seconds(response.headers.get("retry-after"))
            if attempt >= self.retries:
                raise FeedError(f"{feed}: {problem} (after {attempt + 1} attempts)", asked_wait)
            delay = min(self.backoff_seconds * 2**attempt, self.max_backoff_seconds)
            if asked_wait is not None:
                if asked_wait > self.max_backoff_seconds:
                    raise FeedError(
                        f"{feed}: {problem}, retry asked after {asked_wait:.0f}s", asked_wait
                    )
                delay = asked_wait
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise FeedError(f"{feed}: {problem} (no time left to retry)", asked_wait)
            log.info(
                "feed read failed, retrying",
                extra={"feed": feed, "problem": problem, "attempt": attempt + 1, "delay": delay},
            )
            if self._stop.wait(delay):
                raise FeedError(f"{feed}: abandoned while stopping ({problem})")
            attempt += 1

    def fetch_article(self, url: str, max_bytes: int = MAX_ARTICLE_BYTES) -> tuple[bytes, str]:
        """The body and content type of the web page ``url`` (one GET, no retries: an
        article that cannot be read now keeps the feed's summary); :class:`FeedError` for
        anything but a 2xx HTML page of at most ``max_bytes``."""
        try:
            with self._client.stream("GET", url, headers={"Accept": ARTICLE_ACCEPT}) as response:
                if declared_length(response.headers) > max_bytes:
                    raise FeedError(f"{url} is larger than {max_bytes} bytes")
                if not 200 <= response.status_code < 300:
                    raise FeedError(f"{url}: HTTP {response.status_code}")
                content_type = response.headers.get("content-type", "")
                if "html" not in content_type.lower():
                    raise FeedError(f"{url}: not an HTML page ({content_type or 'no type'})")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise FeedError(f"{url} is larger than {max_bytes} bytes")
                    chunks.append(chunk)
                return b"".join(chunks), content_type
        except (httpx.HTTPError, FetchRefused) as error:
            raise FeedError(f"{url}: {type(error).__name__}: {error}") from None

    def _get(
        self, url: str, headers: dict[str, str], deadline: float | None = None
    ) -> tuple[httpx.Response, bytes]:
        """One GET; the body is read only for a success, never past ``max_bytes`` and never
        past ``deadline`` (``time.monotonic()``)."""
        timeout = None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise FeedError(f"{url}: out of time ({self.max_read_seconds:g} s per read)")
            # No single socket operation may outlast the read's time.
            timeout = httpx.Timeout(min(left, _seconds(self._client.timeout.read)))
        too_large = (
            f"{url} is larger than the limit of {self.max_bytes} bytes per document"
            " (refused, not retried)"
        )
        with self._client.stream(
            "GET", url, headers=headers, timeout=timeout or httpx.USE_CLIENT_DEFAULT
        ) as response:
            if not 200 <= response.status_code < 300:
                return response, b""
            if declared_length(response.headers) > self.max_bytes:
                raise FeedError(too_large)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise FeedError(too_large)
                if deadline is not None and time.monotonic() > deadline:
                    raise FeedError(f"{url}: out of time ({self.max_read_seconds:g} s per read)")
                chunks.append(chunk)
            return response, b"".join(chunks)


def _seconds(value: float | None) -> float:
    return value if value is not None else float("inf")


def read_regular_file(path: Path, max_bytes: int, feed: str) -> bytes:
    """The content of ``path`` when it is a regular file of at most ``max_bytes``;
    :class:`FeedError` otherwise. Opened without blocking and checked on the open file
    (not the name), so a FIFO, a socket or a device is refused without waiting on it, and
    read at most ``max_bytes + 1`` bytes."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise FeedError(f"{feed} cannot be read: {error.strerror or error}") from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise FeedError(f"{feed} is not a regular file")
        content = handle.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise FeedError(f"{feed} is larger than the limit of {max_bytes} bytes per document")
    return content
