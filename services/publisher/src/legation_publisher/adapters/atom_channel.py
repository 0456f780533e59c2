"""Our own site's Atom feed, the first channel.

The feed file is the channel's whole state: publishing reads the entries back, returns the
existing entry when the post is already there, and otherwise rewrites the file with the new
entry first. The rewrite goes to a temporary file in the same directory that replaces the
feed atomically, so a crash leaves either the old feed or the new one, never half of one.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from feedgen.feed import FeedGenerator

from legation_publisher.domain.posts import ChannelError, ChannelResult, ChannelUnavailable, Post

CHANNEL_NAME = "site-atom"
ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ENTRY_ID_PREFIX = "urn:uuid:"


class FeedError(ChannelError):
    """The feed file exists but is not a feed this channel wrote."""


def entry_id_for(post_id: str) -> str:
    """The Atom entry id of a post (post ids are UUIDs)."""
    return ENTRY_ID_PREFIX + post_id


def post_url(base_url: str, post_id: str) -> str:
    """The public page of a post."""
    return base_url + post_id


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _XmlLangExtension:
    """A feedgen entry extension (called with lxml elements): feedgen 1.0 has no per-entry
    ``xml:lang``."""

    language = ""

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_rss(self, item: Any) -> Any:
        return item

    def extend_atom(self, entry: Any) -> Any:
        if self.language:
            entry.attrib[XML_LANG] = self.language
        return entry


class AtomChannel:
    """Publishes posts as entries of the Atom feed at ``path``."""

    def __init__(
        self,
        path: Path,
        base_url: str,
        title: str,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = path
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.title = title
        self.clock = clock
        self.self_url = urljoin(self.base_url, path.name)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The channel's name in Publication events."""
        return CHANNEL_NAME

    def check(self) -> None:
        """Reads the feed once so a damaged or unreadable file stops start-up (raises FeedError
        or ChannelUnavailable)."""
        self.published()

    def publish(self, post: Post) -> ChannelResult:
        """Adds ``post`` to the feed unless an entry with its id is already there."""
        try:
            return self._publish(post)
        except OSError as error:
            raise ChannelUnavailable(f"cannot update the feed {self.path}: {error}") from error

    def _publish(self, post: Post) -> ChannelResult:
        with self._lock, self._file_lock():
            entries = self._read()
            for entry in entries:
                if entry.post.post_id == post.post_id:
                    return entry
            # Whole seconds: the Atom date is what we read back, and it must equal what
            # this call returned so a retry re-emits an identical event.
            now = self.clock().astimezone(UTC).replace(microsecond=0)
            added = ChannelResult(
                channel_item_id=entry_id_for(post.post_id),
                url=post_url(self.base_url, post.post_id),
                published_at=now,
                newly_published=True,
                post=post,
            )
            # Stable sort: among entries of the same second the newer one stays first.
            ordered = sorted([added, *entries], key=lambda e: e.published_at, reverse=True)
            self._write(ordered)
            return added

    def find(self, post_id: str) -> ChannelResult | None:
        """The feed's entry for ``post_id``, or None."""
        for entry in self.published():
            if entry.post.post_id == post_id:
                return entry
        return None

    def published(self) -> list[ChannelResult]:
        """Every entry of the feed, newest first."""
        # The file is only ever replaced whole, so reading needs no lock.
        try:
            return self._read()
        except OSError as error:
            raise ChannelUnavailable(f"cannot read the feed {self.path}: {error}") from error

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        # Another replica may share the volume: without a lock across processes, two
        # concurrent rewrites would each drop the other's entry.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        with lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> list[ChannelResult]:
        try:
            root = ET.parse(self.path).getroot()
        except FileNotFoundError:
            return []
        except ET.ParseError as error:
            raise FeedError(f"{self.path} is not well-formed XML: {error}") from None
        if root.tag != ATOM + "feed":
            raise FeedError(f"{self.path} is not an Atom feed (root {root.tag})")
        return [self._entry(element) for element in root.iter(ATOM + "entry")]

    def _entry(self, element: ET.Element) -> ChannelResult:
        entry_id = _text(element, "id")
        if not entry_id.startswith(ENTRY_ID_PREFIX):
            raise FeedError(f"{self.path}: entry id {entry_id!r} is not one of ours")
        post_id = entry_id.removeprefix(ENTRY_ID_PREFIX)
        published = _text(element, "published") or _text(element, "updated")
        try:
            published_at = datetime.fromisoformat(published).astimezone(UTC)
        except ValueError:
            raise FeedError(f"{self.path}: entry {entry_id} has a bad date {published!r}") from None
        link = next(
            (
                item.get("href", "")
                for item in element.iter(ATOM + "link")
                if item.get("rel", "alternate") == "alternate"
            ),
            post_url(self.base_url, post_id),
        )
        author = element.find(f"{ATOM}author/{ATOM}name")
        post = Post(
            post_id=post_id,
            title=_text(element, "title"),
            body=_text(element, "content"),
            language=element.get(XML_LANG, ""),
            author=(author.text or "") if author is not None else "",
        )
        return ChannelResult(entry_id, link, published_at, False, post)

    def _render(self, entries: list[ChannelResult]) -> bytes:
        feed = FeedGenerator()
        feed.id(self.base_url)
        feed.title(self.title)
        # Atom requires an author on every entry or on the feed; the site answers for
        # posts that name none.
        feed.author({"name": self.title})
        feed.link(href=self.self_url, rel="self", type="application/atom+xml")
        feed.link(href=self.base_url, rel="alternate", type="text/html")
        feed.updated(entries[0].published_at if entries else self.clock())
        for result in entries:
            post = result.post
            entry = feed.add_entry(order="append")
            entry.id(result.channel_item_id)
            entry.title(post.title)
            entry.content(post.body, type="text")
            if post.author:
                entry.author({"name": post.author})
            entry.link(href=result.url, rel="alternate", hreflang=post.language or None)
            entry.published(result.published_at)
            entry.updated(result.published_at)
            entry.register_extension("xmllang", _XmlLangExtension, atom=True, rss=False)
            entry.xmllang.language = post.language
        data: bytes = feed.atom_str(pretty=True)
        return data

    def _write(self, entries: list[ChannelResult]) -> None:
        data = self._render(entries)
        directory = self.path.parent
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before the replace
            dir=directory, prefix=f".{self.path.name}.", suffix=".tmp", delete=False
        )
        temporary = Path(handle.name)
        try:
            with handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            # The web server serving the site reads the feed; mkstemp's 0600 would hide it.
            temporary.chmod(0o644)
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        # Make the rename itself durable before we report the post as published.
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)


def _text(element: ET.Element, name: str) -> str:
    child = element.find(ATOM + name)
    return (child.text or "") if child is not None else ""
