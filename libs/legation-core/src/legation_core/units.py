"""Numbers as a person reads them: durations in seconds, minutes, hours or days, shares in
percent, counts with thousands separators. One place for every page, report and terminal
that shows a measured value (the evaluator's report and live page, the demo's scorecard),
so a median reply time reads "10.5 days" everywhere rather than "911347.75"."""

from __future__ import annotations

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
# Up to this many hours a duration reads in hours ("47 h"), from here in days ("2 days").
HOURS_UP_TO = 48


def _digits(number: float) -> str:
    """Three significant digits, never in exponent notation ("1,250" rather than "1.25e+03")."""
    return f"{number:.3g}" if abs(number) < 1000 else f"{number:,.0f}"


def format_duration(seconds: float) -> str:
    """``seconds`` in the largest unit that keeps it readable, three significant digits:
    "45 s", "12.5 min", "3 h", "47.9 h", "10.5 days"."""
    size = abs(seconds)
    if size >= HOURS_UP_TO * HOUR:
        return f"{_digits(seconds / DAY)} days"
    if size >= HOUR:
        return f"{_digits(seconds / HOUR)} h"
    if size >= MINUTE:
        return f"{_digits(seconds / MINUTE)} min"
    return f"{_digits(seconds)} s"


def format_value(value: float, unit: str = "count") -> str:
    """A measured value in its ``unit`` (as the evaluator's metric catalogue names them:
    "seconds", "percent", "count", "score"): durations by :func:`format_duration`, shares
    with "%", large numbers with thousands separators, others to four digits."""
    if unit == "seconds":
        return format_duration(value)
    if unit == "percent":
        return f"{_digits(value)} %"
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
