"""The subscriber against the Kafka stand-in: from a point in time, JSON lines and a signed
webhook, a restart without loss or duplicates, dead letters for what cannot be used."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from legation_subscribe import (
    Connection,
    HandlerSink,
    JsonLinesSink,
    RetryLater,
    Start,
    Subscriber,
    verify_signature,
)
from legation_subscribe.events import Envelope

from legation.events.v1 import listen_pb2
from legation_core.config import CoreSettings
from legation_devstack.processes import wait_until

pytestmark = pytest.mark.integration
SECRET = "department-webhook-secret"


def mention(n: int) -> bytes:
    envelope = Envelope(
        event_id=f"event-{n}",
        event_type="legation.events.v1.Mention",
        schema_version=1,
        source_service="listener",
        mention=listen_pb2.Mention(mention_id=f"m-{n}", language=("en", "fr", "es")[n % 3]),
    )
    envelope.occurred_at.FromDatetime(datetime(2026, 11, 20, tzinfo=UTC))
    return envelope.SerializeToString()


class Topic:
    """A test's own topic with records at chosen times."""

    def __init__(self, settings: CoreSettings, name: str, partitions: int = 3) -> None:
        self.name = name
        self.bootstrap = settings.kafka_bootstrap_servers
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        admin.create_topics([NewTopic(name, partitions, 1)])
        admin.close()
        self.producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")

    def produce(self, numbers: range, at_ms: int, raw: bytes | None = None) -> None:
        for n in numbers:
            value = raw if raw is not None else mention(n)
            self.producer.send(self.name, key=f"m-{n}".encode(), value=value, timestamp_ms=at_ms)
        self.producer.flush()


@pytest.fixture
def topic(kafka_settings: CoreSettings, unique: str) -> Iterator[Topic]:
    created = Topic(kafka_settings, f"test.subscribe.{unique}")
    yield created
    created.producer.close()


