"""The per-key rate limit shared by the public HTTP surfaces."""

from __future__ import annotations

import pytest

from legation_core.ratelimit import RateLimit


def test_a_burst_then_one_token_per_period_share() -> None:
    now = [0.0]
    limit = RateLimit(3, 60.0, clock=lambda: now[0])
    assert [limit.wait("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.wait("a") == pytest.approx(20.0)
    assert limit.wait("b") == 0.0
    now[0] = 20.0
    assert limit.wait("a") == 0.0


def test_an_hourly_limit() -> None:
    now = [0.0]
    limit = RateLimit(2, 3600.0, clock=lambda: now[0])
    assert [limit.wait("k") for _ in range(2)] == [0.0, 0.0]
    assert limit.wait("k") == pytest.approx(1800.0)


def test_memory_stays_bounded_whatever_the_number_of_keys() -> None:
    limit = RateLimit(1, 60.0, clock=lambda: 0.0, max_keys=100)
    for number in range(1000):
        limit.wait(f"client-{number}")
    assert len(limit._buckets) == 100


def test_a_limit_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="at least 1 request"):
        RateLimit(0)
