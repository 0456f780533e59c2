"""legation_proto_json.message_to_dict gives what json_format.MessageToDict gives (with the .proto
field names and fields without presence printed): the same dict, keys in the same order and
values of the same types (compared by ``repr``, which tells ``1`` from ``1.0`` and ``True``
and ``-0.0`` from ``0.0``), or the same error.

Checked on every catalog example, on events of every payload type drawn by the fuzz suite's
strategies (hostile values: NaN, infinities, unknown enum numbers, edge integers, huge
strings, long lists, timestamps out of range), and on a message type made here with what the
event protos do not use (floats, bytes, maps keyed by bool and integers, a closed enum, an
extension, Struct, Value, Any, the wrappers, Duration, FieldMask, a recursive type).

The catalog and the strategies come from legation-core, in the tests only: the package itself
needs protobuf alone (legation-subscribe's test_the_package_stands_alone checks its imports).
"""

from __future__ import annotations

import math
from typing import Any, cast

import pytest
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    field_mask_pb2,
    json_format,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, envelope_from_json
from legation_core.proto_strategies import messages
from legation_proto_json import message_to_dict

# Per payload type (28 of them): 280 drawn events in all, plus 100 of the made-up types,
# kept to seconds in make test (huge strings and long lists are drawn too); the fuzz
# suite's decoder targets draw the same events at their own budget.
EXAMPLES = 10
FIELD = FieldDescriptor
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
PAYLOAD_FIELDS = [field.name for field in Envelope.DESCRIPTOR.oneofs_by_name["payload"].fields]


def outcome(convert: Any, message: Message) -> tuple[str, str]:
    """What ``convert`` gives for ``message``: ("ok", repr of the dict) or ("error", the
    exception's type and text)."""
    try:
        return "ok", repr(convert(message))
    except Exception as error:  # the comparison is the point: any error must be the same
        return "error", f"{type(error).__name__}: {error}"


def slow(message: Message) -> Any:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def assert_same(message: Message) -> str:
    """Asserts both converters agree on ``message``; returns "ok" or "error"."""
    expected = outcome(slow, message)
    assert outcome(message_to_dict, message) == expected
    return expected[0]


def repaired(message: Message) -> Message:
    """A copy of ``message`` with every Timestamp and Duration moved into its valid range:
    the drawn ones are often outside it (where both converters raise), and the fast path
    must be compared on valid ones too."""
    copy = type(message)()
    copy.CopyFrom(message)
    _repair(copy)
    return copy


def _repair(message: Message) -> None:
    name = message.DESCRIPTOR.full_name
    if name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        low, high = (-62_135_596_800, 253_402_300_799)
        if name == "google.protobuf.Duration":
            low, high = (0, 315_576_000_000)
        message.seconds = min(high, max(low, message.seconds))  # type: ignore[attr-defined]
        message.nanos = message.nanos % 1_000_000_000  # type: ignore[attr-defined]
        return
    for field, value in message.ListFields():
        entry = field.message_type
        if entry is None:
            continue
        if entry.GetOptions().map_entry:
            message_values = entry.fields_by_name["value"].type == FIELD.TYPE_MESSAGE
            items = list(value.values()) if message_values else []
        else:
            items = list(value) if field.is_repeated else [value]
        for item in items:
            _repair(item)


# --- the event types -----------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(default_catalog()), ids=lambda spec: spec.name)
def test_every_catalog_example_converts_as_message_to_dict(spec: Any) -> None:
    envelope = envelope_from_json(spec.example)
    assert assert_same(envelope) == "ok"


def test_every_payload_type_has_a_catalog_example() -> None:
    examples = {spec.payload_field for spec in default_catalog()}
    assert set(PAYLOAD_FIELDS) - examples == set()


@pytest.mark.parametrize("field", PAYLOAD_FIELDS)
@HYPOTHESIS
@given(data=st.data())
def test_drawn_events_of_every_payload_type_convert_as_message_to_dict(
    field: str, data: st.DataObject
) -> None:
    payload_type = Envelope.DESCRIPTOR.fields_by_name[field].message_type
    assert payload_type is not None
    envelope = data.draw(messages(Envelope.DESCRIPTOR, depth=1), label="envelope")
    payload = data.draw(messages(payload_type), label="payload")
    getattr(envelope, field).CopyFrom(payload)  # the one member of the oneof
    assert envelope.WhichOneof("payload") == field
    assert_same(envelope)
    # Timestamps in range: every event type converts, the fast path all the way.
    assert assert_same(repaired(envelope)) == "ok"


