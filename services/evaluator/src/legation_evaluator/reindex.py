"""``legation-evaluator reindex``: rebuild the event indices from the Kafka topics.

Reads every topic the evaluator indexes (or those named) from its first record to the end
offsets taken at the start, and indexes each event exactly as the live indexer does: the
same document, the same id, the same monthly index. So it can run beside the live
evaluator, twice, or after the index server lost its data, and the counts come out the
same; only history that already left a topic (its retention) cannot come back.
``--prefix`` rebuilds into other indices (to compare, or to re-score with a new template
before switching ``LEGATION_EVALUATOR_INDEX_PREFIX``). It uses no consumer group, so it
moves no committed offset.

The evaluator runs the same :func:`rebuild` by itself when it finds that the index lost its
data (``adapters/rebuild.py``): one rebuild path, whoever starts it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from tqdm import tqdm

from legation_core.catalog import Catalog, default_catalog
from legation_core.codec import EventCodec, InvalidEvent
from legation_core.config import ConfigError, load_settings
from legation_core.kafka import client_options
from legation_evaluator.adapters.index import EventIndex, IndexUnavailable, connect
from legation_evaluator.config import EvaluatorSettings
from legation_evaluator.domain.documents import Document, document_for, monthly_kinds
from legation_evaluator.domain.rebuild import rebuild_passes

log = logging.getLogger(__name__)


# Upper offsets of a rebuild, from the partitions and their end offsets.
Bounds = Callable[[list[TopicPartition], dict[TopicPartition, int]], dict[TopicPartition, int]]


class Stopped(Exception):
    """The rebuild was asked to stop before it reached the end offsets."""


@dataclass
class Outcome:
    """What a re-index did, per topic."""

    indexed: Counter[str] = field(default_factory=Counter)
    undecodable: Counter[str] = field(default_factory=Counter)
    rejected: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.indexed.values())


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="legation-evaluator reindex",
        description="Rebuild the event indices from the Kafka topics (idempotent).",
    )
    parser.add_argument(
        "--topic",
        action="append",
        help="a topic to read (repeatable; default: every topic the evaluator indexes)",
    )
    parser.add_argument(
        "--prefix", help="index prefix to write (default: LEGATION_EVALUATOR_INDEX_PREFIX)"
    )
    parser.add_argument("--batch", type=int, default=500, help="documents per bulk request")
    parser.add_argument(
        "--wait",
        type=float,
        default=300.0,
        help="how long to keep retrying while the index is unavailable, in seconds",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(list(argv))
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    return args


def bulk_retrying(
    index: EventIndex,
    documents: list[Document],
    wait: float,
    stop: threading.Event | None = None,
) -> dict[str, str]:
    """Bulk-indexes, retrying with backoff while the index is unavailable (up to ``wait``
    seconds in a row); raises :class:`Stopped` when ``stop`` is set meanwhile."""
    deadline = time.monotonic() + wait
    delay = 0.2
    while True:
        try:
            return index.bulk(documents)
        except IndexUnavailable as error:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("index unavailable, retrying: %s", error)
            if stop is None:
                time.sleep(delay)
            elif stop.wait(delay):
                raise Stopped from error
            delay = min(delay * 2, 5.0)


def reindex(
    consumer: KafkaConsumer,
    index: EventIndex,
    topics: Sequence[str],
    catalog: Catalog,
    *,
    batch: int = 500,
    wait: float = 300.0,
    progress: Callable[[int], object] = lambda n: None,
    stop: threading.Event | None = None,
    outcome: Outcome | None = None,
    bounds: Bounds | None = None,
) -> Outcome:
    """Reads ``topics`` from the beginning to the end offsets of now into ``index`` (adding
    to ``outcome`` when given), or only up to the offsets ``bounds`` gives for them (with
    the end offsets); raises :class:`Stopped` when ``stop`` is set before the end."""
    codec = EventCodec(catalog)
    monthly = monthly_kinds(catalog)
    partitions = [
        TopicPartition(topic, number)
        for topic in topics
        for number in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    if bounds is not None:
        ends = bounds(partitions, ends)
    outcome = outcome if outcome is not None else Outcome()
    pending: list[Document] = []
    topics_of: dict[str, str] = {}

    def flush() -> None:
        rejected = bulk_retrying(index, pending, wait, stop)
        for document in pending:
            if document.doc_id in rejected:
                outcome.rejected[document.doc_id] = rejected[document.doc_id]
            else:
                outcome.indexed[topics_of[document.doc_id]] += 1
        progress(len(pending))
        pending.clear()
        topics_of.clear()

    remaining = {tp for tp in partitions if consumer.position(tp) < ends[tp]}
    if set(partitions) - remaining:
        consumer.pause(*(set(partitions) - remaining))
    while remaining:
        if stop is not None and stop.is_set():
            raise Stopped
        polled = consumer.poll(timeout_ms=1000, max_records=batch)
        for tp, records in polled.items():
            for record in records:
                if record.offset >= ends[tp]:
                    continue  # written after the start: the live indexer has it
                try:
                    envelope = codec.decode(record.topic, record.value)
                except InvalidEvent:
                    outcome.undecodable[record.topic] += 1  # in the DLQ already
                    continue
                document = document_for(
                    index.prefix, envelope, record.topic, record.partition, record.offset, monthly
                )
                if document.doc_id in topics_of:
                    flush()  # one id twice in a bulk: keep the later record's version
                pending.append(document)
                topics_of[document.doc_id] = record.topic
                if len(pending) >= batch:
                    flush()
        done = {tp for tp in remaining if consumer.position(tp) >= ends[tp]}
        if done:
            consumer.pause(*done)  # fetch no more than the partition's bound
        remaining -= done
    if pending:
        flush()
    index.client.indices.refresh(index=f"{index.prefix}-*")
    return outcome


def rebuild(
    settings: EvaluatorSettings,
    index: EventIndex,
    catalog: Catalog,
    topics: Sequence[str] | None = None,
    *,
    batch: int = 500,
    wait: float = 300.0,
    progress: Callable[[int], object] = lambda n: None,
    stop: threading.Event | None = None,
    behind_group: str | None = None,
) -> Outcome:
    """Rebuilds ``index`` from ``topics`` (default: every topic the evaluator indexes), the
    topics kept forever first (campaigns are back before the mentions), with a consumer of
    its own and no group. Used by ``legation-evaluator reindex`` and by the evaluator when
    the index lost its data. With ``behind_group`` (the live indexer's group) it reads each
    partition only up to where that group had committed when the rebuild started, plus one
    batch (the batch it may have in flight; nothing where it had committed nothing, as it
    reads from the start then): the live indexer does the rest, so no event is indexed
    twice over, and an evaluator's first start (no commits yet) rebuilds nothing."""
    chosen = list(topics or [spec.name for spec in catalog.consumed_by("evaluator")])
    consumer = KafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False)
    try:
        bounds = None
        if behind_group is not None:
            # Where the live indexer stands now, before it moves on: it does the rest.
            partitions = [
                TopicPartition(topic, number)
                for topic in chosen
                for number in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            done = committed_offsets(settings, behind_group, partitions)
            bounds = bounds_behind(done, settings.consumer_max_batch)
        index.ensure_template(wait_seconds=wait)
        outcome = Outcome()
        for group in rebuild_passes(catalog, chosen):
            reindex(
                consumer,
                index,
                group,
                catalog,
                batch=batch,
                wait=wait,
                progress=progress,
                stop=stop,
                outcome=outcome,
                bounds=bounds,
            )
        return outcome
    finally:
        consumer.close()


def bounds_behind(done: Mapping[TopicPartition, int | None], margin: int) -> Bounds:
    """Bounds at the live indexer's committed offsets ``done`` plus ``margin`` (its batch in
    flight), 0 where it committed nothing (it reads those partitions from the start)."""

    def bounds(
        partitions: list[TopicPartition], ends: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        upper = {}
        for tp in partitions:
            offset = done.get(tp)
            upper[tp] = 0 if offset is None else min(ends[tp], offset + margin)
        return upper

    return bounds


def committed_offsets(
    settings: EvaluatorSettings, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int | None]:
    """The offsets ``group`` committed on ``partitions`` (None where it committed none),
    read without joining the group."""
    consumer = KafkaConsumer(**client_options(settings), group_id=group, enable_auto_commit=False)
    try:
        return {tp: consumer.committed(tp) for tp in partitions}
    finally:
        consumer.close(autocommit=False)


def main(argv: Sequence[str]) -> int:
    """Exit 0 done, 1 failed (the index stayed unavailable), 2 bad settings."""
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        settings = load_settings(EvaluatorSettings)
    except ConfigError as error:
        print(f"reindex: {error}", file=sys.stderr)
        return 2
    catalog = default_catalog()
    ours = [spec.name for spec in catalog.consumed_by("evaluator")]
    topics = args.topic or ours
    unknown = sorted(set(topics) - set(ours))
    if unknown:
        print(
            f"reindex: --topic {', '.join(unknown)}: not indexed by the evaluator", file=sys.stderr
        )
        return 2
    live = settings.evaluator_index_prefix
    prefix = args.prefix or live
    if prefix != live and (prefix.startswith(f"{live}-") or live.startswith(f"{prefix}-")):
        # <live>-* would match the rebuilt indices (or the other way): counted twice.
        print(f"reindex: --prefix {prefix} overlaps the live indices {live}-*", file=sys.stderr)
        return 2
    index = EventIndex(connect(settings), prefix)
    bar = tqdm(desc="reindex", unit="event", disable=args.quiet, file=sys.stderr)
    started = time.monotonic()
    try:
        outcome = rebuild(
            settings,
            index,
            catalog,
            topics,
            batch=args.batch,
            wait=args.wait,
            progress=bar.update,
        )
    except IndexUnavailable as error:
        print(f"reindex: {error}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    seconds = time.monotonic() - started
    for topic in topics:
        extra = f", {outcome.undecodable[topic]} undecodable" if outcome.undecodable[topic] else ""
        print(f"{topic}: {outcome.indexed[topic]} events{extra}")
    for doc_id, reason in sorted(outcome.rejected.items()):
        print(f"rejected {doc_id}: {reason}")
    print(
        f"reindexed {outcome.total} events into {index.prefix}-* in {seconds:.1f} s "
        f"({len(outcome.rejected)} rejected)"
    )
    return 0
