"""The short-link endpoint over a real HTTP socket, with a fake producer: redirects, and
which requests count as clicks (once per visitor, link and window; no robots; a cap per
address)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from legation.events.v1 import publish_pb2
from legation_core.http_server import HttpServer
from legation_core.networks import parse_networks
from legation_core.testing import RecordingProducer
from legation_core.topic_names import PUBLISH_LINK_CLICKS_V1
from legation_publisher.adapters.redirect import ShortLinks
from legation_publisher.adapters.state import PostBook, post_envelope
from legation_publisher.domain.clicks import ClickGate, ClickPolicy

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def a_post() -> publish_pb2.PostState:
    post = publish_pb2.PostState(
        post_id="p1",
        campaign_id="plastics-2026",
        version=1,
        links=[
            publish_pb2.TrackedLink(
                code="Abc_123-xyz",
                target_url="https://ministry.example/plastics",
                tracked_url="https://ministry.example/plastics?utm_source=site-atom",
                short_url="https://go.example/r/Abc_123-xyz",
                language="fr",
                channel="site-atom",
            )
        ],
    )
    post.transition.at.FromDatetime(NOW)
    return post


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer("publisher")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def port(producer: RecordingProducer, clock: Clock, registry: CollectorRegistry) -> Iterator[int]:
    book = PostBook()
    book.apply(post_envelope(a_post()))
    gate = ClickGate(b"k" * 32, ClickPolicy(per_address=5), clock=clock)
    # The test client is its own reverse proxy: X-Forwarded-For names other readers.
    links = ShortLinks(
        book,
        producer,
        gate,
        registry=registry,
        clock=clock,
        trusted_proxies=parse_networks("127.0.0.1"),
    )
    server = HttpServer("short-links", 0, links, host="127.0.0.1")
    server.start()
    yield server.port
    server.stop()


def request(
    port: int, path: str, headers: dict[str, str], method: str = "GET"
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    # http.client sends no User-Agent of its own: only the ones given here.
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def get(
    port: int, path: str, referrer: str = "", user_agent: str = FIREFOX
) -> http.client.HTTPResponse:
    headers = {"Referer": referrer} if referrer else {}
    if user_agent:
        headers["User-Agent"] = user_agent
    return request(port, path, headers)


def test_a_short_link_redirects_to_the_tracked_url_and_emits_a_click(
    port: int, producer: RecordingProducer
) -> None:
    response = get(port, "/r/Abc_123-xyz", referrer="https://news.example.org/story?id=3")
    assert response.status == 302
    assert response.getheader("Location") == (
        "https://ministry.example/plastics?utm_source=site-atom"
    )
    [(topic, key, envelope)] = producer.sent
    assert (topic, key, envelope.campaign_id) == (PUBLISH_LINK_CLICKS_V1, "p1", "plastics-2026")
    click = envelope.link_click
    assert (click.code, click.post_id, click.language, click.channel) == (
        "Abc_123-xyz",
        "p1",
        "fr",
        "site-atom",
    )
    assert click.referrer_host == "news.example.org"
    assert envelope.event_id == click.click_id


@pytest.mark.parametrize("path", ["/r/unknown", "/r/", "/other", "/r/../../etc"])
def test_unknown_paths_are_404_without_an_event(
    port: int, producer: RecordingProducer, path: str
) -> None:
    assert get(port, path).status == 404
    assert producer.sent == []


def test_the_reader_is_redirected_even_when_kafka_is_down(
    port: int, producer: RecordingProducer
) -> None:
    producer.failing = TimeoutError("broker down")
    assert get(port, "/r/Abc_123-xyz").status == 302


@pytest.mark.parametrize(
    "user_agent",
    [
        "http.rb/5.1.1 (Mastodon/4.2.0; +https://social.example.org/) Bot",
        "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
        "TelegramBot (like TwitterBot)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "WhatsApp/2.23.20.0",
    ],
)
def test_link_preview_fetchers_are_redirected_without_a_click(
    port: int, producer: RecordingProducer, user_agent: str
) -> None:
    assert get(port, "/r/Abc_123-xyz", user_agent=user_agent).status == 302
    assert producer.sent == []


@pytest.mark.parametrize(
    "user_agent",
    [
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 Chrome/120.0 Mobile",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile",
    ],
)
def test_readers_browsers_are_clicks(
    port: int, producer: RecordingProducer, user_agent: str
) -> None:
    assert get(port, "/r/Abc_123-xyz", user_agent=user_agent).status == 302
    assert len(producer.sent) == 1


LINK = "/r/Abc_123-xyz"


def outcomes(registry: CollectorRegistry, outcome: str) -> float:
    value = registry.get_sample_value("legation_publisher_link_clicks_total", {"outcome": outcome})
    return value or 0.0


def test_a_script_of_200_requests_moves_the_count_by_at_most_one(
    port: int, producer: RecordingProducer, registry: CollectorRegistry
) -> None:
    for _ in range(200):
        assert get(port, LINK).status == 302
    # Produced once; and whatever a replica produces again carries the same event id, so
    # the evaluator's index (one document per event id) holds one click.
    assert len({envelope.event_id for _t, _k, envelope in producer.sent}) == 1
    assert len(producer.sent) == 1
    assert outcomes(registry, "duplicate") == 199


def test_distinct_visitors_each_count(port: int, producer: RecordingProducer) -> None:
    for number in range(4):
        get_from = {"User-Agent": FIREFOX, "X-Forwarded-For": f"203.0.113.{number}"}
        assert request(port, LINK, get_from).status == 302
        assert request(port, LINK, get_from).status == 302  # the same visitor again
    assert len({envelope.event_id for _t, _k, envelope in producer.sent}) == 4


def test_one_address_rotating_its_user_agent_counts_at_most_its_cap(
    port: int, producer: RecordingProducer, registry: CollectorRegistry
) -> None:
    for number in range(30):
        headers = {"User-Agent": f"{FIREFOX} r{number}", "X-Forwarded-For": "198.51.100.7"}
        assert request(port, LINK, headers).status == 302
    assert len(producer.sent) == 5  # ClickPolicy(per_address=5) in the fixture
    assert outcomes(registry, "rate_limited") == 25
    other = {"User-Agent": FIREFOX, "X-Forwarded-For": "198.51.100.8"}
    assert request(port, LINK, other).status == 302  # another address is not limited
    assert len(producer.sent) == 6


def test_the_same_visitor_counts_again_in_the_next_window(
    port: int, producer: RecordingProducer, clock: Clock
) -> None:
    get(port, LINK)
    clock.now = NOW + timedelta(hours=13, minutes=59)  # 23:59 UTC, the same day
    get(port, LINK)
    assert len(producer.sent) == 1
    clock.now = NOW + timedelta(days=1)
    get(port, LINK)
    [first, second] = [envelope.event_id for _t, _k, envelope in producer.sent]
    assert first != second


@pytest.mark.parametrize(
    ("method", "user_agent", "outcome"),
    [
        ("HEAD", FIREFOX, "head"),
        ("GET", "", "no_user_agent"),
        ("GET", "curl/8.5.0", "bot"),
        ("GET", "python-requests/2.32.3", "bot"),
        ("GET", "Python-urllib/3.11", "bot"),
        ("GET", "Go-http-client/1.1", "bot"),
    ],
)
def test_robots_are_redirected_but_not_counted(
    port: int,
    producer: RecordingProducer,
    registry: CollectorRegistry,
    method: str,
    user_agent: str,
    outcome: str,
) -> None:
    headers = {"User-Agent": user_agent} if user_agent else {}
    response = request(port, LINK, headers, method=method)
    assert response.status == 302
    assert response.getheader("Location") == (
        "https://ministry.example/plastics?utm_source=site-atom"
    )
    assert producer.sent == []
    assert outcomes(registry, outcome) == 1


def test_a_click_lost_by_kafka_counts_when_the_reader_tries_again(
    port: int, producer: RecordingProducer
) -> None:
    producer.failing = TimeoutError("broker down")
    assert get(port, LINK).status == 302
    producer.failing = None
    assert get(port, LINK).status == 302
    assert len(producer.sent) == 1


def test_other_methods_are_refused(port: int, producer: RecordingProducer) -> None:
    response = request(port, LINK, {"User-Agent": FIREFOX}, method="POST")
    assert response.status == 405
    assert response.getheader("Allow") == "GET, HEAD"
    assert producer.sent == []
