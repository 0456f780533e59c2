"""Which short-link requests count as clicks, and their ids (plain domain code)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from legation_publisher.domain.clicks import (
    BOT,
    COUNTED,
    DUPLICATE,
    HEAD,
    NO_USER_AGENT,
    RATE_LIMITED,
    ClickGate,
    ClickPolicy,
    automated,
    visitor_hash,
    window_start,
)

SECRET = b"s" * 32
NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0"


def test_two_replicas_with_the_same_secret_give_the_same_click_the_same_id() -> None:
    first = ClickGate(SECRET, clock=lambda: NOW)
    second = ClickGate(SECRET, clock=lambda: NOW + timedelta(hours=1))
    one = first.decide("abc", "GET", "203.0.113.9", BROWSER)
    other = second.decide("abc", "GET", "203.0.113.9", BROWSER)
    assert one.verdict == other.verdict == COUNTED
    assert one.click_id == other.click_id  # one document in the evaluator's index


def test_the_id_differs_per_link_visitor_and_secret() -> None:
    gate = ClickGate(SECRET, clock=lambda: NOW)
    ids = {
        gate.decide("abc", "GET", "203.0.113.9", BROWSER).click_id,
        gate.decide("abd", "GET", "203.0.113.9", BROWSER).click_id,
        gate.decide("abc", "GET", "203.0.113.10", BROWSER).click_id,
        gate.decide("abc", "GET", "203.0.113.9", BROWSER + " Edg/131").click_id,
        ClickGate(b"t" * 32, clock=lambda: NOW)
        .decide("abc", "GET", "203.0.113.9", BROWSER)
        .click_id,
    }
    assert len(ids) == 5


def test_an_emitted_click_is_a_duplicate_until_the_window_ends() -> None:
    now = [NOW]
    gate = ClickGate(SECRET, ClickPolicy(window_seconds=3600), clock=lambda: now[0])
    decision = gate.decide("abc", "GET", "203.0.113.9", BROWSER)
    assert decision.verdict == COUNTED
    assert gate.decide("abc", "GET", "203.0.113.9", BROWSER).verdict == COUNTED  # not emitted
    gate.emitted(decision.click_id)
    assert gate.decide("abc", "GET", "203.0.113.9", BROWSER).verdict == DUPLICATE
    now[0] = NOW.replace(minute=0) + timedelta(hours=1)
    assert gate.decide("abc", "GET", "203.0.113.9", BROWSER).verdict == COUNTED


def test_the_per_address_cap_refills_over_its_period() -> None:
    now = [NOW]
    gate = ClickGate(SECRET, ClickPolicy(per_address=2), clock=lambda: now[0])
    verdicts = [
        gate.decide("abc", "GET", "198.51.100.1", f"{BROWSER} {n}").verdict for n in range(3)
    ]
    assert verdicts == [COUNTED, COUNTED, RATE_LIMITED]
    now[0] = NOW + timedelta(minutes=30)  # two an hour: one back after 30 minutes
    assert gate.decide("abc", "GET", "198.51.100.1", f"{BROWSER} x").verdict == COUNTED


@pytest.mark.parametrize(
    ("method", "user_agent", "reason"),
    [
        ("HEAD", BROWSER, HEAD),
        ("GET", "", NO_USER_AGENT),
        ("GET", "   ", NO_USER_AGENT),
        ("GET", "curl/8.5.0", BOT),
        ("GET", "Wget/1.21.4", BOT),
        ("GET", "python-httpx/0.28.1", BOT),
        ("GET", "okhttp/4.12.0", BOT),
        ("GET", "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/131.0 Safari/537.36", BOT),
        ("GET", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", BOT),
        ("GET", BROWSER, None),
        ("GET", "Mozilla/5.0 (Linux; Android 10; CUBOT X30) Chrome/120.0 Mobile", None),
    ],
)
def test_robots_are_told_apart_from_readers(
    method: str, user_agent: str, reason: str | None
) -> None:
    assert automated(method, user_agent) == reason


def test_fingerprints_rotate_daily_and_keep_no_address() -> None:
    today = visitor_hash(SECRET, date(2026, 11, 20), "203.0.113.9", BROWSER)
    tomorrow = visitor_hash(SECRET, date(2026, 11, 21), "203.0.113.9", BROWSER)
    assert today != tomorrow
    assert "203.0.113.9" not in today and len(today) == 32


def test_windows_start_on_utc_boundaries() -> None:
    assert window_start(NOW, 86_400) == datetime(2026, 11, 20, tzinfo=UTC)
    assert window_start(NOW, 3600) == datetime(2026, 11, 20, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="divisor of 86400"):
        ClickPolicy(window_seconds=7000)
