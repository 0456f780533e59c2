"""When posts go out: schedules in an embassy's time zone, recurrences, due deliveries.

No I/O, no clock: every function takes ``now``. A schedule is a wall-clock time in an IANA
time zone plus an optional RFC 5545 RRULE, expanded in that zone so a weekly post at 09:00
stays at 09:00 across daylight-saving changes. Deliveries are derived, not stored ahead:
an occurrence that is due, for an approved variant on a channel, with no delivery recorded
yet, is due now. Because the record of a delivery (sending, published, failed) lives in
the post's state on Kafka, a restarted publisher derives exactly what is still owed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

from legation.events.v1 import publish_pb2
from legation_core.ids import stable_id
from legation_publisher.domain.posts import InvalidPost

DEFAULT_TIME_ZONE = "UTC"
# A request takes a moment to arrive: a time this close to now is "now", not the past.
PAST_GRACE = timedelta(minutes=1)
# Expanding an unbounded rule stops after this many occurrences of one window (a calendar
# query, or the unsettled past): months, not centuries. Counted from the window's start,
# not the schedule's, so a recurring post never runs out of occurrences.
MAX_OCCURRENCES = 1000
# How many settled occurrences of a recurring post keep their delivery records (GetPost,
# ListPublications); older ones are dropped so the post's record stays small (an hourly
# post in 3 languages on 7 channels: about 25 kB).
KEEP_SETTLED_OCCURRENCES = 6
# A calendar query far ahead of a recurring post's settled past walks at most this many
# occurrences to get there (eleven years of an hourly post) before giving up on it.
MAX_SKIPPED = 100_000
_COUNT = re.compile(r"\bCOUNT=")

PENDING = publish_pb2.DELIVERY_STATUS_PENDING
SENDING = publish_pb2.DELIVERY_STATUS_SENDING
PUBLISHED = publish_pb2.DELIVERY_STATUS_PUBLISHED
FAILED = publish_pb2.DELIVERY_STATUS_FAILED
NEEDS_CHECK = publish_pb2.DELIVERY_STATUS_NEEDS_CHECK
CANCELLED = publish_pb2.DELIVERY_STATUS_CANCELLED


@dataclass(frozen=True)
class PlannedDelivery:
    """One language variant of one occurrence on one channel, not yet delivered."""

    delivery_id: str
    language: str
    channel: str
    due_at: datetime


def zone(name: str, field: str = "time_zone") -> ZoneInfo:
    """The IANA zone ``name``; raises :class:`InvalidPost` naming ``field``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        raise InvalidPost(
            field, f"{name[:64]!r} is not an IANA time zone (for example Africa/Nairobi)"
        ) from None


def _rule(text: str, start: datetime, field: str = "rrule") -> rrule:
    return _parsed_rule(text, start, field)


# Schedules are expanded on every scheduler tick: parse each (rule, start) once.
@functools.lru_cache(maxsize=1024)
def _parsed_rule(text: str, start: datetime, field: str) -> rrule:
    upper = text.upper()
    if "DTSTART" in upper or "\n" in text:
        raise InvalidPost(field, "must be one RRULE without DTSTART (local_time is the start)")
    try:
        parsed = rrulestr(text.removeprefix("RRULE:"), dtstart=start)
    except (ValueError, TypeError) as error:
        raise InvalidPost(field, f"is not a valid RRULE: {error}") from None
    if not isinstance(parsed, rrule):
        raise InvalidPost(field, "must be a single RRULE")
    if re.search(r"FREQ=(SECONDLY|MINUTELY)\b", upper):
        raise InvalidPost(field, "a post may recur at most hourly")
    return parsed


