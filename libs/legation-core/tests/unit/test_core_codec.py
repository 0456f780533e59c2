"""EventCodec: round trips, and every defect of a record is an InvalidEvent with a reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from legation.events.v1 import engage_pb2, listen_pb2
from legation_core.catalog import TopicSpec, default_catalog
from legation_core.codec import (
    SCHEMA_VERSION,
    Envelope,
    EventCodec,
    InvalidEvent,
    envelope_from_json,
    envelope_to_dict,
    make_envelope,
    message_of,
    payload_of,
)

MENTIONS = "legation.listen.mentions.v1"
INTERACTIONS = "legation.engage.interactions.v1"
WHEN = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)


@pytest.fixture
def codec() -> EventCodec:
    return EventCodec(default_catalog())


def mention_envelope(**overrides: object) -> Envelope:
    envelope = make_envelope(
        listen_pb2.Mention(mention_id="m-1", title="Treaty talks", text="Will it cap?"),
        event_id="e-1",
        source_service="listener",
        occurred_at=WHEN,
        campaign_id="plastics-2026",
        issue_id="plastics-treaty",
        trace_id="trace-1",
    )
    for name, value in overrides.items():
        setattr(envelope, name, value)
    return envelope


def test_make_envelope_fills_metadata() -> None:
    envelope = mention_envelope()
    assert envelope.event_type == "legation.events.v1.Mention"
    assert envelope.schema_version == SCHEMA_VERSION
    assert envelope.source_service == "listener"
    assert envelope.trace_id == "trace-1"
    assert envelope.occurred_at.ToDatetime(tzinfo=UTC) == WHEN
    assert envelope.HasField("observed_at")
    assert envelope.WhichOneof("payload") == "mention"
    assert payload_of(envelope) == listen_pb2.Mention(
        mention_id="m-1", title="Treaty talks", text="Will it cap?"
    )


def test_make_envelope_generates_trace_id_and_refuses_non_payloads() -> None:
    envelope = make_envelope(
        listen_pb2.Mention(mention_id="m"),
        event_id="e",
        source_service="listener",
        occurred_at=WHEN,
    )
    assert len(envelope.trace_id) == 32
    with pytest.raises(ValueError, match="not an envelope payload"):
        make_envelope(Timestamp(), event_id="e", source_service="listener", occurred_at=WHEN)


def test_payload_of_an_empty_envelope_is_invalid() -> None:
    with pytest.raises(InvalidEvent, match="no payload"):
        payload_of(Envelope())


def test_round_trip(codec: EventCodec) -> None:
    envelope = mention_envelope()
    data = codec.encode(envelope)
    assert isinstance(data, bytes)
    decoded = codec.decode(MENTIONS, data)
    assert decoded == envelope
    assert decoded.mention.title == "Treaty talks"


def test_json_round_trip() -> None:
    envelope = mention_envelope()
    as_dict = envelope_to_dict(envelope)
    assert as_dict["event_id"] == "e-1"
    assert as_dict["mention"]["mention_id"] == "m-1"
    assert envelope_from_json(as_dict) == envelope


@pytest.mark.parametrize("spec", list(default_catalog()), ids=lambda spec: spec.name)
def test_envelope_to_dict_is_message_to_dicts_dict(spec: TopicSpec) -> None:
    # The converter itself is tested in legation-contracts (test_contracts_proto_json.py).
    envelope = envelope_from_json(spec.example)
    expected = json_format.MessageToDict(
        envelope, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    assert repr(envelope_to_dict(envelope)) == repr(expected)


@pytest.mark.parametrize("garbage", [b"not a protobuf", b"\xff\xff\xff\xff", b"\x0a\xff"])
def test_garbage_bytes_are_invalid(codec: EventCodec, garbage: bytes) -> None:
    with pytest.raises(InvalidEvent) as raised:
        codec.decode(MENTIONS, garbage)
    assert raised.value.reason.startswith("not a legation.events.v1.Envelope")
    assert str(raised.value) == raised.value.reason


def test_bytes_that_parse_as_an_empty_envelope_are_invalid(codec: EventCodec) -> None:
    with pytest.raises(InvalidEvent, match="envelope is missing event_id"):
        codec.decode(MENTIONS, b"")


def test_tombstone_is_invalid(codec: EventCodec) -> None:
    with pytest.raises(InvalidEvent, match="tombstone"):
        codec.decode(MENTIONS, None)


def test_valid_envelope_on_the_wrong_topic(codec: EventCodec) -> None:
    data = codec.encode(mention_envelope())
    with pytest.raises(InvalidEvent) as raised:
        codec.decode(INTERACTIONS, data)
    assert INTERACTIONS in raised.value.reason
    assert "legation.events.v1.Interaction" in raised.value.reason
    assert "got payload mention" in raised.value.reason


@pytest.mark.parametrize("field", ["event_id", "event_type", "source_service"])
def test_missing_required_field(codec: EventCodec, field: str) -> None:
    data = codec.encode(mention_envelope(**{field: ""}))
    with pytest.raises(InvalidEvent, match=f"envelope is missing {field}"):
        codec.decode(MENTIONS, data)


def test_missing_occurred_at(codec: EventCodec) -> None:
    envelope = mention_envelope()
    envelope.ClearField("occurred_at")
    with pytest.raises(InvalidEvent, match="missing occurred_at"):
        codec.decode(MENTIONS, codec.encode(envelope))


def test_wrong_schema_version(codec: EventCodec) -> None:
    data = codec.encode(mention_envelope(schema_version=2))
    with pytest.raises(InvalidEvent, match="unsupported schema_version 2"):
        codec.decode(MENTIONS, data)


def test_wrong_source_service(codec: EventCodec) -> None:
    data = codec.encode(mention_envelope(source_service="engager"))
    with pytest.raises(InvalidEvent) as raised:
        codec.decode(MENTIONS, data)
    assert raised.value.reason == f"source_service 'engager' may not produce to {MENTIONS}"


def test_event_type_must_match_payload(codec: EventCodec) -> None:
    data = codec.encode(mention_envelope(event_type="legation.events.v1.Interaction"))
    with pytest.raises(InvalidEvent, match=r"event_type 'legation\.events\.v1\.Interaction'"):
        codec.decode(MENTIONS, data)


def test_a_reason_quotes_at_most_80_characters_of_a_value(codec: EventCodec) -> None:
    # The reason goes to logs and the DLQ header; a 3 MB service name stays in the record.
    data = codec.encode(mention_envelope(source_service="x" * 3_000_000))
    with pytest.raises(InvalidEvent) as raised:
        codec.decode(MENTIONS, data)
    assert raised.value.reason == (
        f"source_service '{'x' * 80}'… (3,000,000 characters) may not produce to {MENTIONS}"
    )
    data = codec.encode(mention_envelope(event_type="y" * 81))
    with pytest.raises(InvalidEvent, match=r"^event_type 'y{80}'… \(81 characters\) does not"):
        codec.decode(MENTIONS, data)


def test_envelope_without_payload(codec: EventCodec) -> None:
    envelope = mention_envelope()
    envelope.ClearField("mention")
    with pytest.raises(InvalidEvent, match="got payload none"):
        codec.decode(MENTIONS, codec.encode(envelope))


def test_validate_accepts_matching_payload() -> None:
    spec = default_catalog().topic(INTERACTIONS)
    envelope = make_envelope(
        engage_pb2.Interaction(interaction_id="i-1", kind=engage_pb2.Interaction.KIND_OPENED),
        event_id="e-2",
        source_service="engager",
        occurred_at=WHEN,
    )
    EventCodec.validate(spec, envelope)  # no exception


def test_a_timestamp_outside_the_protobuf_range_is_invalid() -> None:
    catalog = default_catalog()
    topic = "legation.listen.mentions.v1"
    envelope = envelope_from_json(catalog.topic(topic).example)
    envelope.mention.published_at.seconds = 253_402_300_800  # year 10000
    with pytest.raises(InvalidEvent, match=r"mention\.published_at is not a valid timestamp"):
        EventCodec(catalog).decode(topic, envelope.SerializeToString())
    envelope = envelope_from_json(catalog.topic(topic).example)
    envelope.occurred_at.nanos = -1
    with pytest.raises(InvalidEvent, match="occurred_at is not a valid timestamp"):
        EventCodec(catalog).decode(topic, envelope.SerializeToString())


def test_a_timestamp_in_a_repeated_message_is_checked_and_named() -> None:
    catalog = default_catalog()
    topic = "legation.listen.mentions.v1"
    envelope = envelope_from_json(catalog.topic(topic).example)
    envelope.mention.label_history.add(field="stance").replaced_at.seconds = 1_700_000_000
    EventCodec(catalog).decode(topic, envelope.SerializeToString())  # valid
    envelope.mention.label_history.add(field="sentiment").replaced_at.nanos = 10**9
    with pytest.raises(
        InvalidEvent, match=r"mention\.label_history\.replaced_at is not a valid timestamp"
    ):
        EventCodec(catalog).decode(topic, envelope.SerializeToString())


@dataclass(frozen=True)
class _Quoted:
    mention_id: str
    url: str
    text: str
    published_at: datetime
    not_a_field: str = "left out"


def test_message_of_copies_the_fields_of_the_same_name_and_takes_the_others_given() -> None:
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    quoted = _Quoted("m-1", "https://e.org/1", "a long text", at)
    ref = message_of(listen_pb2.MentionRef, quoted, text="a long", language="en")
    assert (ref.mention_id, ref.url, ref.text, ref.language) == (
        "m-1",
        "https://e.org/1",
        "a long",
        "en",
    )
    assert ref.published_at.ToDatetime(tzinfo=UTC) == at
    assert not ref.author  # the value has no author: the field keeps its default
