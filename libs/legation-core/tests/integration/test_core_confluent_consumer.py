"""The confluent-kafka group member against the Kafka stand-in, which answers an empty fetch
at once: idle, it must not fetch over and over (librdkafka's thread would spin a core), and a
record that comes while it dozes must still reach the next polls."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from core_kafka_kit import Kit, wait_for

from legation_core.confluent import ConfluentConsumer

pytestmark = pytest.mark.integration


class FetchCount:
    """Fetch requests librdkafka sent, from its statistics (every 100 ms, served by polls)."""

    def __init__(self) -> None:
        self.sent = 0
        self.reports = 0
        self.still = False  # no fetch between the last two reports

    def __call__(self, report: str) -> None:
        brokers = json.loads(report)["brokers"].values()
        sent = sum(broker["req"].get("Fetch", 0) for broker in brokers)
        self.still = self.reports > 0 and sent == self.sent
        self.sent = sent
        self.reports += 1


def member(kit: Kit, fetches: FetchCount) -> ConfluentConsumer:
    options: dict[str, Any] = {"statistics.interval.ms": 100, "stats_cb": fetches}
    return ConfluentConsumer(kit.settings, [kit.in_topic], kit.group, None, options)


@pytest.mark.parametrize("kafka_client", ["confluent"])
def test_an_idle_member_dozes_without_fetching_and_wakes_for_new_records(kit: Kit) -> None:
    assert kit.settings.consumer_idle_wait_ms > 0  # the stand-in's settings
    kit.feed_mentions(range(2))
    fetches = FetchCount()
    consumer = member(kit, fetches)
    try:
        records: list[Any] = []

        def both() -> bool:
            records.extend(consumer.poll(100))
            return len(records) == 2

        wait_for(both, what="the 2 records")
        assert consumer.poll(100) == []  # nothing more: its partitions doze
        # The pause reaches librdkafka's fetching thread through its queue, which on a busy
        # machine takes longer than one report: a fetch or two may go out meanwhile. Once
        # a report shows no fetch since the last one, the partitions doze (spinning, the
        # count would never stand still and this wait would time out).
        wait_for(lambda: consumer.poll(0) == [] and fetches.still, what="a report without fetches")
        idle_from, reports = fetches.sent, fetches.reports
        # Idle polls as the loop makes them (a short sleep in between) for a second or
        # more: each asks the broker for the partitions' ends, none fetches (one may have
        # been on its way). Spinning, librdkafka fetched thousands of times.
        polls = 0
        while fetches.reports < reports + 10:
            assert consumer.poll(0) == []
            polls += 1
            time.sleep(kit.settings.consumer_idle_wait_ms / 1000)
        assert fetches.sent - idle_from <= 1, (fetches.sent - idle_from, polls)

        [fed] = kit.feed_mentions(range(2, 3), partition=1)
        woke = wait_for(lambda: consumer.poll(0), what="the record fed while dozing")
        assert [(r.partition, r.offset, r.key) for r in woke] == [(1, 1, b"m-2")]
        assert kit.codec.decode(kit.in_topic, woke[0].value).event_id == fed.event_id
        wait_for(lambda: consumer.poll(0) == [] and fetches.sent > idle_from, what="a fetch")
    finally:
        consumer.close()
