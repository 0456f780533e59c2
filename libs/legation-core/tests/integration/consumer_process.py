"""A consume loop in a process of its own, for tests that kill it: the Kit's topics (see
core_kafka_kit), static group membership and idle-wait polling, as the local stack runs the
services. Usage: ``python consumer_process.py <bootstrap servers> <unique> <client>`` (a
``LEGATION_KAFKA_CLIENT``); SIGTERM stops it (exit 0). It logs to stderr, "commit refused"
lines included."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from core_kafka_kit import Kit
from prometheus_client import CollectorRegistry

from legation_core.config import CoreSettings
from legation_core.consumer import ConsumerLoop, Incoming, Outgoing, per_event
from legation_core.kafka import EventProducer
from legation_core.metrics import Metrics

INSTANCE = "member-0"


def main(bootstrap: str, unique: str, client: str) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = CoreSettings(
        kafka_bootstrap_servers=bootstrap,
        kafka_client=client,
        consumer_instance_id=INSTANCE,
        consumer_poll_timeout_ms=200,
        consumer_idle_wait_ms=50,
        consumer_max_batch=20,
    )
    kit = Kit(settings, unique)
    metrics = Metrics(CollectorRegistry())
    producer = EventProducer(settings, "engager", kit.catalog, metrics)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)

    def reply(event: Incoming) -> list[Outgoing]:
        return [kit.reply_to(event)]

    loop = ConsumerLoop(
        settings=settings,
        service="engager",
        group=kit.group,
        topics=[kit.in_topic],
        handler=per_event(reply),
        codec=kit.codec,
        producer=producer,
        metrics=metrics,
        stop=stop,
    )
    try:
        loop.run()
    finally:
        producer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
