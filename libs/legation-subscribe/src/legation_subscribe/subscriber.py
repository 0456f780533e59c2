"""The subscriber: poll → decode → deliver to the sink → commit, in the department's own
consumer group.

The same life as Legation's own consumers: a record that is not a valid event, or that the
sink refuses for good, becomes a dead letter (a JSON line with the original bytes, the reason
and the source coordinates, in the department's dead-letter file) and the subscriber goes
on; a failure a retry may fix (the webhook is down) keeps the batch, pauses the partitions
and retries with backoff; offsets are committed only after the sink made the batch durable
and the dead letters are written. A restart resumes from the commits: nothing is lost, and
after a clean stop (SIGTERM, Ctrl-C, ``stop``) nothing is delivered twice. After a crash
the last uncommitted batch is delivered again: deduplicate on ``event_id``.

**Where to start.** The first time a group reads a partition (no committed offset), it starts
at ``start``: the beginning of what the topic keeps, the end (only new events), or a time
(the first record at or after it). Afterwards the commits decide; ``replay=True`` applies
``start`` again over the commits (to read a period again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata

from legation_subscribe.events import DeadLetter, Event, InvalidRecord, decode
from legation_subscribe.sinks import Refused, RetryLater, Sink

log = logging.getLogger(__name__)
BEGINNING = "beginning"
END = "end"


@dataclass(frozen=True)
class Start:
    """Where a partition without a commit starts: ``beginning``, ``end`` or ``at`` a time."""

    kind: str
    at: datetime | None = None

    @classmethod
    def parse(cls, text: str) -> Start:
        """``beginning``, ``end`` or an ISO 8601 time with its offset (``2026-11-20T09:00Z``);
        raises ValueError naming the accepted forms."""
        value = text.strip()
        if value in (BEGINNING, END):
            return cls(value)
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"start must be beginning, end or an ISO 8601 time with an offset: {text!r}"
            ) from None
        if at.tzinfo is None:
            raise ValueError(f"start time needs a UTC offset (Z or +hh:mm): {text!r}")
        return cls("time", at.astimezone(UTC))


@dataclass(frozen=True)
class Connection:
    """How to reach the brokers (the department's own user in production)."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        if self.ssl_cafile:
            options["ssl_cafile"] = self.ssl_cafile
        return options


@dataclass
class Counts:
    """What a run did (printed at the end by the CLI)."""

    delivered: int = 0
    dead_letters: int = 0
    retries: int = 0
    commits: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)


class _StartPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber

    def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    def on_partitions_assigned(self, assigned: Any) -> None:
        # Runs on the client's IO thread, which may not block: the run loop positions them.
        self.subscriber._assigned |= set(assigned)


