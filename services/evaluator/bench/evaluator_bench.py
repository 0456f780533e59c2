"""``make bench-evaluator`` (``python services/evaluator/bench/evaluator_bench.py [--events
N]``): what indexing and scorecards cost, measured in one run on
the stand-ins (noida-db for Kafka, osmem-server for OpenSearch), as ratios to a baseline of
the same run so the figures compare whatever the machine.

1. Indexing rate of the same documents, each path into its own indices: raw
   ``opensearchpy.helpers.bulk`` (the baseline), ``EventIndex.bulk`` in batches of 500 (the
   indexer's bulk with error classification), the whole indexer from Kafka
   (``ConsumerLoop`` + ``IndexingHandler``: decode, documents, bulk, commit), and one index
   request per event (what bulk saves).
2. Freshness: events produced to Kafka at a steady rate while the indexer runs; how long
   until the scorecard counts them (p50/p99).
3. Scorecard latency (p50/p95) over ``--events`` indexed events, against a plain count of
   the campaign's documents on the same indices.
4. Scorecards from the maintained aggregates (``--aggregate-events``, 100,000 and 1,000,000
   by default): the events written straight into the index with ``helpers.bulk``, the
   aggregates loaded from it as the evaluator does at start-up, then the scorecard p50/p95
   computed from them (every run computed afresh, and as readers get it, shared) against a
   plain count in the same run; and the p99 of the indexer's bulk alone and with 10
   scorecard readers a second (the ratio; the two phases interleaved in eight rounds).

5. Documents (``--only documents``, no stand-ins): the envelopes' JSON form, the index
   document's body, by ``envelope_to_dict`` (the converter compiled per message type) and
   by ``json_format.MessageToDict`` with the same options, alternately in the same run,
   over the catalog's example of every topic and over this bench's indexing mix; events
   per second of each and the ratio.

6. The aggregates' tail of the log (``--only tail``, ``--tail-events``): the CPU per event
   of ``LogTail`` reading the topics from their beginning into the aggregates, against the
   indexer's own CPU per event over the same events in the same run (the ratio), and how
   fast it reads the log against loading the same events from the index at start-up; and
   the CPU of an idle tail against an idle indexer loop over the evaluator's topics, and of
   one poll that finds nothing over the tail's partitions against one topic's.

Not part of ``make test`` nor of the installed service: ``make bench`` runs it (it needs the
development install, which brings the stand-ins).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from opensearchpy import ConnectionTimeout, OpenSearch, helpers

from legation.events.v1 import engage_pb2, evaluate_pb2, listen_pb2, publish_pb2
from legation_core.catalog import DLQ_SUFFIX, default_catalog
from legation_core.codec import (
    Envelope,
    EventCodec,
    envelope_from_json,
    envelope_to_dict,
    make_envelope,
)
from legation_core.config import CoreSettings
from legation_core.consumer import BatchResult, ConsumerLoop, Incoming
from legation_core.kafka import EventProducer, client_options, ensure_topics
from legation_core.metrics import Metrics
from legation_evaluator.adapters.aggregates import MaintainedAggregates
from legation_evaluator.adapters.events import IndexingHandler
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.adapters.tail import LogTail
from legation_evaluator.domain.documents import Document, document_for, monthly_kinds
from legation_evaluator.domain.rollup import Aggregates, facts_of
from legation_evaluator.domain.scorecard import scorecard_from_response

CAMPAIGN = "bench-campaign"
MENTIONS = "legation.listen.mentions.v1"
TOPIC_OF = {
    "mention": MENTIONS,
    "interaction": "legation.engage.interactions.v1",
    "publication": "legation.publish.publications.v1",
}
START = datetime(2026, 11, 1, tzinfo=UTC)
SINGLE = 300  # one request per event is slow: measured on fewer events


def bench_campaign(campaign_id: str = CAMPAIGN) -> evaluate_pb2.Campaign:
    objective = evaluate_pb2.Objective
    campaign = evaluate_pb2.Campaign(
        campaign_id=campaign_id,
        name="Benchmark",
        own_accounts=["@us"],
        partners=[evaluate_pb2.Partner(partner_id="p", accounts=["author-3"])],
        objectives=[
            objective(
                objective_id="reach-es",
                metric="reach",
                comparison=objective.COMPARISON_AT_LEAST,
                target=2_000_000,
                filters=[evaluate_pb2.MetricFilter(field="language", values=["es"])],
            ),
            objective(
                objective_id="favour",
                metric="stance_favour_share",
                comparison=objective.COMPARISON_INCREASE_BY,
                target=10,
            ),
            objective(
                objective_id="voice",
                metric="share_of_voice",
                comparison=objective.COMPARISON_AT_LEAST,
                target=20,
                from_value=12,
            ),
            objective(
                objective_id="answers",
                metric="median_first_response_seconds",
                comparison=objective.COMPARISON_AT_MOST,
                target=4 * 3600,
            ),
        ],
    )
    campaign.starts_at.FromDatetime(START)
    campaign.ends_at.FromDatetime(START + timedelta(days=60))
    campaign.objectives[1].baseline_start.FromDatetime(START - timedelta(days=14))
    campaign.objectives[1].baseline_end.FromDatetime(START)
    return campaign


def event(
    number: int, prefix: str = "e", campaign_id: str = CAMPAIGN, slim: bool = False
) -> Envelope:
    """Event ``number`` of a campaign's mix: mostly mentions, some interactions and
    publications, spread over six weeks (two before the start); ``slim`` mentions carry no
    title or text (the scorecard does not read them; the index stand-in writes faster)."""
    at = START - timedelta(days=14) + timedelta(minutes=(number * 7) % (60 * 24 * 42))
    event_id = f"{prefix}-{number}"
    payload: Any
    if number % 10 == 7:
        replied = number % 20 == 7
        kind = (
            engage_pb2.Interaction.KIND_REPLIED if replied else engage_pb2.Interaction.KIND_OPENED
        )
        payload = engage_pb2.Interaction(
            interaction_id=event_id,
            conversation_id=f"c-{number // 20}",
            kind=kind,
            response_seconds=float(number % 36_000),
        )
        service = "engager"
    elif number % 50 == 9:
        payload = publish_pb2.Publication(publication_id=event_id, channel="site-atom")
        service = "publisher"
    else:
        payload = listen_pb2.Mention(
            mention_id=event_id,
            author=f"author-{number % 97}",
            title="" if slim else "Plastics treaty",
            text="" if slim else "What does the plastics treaty mean for us? " * 3,
            language=("es", "en", "fr", "es-MX")[number % 4],
            reach=1000 + number % 5000,
            sentiment=listen_pb2.Label(value="positive", score=0.3),
            stance=listen_pb2.Label(value=("favour", "against", "neutral")[number % 3]),
            campaign_ids=[campaign_id],
        )
        service = "listener"
    return make_envelope(
        payload, event_id=event_id, source_service=service, occurred_at=at, campaign_id=campaign_id
    )


def documents(prefix: str, count: int) -> list[Document]:
    return [document_for(prefix, event(n), "bench", 0, n) for n in range(count)]


def timed(work: Callable[[], int]) -> float:
    """Events per second of ``work`` (which returns how many it handled)."""
    started = time.perf_counter()
    handled = work()
    return handled / (time.perf_counter() - started)


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def index_campaign(index: EventIndex, campaign: evaluate_pb2.Campaign) -> None:
    envelope = make_envelope(
        campaign, event_id="campaign", source_service="evaluator", occurred_at=START
    )
    index.bulk([document_for(index.prefix, envelope, "bench", 0, 0)])


def indexing_rates(
    client: OpenSearch, settings: CoreSettings, count: int
) -> list[tuple[str, float]]:
    def raw() -> int:
        actions = [
            {"_op_type": "index", "_index": d.index, "_id": d.doc_id, "_source": d.body}
            for d in documents("bench-raw", count)
        ]
        helpers.bulk(client, actions, chunk_size=500)
        return count

    def event_index() -> int:
        index = EventIndex(client, "bench-bulk")
        docs = documents(index.prefix, count)
        for start in range(0, count, 500):
            index.bulk(docs[start : start + 500])
        return count

    def single() -> int:
        for d in documents("bench-single", SINGLE):
            client.index(index=d.index, id=d.doc_id, body=d.body)
        return SINGLE

    def from_kafka() -> int:
        return run_indexer(client, settings, "bench-kafka", count)

    return [
        ("raw helpers.bulk (baseline)", timed(raw)),
        ("EventIndex.bulk, 500 a batch", timed(event_index)),
        ("indexer from Kafka (ConsumerLoop)", timed(from_kafka)),
        (f"one request per event ({SINGLE})", timed(single)),
    ]


def produce(
    settings: CoreSettings,
    numbers: range,
    prefix: str,
    rate: float = 0,
    campaign_id: str = CAMPAIGN,
) -> list[float]:
    """Produces events ``numbers``, each to its topic (at ``rate`` a second, 0: as fast as
    possible); returns the send time of each."""
    producer = KafkaProducer(**client_options(settings), acks="all", linger_ms=2)
    sent = []
    started = time.perf_counter()
    for position, number in enumerate(numbers):
        if rate:
            delay = started + position / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        envelope = event(number, prefix, campaign_id)
        sent.append(time.perf_counter())
        topic = TOPIC_OF[str(envelope.WhichOneof("payload"))]
        producer.send(topic, key=envelope.event_id.encode(), value=envelope.SerializeToString())
    producer.flush()
    producer.close()
    return sent


class CountingHandler:
    """The indexer's handler, counting what it indexed and stopping at ``until``."""

    def __init__(self, handler: IndexingHandler, until: int, stop: threading.Event) -> None:
        self.handler, self.until, self.stop, self.handled = handler, until, stop, 0

    def __call__(self, batch: Sequence[Incoming]) -> BatchResult:
        result = self.handler(batch)
        self.handled += len(batch)
        if self.handled >= self.until:
            self.stop.set()
        return result


