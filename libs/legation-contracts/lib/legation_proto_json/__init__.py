"""Messages as the dict ``json_format.MessageToDict`` gives with ``.proto`` field names and
fields without presence always printed, in a fraction of its time.

``MessageToDict`` decides every value's JSON form field by field at run time (type checks,
enum look-ups, presence rules); turning each event into its index document spent about
half of the evaluator's CPU there. :func:`message_to_dict` makes those decisions once per
message type: :func:`_compile` reads the descriptor and returns a converter (a table of
field -> (name, value converter) plus the defaults of the fields without presence), cached
per descriptor. The result is the same dict, keys in the same order: the fields the
message holds in field-number order (``ListFields``), then the unset fields without
presence in declaration order.

Covered: every scalar type (64-bit integers as strings, enums by name or by number when
unknown, bytes in base64, ``NaN``/``Infinity``/``-Infinity``, floats at their shortest),
repeated and map fields, nested messages, oneofs and proto3 ``optional`` (through
``ListFields``: only what is set), and google.protobuf.Timestamp, Duration and FieldMask
(by their own ``ToJsonString`` as ``MessageToDict`` does, a valid Timestamp by an
equivalent without its datetime arithmetic). Any other well-known type
(Struct, Value, Any, the wrappers) and extensions go to ``MessageToDict``; so does a whole
message the fast path fails on (an invalid timestamp, an unknown number of a closed enum),
so the error raised is ``MessageToDict``'s own.
"""

from __future__ import annotations

import base64
import math
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from google.protobuf import descriptor_pool, json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.internal.type_checkers import ToShortestFloat
from google.protobuf.message import Message

Converter = Callable[[Message], dict[str, Any]]
ValueConverter = Callable[[Any], Any]

# The options every caller uses: the events' documents in the index
# (legation_core.codec.envelope_to_dict) and a department's subscriber's JSON lines, CSV and
# webhook bodies (legation_subscribe.events.Event.to_dict).
_OPTIONS: dict[str, Any] = {
    "preserving_proto_field_name": True,
    "always_print_fields_with_no_presence": True,
}
# Well-known types printed by their own ToJsonString (MessageToDict's generic printer).
_BY_JSON_STRING = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
)
_INT64 = frozenset({FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64})

_converters: dict[Descriptor, Converter] = {}
_compiling = threading.Lock()


def message_to_dict(message: Message) -> dict[str, Any]:
    """``json_format.MessageToDict(message, preserving_proto_field_name=True,
    always_print_fields_with_no_presence=True)``: the same dict, or the same error."""
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    convert = _converters.get(descriptor) or _converter(descriptor)
    try:
        return convert(message)
    except (ValueError, json_format.Error):
        # MessageToDict raises its own error for this message (naming the field).
        result: dict[str, Any] = _slow(message)
        return result


def _slow(message: Message) -> Any:
    """MessageToDict's printer, for what the fast path does not cover."""
    return json_format.MessageToDict(message, **_OPTIONS)


def _converter(descriptor: Descriptor) -> Converter:
    """The cached converter of ``descriptor``, compiled on first use with those of the
    message types it contains, and published only once complete (another thread never
    sees a half-built table)."""
    with _compiling:
        found = _converters.get(descriptor)
        if found is not None:
            return found
        pending: dict[Descriptor, Converter] = {}
        convert = _compile(descriptor, pending)
        _converters.update(pending)
        return convert


def _compile(descriptor: Descriptor, pending: dict[Descriptor, Converter]) -> Converter:
    """The converter of one message type: ``ListFields`` through a table of field ->
    (name, value converter or None when the value is its own JSON form), then the
    defaults of the unset fields without presence."""
    found = _converters.get(descriptor) or pending.get(descriptor)
    if found is not None:
        return found
    if descriptor.full_name.startswith("google.protobuf.") or _json_enum_names():
        # A well-known type (its JSON form is its own; Timestamp and the like are printed
        # by their parent's field converter), or enum values that may carry a JSON name.
        pending[descriptor] = _slow
        return _slow
    table: dict[FieldDescriptor, tuple[str, ValueConverter | None]] = {}
    # (name, default, True when the default is a factory: a fresh list or dict each time)
    defaults: list[tuple[str, Any, bool]] = []

    def convert(message: Message) -> dict[str, Any]:
        js: dict[str, Any] = {}
        try:
            for field, value in message.ListFields():
                name, value_converter = table[field]
                js[name] = value if value_converter is None else value_converter(value)
        except KeyError:
            return _slow(message)  # type: ignore[no-any-return]  # an extension
        for name, default, factory in defaults:
            if name not in js:
                js[name] = default() if factory else default
        return js

    # Registered before its fields are compiled, so a recursive type finds itself.
    pending[descriptor] = convert
    for field in descriptor.fields:
        value_converter = _field_converter(field, pending)
        table[field] = (field.name, value_converter)
        if field.has_presence:
            continue
        if field.is_repeated:
            defaults.append((field.name, dict if _is_map(field) else list, True))
        else:
            value = field.default_value
            default = value if value_converter is None else value_converter(value)
            defaults.append((field.name, default, False))
    return convert


