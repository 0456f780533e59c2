"""Encoding and validating events: the Envelope on every topic.

Decoding is the first boundary of every consumer: a record that does not parse, or whose
envelope is incomplete or carries a payload the topic does not allow, raises
:class:`InvalidEvent` with a reason, and the consumer sends it to the DLQ.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message

from legation.events.v1 import envelope_pb2
from legation_core.catalog import Catalog, CatalogError, TopicSpec, payload_field_for
from legation_core.ids import new_trace_id
from legation_proto_json import message_to_dict

Envelope = envelope_pb2.Envelope
SCHEMA_VERSION = 1


class InvalidEvent(Exception):
    """A record that can never be processed; ``reason`` goes into the DLQ header."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_SHOWN_CHARACTERS = 80


def _shown(value: str) -> str:
    """A value the record carried, as a reason quotes it: at most 80 characters (a reason
    goes to logs and DLQ headers; the record itself keeps the whole value)."""
    if len(value) <= _SHOWN_CHARACTERS:
        return repr(value)
    return f"{value[:_SHOWN_CHARACTERS]!r}… ({len(value):,} characters)"


def payload_of(envelope: Envelope) -> Message:
    """The message inside the envelope's oneof."""
    field = envelope.WhichOneof("payload")
    if field is None:
        raise InvalidEvent("envelope has no payload")
    payload: Message = getattr(envelope, field)
    return payload


def make_envelope(
    payload: Message,
    *,
    event_id: str,
    source_service: str,
    occurred_at: datetime,
    campaign_id: str = "",
    issue_id: str = "",
    trace_id: str = "",
    observed_at: datetime | None = None,
) -> Envelope:
    """Wraps ``payload`` in a complete envelope (the payload type picks the oneof field)."""
    envelope = Envelope(
        event_id=event_id,
        event_type=payload.DESCRIPTOR.full_name,
        schema_version=SCHEMA_VERSION,
        campaign_id=campaign_id,
        issue_id=issue_id,
        source_service=source_service,
        trace_id=trace_id or new_trace_id(),
    )
    envelope.occurred_at.FromDatetime(occurred_at)
    envelope.observed_at.FromDatetime(observed_at or datetime.now(UTC))
    try:
        field = payload_field_for(payload.DESCRIPTOR.full_name)
    except CatalogError:
        raise ValueError(f"{payload.DESCRIPTOR.full_name} is not an envelope payload") from None
    getattr(envelope, field).CopyFrom(payload)
    return envelope


def envelope_from_json(data: Mapping[str, Any]) -> Envelope:
    """Parses the proto3 JSON form (as in catalog examples)."""
    return json_format.ParseDict(dict(data), Envelope())


def envelope_to_dict(envelope: Envelope) -> dict[str, Any]:
    """The proto3 JSON form with the .proto field names, zero values included (a neutral
    score of 0 must count in an average): ``json_format.MessageToDict`` with those options,
    by the converter compiled per message type in :mod:`legation_proto_json` (the same
    dict in a fraction of the time; every indexed event goes through here)."""
    return message_to_dict(envelope)


class EventCodec:
    """Encodes envelopes and decodes them against the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    @staticmethod
    def encode(envelope: Envelope) -> bytes:
        return envelope.SerializeToString()

    def decode(self, topic: str, value: bytes | None) -> Envelope:
        """Parses and validates a record of ``topic``; raises InvalidEvent on any defect."""
        if value is None:
            raise InvalidEvent("record has no value (tombstone)")
        envelope = Envelope()
        try:
            envelope.ParseFromString(value)
        except DecodeError as error:
            raise InvalidEvent(f"not a legation.events.v1.Envelope: {error}") from None
        self.validate(self.catalog.topic(topic), envelope)
        return envelope

    @staticmethod
    def validate(spec: TopicSpec, envelope: Envelope) -> None:
        """Checks the envelope is complete and carries the topic's message type."""
        missing = [
            name
            for name in ("event_id", "event_type", "source_service")
            if not getattr(envelope, name)
        ]
        if not envelope.HasField("occurred_at"):
            missing.append("occurred_at")
        if missing:
            raise InvalidEvent(f"envelope is missing {', '.join(missing)}")
        if envelope.schema_version != SCHEMA_VERSION:
            raise InvalidEvent(f"unsupported schema_version {envelope.schema_version}")
        field = envelope.WhichOneof("payload")
        if field != spec.payload_field:
            raise InvalidEvent(
                f"{spec.name} carries {spec.message_type}, got payload {field or 'none'}"
            )
        if envelope.event_type != spec.message_type:
            raise InvalidEvent(
                f"event_type {_shown(envelope.event_type)} does not match payload "
                f"{spec.message_type}"
            )
        if envelope.source_service not in spec.producers:
            raise InvalidEvent(
                f"source_service {_shown(envelope.source_service)} may not produce to {spec.name}"
            )
        check_timestamps(envelope)


