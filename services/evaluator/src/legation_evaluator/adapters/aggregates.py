"""The maintained aggregates in the running evaluator: fed by every acknowledged bulk
(``EventIndex.bulk``: the live indexer, the rebuild from Kafka, ``reindex`` through the same
object), loaded once from the index at start-up, read by scorecards.

The indexing path only turns documents into facts and queues them (counting them itself
when no reader holds the lock, never waiting for one); a scorecard counts what is queued and
reads under the lock for the milliseconds its sums take, never a search, so readers cannot
hold up a bulk, here or on the index server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from opensearchpy import OpenSearch, helpers

from legation.events.v1 import evaluate_pb2
from legation_evaluator.domain.documents import Document
from legation_evaluator.domain.rollup import (
    Aggregates,
    Answer,
    Facts,
    facts_of,
    scorecard_response,
)

log = logging.getLogger(__name__)
# Documents read per page while loading the aggregates from the index.
LOAD_PAGE = 2000
# What of a document the aggregates read (the rest stays in the index).
LOADED_FIELDS = [
    "event_type",
    "source_service",
    "issue_id",
    "occurred_at",
    "campaign_ids",
    "mention.language",
    "mention.source",
    "mention.source_url",
    "mention.author",
    "mention.author_id",
    "mention.reach",
    "mention.sentiment",
    "mention.stance",
    "publication.language",
    "publication.channel",
    "interaction.language",
    "interaction.channel",
    "interaction.kind",
    "interaction.actor",
    "interaction.conversation_id",
    "interaction.response_seconds",
    "link_click.language",
    "link_click.channel",
    "partner_activity.joint",
    "partner_activity.partner_id",
    "feedback.rating",
]


# Whether this process's indexer holds every partition it reads, and how many times its
# assignment changed (ConsumerLoop.assigned, .assignment_changes).
Coverage = Callable[[], tuple[bool, int]]


class MaintainedAggregates:
    """Thread-safe :class:`~legation_evaluator.domain.rollup.Aggregates` and whether they
    hold everything the index held when they were loaded (``ready``).

    They count the bulks of this process only. With a ``coverage`` (the live indexer's
    assignment) they are used only while this process's indexer has held every partition,
    without a change, since the load began: when another replica takes partitions, its
    bulks are not counted here, so scorecards search the events again until this process
    holds everything once more and has loaded the index again."""

    def __init__(self, coverage: Coverage | None = None) -> None:
        self._lock = threading.Lock()
        self._store = Aggregates()
        self._pending: deque[list[tuple[str, Facts]]] = deque()
        self.ready = threading.Event()
        self.coverage = coverage
        self._since: int | None = None
        self.loaded = 0
        self.load_seconds = 0.0

    def covered(self) -> bool:
        """Whether this process holds every partition (always, without a coverage)."""
        return self.coverage is None or self.coverage()[0]

    def usable(self) -> bool:
        """Loaded, and nothing was indexed elsewhere since (see the class docstring)."""
        if not self.ready.is_set():
            return False
        if self.coverage is None:
            return True
        whole, changes = self.coverage()
        if whole and changes == self._since:
            return True
        self.ready.clear()
        log.warning(
            "the indexer's partitions changed: scorecards search the events until the "
            "aggregates are loaded again"
        )
        return False

    def add_documents(self, documents: Iterable[Document]) -> None:
        """Counts documents the index acknowledged (idempotent per event id and version)."""
        self._add([(d.doc_id, facts_of(d.body, d.version)) for d in documents])

    def add_hits(self, hits: Iterable[dict[str, Any]]) -> int:
        """Counts search hits (``_id``, ``_version``, ``_source``); returns how many."""
        facts = [(str(h["_id"]), facts_of(h["_source"], int(h.get("_version", 0)))) for h in hits]
        self._add(facts)
        return len(facts)

    def _add(self, facts: list[tuple[str, Facts]]) -> None:
        # The indexing path never waits for a reader: it queues its facts and counts them
        # itself only when nobody holds the lock; a reader counts what is queued before it
        # reads. (Facts of one event commute: the higher version wins in any order.)
        self._pending.append(facts)
        if self._lock.acquire(blocking=False):
            try:
                self._drain()
            finally:
                self._lock.release()

    def _drain(self) -> None:
        """Counts the queued facts (the lock held)."""
        while self._pending:
            for event_id, fact in self._pending.popleft():
                self._store.apply(event_id, fact)

    def version(self, campaign_id: str) -> int:
        """Moves whenever the campaign's aggregates change."""
        with self._lock:
            self._drain()
            rollup = self._store.campaigns.get(campaign_id)
            return -1 if rollup is None else rollup.version

    def answer(self, campaign: evaluate_pb2.Campaign) -> tuple[Answer, int]:
        """The campaign's scorecard response from the aggregates, and their version."""
        with self._lock:
            self._drain()
            rollup = self._store.rollup(campaign.campaign_id)
            answer = scorecard_response(campaign, rollup)
            return answer, rollup.version

    def events(self) -> int:
        with self._lock:
            self._drain()
            return len(self._store.events)

    def load(self, client: OpenSearch, pattern: str, stop: threading.Event | None = None) -> int:
        """Reads every document of ``pattern`` into the aggregates, then marks them ready.
        Bulks acknowledged meanwhile are counted as they come (the versions sort out the
        overlap), so nothing indexed after the load started is missed."""
        started = time.monotonic()
        self._since = None if self.coverage is None else self.coverage()[1]
        total = 0
        page: list[dict[str, Any]] = []
        for hit in _scan(client, pattern):
            page.append(hit)
            if len(page) >= LOAD_PAGE:
                total += self.add_hits(page)
                page.clear()
                if stop is not None and stop.is_set():
                    return total
        total += self.add_hits(page)
        self.loaded = total
        self.load_seconds = time.monotonic() - started
        self.ready.set()
        log.info(
            "aggregates loaded from the index",
            extra={"documents": total, "seconds": round(self.load_seconds, 1)},
        )
        return total


def _scan(client: OpenSearch, pattern: str) -> Iterator[dict[str, Any]]:
    hits: Iterator[dict[str, Any]] = helpers.scan(
        client,
        index=pattern,
        query={"query": {"match_all": {}}, "version": True, "_source": LOADED_FIELDS},
        size=LOAD_PAGE,
        ignore_unavailable=True,
    )
    return hits


class AggregatesLoader:
    """A periodic job: loads the aggregates from the index in a thread of its own (so the
    job's heartbeat keeps beating), again after a failed load."""

    def __init__(
        self,
        aggregates: MaintainedAggregates,
        client: OpenSearch,
        pattern: str,
        stop: threading.Event,
    ) -> None:
        self.aggregates = aggregates
        self.client = client
        self.pattern = pattern
        self.stop = stop
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        try:
            self.aggregates.load(self.client, self.pattern, self.stop)
        except Exception:
            log.exception("loading the aggregates failed: scorecards search the events meanwhile")

    def __call__(self) -> None:
        if self.aggregates.usable() or not self.aggregates.covered():
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="aggregates-load", daemon=True)
            self._thread.start()