def _field_converter(
    field: FieldDescriptor, pending: dict[Descriptor, Converter]
) -> ValueConverter | None:
    """What turns the value ``ListFields`` gives for ``field`` into its JSON form."""
    if _is_map(field):
        entry = field.message_type
        assert entry is not None
        key_field = entry.fields_by_name["key"]
        bool_keys = key_field.cpp_type == FieldDescriptor.CPPTYPE_BOOL
        item = _single_converter(entry.fields_by_name["value"], pending)

        def convert_map(value: Any) -> dict[str, Any]:
            return {
                _bool_key(key) if bool_keys else str(key): (
                    value[key] if item is None else item(value[key])
                )
                for key in value
            }

        return convert_map
    single = _single_converter(field, pending)
    if not field.is_repeated:
        return single
    if single is None:
        return list
    convert_item = single
    return lambda value: [convert_item(item) for item in value]


def _single_converter(
    field: FieldDescriptor, pending: dict[Descriptor, Converter]
) -> ValueConverter | None:
    """The JSON form of one value of ``field`` (None: the value as it is)."""
    cpp_type = field.cpp_type
    if cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        message_type = field.message_type
        assert message_type is not None
        if message_type.full_name == "google.protobuf.Timestamp":
            return _timestamp
        if message_type.full_name in _BY_JSON_STRING:
            return _json_string
        return _compile(message_type, pending)
    if cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        return _enum_converter(field)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _base64
    if cpp_type in _INT64:
        return str
    if cpp_type == FieldDescriptor.CPPTYPE_DOUBLE:
        return _double
    if cpp_type == FieldDescriptor.CPPTYPE_FLOAT:
        return _float
    return None  # strings, bools, 32-bit integers: their own JSON form


def _enum_converter(field: FieldDescriptor) -> ValueConverter:
    enum = field.enum_type
    assert enum is not None
    if enum.full_name == "google.protobuf.NullValue":
        return lambda value: None
    names = {number: value.name for number, value in enum.values_by_number.items()}
    if not enum.is_closed:
        # An open enum's unknown number travels as the number.
        return lambda value: names.get(value, value)

    def closed(value: int) -> str:
        name = names.get(value)
        if name is None:
            raise json_format.SerializeToJsonError("unknown number of a closed enum")
        return name

    return closed


def _is_map(field: FieldDescriptor) -> bool:
    message_type = field.message_type
    return message_type is not None and bool(message_type.GetOptions().map_entry)


def _bool_key(key: bool) -> str:
    return "true" if key else "false"


def _json_string(value: Any) -> str:
    text: str = value.ToJsonString()
    return text


# Timestamp.ToJsonString's valid range (0001-01-01 to 9999-12-31, whole seconds).
_TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)


def _timestamp(value: Any) -> str:
    """``Timestamp.ToJsonString()`` (RFC 3339 in UTC, no fraction or 3, 6 or 9 digits),
    with ``time.gmtime`` in place of its datetime arithmetic; anything outside the valid
    range goes to ToJsonString itself, which raises."""
    seconds, nanos = value.seconds, value.nanos
    low, high = _TIMESTAMP_SECONDS
    if not (low <= seconds <= high and 0 <= nanos < 1_000_000_000):
        return _json_string(value)
    try:
        year, month, day, hour, minute, second = time.gmtime(seconds)[:6]
    except (OverflowError, OSError):  # a platform whose gmtime stops short of years 1-9999
        return _json_string(value)
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
    if nanos == 0:
        return f"{text}Z"
    if nanos % 1_000_000 == 0:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if nanos % 1_000 == 0:
        return f"{text}.{nanos // 1_000:06d}Z"
    return f"{text}.{nanos:09d}Z"


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("utf-8")


def _special(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "-Infinity" if value < 0 else "Infinity"


def _double(value: float) -> float | str:
    return value if math.isfinite(value) else _special(value)


def _float(value: float) -> float | str:
    return ToShortestFloat(value) if math.isfinite(value) else _special(value)


_enum_json_names: list[bool] = []


def _json_enum_names() -> bool:
    """True when the default pool knows the ``pb.enumvalue.json`` option (an enum value's
    JSON name, which MessageToDict prints instead of the value's name): not handled here.
    Asked once."""
    if not _enum_json_names:
        try:
            descriptor_pool.Default().FindExtensionByName("pb.enumvalue.json")
            _enum_json_names.append(True)
        except KeyError:
            _enum_json_names.append(False)
    return _enum_json_names[0]