def parse_schedule(
    local_time: str, time_zone: str, rule: str, now: datetime
) -> publish_pb2.PostSchedule:
    """A checked schedule; raises :class:`InvalidPost` naming ``local_time``,
    ``time_zone`` or ``rrule``. An empty ``local_time`` means now."""
    name = time_zone.strip() or DEFAULT_TIME_ZONE
    tz = zone(name)
    if local_time.strip():
        try:
            wall = datetime.fromisoformat(local_time.strip())
        except ValueError:
            raise InvalidPost(
                "local_time", f"{local_time!r} is not an ISO 8601 time such as 2026-12-01T09:00"
            ) from None
        if wall.tzinfo is not None:
            raise InvalidPost("local_time", "must not carry an offset: give time_zone instead")
        start = wall.replace(tzinfo=tz)
        # A wall-clock time skipped by a daylight-saving change does not survive a round
        # trip through UTC.
        if start.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall:
            raise InvalidPost("local_time", f"{wall.isoformat()} does not exist in {name}")
        if start < now - PAST_GRACE:
            raise InvalidPost(
                "local_time",
                f"{wall.isoformat()} in {name} is in the past (now it is "
                f"{now.astimezone(tz).replace(microsecond=0, tzinfo=None).isoformat()} there)",
            )
    else:
        start = now.astimezone(tz).replace(microsecond=0)
    schedule = publish_pb2.PostSchedule(
        time_zone=name,
        local_time=start.replace(tzinfo=None).isoformat(),
        rrule=rule.strip(),
    )
    schedule.start_at.FromDatetime(start.astimezone(UTC))
    if schedule.rrule:
        parsed = _rule(schedule.rrule, start)
        if parsed.after(start, inc=True) is None:
            raise InvalidPost("rrule", "yields no occurrence from local_time on")
    return schedule


def _start(schedule: publish_pb2.PostSchedule) -> datetime:
    tz = ZoneInfo(schedule.time_zone or DEFAULT_TIME_ZONE)
    return datetime.fromisoformat(schedule.local_time).replace(tzinfo=tz)


def _expansion(schedule: publish_pb2.PostSchedule, anchor: datetime | None) -> rrule:
    """The schedule's rule, started at ``anchor`` (one of its occurrences) when it has one
    and no COUNT: the same occurrences from there on (the rule's defaults and INTERVAL
    phase come from an occurrence either way), without walking from the first one."""
    local_start = _start(schedule)
    if anchor is None or anchor <= local_start or _COUNT.search(schedule.rrule.upper()):
        return _rule(schedule.rrule, local_start)
    return _rule(schedule.rrule, anchor.astimezone(local_start.tzinfo))


def occurrences(
    schedule: publish_pb2.PostSchedule,
    until: datetime,
    after: datetime | None = None,
    anchor: datetime | None = None,
) -> Iterator[datetime]:
    """The schedule's occurrences (UTC) from ``after`` (inclusive; default: the start) up
    to and including ``until``, at most :data:`MAX_OCCURRENCES` of them, skipping at most
    :data:`MAX_SKIPPED` before ``after``. ``anchor``: a known occurrence at or before
    ``after`` to expand from (the post's ``settled_until``)."""
    if not schedule.HasField("start_at"):
        return
    if not schedule.rrule:
        start = schedule.start_at.ToDatetime(tzinfo=UTC)
        if start <= until and (after is None or start >= after):
            yield start
        return
    count = skipped = 0
    for local in _expansion(schedule, anchor):
        at = local.astimezone(UTC)
        if at > until or count >= MAX_OCCURRENCES:
            return
        if after is not None and at < after:
            skipped += 1
            if skipped > MAX_SKIPPED:
                return  # a calendar query far beyond what is settled: not expanded
            continue
        count += 1
        yield at


def settled_until(post: publish_pb2.PostState) -> datetime | None:
    """Before this time every occurrence of the post is settled (see PostState)."""
    return post.settled_until.ToDatetime(tzinfo=UTC) if post.HasField("settled_until") else None


def finished(
    schedule: publish_pb2.PostSchedule, now: datetime, anchor: datetime | None = None
) -> bool:
    """True when the schedule has no occurrence after ``now`` (``anchor``: a known
    occurrence at or before ``now`` to expand from)."""
    if not schedule.HasField("start_at"):
        return False
    if not schedule.rrule:
        return schedule.start_at.ToDatetime(tzinfo=UTC) <= now
    if anchor is not None and anchor > now:
        anchor = None
    return _expansion(schedule, anchor).after(now.astimezone(UTC)) is None


def delivery_id_for(post_id: str, language: str, channel: str, due_at: datetime) -> str:
    """Stable id of one delivery; also the channel's idempotency key."""
    return stable_id("delivery", post_id, language, channel, due_at.astimezone(UTC).isoformat())


