"""Test doubles shared by the listener's unit tests: a listener over a fake Kafka client and
fake feeds, a servicer context, and calls into the API and the webhook."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from legation.events.v1 import listen_pb2
from legation_core.auth import ANALYST, Caller
from legation_core.catalog import default_catalog
from legation_core.kafka import EventProducer
from legation_core.metrics import Metrics
from legation_core.testing import RecordingKafka
from legation_listener.adapters.connectors.webhook import IngestResult, WebhookApp
from legation_listener.adapters.feeds import FeedError, FetchResult
from legation_listener.adapters.grpc_api import ListenerApi
from legation_listener.adapters.poller import Poller
from legation_listener.adapters.state import ListenerState
from legation_listener.config import ListenerSettings
from legation_listener.domain.items import FeedItem

NOW = datetime(2026, 11, 20, 9, 16, tzinfo=UTC)
GOOD = "https://good.example.org/feed.xml"
BAD = "https://bad.example.org/feed.xml"


@dataclass
class FakeFetcher:
    feeds: dict[str, list[FeedItem]]
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    not_modified: set[str] = field(default_factory=set)

    def fetch(self, feed: str, etag: str = "", last_modified: str = "") -> FetchResult:
        self.calls.append((feed, etag, last_modified))
        if feed == BAD:
            raise FeedError(f"{feed}: HTTP 500 (after 4 attempts)")
        if feed in self.not_modified:
            return FetchResult(not_modified=True, etag=etag, last_modified=last_modified)
        return FetchResult(items=self.feeds[feed], etag='"v1"', last_modified="")


def item(item_id: str, title: str) -> FeedItem:
    return FeedItem(item_id, f"https://x.org/{item_id}", title, "", "", NOW, "en")


@dataclass
class Listener:
    kafka: RecordingKafka
    fetcher: FakeFetcher
    state: ListenerState
    poller: Poller
    registry: CollectorRegistry
    api: ListenerApi


def make_listener(
    feeds: dict[str, list[FeedItem]], caller: str = ANALYST, kafka: RecordingKafka | None = None
) -> Listener:
    kafka = kafka if kafka is not None else RecordingKafka()
    metrics = Metrics()
    producer = EventProducer(
        ListenerSettings(), "listener", default_catalog(), metrics, producer=kafka
    )
    fetcher = FakeFetcher(feeds)
    state = ListenerState(producer, clock=lambda: NOW)
    poller = Poller(state, fetcher, producer, metrics.registry, clock=lambda: NOW)
    # The issue and preview RPCs alone (the analyses' are ListenerServicer's).
    api = ListenerApi(  # type: ignore[abstract]
        state, poller, caller=lambda: Caller(caller, frozenset({caller}))
    )
    return Listener(kafka, fetcher, state, poller, metrics.registry, api)


def track(listener: Listener, issue_id: str, feeds: list[str], keywords: list[str]) -> None:
    listener.state.save_issue(
        listen_pb2.TrackedIssue(
            issue_id=issue_id, name=issue_id, keywords=keywords, feeds=feeds, active=True
        )
    )


@dataclass
class FakeIngest:
    calls: list[tuple[str, list[FeedItem], list[str]]] = field(default_factory=list)
    error: Exception | None = None

    def ingest(self, source: str, items: list[FeedItem], malformed: list[str]) -> IngestResult:
        if self.error is not None:
            raise self.error
        self.calls.append((source, items, malformed))
        return IngestResult(
            items=len(items), mentions=len(items), issues=["treaty"], malformed=malformed
        )


def call_webhook(
    app: WebhookApp, path: str, body: bytes, signature: str | None, method: str = "POST"
) -> tuple[str, Any]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    if signature is not None:
        environ["HTTP_X_LEGATION_SIGNATURE"] = signature
    answer: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"] = status

    data = b"".join(app(environ, start_response))  # type: ignore[arg-type]
    return answer["status"], json.loads(data)
