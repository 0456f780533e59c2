"""What the publisher's adapters need of :class:`legation_core.kafka.EventProducer`."""

from __future__ import annotations

from typing import Protocol

from legation_core.codec import Envelope


class EventSink(Protocol):
    """Produces events and returns once Kafka acknowledged them all (raises otherwise)."""

    def send_and_wait(self, events: list[tuple[str, str, Envelope]]) -> None: ...