def indexer_loop(
    client: OpenSearch, settings: CoreSettings, prefix: str, until: int, group: str
) -> tuple[ConsumerLoop, CountingHandler]:
    catalog = default_catalog()
    metrics = Metrics()
    stop = threading.Event()
    handler = CountingHandler(IndexingHandler(EventIndex(client, prefix)), until, stop)
    loop = ConsumerLoop(
        settings=settings,
        service="evaluator",
        group=group,
        topics=list(TOPIC_OF.values()),
        handler=handler,
        codec=EventCodec(catalog),
        producer=EventProducer(settings, "evaluator", catalog, metrics),
        metrics=metrics,
        stop=stop,
    )
    return loop, handler


def run_indexer(client: OpenSearch, settings: CoreSettings, prefix: str, count: int) -> int:
    """Indexes ``count`` mentions already on the topic (the producing is not timed)."""
    loop, handler = indexer_loop(client, settings, prefix, count, f"bench.{prefix}")
    loop.run()
    return handler.handled


def freshness(
    client: OpenSearch, settings: CoreSettings, rate: float, seconds: float, backlog: int
) -> tuple[float, float, int]:
    """p50 and p99 seconds from produced to counted by the scorecard, at ``rate``/s; also
    returns how many events it produced. The indexer first catches up with the ``backlog``
    the topic already holds, so only this run's events are timed."""
    prefix = f"bench-fresh-{int(rate)}"
    campaign = bench_campaign(f"fresh-{int(rate)}")
    index = EventIndex(client, prefix)
    index.ensure_template()
    index_campaign(index, campaign)
    count = int(rate * seconds)
    loop, handler = indexer_loop(client, settings, prefix, 10**12, f"bench.{prefix}")
    consumer_thread = threading.Thread(target=loop.run)
    consumer_thread.start()
    deadline = time.perf_counter() + 300
    while handler.handled < backlog and time.perf_counter() < deadline:
        time.sleep(0.05)
    numbers = range(count)
    sent: list[float] = []
    producer_thread = threading.Thread(
        target=lambda: sent.extend(produce(settings, numbers, prefix, rate, campaign.campaign_id))
    )
    producer_thread.start()
    mentions = [i for i in numbers if event(i).WhichOneof("payload") == "mention"]
    seen: list[tuple[float, int]] = []  # (time, mentions counted)
    deadline = time.perf_counter() + seconds * 20 + 60
    visible = 0
    while visible < len(mentions) and time.perf_counter() < deadline:
        response = index.search_scorecard(campaign)  # not the answer shared for a second
        visible = scorecard_from_response(campaign, response, datetime.now(UTC)).mentions
        seen.append((time.perf_counter(), visible))
    producer_thread.join()
    loop.stop.set()
    consumer_thread.join()
    latencies = []
    cursor = 0
    for rank, position in enumerate(mentions):
        # Approximation: the k-th mention produced is visible once k are counted.
        while cursor < len(seen) and seen[cursor][1] <= rank:
            cursor += 1
        if cursor < len(seen):
            latencies.append(seen[cursor][0] - sent[position])
    return percentile(latencies, 0.5), percentile(latencies, 0.99), count


