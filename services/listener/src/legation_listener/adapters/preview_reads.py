"""Reading the feeds a ``PreviewQuery`` names, without letting previews take the gRPC server.

A preview that names feeds reads them on a thread of its own, never on the gRPC worker
that serves the call: at most ``max_concurrent`` previews read at once (one more is refused
with :class:`PreviewBusy`, which the API answers RESOURCE_EXHAUSTED), and the worker waits
at most ``deadline_seconds`` (or the caller's own deadline, if shorter) for all the feeds
together, then answers with what was read; a feed not read by then is reported as not read.
A read that outlives the wait keeps its slot until it ends (each read is bounded by its own
timeouts and size limits), so slow feeds can exhaust previews, never the server's workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from legation_core.calls import ResourceExhausted
from legation_listener.adapters.connectors.base import Connector
from legation_listener.adapters.connectors.rss import FeedReader
from legation_listener.domain.cursor import empty_cursor
from legation_listener.domain.items import FeedItem
from legation_listener.domain.preview import MAX_PREVIEW_ITEMS, not_read
from legation_listener.domain.sources import RSS, WEBHOOK, parse_source

log = logging.getLogger(__name__)


def read_source_now(
    spec: str, fetcher: FeedReader, connectors: Mapping[str, Connector]
) -> list[FeedItem]:
    """The items a source gives now, without a cursor: a feed read unconditionally, a
    connector's newest page; a pushed source has nothing to read (LookupError)."""
    source = parse_source(spec)
    if source.kind == RSS:
        return fetcher.fetch(spec).items
    if source.kind == WEBHOOK:
        raise NotReadable(f"{spec}: items are pushed; preview sees them in the recent items")
    connector = connectors.get(source.kind)
    if connector is None:
        raise NotReadable(f"{spec}: the {source.kind} connector is not configured")
    return connector.fetch(source, empty_cursor("preview", spec)).items


class NotReadable(LookupError):
    """A source a preview does not read, whatever it holds (told from its kind alone, so
    the caller may be told why: the message starts with the source)."""


class PreviewBusy(ResourceExhausted):
    """Every preview slot is taken; the message (for the caller) says how many there are."""


@dataclass
class PreviewReading:
    """What the feeds of one preview gave: ``(feed, item)`` pairs (at most ``max_items``)
    and, in request order, one ``failed_feeds`` entry per feed not read: the same words
    for any failure of a read (:func:`~legation_listener.domain.preview.not_read`; the log
    has the reason), the reason itself for a source previews do not read."""

    items: list[tuple[str, FeedItem]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass
class _Progress:
    """Shared between a preview's reading thread and the worker that waits for it."""

    items: list[tuple[str, FeedItem]] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    told: dict[str, str] = field(default_factory=dict)
    finished: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class PreviewReads:
    """Reads feeds for previews with ``read_source(spec) → items`` (which raises when a feed
    cannot be read), bounded in concurrency, time and items."""

    def __init__(
        self,
        read_source: Callable[[str], list[FeedItem]],
        *,
        max_concurrent: int = 2,
        deadline_seconds: float = 15.0,
        max_items: int = MAX_PREVIEW_ITEMS,
    ) -> None:
        self.read_source = read_source
        self.max_concurrent = max_concurrent
        self.deadline_seconds = deadline_seconds
        self.max_items = max_items
        self._slots = threading.BoundedSemaphore(max_concurrent)

    def read(self, feeds: Sequence[str], time_left: float | None = None) -> PreviewReading:
        """The items of ``feeds``, read within ``deadline_seconds`` (or ``time_left``, the
        caller's deadline, when shorter); :class:`PreviewBusy` when every slot is taken."""
        if not feeds:
            return PreviewReading()
        if not self._slots.acquire(blocking=False):
            raise PreviewBusy(
                f"feeds: {self.max_concurrent} previews are already reading feeds, the most at"
                " once; try again shortly (a preview without feeds is always served)"
            )
        budget = self.deadline_seconds
        if time_left is not None:
            budget = max(0.0, min(budget, time_left))
        ends_at = time.monotonic() + budget
        progress = _Progress()
        # A daemon thread per preview (at most max_concurrent: each holds a slot): a read
        # still running when the listener stops does not hold the process.
        threading.Thread(
            target=self._read_all,
            args=(list(feeds), progress, ends_at),
            name="preview-read",
            daemon=True,
        ).start()
        progress.finished.wait(budget)
        with progress.lock:
            reading = PreviewReading(
                items=list(progress.items),
                failed=[
                    progress.told.get(feed) or not_read(feed)
                    for feed in feeds
                    if feed not in progress.done
                ],
            )
            # Whatever the thread reads from now on is dropped.
            progress.done = set(feeds)
        if not progress.finished.is_set():
            log.warning(
                "preview out of time",
                extra={"feeds": list(feeds), "not_read": reading.failed, "seconds": budget},
            )
        return reading

    def _read_all(self, feeds: list[str], progress: _Progress, ends_at: float) -> None:
        try:
            for feed in feeds:
                if time.monotonic() >= ends_at:
                    return
                try:
                    items = self.read_source(feed)
                except NotReadable as error:
                    with progress.lock:
                        progress.told[feed] = str(error)
                    continue
                except Exception as error:  # the caller is told "not read"; the log says why
                    log.info(
                        "preview feed not read",
                        extra={"feed": feed, "problem": f"{type(error).__name__}: {error}"},
                    )
                    continue
                with progress.lock:
                    if feed in progress.done:  # the caller stopped waiting
                        return
                    room = self.max_items - len(progress.items)
                    progress.items.extend((feed, item) for item in items[: max(0, room)])
                    progress.done.add(feed)
        finally:
            progress.finished.set()
            self._slots.release()