def test_an_envelope_without_payload_and_an_empty_one() -> None:
    assert assert_same(Envelope()) == "ok"
    assert message_to_dict(Envelope())["schema_version"] == 0
    assert "payload" not in message_to_dict(Envelope())


def test_hostile_values_of_an_event() -> None:
    envelope = envelope_from_json(default_catalog().topic("legation.listen.mentions.v1").example)
    mention = envelope.mention
    mention.reach = -(2**63)
    mention.influence = math.nan
    mention.relevance.score = -math.inf
    mention.sentiment.score = -0.0
    mention.published_at.nanos = 1_000
    mention.label_history.add().score = math.inf
    mention.entities.add()
    assert assert_same(envelope) == "ok"
    converted = message_to_dict(envelope)["mention"]
    assert converted["reach"] == str(-(2**63))
    assert converted["influence"] == "NaN"
    assert repr(converted["sentiment"]["score"]) == "-0.0"
    interaction = envelope_from_json(
        default_catalog().topic("legation.engage.interactions.v1").example
    )
    interaction.interaction.kind = 12_345  # type: ignore[assignment]  # an open enum's unknown number stays a number
    assert assert_same(interaction) == "ok"
    assert message_to_dict(interaction)["interaction"]["kind"] == 12_345
    mention.published_at.seconds = 10**15  # out of range: MessageToDict's own error
    assert assert_same(envelope) == "error"
    with pytest.raises(json_format.SerializeToJsonError, match="published_at"):
        message_to_dict(envelope)


# --- what the event protos do not use --------------------------------------------------------

_FILE = "legation_contracts_tests/proto_json_test.proto"
_CLOSED_FILE = "legation_contracts_tests/proto_json_closed.proto"
_PACKAGE = "legation.contracts.tests.protojson"