def scorecard_latency(client: OpenSearch, prefix: str, runs: int = 30) -> dict[str, list[float]]:
    """Times a count (the floor), the scorecard of a campaign without an end date (no KPI
    baselines) and the full scorecard, interleaved, uncached."""
    index = EventIndex(client, prefix)
    campaign = bench_campaign()
    index_campaign(index, campaign)
    open_ended = evaluate_pb2.Campaign()
    open_ended.CopyFrom(campaign)
    open_ended.ClearField("ends_at")
    client.indices.refresh(index=f"{prefix}-*")
    timings: dict[str, list[float]] = {
        "count": [],
        "scorecard without KPI baselines": [],
        "scorecard": [],
    }
    body = {"query": {"term": {"campaign_ids": CAMPAIGN}}}
    for _ in range(runs):
        started = time.perf_counter()
        client.count(index=f"{prefix}-*", body=body)
        timings["count"].append(time.perf_counter() - started)
        for label, card in (
            ("scorecard without KPI baselines", open_ended),
            ("scorecard", campaign),
        ):
            started = time.perf_counter()
            scorecard_from_response(card, index.search_scorecard(card), datetime.now(UTC))
            timings[label].append(time.perf_counter() - started)
    return timings


def write_events(client: OpenSearch, prefix: str, count: int, chunk: int = 5000) -> float:
    """Writes events 0..count straight into the index (raw ``helpers.bulk``, the events'
    external versions); returns the documents per second."""
    started = time.perf_counter()
    for start in range(0, count, chunk):
        actions = [
            {
                "_op_type": "index",
                "_index": d.index,
                "_id": d.doc_id,
                "_source": d.body,
                "_version": d.version,
                "_version_type": "external_gte",
            }
            for d in (
                document_for(prefix, event(n, slim=True), "bench", 0, n)
                for n in range(start, min(count, start + chunk))
            )
        ]
        helpers.bulk(client, actions, chunk_size=1000, request_timeout=300)
    return count / (time.perf_counter() - started)


