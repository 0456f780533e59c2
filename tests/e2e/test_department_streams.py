"""End to end for a department: the listener (a process, with a pseudonym key) reads
Mastodon, Bluesky and feeds from local replay servers and derives the pseudonymised mentions;
the research unit's subscribers, started with the ``legation-subscribe`` command line from a
point in time, get exactly its granted topics' events since then (JSON lines and a signed
webhook), across a restart, without loss or duplicates; the derived stream names nobody.

The broker stand-in enforces no ACLs: what the department may read is checked on the
KafkaUser generated for it (``tools/gen_k8s_departments.py``), with Kafka's rules.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from legation_subscribe import verify_signature

import gen_k8s_departments as access
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation.listener.v1 import listener_service_pb2_grpc as listener_grpc
from legation_core.codec import Envelope, envelope_to_dict
from legation_core.config import CoreSettings
from legation_core.disclosure import personal_values
from legation_core.kafka import read_records
from legation_devstack import campaign_week
from legation_devstack.demo import ISSUE_ID, track_demo_issue
from legation_devstack.processes import wait_until
from legation_devstack.stack import Stack
from legation_devstack.week_demo import HASHTAG, ReplaySources

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
MENTIONS = "legation.listen.mentions.v1"
DERIVED = "legation.listen.mentions-pseudonymised.v1"
DEPARTMENT = "research-unit"
WEBHOOK_SECRET = secrets.token_urlsafe(24)
PSEUDONYM = re.compile(r"p-[a-z2-7]{16}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        tmp_path_factory.mktemp("streams"),
        extra_env={
            "LEGATION_PSEUDONYM_KEY": secrets.token_urlsafe(48),
            "LEGATION_LISTENER_POLL_SECONDS": "3600",
        },
    )
    try:
        stack.start_infrastructure()
        stack.start_service("listener")
        yield stack
    finally:
        stack.stop()


class Receiver(ThreadingHTTPServer):
    """The department's own system: checks every signature, keeps every event it got."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        signature = self.headers.get("X-Legation-Signature", "")
        with self.server.lock:
            if verify_signature(WEBHOOK_SECRET.encode(), signature, body):
                self.server.events.append(json.loads(body))
                status = 204
            else:
                self.server.bad_signatures += 1
                status = 401
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return None


def records(settings: CoreSettings, topic: str) -> list[Any]:
    return list(read_records(settings, topic, timeout=60))


def envelope(record: Any) -> Envelope:
    parsed = Envelope()
    parsed.ParseFromString(record.value)
    return parsed


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_department_subscribes_from_a_time_and_gets_exactly_its_grant(
    stack: Stack, tmp_path: Path
) -> None:
    """The steps in order, each its own function so that a failure names the step."""
    assert stack.kafka is not None
    settings = CoreSettings(kafka_bootstrap_servers=stack.kafka.bootstrap_servers)
    grants = yaml.safe_load(access.GRANTS.read_text())
    topics = next(d["topics"] for d in grants["departments"] if d["name"] == DEPARTMENT)
    user = yaml.safe_load((access.OUT_DIR / f"legation-dept-{DEPARTMENT}.yaml").read_text())
    group = f"legation.dept.{DEPARTMENT}.e2e"
    step_the_departments_kafka_user_reads_only_its_grant(user, topics, group)
    receiver = Receiver()
    want = step_both_sinks_follow_the_stream_from_a_time_across_a_restart(
        stack, settings, topics, group, receiver, tmp_path
    )
    step_each_sink_got_each_event_once_and_none_before(receiver, topics, want, tmp_path)
    step_the_pseudonymised_stream_names_nobody(settings, len(want))


def step_the_departments_kafka_user_reads_only_its_grant(
    user: dict[str, Any], topics: list[str], group: str
) -> None:
    """What the stand-in cannot enforce, the department's KafkaUser does."""
    assert all(access.acl_allows(user, "Read", "topic", topic) for topic in topics)
    assert access.acl_allows(user, "Read", "group", f"{group}.jsonl")
    assert not access.acl_allows(user, "Read", "topic", MENTIONS)
    assert not access.acl_allows(user, "Read", "group", "legation.listener.derived-streams")