def expected_deliveries(post: publish_pb2.PostState, until: datetime) -> list[PlannedDelivery]:
    """Every delivery the post's schedule asks for up to ``until``, from its settled past
    on (occurrences before ``settled_until`` are done)."""
    planned: list[PlannedDelivery] = []
    approved = [
        variant.language
        for variant in post.variants
        if variant.status == publish_pb2.POST_STATUS_APPROVED
    ]
    settled = settled_until(post)
    for at in occurrences(post.schedule, until, settled, settled):
        for language in approved:
            for channel in post.channels:
                planned.append(
                    PlannedDelivery(
                        delivery_id_for(post.post_id, language, channel, at), language, channel, at
                    )
                )
    return planned


def due_deliveries(post: publish_pb2.PostState, now: datetime) -> list[PlannedDelivery]:
    """What should go out now: due, and not yet recorded (or asked to go again)."""
    if post.status not in (publish_pb2.POST_STATUS_SCHEDULED, publish_pb2.POST_STATUS_FAILED):
        return []
    recorded = {delivery.delivery_id: delivery for delivery in post.deliveries}
    due: list[PlannedDelivery] = []
    for planned in expected_deliveries(post, now):
        record = recorded.get(planned.delivery_id)
        if record is None or (record.status == PENDING and _waited(record, now)):
            due.append(planned)
    return due


def _waited(record: publish_pb2.Delivery, now: datetime) -> bool:
    # A retry after a transient failure waits for its backoff.
    return not record.HasField("next_attempt_at") or (
        record.next_attempt_at.ToDatetime(tzinfo=UTC) <= now
    )


def in_flight(post: publish_pb2.PostState, now: datetime) -> list[publish_pb2.Delivery]:
    """Deliveries recorded as sending (interrupted by a crash): these are reconciled with
    their channel first, unless a lookup that failed asked to wait."""
    return [d for d in post.deliveries if d.status == SENDING and _waited(d, now)]


def in_range(post: publish_pb2.PostState, start: datetime | None, end: datetime | None) -> bool:
    """True when the post has an occurrence in [start, end) (an unscheduled post: when it
    was created in that range)."""
    if not post.schedule.HasField("start_at"):
        created = post.created_at.ToDatetime(tzinfo=UTC)
        return (start is None or created >= start) and (end is None or created < end)
    horizon = end or datetime.max.replace(tzinfo=UTC)
    settled = settled_until(post)
    # Expanding from the settled past is the same from there on; without a start the
    # first occurrence decides at once anyway.
    anchor = settled if settled is not None and start is not None and settled <= start else None
    return any(end is None or at < end for at in occurrences(post.schedule, horizon, start, anchor))


def prune_settled(post: publish_pb2.PostState) -> None:
    """Drops, in place, the delivery records of a recurring post's oldest settled
    occurrences (each delivery published or cancelled), keeping the latest
    :data:`KEEP_SETTLED_OCCURRENCES`, and moves ``settled_until`` past them. Occurrences are
    settled in order: an unsettled one (failed, waiting) stops the pruning there."""
    if not post.schedule.rrule or not post.deliveries:
        return
    recorded = {d.delivery_id: d.status for d in post.deliveries}
    latest = max(d.due_at.ToDatetime(tzinfo=UTC) for d in post.deliveries)
    by_time: dict[datetime, list[str]] = {}
    for planned in expected_deliveries(post, latest):
        by_time.setdefault(planned.due_at, []).append(planned.delivery_id)
    settled: list[datetime] = []
    for at in sorted(by_time):
        if not all(recorded.get(i) in (PUBLISHED, CANCELLED) for i in by_time[at]):
            break
        settled.append(at)
    if len(settled) <= KEEP_SETTLED_OCCURRENCES:
        return
    watermark = settled[-KEEP_SETTLED_OCCURRENCES]
    kept = [d for d in post.deliveries if d.due_at.ToDatetime(tzinfo=UTC) >= watermark]
    del post.deliveries[:]
    post.deliveries.extend(kept)
    post.settled_until.FromDatetime(watermark)
