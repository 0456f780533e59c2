"""Subscribe to Legation's event streams (see the package README).

The library: :class:`Subscriber` over a :class:`Connection`, a :class:`Start` position and a
sink (:class:`HandlerSink` for a Python function receiving typed :class:`Event` objects,
:class:`JsonLinesSink`, :class:`CsvSink`, :class:`WebhookSink`); :func:`subscribe` for the
common case. The command line: ``legation-subscribe`` (:mod:`legation_subscribe.cli`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from legation_subscribe.events import DeadLetter, Event, InvalidRecord
from legation_subscribe.sinks import (
    CsvSink,
    HandlerSink,
    JsonLinesSink,
    Refused,
    RetryLater,
    WebhookSink,
    verify_signature,
)
from legation_subscribe.subscriber import Connection, Counts, Start, Subscriber

__all__ = [
    "Connection",
    "Counts",
    "CsvSink",
    "DeadLetter",
    "Event",
    "HandlerSink",
    "InvalidRecord",
    "JsonLinesSink",
    "Refused",
    "RetryLater",
    "Start",
    "Subscriber",
    "WebhookSink",
    "subscribe",
    "verify_signature",
]


def subscribe(
    bootstrap: str,
    group: str,
    topics: Sequence[str],
    handler: Callable[[Event], None],
    *,
    start: str = "beginning",
    until_idle_seconds: float | None = None,
) -> Counts:
    """Calls ``handler`` with every event of ``topics`` (from ``start`` for a new group),
    committing after it, until ``until_idle_seconds`` without events (or forever)."""
    subscriber = Subscriber(
        Connection(bootstrap),
        group=group,
        topics=topics,
        sink=HandlerSink(handler),
        start=Start.parse(start),
    )
    return subscriber.run(until_idle_seconds=until_idle_seconds)
