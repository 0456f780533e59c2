"""Test doubles shared by the engager's unit tests."""

from __future__ import annotations

from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, EventCodec


class FakeProducer:
    """Records what would be produced (checked against the catalog); raises while
    ``failing`` is set."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, str, Envelope]]] = []
        self.failing: Exception | None = None

    def send_and_wait(self, events: list[tuple[str, str, Envelope]]) -> None:
        for topic, _key, envelope in events:
            EventCodec.validate(default_catalog().check_produce("engager", topic), envelope)
        if self.failing is not None:
            raise self.failing
        self.calls.append(list(events))