def resident_mb() -> float:
    """This process's resident memory now, in MiB (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def bulk_latencies(
    index: EventIndex, first: int, bulks: int, size: int, stop_readers: threading.Event
) -> list[float]:
    """Seconds of each of ``bulks`` bulks of ``size`` new events of the campaign."""
    timings = []
    for number in range(bulks):
        base = first + number * size
        docs = [
            document_for(index.prefix, event(n, "live", slim=True), "bench", 0, n)
            for n in range(base, base + size)
        ]
        started = time.perf_counter()
        index.bulk(docs)
        timings.append(time.perf_counter() - started)
    stop_readers.set()
    return timings


def readers(
    index: EventIndex, campaign: evaluate_pb2.Campaign, per_second: int, stop: threading.Event
) -> list[threading.Thread]:
    """``per_second`` readers, each asking for the scorecard once a second (staggered), as
    the live page, watchers and snapshots do."""

    def read(offset: float) -> None:
        stop.wait(offset)
        while not stop.is_set():
            started = time.perf_counter()
            scorecard_from_response(campaign, index.scorecard_response(campaign), datetime.now(UTC))
            stop.wait(max(0.0, 1.0 - (time.perf_counter() - started)))

    threads = [
        threading.Thread(target=read, args=(n / per_second,), daemon=True)
        for n in range(per_second)
    ]
    for thread in threads:
        thread.start()
    return threads


def alone_and_beside_readers(
    index: EventIndex,
    campaign: evaluate_pb2.Campaign,
    measure: Callable[[int, int, threading.Event], list[float]],
    rounds: int = 8,
    times: int = 200,
) -> tuple[list[float], list[float]]:
    """``times`` timings of ``measure`` alone and as many beside 10 scorecard readers a
    second, the two phases interleaved in ``rounds`` so that neither pays alone for a
    bigger index or a busier hour. ``measure(first, times, stop)`` numbers its events from
    ``first`` and sets ``stop`` when done."""
    alone: list[float] = []
    beside: list[float] = []
    per_round = times // rounds
    for number in range(rounds):
        first = 2 * number * per_round * 50
        alone += measure(first, per_round, threading.Event())
        stop = threading.Event()
        threads = readers(index, campaign, 10, stop)
        beside += measure(first + per_round * 50, per_round, stop)
        for thread in threads:
            thread.join()
    return alone, beside


def feed_aggregates(aggregates: MaintainedAggregates, prefix: str, count: int) -> float:
    """Counts events 0..count into ``aggregates`` as the bulk path does after an
    acknowledged bulk, without the index; returns the events per second."""
    started = time.perf_counter()
    for start in range(0, count, 5000):
        aggregates.add_documents(
            document_for(prefix, event(n, slim=True), "bench", 0, n)
            for n in range(start, min(count, start + 5000))
        )
    aggregates.ready.set()
    return count / (time.perf_counter() - started)


def aggregate_scorecards(
    client: OpenSearch,
    count: int,
    runs: int,
    search_runs: int,
    indexed: bool = True,
    count_p95: float | None = None,
) -> float | None:
    """Part 4 for ``count`` events (see the module's docstring); prints its table and
    returns the count's p95. Not ``indexed``: the events are counted into the aggregates
    through the bulk path's counting alone (the index stand-in cannot hold them), and the
    ratios are to ``count_p95``, measured over fewer indexed events in the same run."""
    prefix = f"bench-agg-{count}"
    EventIndex(client, prefix).ensure_template()
    gc.collect()
    memory_before = resident_mb()
    aggregates = MaintainedAggregates()
    if indexed:
        rate = write_events(client, prefix, count)
        client.indices.refresh(index=f"{prefix}-*")
        gc.collect()
        memory_before = resident_mb()
        loaded = aggregates.load(client, f"{prefix}-*")
        how = (
            f"written at {rate:,.0f}/s, aggregates loaded from the index in"
            f" {aggregates.load_seconds:.1f} s ({loaded:,} documents"
        )
    else:
        rate = feed_aggregates(aggregates, prefix, count)
        how = f"not in the index: counted into the aggregates at {rate:,.0f}/s ("
    gc.collect()
    memory_after = resident_mb()
    index = EventIndex(client, prefix, aggregates=aggregates)
    campaign = bench_campaign()
    index_campaign(index, campaign)
    started = time.perf_counter()
    aggregates.answer(campaign)  # the first read buckets the campaign's facts by its windows
    first_read = time.perf_counter() - started
    timings: dict[str, list[float]] = {
        "count": [],
        "scorecard from aggregates": [],
        "scorecard, shared by readers": [],
        "scorecard by event search": [],
    }
    body = {"query": {"term": {"campaign_ids": CAMPAIGN}}}
    for run in range(runs):
        if indexed:
            started = time.perf_counter()
            client.count(index=f"{prefix}-*", body=body)
            timings["count"].append(time.perf_counter() - started)
        started = time.perf_counter()
        answer, _ = aggregates.answer(campaign)
        scorecard_from_response(campaign, answer.response, datetime.now(UTC))
        timings["scorecard from aggregates"].append(time.perf_counter() - started)
        started = time.perf_counter()
        scorecard_from_response(campaign, index.scorecard_response(campaign), datetime.now(UTC))
        timings["scorecard, shared by readers"].append(time.perf_counter() - started)
        if indexed and run < search_runs:
            started = time.perf_counter()
            try:
                response = index.search_scorecard(campaign)
            except ConnectionTimeout:
                print("  (a scorecard by event search timed out after 120 s)")
                search_runs = 0
                continue
            scorecard_from_response(campaign, response, datetime.now(UTC))
            timings["scorecard by event search"].append(time.perf_counter() - started)
    print(
        f"\nscorecard over {count:,} events (4 objectives): {how};"
        f" bench process resident {memory_before:,.0f} MiB before,"
        f" {memory_after:,.0f} MiB after), first read"
        f" {first_read * 1000:,.0f} ms"
    )
    print(f"  {'query':<32} {'runs':>5} {'p50 ms':>9} {'p95 ms':>9} {'p95 ratio to count':>19}")
    floor95 = percentile(timings["count"], 0.95) if timings["count"] else count_p95
    if not indexed:
        print(
            f"  (ratios to the count's p95 over the indexed events: {(floor95 or 0) * 1000:.1f} ms)"
        )
    for label, values in timings.items():
        if not values:
            continue
        p95 = percentile(values, 0.95)
        print(
            f"  {label:<32} {len(values):>5} {statistics.median(values) * 1000:>9.1f}"
            f" {p95 * 1000:>9.1f} {p95 / floor95 if floor95 else float('nan'):>19.2f}"
        )
    alone, beside = alone_and_beside_readers(
        index,
        campaign,
        lambda first, times, stop: bulk_latencies(index, 10**9 + first, times, 50, stop),
    )
    p99_alone, p99_beside = percentile(alone, 0.99), percentile(beside, 0.99)
    print("  bulk of 50 (EventIndex.bulk, 200 bulks each, phases interleaved)  p50 ms   p99 ms")
    print(
        f"    alone                             {statistics.median(alone) * 1000:>8.1f}"
        f" {p99_alone * 1000:>8.1f}"
    )
    print(
        f"    with 10 scorecard readers/s       {statistics.median(beside) * 1000:>8.1f}"
        f" {p99_beside * 1000:>8.1f}   p99 ratio {p99_beside / p99_alone:.2f}"
    )
    # The evaluator's own part of a bulk (counting the acknowledged documents), without the
    # index server: what readers can cost the indexing path in this process.
    counting_alone, counting_beside = alone_and_beside_readers(
        index,
        campaign,
        lambda first, times, stop: counting_latencies(
            aggregates, 2 * 10**9 + first, times, 50, stop
        ),
    )
    alone_99, beside_99 = percentile(counting_alone, 0.99), percentile(counting_beside, 0.99)
    print("  counting 50 acknowledged documents (the bulk path's part in the evaluator)")
    print(
        f"    alone                             {statistics.median(counting_alone) * 1000:>8.2f}"
        f" {alone_99 * 1000:>8.2f}"
    )
    print(
        f"    with 10 scorecard readers/s       {statistics.median(counting_beside) * 1000:>8.2f}"
        f" {beside_99 * 1000:>8.2f}   p99 ratio {beside_99 / alone_99:.2f}"
    )
    client.indices.delete(index=f"{prefix}-*")
    return floor95


def counting_latencies(
    aggregates: MaintainedAggregates, first: int, times: int, size: int, stop: threading.Event
) -> list[float]:
    """Seconds the bulk path spends counting ``size`` new acknowledged documents, ``times``
    times (paced like bulks: every 50 ms)."""
    timings = []
    for number in range(times):
        base = first + number * size
        docs = [
            document_for("bench", event(n, "live", slim=True), "bench", 0, n)
            for n in range(base, base + size)
        ]
        started = time.perf_counter()
        aggregates.add_documents(docs)
        timings.append(time.perf_counter() - started)
        time.sleep(0.05)
    stop.set()
    return timings


def tail_cost(client: OpenSearch, settings: CoreSettings, count: int) -> None:
    """CPU per event of the aggregates' tail of the log (``LogTail``: decode, document,
    facts, counted) against the indexer's own (``ConsumerLoop`` + ``IndexingHandler``:
    decode, document, bulk, commit) over the same ``count`` events on the topics, each
    measured as this process's CPU time while it alone runs; and how fast the tail reads the
    log from its beginning against loading the same events from the index."""
    produce(settings, range(count), "bench-tail")
    prefix = "bench-tail"
    EventIndex(client, prefix).ensure_template()
    cpu, wall = time.process_time(), time.perf_counter()
    handled = run_indexer(client, settings, prefix, count)
    indexer_cpu, indexer_wall = time.process_time() - cpu, time.perf_counter() - wall
    aggregates = MaintainedAggregates(tailed=True)
    stop = threading.Event()
    follower = LogTail(
        settings,
        aggregates,
        client,
        prefix,
        EventCodec(default_catalog()),
        list(TOPIC_OF.values()),
        group="bench.tail",
        committed=lambda partitions: {},  # from the beginning
        stop=stop,
    )
    cpu, wall = time.process_time(), time.perf_counter()
    thread = threading.Thread(target=follower.run, args=(lambda: True,))
    thread.start()
    aggregates.ready.wait()
    tail_cpu, tail_wall = time.process_time() - cpu, time.perf_counter() - wall
    stop.set()
    thread.join()
    loaded = MaintainedAggregates()
    wall = time.perf_counter()
    documents = loaded.load(client, f"{prefix}-*")
    load_wall = time.perf_counter() - wall
    print(f"\nthe aggregates' tail of the log beside the indexer, {count:,} events")
    print(f"  {'path':<44} {'CPU us/event':>12} {'events/s':>10} {'CPU ratio':>10}")
    base = indexer_cpu / handled
    for label, used, took, events in (
        ("indexer from Kafka (baseline)", indexer_cpu, indexer_wall, handled),
        ("tail of the log into the aggregates", tail_cpu, tail_wall, follower.events),
    ):
        per = used / max(events, 1)
        print(f"  {label:<44} {per * 1e6:>12.1f} {events / took:>10,.0f} {per / base:>10.2f}")
    print(
        f"  loading the same from the index (start-up scan): {documents:,} documents, "
        f"{documents / load_wall:,.0f}/s"
    )
    # The tail's steps timed apart over the same events, in this process (no broker).
    codec, monthly = EventCodec(default_catalog()), monthly_kinds(default_catalog())
    records = [event(n, "bench-tail") for n in range(count)]
    raw = [(TOPIC_OF[str(e.WhichOneof("payload"))], e.SerializeToString()) for e in records]
    started = time.process_time()
    decoded = [codec.decode(topic, value) for topic, value in raw]
    decoding = time.process_time() - started
    started = time.process_time()
    built = [
        document_for(prefix, e, topic, 0, n, monthly)
        for n, ((topic, _), e) in enumerate(zip(raw, decoded, strict=True))
    ]
    building = time.process_time() - started
    started = time.process_time()
    facts = [(d.doc_id, facts_of(d.body, d.version)) for d in built]
    reducing = time.process_time() - started
    started = time.process_time()
    counted = Aggregates()
    for event_id, fact in facts:
        counted.apply(event_id, fact)
    counting = time.process_time() - started
    steps = (
        ("decode", decoding),
        ("document_for", building),
        ("facts_of", reducing),
        ("count", counting),
    )
    print(
        "  its steps, CPU us/event: "
        + ", ".join(f"{label} {used / count * 1e6:.1f}" for label, used in steps)
    )


def idle_cost(settings: CoreSettings, client: OpenSearch, seconds: float) -> None:
    """CPU of an idle tail over every topic the evaluator indexes (and their DLQs) against
    an idle indexer loop over the same topics (the baseline), each alone for ``seconds``
    after a warm-up, as shares of a core."""
    catalog = default_catalog()
    topics = [spec.name for spec in catalog.consumed_by("evaluator")]
    warm_up = 10.0

    def measured(start: Callable[[threading.Event], threading.Thread]) -> float:
        stop = threading.Event()
        thread = start(stop)
        time.sleep(warm_up)
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(seconds)
        used = (time.process_time() - cpu) / (time.perf_counter() - wall)
        stop.set()
        thread.join(30)
        return used

    def indexer(stop: threading.Event) -> threading.Thread:
        loop = ConsumerLoop(
            settings=settings,
            service="evaluator",
            group="bench.idle",
            topics=topics,
            handler=lambda batch: BatchResult(),
            codec=EventCodec(catalog),
            producer=EventProducer(settings, "evaluator", catalog, Metrics()),
            metrics=Metrics(),
            stop=stop,
        )
        thread = threading.Thread(target=loop.run)
        thread.start()
        return thread

    def tail(stop: threading.Event) -> threading.Thread:
        follower = LogTail(
            settings,
            MaintainedAggregates(tailed=True),
            client,
            "bench-idle",
            EventCodec(catalog),
            topics,
            group="bench.idle",
            committed=lambda partitions: {},
            stop=stop,
        )
        thread = threading.Thread(target=follower.run, args=(lambda: True,))
        thread.start()
        return thread

    base = measured(indexer)
    tailing = measured(tail)
    print(f"\nidle, {len(topics)} topics, {seconds:.0f} s each (share of a core)")
    print(f"  {'idle indexer loop (baseline)':<44} {base:>8.3f}")
    print(f"  {'idle tail (the topics and their DLQs)':<44} {tailing:>8.3f} {tailing / base:>8.2f}")
    empty_poll_cost(settings, [*topics, *(topic + DLQ_SUFFIX for topic in topics)])


def empty_poll_cost(settings: CoreSettings, topics: list[str], polls: int = 200) -> None:
    """CPU (this process, every thread) of one poll that finds nothing, the tail's way (no
    group, no wait, 20 ms apart), over one topic's partitions (the baseline) and over all of
    ``topics``' partitions, as the tail assigns them: what a tail costs per poll whatever
    the traffic."""
    consumer = KafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False)
    try:
        every = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        first = [tp for tp in every if tp.topic == topics[0]]
        costs = []
        for partitions in (first, every):
            consumer.assign(partitions)
            consumer.seek_to_end()
            for _ in range(20):  # positions found, connections up
                consumer.poll(timeout_ms=0)
            cpu = time.process_time()
            for _ in range(polls):
                consumer.poll(timeout_ms=0)
                time.sleep(0.02)
            costs.append((len(partitions), (time.process_time() - cpu) / polls))
    finally:
        consumer.close()
    print(f"\nan empty poll, no group, {polls} polls 20 ms apart (CPU ms per poll)")
    (base_partitions, base), *rest = costs
    print(f"  {f'{base_partitions} partitions (one topic, baseline)':<44} {base * 1e3:>8.2f}")
    for count, used in rest:
        label = f"{count} partitions (the tail's)"
        print(f"  {label:<44} {used * 1e3:>8.2f} {used / base:>8.2f}")


def message_to_dict(envelope: Envelope) -> dict[str, Any]:
    """What ``envelope_to_dict`` did before the compiled converter."""
    result: dict[str, Any] = json_format.MessageToDict(
        envelope, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return result


def conversion_rates(
    envelopes: Sequence[Envelope], rounds: int = 7, seconds: float = 0.3
) -> dict[str, float]:
    """Events per second of each converter over ``envelopes``: ``rounds`` rounds of about
    ``seconds`` each, the two converters alternately (a loaded machine slows both alike),
    the best round of each."""
    converters = {"MessageToDict": message_to_dict, "envelope_to_dict": envelope_to_dict}
    for convert in converters.values():
        for envelope in envelopes:
            convert(envelope)  # compiled and warm before timing
    best = dict.fromkeys(converters, 0.0)
    for _ in range(rounds):
        for label, convert in converters.items():
            done = 0
            started = time.process_time()
            while (elapsed := time.process_time() - started) < seconds:
                for envelope in envelopes:
                    convert(envelope)
                done += len(envelopes)
            best[label] = max(best[label], done / elapsed)
    return best


def documents_part() -> None:
    """Part 5 (see the module's docstring): prints its table."""
    catalog = [envelope_from_json(spec.example) for spec in default_catalog()]
    mix = [event(n) for n in range(1000)]
    print("\ndocuments: the envelope's JSON form (events/s of process CPU, best of 7 rounds)")
    print(f"  {'envelopes':<34} {'MessageToDict':>14} {'envelope_to_dict':>17} {'ratio':>6}")
    for label, envelopes in (
        (f"catalog examples ({len(catalog)} topics)", catalog),
        ("indexing mix (1,000 events)", mix),
    ):
        rates = conversion_rates(envelopes)
        slow, fast = rates["MessageToDict"], rates["envelope_to_dict"]
        print(f"  {label:<34} {slow:>14,.0f} {fast:>17,.0f} {fast / slow:>6.2f}")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="evaluator_bench.py", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events for the scorecard")
    parser.add_argument("--indexing", type=int, default=5_000, help="events per indexing path")
    parser.add_argument(
        "--rates", default="100,1000", help="freshness: events per second, comma separated"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="freshness: per rate")
    parser.add_argument("--runs", type=int, default=30, help="scorecard searches to time")
    parser.add_argument(
        "--aggregate-events",
        default="100000,1000000",
        help="scorecards from the aggregates: indexed events, comma separated",
    )
    parser.add_argument(
        "--index-limit",
        type=int,
        default=200_000,
        help=(
            "aggregates part: more events than this are counted into the aggregates without "
            "the index (osmem holds ~2 GB per 60,000 documents and writes ~100-700 a second)"
        ),
    )
    parser.add_argument(
        "--search-runs",
        type=int,
        default=0,
        help="aggregates part: event-search scorecards to time beside (at 100,000 events or fewer)",
    )
    parser.add_argument(
        "--tail-events", type=int, default=20_000, help="tail part: events on the topics"
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=30.0, help="tail part: idle CPU measured this long"
    )
    parser.add_argument(
        "--only",
        choices=("indexing", "freshness", "scorecard", "aggregates", "documents", "tail"),
        action="append",
        help="run only these parts (repeatable; default: all)",
    )
    args = parser.parse_args(list(argv))
    parts = set(
        args.only or ("indexing", "freshness", "scorecard", "aggregates", "documents", "tail")
    )
    if "documents" in parts:
        documents_part()  # in this process alone: before the stand-ins start
        parts.discard("documents")
        if not parts:
            return 0
    # The stand-ins come with the development install (make install), not the image.
    from legation_devstack.standins import start_kafka, start_opensearch

    workdir = Path(tempfile.mkdtemp(prefix="legation-bench-evaluator-"))
    kafka = start_kafka(workdir / "kafka", workdir / "logs")
    opensearch = start_opensearch(workdir / "logs")
    try:
        settings = CoreSettings(
            kafka_bootstrap_servers=kafka.bootstrap_servers,
            consumer_poll_timeout_ms=100,
            consumer_idle_wait_ms=20,
        )
        ensure_topics(settings, default_catalog(), replication_factor=1)
        client = OpenSearch(hosts=[opensearch.url], timeout=120)
        for prefix in ("bench-raw", "bench-bulk", "bench-single", "bench-kafka") * (
            "indexing" in parts
        ):
            # Template and monthly indices in place first: no path pays for creating them.
            warm = EventIndex(client, prefix)
            warm.ensure_template()
            warm.bulk(
                [document_for(prefix, event(n, "warm"), "bench", 0, n) for n in range(0, 9000, 97)]
            )
        backlog = 0
        if "indexing" in parts:
            produce(settings, range(args.indexing), "bench-kafka")
            backlog = args.indexing
            rates = indexing_rates(client, settings, args.indexing)
            baseline = rates[0][1]
            print(f"\nindexing {args.indexing} events (mentions, interactions, publications)")
            print(f"  {'path':<38} {'events/s':>10} {'ratio to raw bulk':>18}")
            for label, rate in rates:
                print(f"  {label:<38} {rate:>10,.0f} {rate / baseline:>18.2f}")

        if "freshness" in parts:
            print("\nfreshness: produced to Kafka -> counted by the scorecard")
            print(f"  {'rate':>10} {'p50 ms':>10} {'p99 ms':>10}")
            for rate in (float(r) for r in args.rates.split(",")):
                p50, p99, produced = freshness(client, settings, rate, args.seconds, backlog)
                backlog += produced
                print(f"  {rate:>8.0f}/s {p50 * 1000:>10.0f} {p99 * 1000:>10.0f}")
        if "aggregates" in parts:
            count_p95 = None
            for count in (int(n) for n in args.aggregate_events.split(",")):
                indexed = count <= args.index_limit
                floor = aggregate_scorecards(
                    client,
                    count,
                    max(args.runs, 100),
                    args.search_runs if count <= 100_000 else 0,
                    indexed,
                    count_p95,
                )
                count_p95 = floor if indexed else count_p95
        if "tail" in parts:
            tail_cost(client, settings, args.tail_events)
            idle_cost(settings, client, args.idle_seconds)
        if "scorecard" not in parts:
            return 0

        prefix = "bench-card"
        index = EventIndex(client, prefix)
        index.ensure_template()
        for start in range(0, args.events, 2000):
            docs = [
                document_for(prefix, event(n), "bench", 0, n)
                for n in range(start, min(args.events, start + 2000))
            ]
            index.bulk(docs)
        timings = scorecard_latency(client, prefix, args.runs)
        floor = statistics.median(timings["count"])
        print(f"\nscorecard over {args.events} indexed events (4 objectives)")
        print(f"  {'query':<32} {'p50 ms':>8} {'p95 ms':>8} {'p50 ratio to count':>20}")
        for label, values in timings.items():
            p50 = statistics.median(values)
            print(
                f"  {label:<32} {p50 * 1000:>8.1f} {percentile(values, 0.95) * 1000:>8.1f}"
                f" {p50 / floor:>20.1f}"
            )
    finally:
        kafka.process.stop()
        opensearch.process.stop()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
