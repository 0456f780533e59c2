"""``python -m legation_devstack bench-console``: what the console adds to a page.

Starts the local stack with the console, fills it with 10,000 inbox conversations (questions
published on the mentions topic, opened by the engager) and 1,000 posts (``CreatePost``),
signs a person in through the local identity provider, then measures in one run, one request
at a time: the console's inbox page against the same ``ListConversations`` call made
directly over gRPC (with the same delegation metadata), and the posts page against its
``ListPosts`` call. Figures: median and 95th percentile milliseconds, and the console's
p95 as a multiple of the call's own p95 (rendering, session, middleware and HTTP).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx

from legation.engager.v1 import engager_service_pb2 as engager_pb
from legation.engager.v1 import engager_service_pb2_grpc as engager_grpc
from legation.events.v1 import listen_pb2
from legation.publisher.v1 import publisher_service_pb2 as publisher_pb
from legation.publisher.v1 import publisher_service_pb2_grpc as publisher_grpc
from legation_core.auth import (
    ON_BEHALF_OF_METADATA,
    ON_BEHALF_OF_ROLES_METADATA,
    ON_BEHALF_OF_UNITS_METADATA,
    token_metadata,
)
from legation_core.catalog import default_catalog
from legation_core.codec import make_envelope
from legation_core.config import CoreSettings
from legation_core.kafka import EventProducer
from legation_core.metrics import Metrics
from legation_core.topic_names import LISTEN_MENTIONS_V1
from legation_devstack.console import GROUP_MAPPING
from legation_devstack.processes import wait_until
from legation_devstack.stack import SERVICES, Stack
from legation_devstack.users import CONSOLE_USER


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def _time(call: Callable[[], object], rounds: int) -> list[float]:
    for _ in range(3):  # warm up
        call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def _seed_conversations(stack: Stack, count: int) -> None:
    assert stack.kafka is not None
    settings = CoreSettings(kafka_bootstrap_servers=stack.kafka.bootstrap_servers)
    producer = EventProducer(settings, "listener", default_catalog(), Metrics())
    now = datetime.now(UTC)
    try:
        for start in range(0, count, 500):
            batch = []
            for number in range(start, min(start + 500, count)):
                mention_id = f"bench-q-{number}"
                mention = listen_pb2.Mention(
                    mention_id=mention_id,
                    source="rss",
                    item_id=mention_id,
                    url=f"https://news.example.org/{mention_id}",
                    author=f"reader {number % 97}",
                    title=f"Question {number}: when does the treaty apply?",
                    text="Is there a date for the plastics treaty to apply here?",
                    language="en",
                )
                mention.published_at.FromDatetime(now - timedelta(seconds=number))
                envelope = make_envelope(
                    mention, event_id=mention_id, source_service="listener", occurred_at=now
                )
                batch.append((LISTEN_MENTIONS_V1, mention_id, envelope))
            producer.send_and_wait(batch)
    finally:
        producer.close()


def _seed_posts(stack: Stack, count: int) -> None:
    with stack.channel("publisher", user="editor") as channel:
        stub = publisher_grpc.PublisherServiceStub(channel)
        for number in range(count):
            stub.CreatePost(
                publisher_pb.CreatePostRequest(
                    request_id=f"bench-post-{number}",
                    campaign_id="bench-2026",
                    content=publisher_pb.VariantContent(
                        title=f"Post {number} on the treaty", body="Our position, in brief."
                    ),
                ),
                timeout=30,
            )


def _signed_in(console_url: str, username: str) -> httpx.Client:
    """An HTTP client with the console's session of ``username`` (through the local
    identity provider, as a browser would)."""
    client = httpx.Client(base_url=console_url, timeout=60)
    to_provider = client.get("/sign-in")
    authorize = to_provider.headers["location"]
    back = httpx.post(authorize, data={"username": username}, timeout=10)
    callback = urllib.parse.urlsplit(back.headers["location"])
    client.get(f"{callback.path}?{callback.query}")
    assert client.get("/").status_code == 200, "not signed in"
    return client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m legation_devstack bench-console")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-console-"))
    stack = Stack(workdir)
    try:
        stack.start_infrastructure()
        for name in SERVICES:
            stack.start_service(name)
        console = stack.start_console()
        assert stack.users is not None
        print(f"seeding {args.conversations:,} conversations and {args.posts:,} posts ...")
        started = time.perf_counter()
        _seed_conversations(stack, args.conversations)
        _seed_posts(stack, args.posts)
        with stack.channel("engager", user="officer") as channel:
            engager = engager_grpc.EngagerServiceStub(channel)

            def opened() -> bool:
                found, token = 0, ""
                while True:
                    request = engager_pb.ListConversationsRequest(page_size=1000, page_token=token)
                    response = engager.ListConversations(request, timeout=60)
                    found += len(response.conversations)
                    token = response.next_page_token
                    if not token:
                        return bool(found >= args.conversations)

            wait_until(opened, 600, "the conversations", interval=2)
        print(f"  seeded in {time.perf_counter() - started:.0f} s")

        person = "press-officer"
        roles = ",".join(sorted(GROUP_MAPPING["legation-press-officers"]["roles"]))
        metadata = (
            *token_metadata(stack.users.token(CONSOLE_USER)),
            (ON_BEHALF_OF_METADATA, person),
            (ON_BEHALF_OF_ROLES_METADATA, roles),
            (ON_BEHALF_OF_UNITS_METADATA, "embassy-madrid"),
        )
        web = _signed_in(console.url, person)
        now = datetime.now(UTC)
        posts_request = publisher_pb.ListPostsRequest()
        getattr(posts_request, "from").FromDatetime(now - timedelta(days=90))
        posts_request.to.FromDatetime(now + timedelta(days=90))
        rows = []
        with (
            grpc.insecure_channel(f"127.0.0.1:{stack.ports['engager'].grpc}") as to_engager,
            grpc.insecure_channel(f"127.0.0.1:{stack.ports['publisher'].grpc}") as to_publisher,
        ):
            list_conversations = engager_grpc.EngagerServiceStub(to_engager).ListConversations
            list_posts = publisher_grpc.PublisherServiceStub(to_publisher).ListPosts
            inbox_request = engager_pb.ListConversationsRequest(page_size=200)
            pairs: list[tuple[str, Callable[[], object], str, Callable[[], object]]] = [
                (
                    "ListConversations (200 of the inbox)",
                    lambda: list_conversations(inbox_request, metadata=metadata, timeout=60),
                    "console /engage/inbox",
                    lambda: web.get("/engage/inbox").raise_for_status(),
                ),
                (
                    f"ListPosts ({args.posts:,} posts)",
                    lambda: list_posts(posts_request, metadata=metadata, timeout=60),
                    "console /publish/posts",
                    lambda: web.get("/publish/posts").raise_for_status(),
                ),
            ]
            for call_name, call, page_name, page in pairs:
                call_median, call_p95 = _percentiles(_time(call, args.rounds))
                page_median, page_p95 = _percentiles(_time(page, args.rounds))
                rows.append((call_name, call_median, call_p95, ""))
                rows.append((page_name, page_median, page_p95, f"{page_p95 / call_p95:.2f}x"))
        web.close()
        print(f"\n{args.rounds} sequential requests each (milliseconds):")
        print(f"  {'':<38} {'median':>8} {'p95':>8}  console p95 / call p95")
        for name, median, p95, ratio in rows:
            print(f"  {name:<38} {median:>8.1f} {p95:>8.1f}  {ratio}")
        return 0
    finally:
        stack.stop()
