"""A recurring post's occurrences within a window, from the publisher's schedule. No I/O.

The publisher keeps a schedule as ``PostSchedule``: a wall-clock ``local_time`` in an IANA
``time_zone`` and an optional RFC 5545 ``rrule`` without DTSTART, expanded in that zone, so
a weekly post at 09:00 stays at 09:00 across daylight-saving changes
(``legation_publisher.domain.schedule``). This module expands it the same way for the
calendar, bounded: at most :data:`MAX_SHOWN` occurrences of one post in one window, and at
most :data:`MAX_WALKED` walked before the window starts (an hourly post started years ago
is expanded from its settled past, ``anchor``, instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

from legation.events.v1 import publish_pb2

# One post's occurrences in one calendar period: an hourly post fills the 9 days asked
# for a week (the week and a day each side for the time zones) with 216.
MAX_SHOWN = 240
# Occurrences walked before the window before giving up on the post (eleven years of an
# hourly post): the page never hangs on a rule far from its start.
MAX_WALKED = 100_000
_COUNT = re.compile(r"\bCOUNT=", re.IGNORECASE)


@dataclass(frozen=True)
class Occurrences:
    """The occurrences found (UTC, in order) and whether :data:`MAX_SHOWN` cut them."""

    times: tuple[datetime, ...]
    capped: bool = False


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def _local_start(schedule: publish_pb2.PostSchedule) -> datetime:
    zone = _zone(schedule.time_zone)
    try:
        return datetime.fromisoformat(schedule.local_time).replace(tzinfo=zone)
    except ValueError:  # no wall-clock time recorded: the start's instant in the zone
        return schedule.start_at.ToDatetime(tzinfo=UTC).astimezone(zone)


def _rule(schedule: publish_pb2.PostSchedule, anchor: datetime | None) -> rrule | None:
    """The rule started at its first occurrence, or at ``anchor`` (a known occurrence)
    when the rule has no COUNT (with a COUNT the count runs from the first one)."""
    start = _local_start(schedule)
    if anchor is not None and anchor > start and not _COUNT.search(schedule.rrule):
        start = anchor.astimezone(start.tzinfo)
    try:
        parsed = rrulestr(schedule.rrule.removeprefix("RRULE:"), dtstart=start)
    except (ValueError, TypeError):
        return None  # the publisher checks rules when it takes them: nothing to expand
    return parsed if isinstance(parsed, rrule) else None


def occurrences_between(
    schedule: publish_pb2.PostSchedule,
    start: datetime,
    end: datetime,
    anchor: datetime | None = None,
    limit: int = MAX_SHOWN,
) -> Occurrences:
    """The schedule's occurrences in ``[start, end)`` (aware datetimes), in UTC and in
    order, at most ``limit``. ``anchor``: an occurrence at or before ``start`` to expand
    from (the post's ``settled_until``). A schedule without a rule has its one start."""
    if not schedule.HasField("start_at"):
        return Occurrences(())
    if not schedule.rrule:
        first = schedule.start_at.ToDatetime(tzinfo=UTC)
        return Occurrences((first,) if start <= first < end else ())
    rule = _rule(schedule, anchor if anchor is not None and anchor <= start else None)
    if rule is None:
        return Occurrences(())
    found: list[datetime] = []
    walked = 0
    for local in rule:
        at = local.astimezone(UTC)
        if at >= end:
            break
        if at < start:
            walked += 1
            if walked > MAX_WALKED:
                break
            continue
        if len(found) >= limit:
            return Occurrences(tuple(found), capped=True)
        found.append(at)
    return Occurrences(tuple(found))
