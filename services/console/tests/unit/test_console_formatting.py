"""Numbers with their units, durations people read, links that cannot run script."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from legation_console.domain.formatting import (
    count,
    duration,
    excerpt,
    safe_url,
    timestamp,
    until,
    when,
)


def test_counts_carry_their_unit() -> None:
    assert count(1, "mention") == "1 mention"
    assert count(12004, "mention") == "12,004 mentions"
    assert count(0, "match", "matches") == "0 matches"
    assert count(2.5, "hour") == "2.5 hours"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(45, "45 s"), (720, "12 min"), (12600, "3.5 h"), (911347.75, "10.5 days"), (-90, "-2 min")],
)
def test_durations_are_never_raw_seconds(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_times_and_deadlines() -> None:
    now = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    assert when(now) == "2026-12-02 06:00 UTC"
    assert when(None) == "—"
    assert until(now + timedelta(hours=3, minutes=30), now) == "in 3.5 h"
    assert until(now - timedelta(hours=2), now) == "2.0 h overdue"
    assert timestamp(Timestamp()) is None
    stamp = Timestamp()
    stamp.FromDatetime(now)
    assert timestamp(stamp) == now


def test_excerpts_cut_at_a_word() -> None:
    assert excerpt("a  b\nc") == "a b c"
    assert excerpt("alpha beta gamma", 12) == "alpha beta…"


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://example.org/a?b=1", "https://example.org/a?b=1"),
        ("http://example.org", "http://example.org"),
        ("javascript:alert(1)", None),
        ("JAVASCRIPT:alert(1)", None),
        ("data:text/html,<b>x</b>", None),
        ("//example.org/a", None),
        ("https:///nohost", None),
    ],
)
def test_only_http_links_become_links(url: str, safe: str | None) -> None:
    assert safe_url(url) == safe
