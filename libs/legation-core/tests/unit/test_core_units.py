"""Durations and measured values as a person reads them."""

from __future__ import annotations

import pytest

from legation_core.units import format_duration, format_value


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "0 s"),
        (42.0, "42 s"),
        (90.0, "1.5 min"),
        (3600.0, "1 h"),
        (2.75 * 3600, "2.75 h"),
        (121.9 * 3600, "5.08 days"),
        (47.9 * 3600, "47.9 h"),
        (48 * 3600.0, "2 days"),
        # The report showed this median reply time as raw seconds.
        (911347.75, "10.5 days"),
        (5000 * 86400.0, "5,000 days"),
    ],
)
def test_a_duration_reads_in_the_largest_readable_unit(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_values_read_in_their_unit() -> None:
    assert format_value(911347.75, "seconds") == "10.5 days"
    assert format_value(25.0, "percent") == "25 %"
    assert format_value(1250.0, "percent") == "1,250 %"
    assert format_value(1_800_000.0, "count") == "1,800,000"
    assert format_value(-0.10625, "score") == "-0.1062"
    assert format_value(6.0) == "6"