def cli(topic: Topic, group: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "legation_subscribe",
            "--bootstrap",
            topic.bootstrap,
            "--group",
            group,
            "--topic",
            topic.name,
            "--dead-letters",
            str(out.parent / f"{out.name}.dead.jsonl"),
            "--max-batch",
            "50",
            "--quiet",
            *extra,
        ],
        env={**os.environ, "LEGATION_SUBSCRIBE_WEBHOOK_SECRET": SECRET},
        stderr=subprocess.PIPE,
    )


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stop(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    return err.decode()


class Receiver(ThreadingHTTPServer):
    """A department's webhook endpoint: checks each signature, answers 503 to the first
    ``fail_first`` requests and 400 to event ``poison``, records what it accepted."""

    def __init__(self, fail_first: int = 0, poison: str = "") -> None:
        self.accepted: list[str] = []
        self.bad_signatures = 0
        self.fail_first = fail_first
        self.poison = poison
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/legation"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        with server.lock:
            if not verify_signature(SECRET.encode(), self.headers["X-Legation-Signature"], body):
                server.bad_signatures += 1
                status = 401
            elif server.fail_first > 0:
                server.fail_first -= 1
                status = 503
            elif json.loads(body)["event"]["event_id"] == server.poison:
                status = 400
            else:
                server.accepted.append(json.loads(body)["event"]["event_id"])
                status = 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(fail_first=3, poison="event-130")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_from_a_time_in_jsonl_and_webhook_with_a_restart(
    topic: Topic, unique: str, tmp_path: Path, receiver: Receiver
) -> None:
    before = int(time.time() * 1000) - 3_600_000
    start = before + 1_800_000
    topic.produce(range(0, 100), before)  # before the start: never delivered
    topic.produce(range(100, 200), start + 1_000)
    topic.produce(range(0, 1), start + 2_000, raw=b"not an envelope")  # a dead letter
    since = datetime.fromtimestamp(start / 1000, UTC).isoformat()
    out = tmp_path / "events.jsonl"

    def subscribe() -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
        """The JSON lines subscriber and the webhook one, both from ``since`` (a restart
        goes on from their saved positions)."""
        jsonl = cli(
            topic, f"legation.dept.test.{unique}.jsonl", out, "--from", since, "--output", str(out)
        )
        hook = cli(
            topic,
            f"legation.dept.test.{unique}.hook",
            tmp_path / "hook",
            "--from",
            since,
            "--format",
            "webhook",
            "--webhook-url",
            receiver.url,
        )
        return jsonl, hook

    jsonl, hook = subscribe()
    wait_until(lambda: len(lines(out)) >= 100, 60, "the first 100 events in JSON lines")
    wait_until(lambda: len(receiver.accepted) >= 99, 90, "99 events at the webhook")
    # Stopped mid-stream: more events come while the subscribers are down.
    topic.produce(range(200, 250), start + 3_000)
    first_run = stop(jsonl)
    stop(hook)
    topic.produce(range(250, 300), start + 4_000)
    jsonl, hook = subscribe()
    wait_until(lambda: len(lines(out)) >= 200, 60, "200 events in JSON lines")
    wait_until(lambda: len(receiver.accepted) >= 199, 90, "199 events at the webhook")
    second_run = stop(jsonl)
    stop(hook)

    expected = {f"event-{n}" for n in range(100, 300)}
    got = [line["event"]["event_id"] for line in lines(out)]
    assert sorted(got) == sorted(expected)  # every one, once, none from before the start
    assert lines(out)[0]["event"]["mention"]["language"] in ("en", "fr", "es")
    assert sorted(receiver.accepted) == sorted(expected - {"event-130"})
    assert receiver.bad_signatures == 0
    # The garbage record and the event the webhook refused are dead letters, with reasons.
    dead = lines(tmp_path / "events.jsonl.dead.jsonl")
    assert [d["dlq-reason"].split(":")[0] for d in dead] == ["not a legation.events.v1.Envelope"]
    hooked = lines(tmp_path / "hook.dead.jsonl")
    reasons = sorted(d["dlq-reason"] for d in hooked)
    assert reasons[1] == "webhook refused the event: HTTP 400"
    assert reasons[0].startswith("not a legation.events.v1.Envelope")
    # Each run says what it delivered; the two add up to every event once.
    runs = [json.loads(run.splitlines()[-1]) for run in (first_run, second_run)]
    assert runs[0]["delivered"] >= 100 and runs[1]["delivered"] >= 50
    assert runs[0]["delivered"] + runs[1]["delivered"] == 200


def test_from_the_end_and_a_handler_that_fails_once(
    topic: Topic, kafka_settings: CoreSettings, unique: str
) -> None:
    now = int(time.time() * 1000)
    topic.produce(range(0, 20), now)
    seen: list[str] = []
    failures = {"event-25": 1}

    def handle(event: Any) -> None:
        event_id = event.envelope.event_id
        if failures.get(event_id):
            failures[event_id] -= 1
            raise RetryLater("the department's database is busy")
        if event_id == "event-27":
            raise ValueError("cannot handle this one")
        seen.append(event_id)

    subscriber = Subscriber(
        Connection(kafka_settings.kafka_bootstrap_servers),
        group=f"legation.dept.test.{unique}",
        topics=[topic.name],
        sink=HandlerSink(handle),
        start=Start.parse("end"),
        retry_backoff=(0.05, 0.2),
    )
    done = threading.Event()

    def run() -> None:
        subscriber.run(max_events=9)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: bool(subscriber._started), 60, "partitions assigned")
    topic.produce(range(20, 30), int(time.time() * 1000))
    assert done.wait(60)
    thread.join()
    assert sorted(seen) == sorted(f"event-{n}" for n in range(20, 30) if n != 27)
    assert subscriber.counts.retries >= 1
    assert subscriber.counts.dead_letters == 1


def test_a_file_sink_survives_a_run_of_the_library(
    topic: Topic, kafka_settings: CoreSettings, unique: str, tmp_path: Path
) -> None:
    topic.produce(range(0, 30), int(time.time() * 1000))
    out = tmp_path / "all.jsonl"
    with out.open("a") as stream:
        counts = Subscriber(
            Connection(kafka_settings.kafka_bootstrap_servers),
            group=f"legation.dept.test.{unique}",
            topics=[topic.name],
            sink=JsonLinesSink(stream, sync=True),
            start=Start.parse("beginning"),
        ).run(until_idle_seconds=2)
    assert counts.delivered == 30
    assert len(lines(out)) == 30


def test_the_readme_example_counts_mentions_per_language(topic: Topic, unique: str) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = readme.split("Counting mentions per language, ten lines:\n\n```python\n")[1]
    code = example.split("```")[0]
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    topic.produce(range(0, 30), int(time.time() * 1000))
    code = (
        code.replace("kafka.example.org:9092", topic.bootstrap)
        .replace("legation.listen.mentions-pseudonymised.v1", topic.name)
        .replace("legation.dept.research-unit.languages", f"legation.dept.test.{unique}")
        .replace("until_idle_seconds=10", "until_idle_seconds=2")
    )
    namespace: dict[str, Any] = {}
    exec(compile(code, "README example", "exec"), namespace)  # our own README
    assert dict(namespace["languages"]) == {"en": 10, "fr": 10, "es": 10}