def step_both_sinks_follow_the_stream_from_a_time_across_a_restart(
    stack: Stack,
    settings: CoreSettings,
    topics: list[str],
    group: str,
    receiver: Receiver,
    tmp_path: Path,
) -> list[str]:
    """A JSONL file and a webhook subscribed from a time after the first slice, stopped
    mid-stream and started again; returns the ids of the events since that time."""
    sources = ReplaySources.on_free_ports().start()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    items = campaign_week.week(datetime.now(UTC) - timedelta(hours=1), mentions=90, seed=17)
    parts = campaign_week.slices(items, 3)
    try:
        with stack.channel("listener") as channel:
            listener = listener_grpc.ListenerServiceStub(channel)
            track_demo_issue(listener, sources.feeds(), campaign_week.LANGUAGES)
            poll = listener_pb.PollNowRequest(issue_id=ISSUE_ID)
            listener.PollNow(poll, timeout=60)  # sets each source's cursor

            def release(part: list[campaign_week.PublicItem], n: int) -> None:
                sources.release(part)
                # Posts that name other accounts, in the text, as people write them.
                sources.mastodon.post(
                    f"@ana1 @ben2@elsewhere.example what now for the plastics treaty? ({n})",
                    tags=(HASHTAG,),
                    username="chloe1",
                    display_name="Chloé Martin",
                    language="en",
                    created_at=datetime.now(UTC) - timedelta(minutes=5),
                )
                listener.PollNow(poll, timeout=120)

            def derived_all() -> bool:
                return len(records(settings, DERIVED)) == len(records(settings, MENTIONS))

            release(parts[0], 0)
            wait_until(derived_all, 60, "the first slice derived", 0.5)
            before = len(records(settings, MENTIONS))
            assert before > 10
            time.sleep(0.05)  # record times are milliseconds: start strictly after them
            since = datetime.now(UTC)

            def subscribers() -> list[subprocess.Popen[bytes]]:
                base = [
                    sys.executable,
                    "-m",
                    "legation_subscribe",
                    *("--bootstrap", stack.kafka.bootstrap_servers if stack.kafka else ""),
                    *[arg for topic in topics for arg in ("--topic", topic)],
                    *("--from", since.isoformat(), "--max-batch", "10", "--quiet"),
                ]
                env = {**os.environ, "LEGATION_SUBSCRIBE_WEBHOOK_SECRET": WEBHOOK_SECRET}
                url = f"http://127.0.0.1:{receiver.server_address[1]}/legation"
                return [
                    subprocess.Popen(
                        [
                            *base,
                            *("--group", f"{group}.jsonl", "--output", str(tmp_path / "out.jsonl")),
                            *("--dead-letters", str(tmp_path / "jsonl.dead")),
                        ],
                        env=env,
                        stderr=subprocess.PIPE,
                    ),
                    subprocess.Popen(
                        [
                            *base,
                            *("--group", f"{group}.hook", "--format", "webhook"),
                            *("--webhook-url", url, "--dead-letters", str(tmp_path / "hook.dead")),
                        ],
                        env=env,
                        stderr=subprocess.PIPE,
                    ),
                ]

            def stop(processes: list[subprocess.Popen[bytes]]) -> None:
                for process in processes:
                    process.send_signal(signal.SIGTERM)
                for process in processes:
                    _, err = process.communicate(timeout=60)
                    assert process.returncode == 0, err.decode()[-2000:]

            running = subscribers()
            release(parts[1], 1)
            wait_until(lambda: len(lines(tmp_path / "out.jsonl")) > 0, 60, "first events", 0.2)
            wait_until(lambda: len(receiver.events) > 0, 60, "first webhook events", 0.2)
            stop(running)  # mid-stream: the derivation may still be producing
            release(parts[2], 2)
            running = subscribers()
            wait_until(derived_all, 60, "every slice derived", 0.5)

            def expected() -> list[str]:
                ids = []
                for topic in topics:
                    for record in records(settings, topic):
                        if record.timestamp >= since.timestamp() * 1000:
                            ids.append(envelope(record).event_id)
                return sorted(ids)

            want = expected()
            assert len(want) > 20
            wait_until(
                lambda: len(lines(tmp_path / "out.jsonl")) >= len(want), 90, "every event", 0.5
            )
            wait_until(lambda: len(receiver.events) >= len(want), 90, "every webhook event", 0.5)
            stop(running)
    finally:
        sources.stop()
        receiver.shutdown()
        receiver.server_close()
    return want


def step_each_sink_got_each_event_once_and_none_before(
    receiver: Receiver, topics: list[str], want: list[str], tmp_path: Path
) -> None:
    """Both sinks: every event of the grant since the time, each once, none before."""
    got = lines(tmp_path / "out.jsonl")
    assert sorted(line["event"]["event_id"] for line in got) == want  # each once, none before
    assert sorted(event["event"]["event_id"] for event in receiver.events) == want
    assert receiver.bad_signatures == 0
    assert {line["topic"] for line in got} <= set(topics)
    assert {line["topic"] for line in got} >= {DERIVED}
    assert not (tmp_path / "jsonl.dead").read_text()


def step_the_pseudonymised_stream_names_nobody(settings: CoreSettings, streamed: int) -> None:
    """Every field of every event of the run: nobody's name, handle, account or profile,
    and one pseudonym per author."""
    raw = [envelope(r) for r in records(settings, MENTIONS)]
    derived = {envelope(r).event_id: envelope(r) for r in records(settings, DERIVED)}
    assert set(derived) == {e.event_id for e in raw}
    personal: set[str] = set()
    for source in raw:
        personal |= personal_values(source.mention)
    assert {"ana1", "ben2@elsewhere.example", "chloé martin"} <= personal
    sources_seen = {e.mention.source for e in raw}
    assert {"mastodon", "bluesky", "rss"} <= sources_seen
    for event_id, copy in derived.items():
        text = PSEUDONYM.sub(" ", " ".join(strings(envelope_to_dict(copy))).lower())
        leaked = sorted(value for value in personal if value in text)
        assert not leaked, (event_id, leaked)
    pseudonyms: dict[str, set[str]] = defaultdict(set)
    for source in raw:
        author = source.mention.author_id or f"{source.mention.source}:{source.mention.author}"
        pseudonyms[author].add(derived[source.event_id].mention.author)
    assert all(len(seen) == 1 for seen in pseudonyms.values())
    assert len({next(iter(seen)) for seen in pseudonyms.values()}) == len(pseudonyms)
    assert len(pseudonyms) >= 5
    print(
        f"\n{streamed} events since the start to each sink, {len(derived)} pseudonymised "
        f"mentions checked against {len(personal)} personal values of {len(pseudonyms)} authors"
    )