MessageT = TypeVar("MessageT", bound=Message)


def message_of(cls: type[MessageT], source: object, **fields: Any) -> MessageT:
    """A ``cls`` message from a domain value: each of its fields ``source`` has an attribute
    of the same name for, copied; ``fields`` gives the others, and those the copy would get
    wrong (a nested message, a cut text), by name."""
    copied = {
        field.name: getattr(source, field.name)
        for field in cls.DESCRIPTOR.fields
        if field.name not in fields and hasattr(source, field.name)
    }
    return cls(**copied, **fields)


# The range google.protobuf.Timestamp allows (0001-01-01 to 9999-12-31): outside it the
# value cannot become a datetime or JSON, and every handler would fail on it.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def check_timestamps(message: Message, path: str = "") -> None:
    """Raises InvalidEvent naming the first Timestamp field outside the valid range.

    Only the fields that can hold a Timestamp are visited (see :func:`_timestamp_fields`,
    computed once per message type), a oneof's through the one member it holds: this runs
    for every event produced and consumed."""
    fields, oneofs = _timestamp_fields(message.DESCRIPTOR)
    for oneof, members in oneofs:
        held = message.WhichOneof(oneof)
        if held is not None and held in members:
            _check_field(message, held, False, members[held], path)
    for name, repeated, is_timestamp in fields:
        _check_field(message, name, repeated, is_timestamp, path)


def _check_field(
    message: Message, name: str, repeated: bool, is_timestamp: bool, path: str
) -> None:
    if repeated:
        values = getattr(message, name)
    elif message.HasField(name):
        values = (getattr(message, name),)
    else:
        return
    for item in values:
        if not is_timestamp:
            check_timestamps(item, f"{path}{name}.")
        elif not (_MIN_SECONDS <= item.seconds <= _MAX_SECONDS and 0 <= item.nanos < 10**9):
            raise InvalidEvent(f"{path}{name} is not a valid timestamp")


_TIMESTAMP = "google.protobuf.Timestamp"
_Fields = tuple[tuple[str, bool, bool], ...]
_Oneofs = tuple[tuple[str, dict[str, bool]], ...]


@cache
def _timestamp_fields(descriptor: Descriptor) -> tuple[_Fields, _Oneofs]:
    """Where a message of ``descriptor`` can hold a Timestamp: its fields outside a oneof
    that are a Timestamp or contain one, as (name, repeated, is a Timestamp), and per oneof
    its members that do, as {name: is a Timestamp}. Map fields are not looked into."""
    fields: list[tuple[str, bool, bool]] = []
    oneofs: dict[str, dict[str, bool]] = {}
    for field in descriptor.fields:
        kind = field.message_type
        if kind is None or kind.GetOptions().map_entry:
            continue
        is_timestamp = kind.full_name == _TIMESTAMP
        if not is_timestamp and not _holds_timestamp(kind, frozenset()):
            continue
        if field.containing_oneof is not None:
            oneofs.setdefault(field.containing_oneof.name, {})[field.name] = is_timestamp
        else:
            fields.append((field.name, field.is_repeated, is_timestamp))
    return tuple(fields), tuple(oneofs.items())


def _holds_timestamp(descriptor: Descriptor, seen: frozenset[str]) -> bool:
    """True when a message of ``descriptor`` can contain a Timestamp outside a map."""
    if descriptor.full_name in seen:
        return False  # a recursive type: its other fields decide
    seen = seen | {descriptor.full_name}
    for field in descriptor.fields:
        kind = field.message_type
        if kind is None or kind.GetOptions().map_entry:
            continue
        if kind.full_name == _TIMESTAMP or _holds_timestamp(kind, seen):
            return True
    return False