def _types() -> tuple[type[Message], type[Message], FieldDescriptor]:
    """Builds (once per process, in the default pool) a proto3 message type with every kind
    of field and a proto2 one with a closed enum and an extension."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_FILE)
    except KeyError:
        for file in (_everything_file(), _closed_file()):
            pool.AddSerializedFile(file.SerializeToString())
    everything = GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Everything"))
    closed = GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Closed"))
    return everything, closed, pool.FindExtensionByName(f"{_PACKAGE}.note")


def _everything_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name=_FILE,
        package=_PACKAGE,
        syntax="proto3",
        dependency=[
            module.DESCRIPTOR.name
            for module in (
                timestamp_pb2,
                duration_pb2,
                field_mask_pb2,
                struct_pb2,
                wrappers_pb2,
                any_pb2,
            )
        ],
    )
    color = file.enum_type.add(name="Color")
    for number, name in enumerate(("COLOR_UNSPECIFIED", "COLOR_RED", "COLOR_BLUE")):
        color.value.add(name=name, number=number)
    message = file.message_type.add(name="Everything")
    this = f".{_PACKAGE}.Everything"
    numbers = iter(range(1, 1000))

    def add(name: str, kind: int, label: int = FIELD.LABEL_OPTIONAL, **extra: Any) -> Any:
        extra = {key: value for key, value in extra.items() if value != ""}
        return message.field.add(
            name=name, number=next(numbers), type=kind, label=label, json_name=name, **extra
        )

    message.oneof_decl.add(name="choice")
    # Declared out of number order: unset fields come in declaration order, set ones by
    # number.
    message.field.add(
        name="declared_first", number=999, type=FIELD.TYPE_STRING, label=FIELD.LABEL_OPTIONAL
    )
    scalars = {
        "double": FIELD.TYPE_DOUBLE,
        "float": FIELD.TYPE_FLOAT,
        "int32": FIELD.TYPE_INT32,
        "int64": FIELD.TYPE_INT64,
        "uint32": FIELD.TYPE_UINT32,
        "uint64": FIELD.TYPE_UINT64,
        "sint32": FIELD.TYPE_SINT32,
        "sint64": FIELD.TYPE_SINT64,
        "fixed32": FIELD.TYPE_FIXED32,
        "fixed64": FIELD.TYPE_FIXED64,
        "sfixed32": FIELD.TYPE_SFIXED32,
        "sfixed64": FIELD.TYPE_SFIXED64,
        "bool": FIELD.TYPE_BOOL,
        "string": FIELD.TYPE_STRING,
        "bytes": FIELD.TYPE_BYTES,
    }
    for name, kind in scalars.items():
        add(f"{name}_value", kind)
        add(f"{name}_list", kind, FIELD.LABEL_REPEATED)
    add("color", FIELD.TYPE_ENUM, type_name=f".{_PACKAGE}.Color")
    add("colors", FIELD.TYPE_ENUM, FIELD.LABEL_REPEATED, type_name=f".{_PACKAGE}.Color")
    for name, kind, type_name in (
        ("maybe_int64", FIELD.TYPE_INT64, ""),
        ("maybe_double", FIELD.TYPE_DOUBLE, ""),
        ("maybe_color", FIELD.TYPE_ENUM, f".{_PACKAGE}.Color"),
    ):  # proto3 optional: a synthetic oneof each
        message.oneof_decl.add(name=f"_{name}")
        add(
            name,
            kind,
            type_name=type_name,
            oneof_index=len(message.oneof_decl) - 1,
            proto3_optional=True,
        )
    wkt = {
        "timestamp": ".google.protobuf.Timestamp",
        "duration": ".google.protobuf.Duration",
        "mask": ".google.protobuf.FieldMask",
        "struct": ".google.protobuf.Struct",
        "value": ".google.protobuf.Value",
        "list_value": ".google.protobuf.ListValue",
        "int64_wrapper": ".google.protobuf.Int64Value",
        "string_wrapper": ".google.protobuf.StringValue",
        "bool_wrapper": ".google.protobuf.BoolValue",
        "double_wrapper": ".google.protobuf.DoubleValue",
        "any": ".google.protobuf.Any",
    }
    for name, type_name in wkt.items():
        add(name, FIELD.TYPE_MESSAGE, type_name=type_name)
    add("timestamps", FIELD.TYPE_MESSAGE, FIELD.LABEL_REPEATED, type_name=wkt["timestamp"])
    add("null", FIELD.TYPE_ENUM, type_name=".google.protobuf.NullValue")
    add("child", FIELD.TYPE_MESSAGE, type_name=this)
    add("children", FIELD.TYPE_MESSAGE, FIELD.LABEL_REPEATED, type_name=this)
    maps = {
        "by_string": (FIELD.TYPE_STRING, FIELD.TYPE_INT64, ""),
        "by_bool": (FIELD.TYPE_BOOL, FIELD.TYPE_STRING, ""),
        "by_int32": (FIELD.TYPE_INT32, FIELD.TYPE_MESSAGE, this),
        "by_uint64": (FIELD.TYPE_UINT64, FIELD.TYPE_ENUM, f".{_PACKAGE}.Color"),
        "by_sint64": (FIELD.TYPE_SINT64, FIELD.TYPE_BYTES, ""),
        "by_fixed32": (FIELD.TYPE_FIXED32, FIELD.TYPE_DOUBLE, ""),
        "values": (FIELD.TYPE_STRING, FIELD.TYPE_MESSAGE, ".google.protobuf.Value"),
        "times": (FIELD.TYPE_STRING, FIELD.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
    }
    for name, (key, value, type_name) in maps.items():
        entry_name = "".join(part.title() for part in name.split("_")) + "Entry"
        entry = message.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=key, label=FIELD.LABEL_OPTIONAL)
        entry.field.add(name="value", number=2, type=value, label=FIELD.LABEL_OPTIONAL)
        if type_name:
            entry.field[1].type_name = type_name
        add(name, FIELD.TYPE_MESSAGE, FIELD.LABEL_REPEATED, type_name=f"{this}.{entry_name}")
    choice = 0  # declared first: synthetic oneofs come after the real ones
    add("choice_string", FIELD.TYPE_STRING, oneof_index=choice)
    add("choice_child", FIELD.TYPE_MESSAGE, oneof_index=choice, type_name=this)
    add("choice_time", FIELD.TYPE_MESSAGE, oneof_index=choice, type_name=wkt["timestamp"])
    add("choice_double", FIELD.TYPE_DOUBLE, oneof_index=choice)
    return file


def _closed_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name=_CLOSED_FILE, package=_PACKAGE, syntax="proto2")
    kind = file.enum_type.add(name="Kind")
    kind.value.add(name="KIND_ONE", number=1)
    kind.value.add(name="KIND_TWO", number=2)
    message = file.message_type.add(name="Closed")
    message.extension_range.add(start=100, end=200)
    optional, repeated = FIELD.LABEL_OPTIONAL, FIELD.LABEL_REPEATED
    kind_type = f".{_PACKAGE}.Kind"
    message.field.add(
        name="kind", number=1, type=FIELD.TYPE_ENUM, label=optional, type_name=kind_type
    )
    message.field.add(
        name="count", number=2, type=FIELD.TYPE_INT32, label=optional, default_value="7"
    )
    message.field.add(
        name="kinds", number=3, type=FIELD.TYPE_ENUM, label=repeated, type_name=kind_type
    )
    file.extension.add(
        name="note",
        number=100,
        type=FIELD.TYPE_STRING,
        label=optional,
        extendee=f".{_PACKAGE}.Closed",
    )
    return file


def test_every_kind_of_field_set_and_unset() -> None:
    everything_type, _, _ = _types()
    assert assert_same(everything_type()) == "ok"
    message: Any = everything_type()
    message.double_value = math.inf
    message.float_value = 0.1  # printed at its shortest: 0.1, not 0.10000000149011612
    message.float_list.extend([math.nan, -math.inf, 3.4e38, 1e-45])
    message.int64_value = -(2**63)
    message.uint64_value = 2**64 - 1
    message.fixed64_list.extend([0, 2**64 - 1])
    message.bytes_value = b"\x00\xff"
    message.bytes_list.append(b"")
    message.color = 99  # unknown number of an open enum
    message.colors.extend([1, 2, 77])
    message.maybe_int64 = 0  # present although zero
    message.maybe_color = 0
    message.timestamp.FromSeconds(1)
    message.duration.FromNanoseconds(-1_500)
    message.mask.paths.extend(["double_value", "child.color"])
    message.struct.update({"a": [1, "x", None, {"b": True}]})
    message.value.string_value = "v"
    message.list_value.values.add().number_value = 2
    message.int64_wrapper.value = 2**62
    message.string_wrapper.SetInParent()
    message.double_wrapper.value = math.nan
    message.any.Pack(timestamp_pb2.Timestamp(seconds=5))
    message.timestamps.add(seconds=-62_135_596_800)
    message.timestamps.add(seconds=253_402_300_799, nanos=999_999_999)
    message.null = 0
    message.child.child.choice_time.nanos = 10
    message.children.add().by_bool[True] = "t"
    message.by_bool[False] = "f"
    message.by_int32[-5].string_value = "nested"
    message.by_uint64[2**64 - 1] = 2
    message.by_sint64[-(2**63)] = b"\x01"
    message.by_fixed32[0] = -0.0
    message.values["n"].null_value = 0
    message.times["t"].seconds = 60
    message.declared_first = "set"
    message.choice_double = -0.0
    assert assert_same(message) == "ok"
    assert list(message_to_dict(message))[:2] == ["double_value", "float_value"]
    message.value.number_value = math.nan  # a Value cannot hold NaN: MessageToDict raises
    assert assert_same(message) == "error"


def test_a_closed_enum_and_an_extension() -> None:
    _, closed_type, note = _types()
    closed: Any = closed_type()
    assert assert_same(closed) == "ok"  # proto2: nothing is printed unless set
    closed.kind = 2
    closed.kinds.extend([1, 2])
    assert assert_same(closed) == "ok"
    closed.Extensions[note] = "an extension"
    assert assert_same(closed) == "ok"
    assert message_to_dict(closed)[f"[{_PACKAGE}.note]"] == "an extension"


@settings(HYPOTHESIS, max_examples=100)
@given(data=st.data())
def test_drawn_messages_of_every_kind_convert_as_message_to_dict(data: st.DataObject) -> None:
    everything_type, closed_type, _ = _types()
    for message_type in (everything_type, closed_type):
        # Two levels, no huge values: the type is recursive several ways over and has dozens
        # of repeated fields (the event types above get the huge values).
        descriptor = cast(Descriptor, message_type.DESCRIPTOR)
        message = data.draw(messages(descriptor, depth=2, huge=False))
        assert_same(message)
        assert_same(repaired(message))
