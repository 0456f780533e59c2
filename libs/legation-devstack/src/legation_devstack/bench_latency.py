"""``python -m legation_devstack bench-latency``: how long a feed item takes to become an
indexed mention and an indexed conversation, through the four services as processes.

Each round adds one matching question (worded apart from the others, so none is a
near-duplicate) to a local feed the listener tracks, asks for a poll
(``PollNow``) and times until the evaluator's index holds the mention, then the
conversation the engager opened from it. The baseline of the same run is the indexer's
share alone: a mention produced straight to Kafka, timed until it is indexed. Figures are
median and 95th percentile milliseconds and their ratio to the baseline's median, so they
compare whatever the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaProducer
from opensearchpy import OpenSearch

from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation.listener.v1 import listener_service_pb2_grpc as listener_grpc
from legation_core.codec import EventCodec, make_envelope
from legation_core.ids import stable_id
from legation_core.topic_names import LISTEN_MENTIONS_V1
from legation_devstack.processes import wait_until
from legation_devstack.stack import Stack

INDEX = "legation-events-v1"


def _count(index: OpenSearch, suffix: str, campaign_id: str) -> int:
    index.indices.refresh(index=f"{INDEX}-*")
    query = {"query": {"bool": {"filter": [{"term": {"campaign_ids": campaign_id}}]}}}
    return int(index.count(index=f"{INDEX}-{suffix}*", body=query)["count"])


def _question(n: int) -> str:
    """Question ``n``, worded apart from the others (near-duplicates open no conversation)."""
    digest = hashlib.sha256(str(n).encode()).hexdigest()
    words = " ".join(f"w{digest[i : i + 5]}" for i in range(0, 60, 5))
    return f"Why did the plastics treaty {words} slip?"


def probe_feed(questions: int) -> str:
    """An RSS document holding questions 1 to ``questions``, each about the plastics treaty."""
    items = "".join(
        f"<item><title>Plastics treaty vote {n}</title><guid>https://x.example/{n}</guid>"
        f"<link>https://x.example/{n}</link>"
        f"<description>{_question(n)}</description></item>"
        for n in range(1, questions + 1)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://x.example/</link><description>d</description>{items}</channel></rss>"
    )


def _reaches(index: OpenSearch, suffix: str, campaign_id: str, n: int) -> Callable[[], bool]:
    """True once the index holds ``n`` documents of ``suffix`` for ``campaign_id``."""
    return lambda: _count(index, suffix, campaign_id) == n


def track_probe(listener: listener_grpc.ListenerServiceStub, issue_id: str, feed: Path) -> None:
    """Tracks ``feed`` (a local file) for questions on the plastics treaty, as ``issue_id``
    and a campaign of the same id."""
    listener.TrackIssue(
        listener_pb.TrackIssueRequest(
            issue_id=issue_id,
            name="Latency probe",
            keywords=["plastics treaty"],
            feeds=[str(feed)],
            campaign_ids=[issue_id],
        ),
        timeout=30,
    )


def _figures(name: str, seconds: Sequence[float], baseline: float) -> str:
    ordered = sorted(seconds)
    median = statistics.median(ordered)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return (
        f"  {name:<42} median {median * 1000:7.0f} ms  p95 {p95 * 1000:7.0f} ms  "
        f"{median / baseline:5.1f} x baseline"
    )


def measure(stack: Stack, rounds: int) -> dict[str, list[float]]:
    """Runs the rounds on a started stack; returns seconds per round for each path."""
    assert stack.opensearch is not None and stack.kafka is not None
    index = OpenSearch(hosts=[stack.opensearch.url], timeout=30)
    campaign_id = f"latency-{uuid.uuid4().hex[:8]}"
    baseline_campaign = f"{campaign_id}-raw"
    feed = stack.workdir / "latency.rss"
    feed.write_text(probe_feed(0))
    producer = KafkaProducer(bootstrap_servers=stack.kafka.bootstrap_servers, acks="all")
    times: dict[str, list[float]] = {"raw": [], "mention": [], "conversation": []}
    try:
        with stack.channel("listener") as channel:
            listener = listener_grpc.ListenerServiceStub(channel)
            track_probe(listener, campaign_id, feed)
            for n in range(1, rounds + 1):
                mention = listen_pb2.Mention(
                    mention_id=stable_id("latency", baseline_campaign, str(n)),
                    source="rss",
                    source_url="https://feeds.example.org/latency",
                    item_id=f"raw-{n}",
                    title=f"Raw {n}",
                    text="A mention produced straight to Kafka.",
                    language="en",
                    campaign_ids=[baseline_campaign],
                )
                envelope = make_envelope(
                    mention,
                    event_id=mention.mention_id,
                    source_service="listener",
                    occurred_at=datetime.now(UTC),
                    campaign_id=baseline_campaign,
                    issue_id="latency",
                )
                started = time.monotonic()
                producer.send(
                    LISTEN_MENTIONS_V1,
                    key=mention.mention_id.encode(),
                    value=EventCodec.encode(envelope),
                )
                producer.flush()
                wait_until(_reaches(index, "mention", baseline_campaign, n), 60, "raw", 0.01)
                times["raw"].append(time.monotonic() - started)

                feed.write_text(probe_feed(n))
                started = time.monotonic()
                listener.PollNow(listener_pb.PollNowRequest(issue_id=campaign_id), timeout=30)
                wait_until(_reaches(index, "mention", campaign_id, n), 60, "mention", 0.01)
                times["mention"].append(time.monotonic() - started)
                wait_until(
                    _reaches(index, "interaction", campaign_id, n),
                    60,
                    "conversation",
                    0.01,
                )
                times["conversation"].append(time.monotonic() - started)
    finally:
        producer.close()
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m legation_devstack bench-latency")
    parser.add_argument("--rounds", type=int, default=10, help="feed items to time (10)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="legation-bench-latency-"))
    stack = Stack(workdir, extra_env={"LEGATION_LISTENER_POLL_SECONDS": "3600"})
    try:
        stack.start()
        times = measure(stack, args.rounds)
    finally:
        stack.stop()
    shutil.rmtree(workdir)  # kept when a round failed: its logs say why
    baseline = statistics.median(times["raw"])
    lines = [
        f"Feed item to index, {args.rounds} rounds:",
        _figures("baseline: mention produced → indexed", times["raw"], baseline),
        _figures("feed item → PollNow → indexed mention", times["mention"], baseline),
        _figures("feed item → indexed conversation", times["conversation"], baseline),
    ]
    print("\n".join(lines))
    return 0
