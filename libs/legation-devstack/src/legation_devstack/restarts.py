"""``python -m legation_devstack restarts``: how a consumer comes back from SIGKILL restarts.

On a fresh local stack (the stand-ins, the topics, one service), mentions stream in while the
service is killed with SIGKILL and restarted a few times, each restart killed again within
seconds as in a crash loop, then left to run. Printed: how often it logged "commit refused
during a rebalance", and how long after the stream stopped its group had committed every
mention (or how many it had not after a minute). See libs/legation-devstack/STANDINS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaProducer

from legation.events.v1 import listen_pb2
from legation_core.codec import make_envelope
from legation_core.ids import stable_id
from legation_core.topic_names import LISTEN_MENTIONS_V1
from legation_devstack.lag import uncommitted
from legation_devstack.stack import Stack

GROUPS = {"engager": "legation.engager.inbox", "evaluator": "legation.evaluator.indexer"}


def stream(bootstrap: str, stop: threading.Event) -> None:
    """Writes 100 mentions a second until ``stop`` is set."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    number = 0
    try:
        while not stop.is_set():
            for _ in range(20):
                mention_id = stable_id("restarts", str(number))
                mention = listen_pb2.Mention(
                    mention_id=mention_id,
                    source="rss",
                    source_url="https://feeds.example.org/restarts",
                    item_id=f"item-{number}",
                    text=f"What does the treaty mean for town {number}?",
                    language="en",
                    campaign_ids=["restarts"],
                )
                envelope = make_envelope(
                    mention,
                    event_id=mention_id,
                    source_service="listener",
                    occurred_at=datetime.now(UTC),
                    campaign_id="restarts",
                    issue_id="restarts",
                )
                producer.send(
                    LISTEN_MENTIONS_V1, key=mention_id.encode(), value=envelope.SerializeToString()
                )
                number += 1
            producer.flush()
            stop.wait(0.2)
    finally:
        producer.close()


def measure(service: str, kills: int, watch: float, workdir: Path) -> dict[str, float]:
    """Runs the experiment on a stack under ``workdir``; returns its figures."""
    stack = Stack(workdir, extra_env={"LEGATION_CONSUMER_MAX_BATCH": "20"})
    stop = threading.Event()
    try:
        stack.start_infrastructure()
        stack.start_service(service)
        assert stack.kafka is not None
        bootstrap = stack.kafka.bootstrap_servers
        writer = threading.Thread(target=stream, args=(bootstrap, stop), daemon=True)
        writer.start()
        time.sleep(8)
        for _ in range(kills):
            stack.kill_service(service)
            stack.start_service(service, wait=False)
            time.sleep(5)
        time.sleep(watch)
        stop.set()
        writer.join(30)
        stopped = time.monotonic()
        left = uncommitted(bootstrap, GROUPS[service], [LISTEN_MENTIONS_V1])
        while left and time.monotonic() - stopped < 60:
            time.sleep(0.5)
            left = uncommitted(bootstrap, GROUPS[service], [LISTEN_MENTIONS_V1])
        log = stack.services[service].log_path.read_text()
        figures: dict[str, float] = {
            "commit refused during a rebalance": log.count("commit refused")
        }
        if left:
            figures["mentions still uncommitted 60 s after the stream stopped"] = left
        else:
            figures["seconds until all committed after the stream stopped"] = round(
                time.monotonic() - stopped, 1
            )
        return figures
    finally:
        stop.set()
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    """Parses the options, runs the experiment and prints its figures."""
    parser = argparse.ArgumentParser(prog="python -m legation_devstack restarts")
    parser.add_argument("--service", choices=sorted(GROUPS), default="evaluator")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILL restarts, 5 s apart")
    parser.add_argument("--watch", type=float, default=60.0, help="seconds after the last one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="legation-restarts-") as workdir:
        figures = measure(args.service, args.kills, args.watch, Path(workdir))
    print(f"{args.service}, {args.kills} SIGKILL restarts, {args.watch:.0f} s after the last:")
    for name, value in figures.items():
        print(f"  {name}: {value:g}")
    return 0
