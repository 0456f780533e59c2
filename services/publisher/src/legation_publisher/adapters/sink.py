"""What the publisher's adapters need of :class:`legation_core.kafka.EventProducer`: the
shared :class:`legation_core.state.EventSink`."""

from __future__ import annotations

from legation_core.state import EventSink

__all__ = ["EventSink"]
