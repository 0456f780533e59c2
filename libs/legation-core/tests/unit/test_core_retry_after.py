"""The one Retry-After reading: delta-seconds or an HTTP date, never a wait that is not a
finite number of seconds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from legation_core.retry_after import retry_after_seconds

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Fri, 20 Nov 2026 10:00:30 GMT", 30.0),
        ("Fri, 20 Nov 2026 09:00:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("Fri, 99 Nov", None),
    ],
)
def test_retry_after_is_seconds_or_a_date_or_nothing(
    value: str | None, seconds: float | None
) -> None:
    assert retry_after_seconds(value, NOW) == seconds
