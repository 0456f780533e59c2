"""Our own site's Atom feed (``kind: site-atom``).

The feed file is the channel's whole state: delivering reads the entries back, returns the
existing entry when the message is already there (reconcile mode ``lookup``: the entry id
derives from the idempotency key), and otherwise rewrites the file with the new entry
first. The rewrite goes to a temporary file in the same directory that replaces the feed
atomically, so a crash leaves either the old feed or the new one, never half of one. A lock
(a thread lock plus ``flock`` on ``.<feed>.lock``) serialises writers, including replicas
sharing one volume.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from feedgen.feed import FeedGenerator

from legation_channels.base import (
    ChannelError,
    ChannelLimits,
    ChannelRejected,
    ChannelUnavailable,
    Delivered,
    Outgoing,
    Reconcile,
)

KIND = "site-atom"
# How long a delivery waits for another writer's lock on the feed (as long as the other
# adapters wait for their platform): a writer that hangs must not stop the scheduler.
LOCK_TIMEOUT_SECONDS = 20.0
# Our site's pages take any media; alt text is required because the site must be
# accessible (WCAG 1.1.1). Atom titles are plain text; 300 characters keep them readable.
LIMITS = ChannelLimits(
    max_title_length=300,
    max_media=20,
    media_kinds=frozenset({"image", "video", "document"}),
    alt_text_required=True,
)
ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ENTRY_ID_PREFIX = "urn:uuid:"


class FeedError(ChannelError):
    """The feed file exists but is not a feed this channel wrote."""


def entry_key(idempotency_key: str) -> str:
    """The UUID that names the entry of ``idempotency_key`` (the key itself when it is a
    UUID, as the publisher's delivery ids are)."""
    try:
        return str(uuid.UUID(idempotency_key))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "legation-site-atom:" + idempotency_key))


def entry_id_for(idempotency_key: str) -> str:
    """The Atom entry id of the message with ``idempotency_key``."""
    return ENTRY_ID_PREFIX + entry_key(idempotency_key)


def entry_url(base_url: str, idempotency_key: str) -> str:
    """The public page of the message with ``idempotency_key``."""
    return base_url + entry_key(idempotency_key)


@dataclass(frozen=True)
class Entry:
    """One entry of the feed, as read back."""

    delivered: Delivered
    title: str
    text: str
    language: str
    author: str


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


class SiteAtomChannel:
    """Publishes messages as entries of the Atom feed at ``path``."""

    kind = KIND
    reconcile: Reconcile = "lookup"

    def __init__(
        self,
        path: Path,
        base_url: str,
        title: str,
        clock: Callable[[], datetime] = _utc_now,
        name: str = KIND,
        lock_timeout: float = LOCK_TIMEOUT_SECONDS,
    ) -> None:
        self._name = name
        self.lock_timeout = lock_timeout
        self.path = path
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.title = title
        self.clock = clock
        self.self_url = urljoin(self.base_url, path.name)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The channel's name in events and configuration."""
        return self._name

    @property
    def limits(self) -> ChannelLimits:
        return LIMITS

    def close(self) -> None:
        """Nothing to release: the feed is opened per call."""

    def check(self) -> None:
        """Reads the feed once so a damaged or unreadable file stops start-up (raises FeedError
        or ChannelUnavailable)."""
        self.entries()

    def deliver(self, message: Outgoing) -> Delivered:
        """Adds ``message`` to the feed unless an entry with its key is already there."""
        try:
            return self._deliver(message)
        except OSError as error:
            raise ChannelUnavailable(f"cannot update the feed {self.path}: {error}") from error

    def _deliver(self, message: Outgoing) -> Delivered:
        if not message.title.strip():
            raise ChannelRejected("title is required: every Atom entry has one", field="title")
        entry_id = entry_id_for(message.idempotency_key)
        with self._lock, self._file_lock():
            entries = self._read()
            for entry in entries:
                if entry.delivered.channel_item_id == entry_id:
                    return entry.delivered
            # Whole seconds: the Atom date is what we read back, and it must equal what
            # this call returned so a retry re-emits an identical event.
            now = self.clock().astimezone(UTC).replace(microsecond=0)
            added = Entry(
                Delivered(
                    channel_item_id=entry_id,
                    url=entry_url(self.base_url, message.idempotency_key),
                    published_at=now,
                    newly_published=True,
                ),
                title=message.title,
                text=message.text,
                language=message.language,
                author=message.author,
            )
            # Stable sort: among entries of the same second the newer one stays first.
            ordered = sorted(
                [added, *entries], key=lambda e: e.delivered.published_at, reverse=True
            )
            self._write(ordered)
            return added.delivered

    def find(self, idempotency_key: str) -> Delivered | None:
        """What the feed holds for ``idempotency_key``, or None."""
        entry_id = entry_id_for(idempotency_key)
        for entry in self.entries():
            if entry.delivered.channel_item_id == entry_id:
                return entry.delivered
        return None

    def entries(self) -> list[Entry]:
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
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        # Nothing was written: a retry later is safe.
                        raise ChannelUnavailable(
                            f"the feed {self.path} is locked by another writer "
                            f"(waited {self.lock_timeout:g} s)"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> list[Entry]:
        try:
            root = ET.parse(self.path).getroot()
        except FileNotFoundError:
            return []
        except ET.ParseError as error:
            raise FeedError(f"{self.path} is not well-formed XML: {error}") from None
        if root.tag != ATOM + "feed":
            raise FeedError(f"{self.path} is not an Atom feed (root {root.tag})")
        return [self._entry(element) for element in root.iter(ATOM + "entry")]

    def _entry(self, element: ET.Element) -> Entry:
        entry_id = _text(element, "id")
        if not entry_id.startswith(ENTRY_ID_PREFIX):
            raise FeedError(f"{self.path}: entry id {entry_id!r} is not one of ours")
        key = entry_id.removeprefix(ENTRY_ID_PREFIX)
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
            entry_url(self.base_url, key),
        )
        author = element.find(f"{ATOM}author/{ATOM}name")
        return Entry(
            Delivered(entry_id, link, published_at, False),
            title=_text(element, "title"),
            text=_text(element, "content"),
            language=element.get(XML_LANG, ""),
            author=(author.text or "") if author is not None else "",
        )

    def _render(self, entries: list[Entry]) -> bytes:
        feed = FeedGenerator()
        feed.id(self.base_url)
        feed.title(self.title)
        # Atom requires an author on every entry or on the feed; the site answers for
        # posts that name none.
        feed.author({"name": self.title})
        feed.link(href=self.self_url, rel="self", type="application/atom+xml")
        feed.link(href=self.base_url, rel="alternate", type="text/html")
        feed.updated(entries[0].delivered.published_at if entries else self.clock())
        for item in entries:
            delivered = item.delivered
            entry = feed.add_entry(order="append")
            entry.id(delivered.channel_item_id)
            entry.title(item.title)
            entry.content(item.text, type="text")
            if item.author:
                entry.author({"name": item.author})
            entry.link(href=delivered.url, rel="alternate", hreflang=item.language or None)
            entry.published(delivered.published_at)
            entry.updated(delivered.published_at)
            entry.register_extension("xmllang", _XmlLangExtension, atom=True, rss=False)
            entry.xmllang.language = item.language
        data: bytes = feed.atom_str(pretty=True)
        return data

    def _write(self, entries: list[Entry]) -> None:
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
