"""What a subscriber receives: one decoded event and where it came from, and the ways to
write it (proto3 JSON, a JSON line, a CSV row). Plain functions, no I/O."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError, Message

from legation.events.v1 import envelope_pb2
from legation_proto_json import message_to_dict

Envelope = envelope_pb2.Envelope
# The envelope schema version this client reads (a record of another version is a dead
# letter: a newer platform publishes a new topic version beside this one instead).
SCHEMA_VERSION = 1
CSV_COLUMNS = (
    "topic",
    "partition",
    "offset",
    "timestamp",
    "key",
    "event_id",
    "event_type",
    "occurred_at",
    "campaign_id",
    "issue_id",
    "source_service",
    "payload",
)


class InvalidRecord(Exception):
    """A record that is not a usable event; ``reason`` goes into the dead letter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Event:
    """One event of a subscribed topic: the typed envelope and the record's coordinates.

    ``event.envelope`` is a ``legation.events.v1.Envelope``; ``event.payload`` the message
    inside it (a ``Mention`` on the mentions topics...)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str
    envelope: Envelope

    @property
    def payload(self) -> Message:
        field = self.envelope.WhichOneof("payload")
        assert field is not None  # decode() refuses an envelope without one
        payload: Message = getattr(self.envelope, field)
        return payload

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: coordinates and the envelope in proto3 JSON (``.proto`` field
        names, zero values included): ``json_format.MessageToDict``'s dict, by the converter
        compiled per message type in :mod:`legation_proto_json` (a fraction of the time; it
        was nearly all of a JSON line's or CSV row's cost)."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp_ms,
            "key": self.key,
            "event": message_to_dict(self.envelope),
        }

    def to_json_line(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"

    def to_csv_row(self) -> list[str]:
        """One row of :data:`CSV_COLUMNS`; the payload as compact JSON in the last column."""
        event = self.to_dict()["event"]
        field = self.envelope.WhichOneof("payload") or ""
        return [
            self.topic,
            str(self.partition),
            str(self.offset),
            str(self.timestamp_ms),
            self.key,
            self.envelope.event_id,
            self.envelope.event_type,
            str(event.get("occurred_at", "")),
            self.envelope.campaign_id,
            self.envelope.issue_id,
            self.envelope.source_service,
            json.dumps(event.get(field, {}), ensure_ascii=False, separators=(",", ":")),
        ]


def decode(
    topic: str, partition: int, offset: int, timestamp_ms: int, key: bytes | None, value: Any
) -> Event:
    """The event of one record; raises :class:`InvalidRecord` naming what is wrong."""
    if value is None:
        raise InvalidRecord("record has no value (tombstone)")
    envelope = Envelope()
    try:
        envelope.ParseFromString(bytes(value))
    except DecodeError as error:
        raise InvalidRecord(f"not a legation.events.v1.Envelope: {error}") from None
    field = envelope.WhichOneof("payload")
    if field is None:
        raise InvalidRecord("envelope has no payload")
    if not envelope.event_id:
        raise InvalidRecord("envelope is missing event_id")
    if envelope.schema_version != SCHEMA_VERSION:
        raise InvalidRecord(f"unsupported schema_version {envelope.schema_version}")
    expected = getattr(envelope, field).DESCRIPTOR.full_name
    if envelope.event_type != expected:
        raise InvalidRecord(f"event_type {envelope.event_type!r} does not match payload {expected}")
    key_text = key.decode("utf-8", "replace") if key else ""
    return Event(topic, partition, offset, timestamp_ms, key_text, envelope)


@dataclass(frozen=True)
class DeadLetter:
    """A record this subscriber could not use, and why (kept, never silently dropped)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    group: str

    def to_json_line(self) -> str:
        """The dead letter as one JSON line: the original bytes in base64, the reason and
        the source coordinates (the same names as Legation's own ``dlq-*`` headers)."""
        return (
            json.dumps(
                {
                    "dlq-reason": self.reason[:1000],
                    "dlq-source-topic": self.topic,
                    "dlq-source-partition": self.partition,
                    "dlq-source-offset": self.offset,
                    "dlq-consumer-group": self.group,
                    "key": _b64(self.key),
                    "value": _b64(self.value),
                },
                separators=(",", ":"),
            )
            + "\n"
        )


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()
