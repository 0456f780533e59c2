"""The maintained aggregates in the running evaluator: loaded from the index at start-up,
then fed by this process's tail of the log (``adapters/tail.py``: every partition, whatever
the indexer group gave this replica), read by scorecards. Without a tail (the bench, tests
of one process) every acknowledged bulk feeds them instead (``EventIndex.bulk``).

The feeding path only turns documents into facts and queues them (counting them itself
when no reader holds the lock, never waiting for one); a scorecard counts what is queued and
reads under the lock for the milliseconds its sums take, never a search, so readers cannot
hold up the tail or a bulk, here or on the index server. The campaigns themselves (their
objectives, which every scorecard reads first) are kept too, from the same documents: on
the index stand-in a lookup of one campaign waited up to 3.6 s behind the bulks.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from google.protobuf import json_format
from opensearchpy import NotFoundError, OpenSearch, helpers

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
    "campaign",  # the campaign documents' campaign (see MaintainedAggregates.campaign)
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


class MaintainedAggregates:
    """Thread-safe :class:`~legation_evaluator.domain.rollup.Aggregates` and whether they
    hold everything the index holds (``ready``).

    In the running evaluator they are ``tailed``: fed by a reader of every partition of the
    indexed topics (:class:`~legation_evaluator.adapters.tail.LogTail`), whatever the
    indexer group gave this process, so every replica's are whole; the bulk path then
    counts nothing (the tail reads the same records into the same facts). Not tailed (the
    bench, tests of one process), the bulk path counts what the index acknowledged."""

    def __init__(self, tailed: bool = False) -> None:
        self._lock = threading.Lock()
        self._store = Aggregates()
        self._pending: deque[list[tuple[str, Facts]]] = deque()
        self.ready = threading.Event()
        self.tailed = tailed
        # Versions of a store after a reset never equal one of before (cached answers).
        self._generation = 0
        self.loaded = 0
        self.load_seconds = 0.0
        # Each campaign's latest version (its event's version, event id, the campaign), and
        # the campaign of each campaign event, for a refusal; a campaign whose version the
        # index refused is looked up in the index again (what it holds is not known here).
        # Rare writes, lookups of microseconds: a lock of their own.
        self._campaign_lock = threading.Lock()
        self._campaigns: dict[str, tuple[int, str, evaluate_pb2.Campaign]] = {}
        self._campaign_of: dict[str, str] = {}
        self._searched: set[str] = set()
        # Events refused before (or without) being fed here: a DLQ record may come first.
        self._refused_events: set[str] = set()

    def usable(self) -> bool:
        """Whether scorecards may read them (loaded, and caught up with the log when
        tailed)."""
        return self.ready.is_set()

    def reset(self) -> None:
        """Forgets everything (a tail that stopped: whole no more until loaded again)."""
        self.ready.clear()
        with self._lock:
            self._pending.clear()
            self._store = Aggregates()
            self._generation += 1
        with self._campaign_lock:
            self._campaigns.clear()
            self._campaign_of.clear()
            self._searched.clear()
            self._refused_events.clear()

    def add_documents(self, documents: Iterable[Document]) -> None:
        """Counts documents the index acknowledged (idempotent per event id and version)."""
        self._feed([(d.doc_id, d.version, d.body) for d in documents])

    def add_hits(self, hits: Iterable[dict[str, Any]]) -> int:
        """Counts search hits (``_id``, ``_version``, ``_source``); returns how many."""
        rows = [(str(h["_id"]), int(h.get("_version", 0)), h["_source"]) for h in hits]
        self._feed(rows)
        return len(rows)

    def _feed(self, rows: list[tuple[str, int, dict[str, Any]]]) -> None:
        """Counts documents given as (event id, version, body) and keeps their campaigns."""
        self._keep_campaigns(rows)
        self._add([(event_id, facts_of(body, version)) for event_id, version, body in rows])

    def _keep_campaigns(self, documents: Iterable[tuple[str, int, dict[str, Any]]]) -> None:
        """Keeps the latest version of each campaign among ``documents`` (event id, version,
        body); the others pass by."""
        for event_id, version, body in documents:
            found = body.get("campaign")
            if not isinstance(found, dict):
                continue
            try:
                campaign = json_format.ParseDict(found, evaluate_pb2.Campaign())
            except json_format.ParseError:
                # Not the converter's output: the index's answer is the one to trust.
                log.warning("a campaign document not read back", extra={"event_id": event_id})
                with self._campaign_lock:
                    if isinstance(found.get("campaign_id"), str):
                        self._searched.add(found["campaign_id"])
                continue
            key = campaign.campaign_id
            with self._campaign_lock:
                self._campaign_of[event_id] = key
                if event_id in self._refused_events:
                    self._searched.add(key)
                held = self._campaigns.get(key)
                if held is None or (version, event_id) > held[:2]:
                    self._campaigns[key] = (version, event_id, campaign)

    def campaign(self, campaign_id: str) -> evaluate_pb2.Campaign | None:
        """The campaign's latest version as the documents fed here say it (the event with
        the highest version, as the index's lookup sorts by when it was observed); None
        when they cannot say (not usable, or reset while read; none seen, or the index
        refused one of its versions): look it up in the index then."""
        if not self.usable():
            return None
        with self._campaign_lock:
            held = None if campaign_id in self._searched else self._campaigns.get(campaign_id)
        if held is None or not self.usable():
            return None
        campaign = evaluate_pb2.Campaign()
        campaign.CopyFrom(held[2])  # the caller's to change
        return campaign

    def campaign_ids(self) -> list[str] | None:
        """Every campaign the documents fed here named, sorted; None when not usable (or
        reset while read): search the index then."""
        if not self.usable():
            return None
        with self._campaign_lock:
            held = sorted({*self._campaigns, *self._searched})
        return held if self.usable() else None

    def refuse(self, event_id: str, version: int) -> bool:
        """A version of an event the index refused for good (see
        :meth:`~legation_evaluator.domain.rollup.Aggregates.refuse`); True when it had been
        counted."""
        with self._campaign_lock:
            self._refused_events.add(event_id)
            if event_id in self._campaign_of:
                self._searched.add(self._campaign_of[event_id])
        with self._lock:
            self._drain()
            return self._store.refuse(event_id, version)

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
            return -1 if rollup is None else self._stamped(rollup.version)

    def answer(self, campaign: evaluate_pb2.Campaign) -> tuple[Answer, int]:
        """The campaign's scorecard response from the aggregates, and their version."""
        with self._lock:
            self._drain()
            rollup = self._store.rollup(campaign.campaign_id)
            answer = scorecard_response(campaign, rollup)
            return answer, self._stamped(rollup.version)

    def _stamped(self, version: int) -> int:
        return (self._generation << 48) + version

    def events(self) -> int:
        with self._lock:
            self._drain()
            return len(self._store.events)

    def load(
        self,
        client: OpenSearch,
        pattern: str,
        stop: threading.Event | None = None,
        *,
        mark_ready: bool = True,
    ) -> int:
        """Reads every document of ``pattern`` into the aggregates, then marks them ready
        (unless ``mark_ready`` is False: a tail marks them once it caught up). The indices
        are refreshed first, so every document acknowledged before the load is read.
        Documents counted meanwhile are kept (the versions sort out the overlap)."""
        started = time.monotonic()
        with contextlib.suppress(NotFoundError):
            client.indices.refresh(index=pattern, allow_no_indices=True, ignore_unavailable=True)
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
        if mark_ready:
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


