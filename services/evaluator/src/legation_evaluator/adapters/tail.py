"""Every replica's aggregates whole, whatever part of the log its indexer holds.

The indexer group splits the partitions over the replicas, so one process's bulks are only
part of what the index holds. :class:`LogTail` is a reader of every partition of the topics
the indexer indexes, without a consumer group (it moves no committed offset and takes no
partition from the indexer), that turns each record into facts through the same path as the
bulk path did: ``document_for`` (the index's document) then ``facts_of``; the facts are
keyed by event id and external version, so what it reads twice, or what the index scan at
start-up read too, counts once.

Where it starts: the offsets the indexer group had committed before the aggregates were
loaded from the index (the group commits only after the index acknowledged a bulk, so what
lies before them is in the scan; where the group committed nothing, the partition's
beginning). Partitions added later are read from their beginning. Until it has read up to
the ends of the log as they were when it started, scorecards search the events.

What the index refused for good (the indexer dead-letters the record to ``<topic>.dlq``
with its group in ``dlq-consumer-group``) must not count: the tail reads those DLQs from
their beginning too, and each record the indexer group dead-lettered takes its version out
of the aggregates (and keeps it out if it comes later), counting instead what the index
holds of the event (an older version, or nothing), read by id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from opensearchpy import ConnectionError as OpenSearchConnectionError
from opensearchpy import OpenSearch, TransportError
from prometheus_client import CollectorRegistry, Gauge

from legation_core.catalog import DLQ_SUFFIX
from legation_core.codec import EventCodec, InvalidEvent
from legation_core.config import CoreSettings
from legation_core.consumer import IdleWait
from legation_core.kafka import client_options
from legation_evaluator.adapters.aggregates import MaintainedAggregates
from legation_evaluator.adapters.changes import ChangeFeed
from legation_evaluator.domain.documents import Document, document_for, monthly_kinds

log = logging.getLogger(__name__)
# How often the tail looks for partitions added to its topics (and their DLQs).
CHECK_SECONDS = 30.0
# Records taken per poll.
BATCH = 500
# How often the tail looks whether it caught up with the log of its start, and then how
# often it counts its lag (the gauge).
CATCH_UP_CHECK_SECONDS = 0.5
LAG_SECONDS = 5.0

# The offsets the indexer group committed on these partitions (None: nothing committed).
Committed = Callable[[list[TopicPartition]], dict[TopicPartition, int | None]]


class LogTail:
    """Feeds ``aggregates`` from every partition of ``topics`` (see the module docstring);
    :meth:`run` is the loader's thread (``AggregatesLoader``)."""

    def __init__(
        self,
        settings: CoreSettings,
        aggregates: MaintainedAggregates,
        client: OpenSearch,
        prefix: str,
        codec: EventCodec,
        topics: Sequence[str],
        *,
        group: str,
        committed: Committed,
        stop: threading.Event,
        changes: ChangeFeed | None = None,
        registry: CollectorRegistry | None = None,
        check_seconds: float = CHECK_SECONDS,
        pace_seconds: float = 0.0,
    ) -> None:
        self.settings = settings
        self.aggregates = aggregates
        self.client = client
        self.prefix = prefix
        self.codec = codec
        self.topics = list(topics)
        self.group = group
        self.committed = committed
        self.stop = stop
        self.changes = changes
        self.check_seconds = check_seconds
        # Least time between two polls while the tail keeps up: one poll costs about the
        # same found or not (kafka-python fetches every partition, ~6 ms of CPU for ~100).
        # A record waits up to about twice this: the fetch that brings it may be answered
        # just after a poll, and is read at the next.
        self.pace_seconds = pace_seconds
        self._monthly = monthly_kinds(codec.catalog)
        self._sources = {f"{topic}{DLQ_SUFFIX}": topic for topic in self.topics}
        # Documents whose refused version was counted: what the index holds of them is read
        # (by id) and counted instead, retried while the index does not answer.
        self._recount: deque[Document] = deque()
        self.lag = 0
        self.events = 0
        self.refused = 0
        if registry is not None:
            Gauge(
                "legation_evaluator_aggregates_ready",
                "1 while scorecards are computed from the maintained aggregates (0: searched)",
                registry=registry,
            ).set_function(lambda: 1 if aggregates.usable() else 0)
            Gauge(
                "legation_evaluator_aggregates_lag",
                "Records of the indexed topics the aggregates' tail of the log has not read",
                registry=registry,
            ).set_function(lambda: self.lag)

    def run(self, load: Callable[[], bool]) -> None:
        """Takes where the indexer group stands, has ``load`` read the index (False: the
        load is not to be trusted, give up), then reads the log from there until ``stop``;
        marks the aggregates ready once it reached the ends of the log of its start."""
        consumer = KafkaConsumer(
            **client_options(self.settings),
            group_id=None,
            enable_auto_commit=False,
            # A committed offset the retention has passed: from the oldest record kept.
            auto_offset_reset="earliest",
            # Partitions added to a topic show within a check.
            metadata_max_age_ms=int(self.check_seconds * 1000),
        )
        try:
            sources = self._partitions(consumer, self.topics)
            start = self.committed(sources)  # before the load: what lies before is indexed
            if not load():
                return
            wanted: dict[TopicPartition, int | None] = {tp: start.get(tp) for tp in sources}
            for tp in self._partitions(consumer, list(self._sources)):
                wanted[tp] = None
            self._follow(consumer, wanted)
            ends = consumer.end_offsets(list(wanted))
            log.info(
                "following the log into the aggregates",
                extra={"partitions": len(wanted), "behind": self._behind(consumer, ends)},
            )
            self._read(consumer, ends)
        finally:
            consumer.close()

    def _read(self, consumer: KafkaConsumer, ends: dict[TopicPartition, int]) -> None:
        idle = IdleWait(self.settings, self.stop, pace=self.pace_seconds)
        checked = time.monotonic()
        next_lag = checked
        while not self.stop.is_set():
            # A consumer without a group has nothing to join: it never needs a poll that
            # waits, and an idle one sleeps below instead (no spinning on a broker that
            # does not long-poll).
            polled = consumer.poll(
                timeout_ms=0 if idle.first else self.settings.consumer_poll_timeout_ms,
                max_records=BATCH,
            )
            records = [record for batch in polled.values() for record in batch]
            self._take(records)
            self._recount_held()
            # kafka-python's position() looks at every assigned partition each time it is
            # asked for one: counting the lag of ~100 partitions after each poll cost a
            # fifth of a core idle. So the lag is counted now and then.
            now = time.monotonic()
            if not self.aggregates.ready.is_set() and now >= next_lag:
                next_lag = now + CATCH_UP_CHECK_SECONDS
                self.lag = self._behind(consumer, ends)
                if not self.lag:
                    self.aggregates.ready.set()
                    log.info("the aggregates caught up with the log: scorecards read them")
            elif now >= next_lag:
                next_lag = now + LAG_SECONDS
                self.lag = self._lag(consumer)
            if now - checked >= self.check_seconds:
                checked = time.monotonic()
                self._follow_added(consumer)
            idle.after(bool(records), full=self._behind_now(consumer, polled))

    def _take(self, records: Iterable[Any]) -> None:
        """Counts the records of the indexed topics; takes out what the index refused."""
        documents = []
        for record in records:
            source = self._sources.get(record.topic)
            if source is not None:
                self._refused(record, source)
                continue
            try:
                envelope = self.codec.decode(record.topic, record.value)
            except InvalidEvent:
                continue  # never indexed (the indexer dead-letters it)
            try:
                document = document_for(
                    self.prefix,
                    envelope,
                    record.topic,
                    record.partition,
                    record.offset,
                    self._monthly,
                )
            except Exception:
                # The indexer's handler fails on the same record and dead-letters it: never
                # indexed. Skipped here rather than stopping the tail over and over.
                log.exception("a record the index document cannot be made of: not counted")
                continue
            documents.append(document)
        if not documents:
            return
        self.aggregates.add_documents(documents)
        self.events += len(documents)
        if self.changes is not None:
            self.changes.publish(c for d in documents for c in d.body["campaign_ids"])

    def _refused(self, record: Any, source: str) -> None:
        """A record of ``source``'s DLQ: when the indexer group put it there, the index does
        not hold that version of its event."""
        headers = dict(record.headers or [])
        if headers.get("dlq-consumer-group") != self.group.encode():
            return  # another service's consumer: says nothing about the index
        if "dlq-truncated" in headers:
            log.warning("a dead-lettered record too large to read back: still counted")
            return
        try:
            envelope = self.codec.decode(source, record.value)
        except InvalidEvent:
            return  # undecodable: never counted either
        document = document_for(
            self.prefix,
            envelope,
            source,
            int(headers.get("dlq-source-partition", b"0")),
            int(headers.get("dlq-source-offset", b"0")),
            self._monthly,
        )
        self.refused += 1
        if self.aggregates.refuse(document.doc_id, document.version):
            self._recount.append(document)
            if self.changes is not None:
                self.changes.publish(document.body["campaign_ids"])

    def _recount_held(self) -> None:
        """Counts what the index holds of events whose counted version it refused."""
        while self._recount:
            document = self._recount[0]
            try:
                found = self.client.get(index=document.index, id=document.doc_id, ignore=404)
            except (OpenSearchConnectionError, TransportError):
                return  # the next round tries again
            self._recount.popleft()
            if isinstance(found, dict) and found.get("found"):
                self.aggregates.add_hits([found])

    def _partitions(self, consumer: KafkaConsumer, topics: list[str]) -> list[TopicPartition]:
        return [
            TopicPartition(topic, number)
            for topic in topics
            for number in sorted(consumer.partitions_for_topic(topic) or ())
        ]

    def _follow(self, consumer: KafkaConsumer, added: dict[TopicPartition, int | None]) -> None:
        """Adds partitions to the assignment at their offsets (None: the beginning), the
        ones held staying where they are."""
        held = {tp: consumer.position(tp) for tp in consumer.assignment()}
        consumer.assign([*held, *added])
        for tp, offset in held.items():
            consumer.seek(tp, offset)
        for tp, start in added.items():
            if start is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)

    def _follow_added(self, consumer: KafkaConsumer) -> None:
        """Reads partitions added to the topics (or DLQs created) since, from the start."""
        current = self._partitions(consumer, [*self.topics, *self._sources])
        added = [tp for tp in current if tp not in consumer.assignment()]
        if added:
            log.info("partitions added: following them", extra={"partitions": len(added)})
            self._follow(consumer, dict.fromkeys(added))

    def _behind_now(self, consumer: KafkaConsumer, polled: dict[TopicPartition, list[Any]]) -> bool:
        """Whether more is to be read at once (no pace): still catching up with the log of
        the start, or a partition polled has records past the last one taken, as its last
        fetch said (no request)."""
        if not self.aggregates.ready.is_set():
            return True
        for tp, batch in polled.items():
            end = consumer.highwater(tp)
            if batch and end is not None and end > batch[-1].offset + 1:
                return True
        return False

    @staticmethod
    def _behind(consumer: KafkaConsumer, ends: dict[TopicPartition, int]) -> int:
        return sum(max(0, end - consumer.position(tp)) for tp, end in ends.items())

    @staticmethod
    def _lag(consumer: KafkaConsumer) -> int:
        """Records behind the ends the last fetches saw (no request)."""
        behind = 0
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is not None:
                behind += max(0, end - consumer.position(tp))
        return behind
