"""How values read on a page: counts with their unit, durations in hours or days, times,
excerpts and safe links. No I/O; every view model uses these, so a number never appears
without its unit and a link from outside never runs script."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from google.protobuf.timestamp_pb2 import Timestamp


def count(number: int | float, singular: str, plural: str | None = None) -> str:
    """``1 mention``, ``12,004 mentions``."""
    word = singular if number == 1 else (plural or f"{singular}s")
    if isinstance(number, float) and not number.is_integer():
        return f"{number:,.1f} {word}"
    return f"{int(number):,} {word}"


def duration(seconds: float) -> str:
    """A duration in the largest unit that reads well: ``45 s``, ``12 min``, ``3.5 h``,
    ``10.5 days`` (never raw seconds like 911347.75)."""
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def timestamp(value: Timestamp) -> datetime | None:
    """A protobuf timestamp as an aware datetime, None when unset."""
    if value.seconds == 0 and value.nanos == 0:
        return None
    return value.ToDatetime(tzinfo=UTC)


def when(moment: datetime | None) -> str:
    """``2026-12-02 05:40 UTC``; an em dash when unknown."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def until(deadline: datetime | None, now: datetime) -> str:
    """``in 3.5 h`` or ``2.0 h overdue``; an em dash when there is no deadline."""
    if deadline is None:
        return "—"
    left = (deadline - now).total_seconds()
    return f"in {duration(left)}" if left >= 0 else f"{duration(-left)} overdue"


def excerpt(text: str, limit: int = 280) -> str:
    """``text`` on one line, cut at a word boundary near ``limit`` characters with an
    ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] or flat[:limit]
    return cut + "…"


def safe_url(url: str) -> str | None:
    """``url`` when it is an http(s) link with a host, else None: text from mentions and
    feeds never becomes a ``javascript:`` or ``data:`` link."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()