class Subscriber:
    """One member of the department's consumer group over ``topics``."""

    def __init__(
        self,
        connection: Connection,
        *,
        group: str,
        topics: Sequence[str],
        sink: Sink,
        start: Start = Start(BEGINNING),
        replay: bool = False,
        dead_letters: IO[str] | None = None,
        max_batch: int = 500,
        poll_timeout_ms: int = 500,
        retry_backoff: tuple[float, float] = (0.5, 30.0),
        stop: threading.Event | None = None,
        consumer_options: dict[str, Any] | None = None,
    ) -> None:
        if not topics:
            raise ValueError("topics: name at least one topic")
        if not group:
            raise ValueError("group: the department's consumer group is required")
        self.connection = connection
        self.group = group
        self.topics = list(topics)
        self.sink = sink
        self.start = start
        self.replay = replay
        self.dead_letters = dead_letters
        self.max_batch = max_batch
        self.poll_timeout_ms = poll_timeout_ms
        self.retry_backoff = retry_backoff
        self.stop = stop or threading.Event()
        self.counts = Counts()
        self._consumer_options = consumer_options or {}
        self._consumer: KafkaConsumer | None = None
        self._started: set[TopicPartition] = set()
        self._assigned: set[TopicPartition] = set()

    def run(
        self,
        *,
        until_idle_seconds: float | None = None,
        max_events: int | None = None,
        on_batch: Callable[[Counts], None] | None = None,
    ) -> Counts:
        """Consumes until ``stop`` is set (or nothing came for ``until_idle_seconds``, or
        ``max_events`` were delivered), commits what was done, closes; returns the counts."""
        self._consumer = KafkaConsumer(
            **self.connection.options(),
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_batch,
            **self._consumer_options,
        )
        self._consumer.subscribe(self.topics, listener=_StartPositions(self))
        last_record = time.monotonic()
        try:
            while not self.stop.is_set():
                polled = self._consumer.poll(timeout_ms=self.poll_timeout_ms)
                if self._assigned:
                    moved = self._position(sorted(self._assigned))
                    self._assigned.clear()
                    # Fetched before the partitions were positioned: read again from there.
                    polled = {tp: batch for tp, batch in polled.items() if tp not in moved}
                records = [record for batch in polled.values() for record in batch]
                if records:
                    self._process(records)
                    last_record = time.monotonic()
                    if on_batch is not None:
                        on_batch(self.counts)
                if max_events is not None and self.counts.delivered >= max_events:
                    break
                idle = time.monotonic() - last_record
                idle_long = until_idle_seconds is not None and idle >= until_idle_seconds
                if idle_long and self._consumer.assignment():
                    break
        finally:
            self._consumer.close(autocommit=False)
            self.sink.close()
        return self.counts

    def _position(self, assigned: list[TopicPartition]) -> set[TopicPartition]:
        """Seeks the newly assigned partitions that have no commit (all with ``replay``,
        once per run) to the start position; returns those it moved."""
        consumer = self._consumer
        assert consumer is not None
        fresh = [
            tp
            for tp in assigned
            if tp not in self._started and (self.replay or consumer.committed(tp) is None)
        ]
        if not fresh:
            self._started |= set(assigned)
            return set()
        if self.start.kind == BEGINNING:
            consumer.seek_to_beginning(*fresh)
        elif self.start.kind == END:
            consumer.seek_to_end(*fresh)
        else:
            assert self.start.at is not None
            millis = int(self.start.at.timestamp() * 1000)
            found = consumer.offsets_for_times({tp: millis for tp in fresh})
            ends = consumer.end_offsets(fresh)
            for tp in fresh:
                hit = found.get(tp)
                consumer.seek(tp, hit.offset if hit is not None else ends[tp])
        for tp in fresh:
            # A seek to the beginning or the end is resolved lazily, at the next fetch: ask
            # now, so that "end" is the end when the subscriber started, not some time later.
            consumer.position(tp)
        self._started |= set(assigned)
        log.info("start positions set", extra={"partitions": len(fresh), "start": self.start})
        return set(fresh)

    def _process(self, records: list[Any]) -> None:
        events: list[Event] = []
        letters: list[DeadLetter] = []
        for record in records:
            try:
                events.append(
                    decode(
                        record.topic,
                        record.partition,
                        record.offset,
                        record.timestamp,
                        record.key,
                        record.value,
                    )
                )
            except InvalidRecord as error:
                letters.append(self._letter(record, error.reason))
        by_position = {(r.topic, r.partition, r.offset): r for r in records}
        remaining = events
        delay = self.retry_backoff[0]
        paused: set[TopicPartition] = set()
        try:
            while remaining:
                try:
                    self.sink.deliver(remaining)
                except RetryLater as error:
                    # The events before the failure were delivered: retry from the next.
                    self._count(remaining[: error.done])
                    remaining = remaining[error.done :]
                    self.counts.retries += 1
                    log.warning("delivery failed, will retry", extra={"error": str(error)})
                    if not self._wait(delay, paused):
                        return  # stopping: nothing committed, the batch comes again
                    delay = min(delay * 2, self.retry_backoff[1])
                    continue
                except Refused as refused:
                    # The events before it were delivered; it becomes a dead letter.
                    event = refused.event
                    record = by_position[(event.topic, event.partition, event.offset)]
                    letters.append(self._letter(record, refused.reason))
                    index = remaining.index(event)
                    self._count(remaining[:index])
                    remaining = remaining[index + 1 :]
                    continue
                self._count(remaining)
                remaining = []
        finally:
            self._resume(paused)
        if letters:
            self._write_letters(letters)
        self._commit(records)

    def _count(self, events: Sequence[Event]) -> None:
        self.counts.delivered += len(events)
        for event in events:
            self.counts.by_topic[event.topic] = self.counts.by_topic.get(event.topic, 0) + 1

    def _letter(self, record: Any, reason: str) -> DeadLetter:
        return DeadLetter(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            reason,
            self.group,
        )

    def _write_letters(self, letters: list[DeadLetter]) -> None:
        self.counts.dead_letters += len(letters)
        for letter in letters:
            log.warning(
                "dead letter",
                extra={
                    "topic": letter.topic,
                    "partition": letter.partition,
                    "offset": letter.offset,
                    "reason": letter.reason,
                },
            )
        if self.dead_letters is not None:
            self.dead_letters.write("".join(letter.to_json_line() for letter in letters))
            self.dead_letters.flush()

    def _wait(self, delay: float, paused: set[TopicPartition]) -> bool:
        """Waits ``delay`` before a retry with the partitions paused and polled, so the group
        keeps them; False when stopping meanwhile."""
        consumer = self._consumer
        assert consumer is not None
        if self.stop.is_set():
            return False
        newly = set(consumer.assignment()) - paused
        if newly:
            consumer.pause(*newly)
            paused |= newly
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not self.stop.is_set():
            polled = consumer.poll(timeout_ms=int(min(0.2, delay) * 1000))
            for tp, batch in polled.items():  # a partition assigned meanwhile: read it again
                consumer.seek(tp, min(record.offset for record in batch))
        return not self.stop.is_set()

    def _resume(self, paused: set[TopicPartition]) -> None:
        consumer = self._consumer
        assert consumer is not None
        still = paused & set(consumer.assignment())  # a rebalance may have taken some
        if still:
            consumer.resume(*still)

    def _commit(self, records: list[Any]) -> None:
        consumer = self._consumer
        assert consumer is not None
        last: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            last[tp] = max(last.get(tp, -1), record.offset)
        try:
            consumer.commit({tp: OffsetAndMetadata(o + 1, "", -1) for tp, o in last.items()})
            self.counts.commits += 1
        except (CommitFailedError, RebalanceInProgressError) as error:
            # Whoever owns the partitions next starts from the last commit: at least once.
            log.warning("commit refused during a rebalance", extra={"error": str(error)})
        except KafkaError as error:
            log.warning("commit failed", extra={"error": str(error)})