# Runs the aggregates' tail of the log (``LogTail.run``) until the service stops: it calls the
# load when its start is taken (False: do not go on).
Tail = Callable[[Callable[[], bool]], None]


class AggregatesLoader:
    """A periodic job: loads the aggregates from the index in a thread of its own (so the
    job's heartbeat keeps beating), again after a failed load.

    With a ``tail`` the same thread then follows the log (``LogTail.run``: it takes where
    the indexer group stands, has the index loaded, reads on from there); a tail that
    stops (an error) leaves the aggregates reset, and the next tick starts over. Nothing
    starts while the index is being rebuilt from Kafka (``rebuilding``: it holds only part
    of what it will), and a load during which a rebuild began is not used."""

    def __init__(
        self,
        aggregates: MaintainedAggregates,
        client: OpenSearch,
        pattern: str,
        stop: threading.Event,
        *,
        tail: Tail | None = None,
        rebuilding: Callable[[], bool] = lambda: False,
    ) -> None:
        self.aggregates = aggregates
        self.client = client
        self.pattern = pattern
        self.stop = stop
        self.tail = tail
        self.rebuilding = rebuilding
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        try:
            if self.tail is None:
                self.aggregates.load(self.client, self.pattern, self.stop)
            else:
                self.tail(self._load)
        except Exception:
            log.exception("the aggregates stopped: scorecards search the events meanwhile")
        finally:
            if self.tail is not None:
                self.aggregates.reset()

    def _load(self) -> bool:
        self.aggregates.load(self.client, self.pattern, self.stop, mark_ready=False)
        return not (self.stop.is_set() or self.rebuilding())

    def __call__(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        if self.stop.is_set() or (self.tail is None and self.aggregates.usable()):
            return
        if self.rebuilding():
            return
        self._thread = threading.Thread(target=self._run, name="aggregates", daemon=True)
        self._thread.start()
