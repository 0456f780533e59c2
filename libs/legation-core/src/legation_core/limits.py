"""Request limits: every field of every gRPC request, checked before any work.

The limits live in the protos, as ``(legation.options.v1.limits)`` annotations on request
fields (``protos/legation/options/v1/limits.proto`` documents them and the defaults of an
unannotated field). :func:`check_request` walks a request along its descriptor and raises
:class:`LimitError` naming the first field path that breaks a limit and the limit
(``objectives[2].description: at most 2000 characters (got 20001)``); the gRPC interceptor
(:mod:`legation_core.auth`) runs it on every call of every service before the servicer, so
no servicer can forget. :func:`describe_service` lists a service's limits for the docs.

protovalidate would be the off-the-shelf choice, but its Python package needs a separate
protobuf runtime and ships no ``validate.proto`` to annotate with, so this small walker
reads our own option instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from legation.options.v1 import limits_pb2

# The defaults of a field without an annotation (limits.proto repeats them).
DEFAULT_MAX_LENGTH = 1000  # characters of a string
DEFAULT_MAX_BYTES = 65_536  # bytes of a bytes field
DEFAULT_MAX_ITEMS = 100  # items of a repeated field, entries of a map
DEFAULT_MAX_KEY_LENGTH = 100  # characters of a map key
MAX_DEPTH = 32  # levels of message nesting below the request
TIMESTAMP_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TIMESTAMP_MAX = datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC)
_TIMESTAMP_MIN_SECONDS = int(TIMESTAMP_MIN.timestamp())
_TIMESTAMP_MAX_SECONDS = int(TIMESTAMP_MAX.timestamp())

ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}"
_ID = re.compile(ID_PATTERN)
_TIME_ZONE = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_COUNTRY = re.compile(r"[A-Z]{2}")
# C0 controls but tab, line feed and carriage return; DEL; C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
MAX_ID_LENGTH = 128
MAX_TIME_ZONE_LENGTH = 64
MAX_LANGUAGE_LENGTH = 35

Kind = limits_pb2.StringKind
TEXT = limits_pb2.STRING_KIND_TEXT
ID = limits_pb2.STRING_KIND_ID
TIME_ZONE = limits_pb2.STRING_KIND_TIME_ZONE
LANGUAGE = limits_pb2.STRING_KIND_LANGUAGE
COUNTRY = limits_pb2.STRING_KIND_COUNTRY

# What each kind accepts, in the words of an error message and of the docs.
KIND_RULES = {
    TEXT: "text without control characters but tab, line feed and carriage return",
    ID: f"an id: 1 to 128 ASCII letters, digits or . _ : -, a letter or digit first ({ID_PATTERN})",
    TIME_ZONE: "a time zone name such as Africa/Nairobi: at most 64 ASCII letters, digits "
    "and _ + - in parts separated by /",
    LANGUAGE: "a BCP 47 language tag, for example es or es-MX",
    COUNTRY: "an ISO 3166-1 alpha-2 country code, for example MX",
}

# The most characters a string of each kind but text can have.
_KIND_LENGTHS = {
    ID: MAX_ID_LENGTH,
    TIME_ZONE: MAX_TIME_ZONE_LENGTH,
    LANGUAGE: MAX_LANGUAGE_LENGTH,
    COUNTRY: 2,
}
_TIMESTAMP = "google.protobuf.Timestamp"
_KIND_NAMES = {
    TEXT: "text",
    ID: "id",
    TIME_ZONE: "time zone",
    LANGUAGE: "language tag",
    COUNTRY: "country code",
}
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
_INTEGERS = (
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
)


class LimitError(ValueError):
    """A request field breaks its limit; the message is ``<field path>: <limit>``."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class LimitsMisconfigured(TypeError):
    """An annotation does not fit its field (max_items on a single value, kind on a number,
    min above max...): a mistake in the protos, found when the service starts."""


@dataclass(frozen=True)
class FieldRule:
    """The effective limits of one field (annotation over defaults)."""

    field: FieldDescriptor
    max_length: int
    max_items: int
    kind: limits_pb2.StringKind.ValueType
    min: float | None
    max: float | None
    max_nesting: int
    max_key_length: int
    annotated: bool

    @property
    def is_map(self) -> bool:
        return _is_map(self.field)


def _message_of(field: FieldDescriptor) -> Descriptor:
    """The message type of a message field."""
    assert field.message_type is not None, field.full_name
    return field.message_type


def _enum_of(field: FieldDescriptor) -> EnumDescriptor:
    """The enum type of an enum field."""
    assert field.enum_type is not None, field.full_name
    return field.enum_type


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.is_repeated
        and field.type == FieldDescriptor.TYPE_MESSAGE
        and bool(_message_of(field).GetOptions().map_entry)
    )


def _is_timestamp(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and _message_of(field).full_name == _TIMESTAMP


def _annotation(field: FieldDescriptor) -> limits_pb2.FieldLimits | None:
    options = field.GetOptions()
    if not options.HasExtension(limits_pb2.limits):
        return None
    found: limits_pb2.FieldLimits = options.Extensions[limits_pb2.limits]
    return found


def _value_type(field: FieldDescriptor) -> FieldDescriptor:
    """For a map, the descriptor of its values; otherwise the field itself."""
    if _is_map(field):
        value: FieldDescriptor = _message_of(field).fields_by_name["value"]
        return value
    return field


def _rule(field: FieldDescriptor) -> FieldRule:
    given = _annotation(field)
    value = _value_type(field)
    where = field.full_name
    if given is not None:
        problems = []
        is_string = value.type == FieldDescriptor.TYPE_STRING
        is_number = value.type in _FLOATS or value.type in _INTEGERS
        if given.max_items and not field.is_repeated:
            problems.append("max_items on a field that is not repeated")
        if given.max_key_length and not _is_map(field):
            problems.append("max_key_length on a field that is not a map")
        if given.max_length and value.type not in (
            FieldDescriptor.TYPE_STRING,
            FieldDescriptor.TYPE_BYTES,
        ):
            problems.append("max_length on a field that is neither a string nor bytes")
        if (given.kind != TEXT or given.max_nesting) and not is_string:
            problems.append("kind or max_nesting on a field that is not a string")
        if (given.HasField("min") or given.HasField("max")) and not is_number:
            problems.append("min or max on a field that is not a number")
        if given.HasField("min") and given.HasField("max") and given.min > given.max:
            problems.append("min above max")
        if problems:
            raise LimitsMisconfigured(f"limits of {where}: {'; '.join(problems)}")
    given = given or limits_pb2.FieldLimits()
    if value.type == FieldDescriptor.TYPE_BYTES:
        max_length = given.max_length or DEFAULT_MAX_BYTES
    elif given.kind == TEXT:
        max_length = given.max_length or DEFAULT_MAX_LENGTH
    else:  # a kind's own length bounds the string; an annotation may only lower it
        max_length = min(given.max_length or _KIND_LENGTHS[given.kind], _KIND_LENGTHS[given.kind])
    return FieldRule(
        field=field,
        max_length=max_length,
        max_items=given.max_items or DEFAULT_MAX_ITEMS,
        kind=given.kind,
        min=given.min if given.HasField("min") else None,
        max=given.max if given.HasField("max") else None,
        max_nesting=given.max_nesting,
        max_key_length=given.max_key_length or DEFAULT_MAX_KEY_LENGTH,
        annotated=_annotation(field) is not None,
    )


@cache
def rules(message_type: Descriptor) -> dict[str, FieldRule]:
    """The effective limits of each field of ``message_type`` (computed once per type);
    raises :class:`LimitsMisconfigured` when an annotation does not fit its field."""
    return {field.name: _rule(field) for field in message_type.fields}


def compile_message(message_type: Descriptor) -> None:
    """Computes the rules of ``message_type`` and of every message type it contains, so a
    misconfigured annotation stops the service at start-up, not on some later call."""
    for found in _message_types(message_type):
        rules(found)


def compile_service(full_name: str) -> None:
    """:func:`compile_message` for the request of every method of a gRPC service."""
    service = descriptor_pool.Default().FindServiceByName(full_name)
    for method in service.methods:
        compile_message(method.input_type)


def _message_types(root: Descriptor) -> Iterator[Descriptor]:
    seen: set[str] = set()
    pending = [root]
    while pending:
        current = pending.pop()
        if current.full_name in seen:
            continue
        seen.add(current.full_name)
        yield current
        for field in current.fields:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                pending.append(_message_of(field))


# --- the walk -------------------------------------------------------------------------------


def check_request(request: Message) -> None:
    """Drops ``request``'s unknown fields (a newer client's) and raises
    :class:`LimitError` at the first field that breaks its limit."""
    request.DiscardUnknownFields()
    _check_message(request, "", 0)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_message(message: Message, prefix: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise LimitError(prefix, f"at most {MAX_DEPTH} levels of nested messages")
    field_rules = rules(message.DESCRIPTOR)
    for field, value in message.ListFields():
        rule = field_rules[field.name]
        path = _join(prefix, field.name)
        if rule.is_map:
            _check_map(rule, value, path, depth)
        elif field.is_repeated:
            if len(value) > rule.max_items:
                raise LimitError(path, f"at most {rule.max_items} items (got {len(value)})")
            for index, item in enumerate(value):
                _check_value(rule, field, item, f"{path}[{index}]", depth)
        else:
            _check_value(rule, field, value, path, depth)


def _check_map(rule: FieldRule, entries: Any, path: str, depth: int) -> None:
    if len(entries) > rule.max_items:
        raise LimitError(path, f"at most {rule.max_items} entries (got {len(entries)})")
    key_field: FieldDescriptor = _message_of(rule.field).fields_by_name["key"]
    value_field = _value_type(rule.field)
    for key in entries:
        where = f"{path}[{_shown(key)}]"
        if key_field.type == FieldDescriptor.TYPE_STRING:
            if len(key) > rule.max_key_length:
                raise LimitError(path, f"keys of at most {rule.max_key_length} characters")
            _check_text(key, where)
        _check_value(rule, value_field, entries[key], where, depth)


def _shown(key: Any) -> str:
    """A map key as a path shows it: short and printable whatever it holds."""
    if isinstance(key, str):
        return ascii(key[:40])[1:-1] + ("…" if len(key) > 40 else "")
    return str(key)


def _check_value(
    rule: FieldRule, field: FieldDescriptor, value: Any, path: str, depth: int
) -> None:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        _check_string(rule, value, path)
    elif kind == FieldDescriptor.TYPE_BYTES:
        if len(value) > rule.max_length:
            raise LimitError(path, f"at most {rule.max_length} bytes (got {len(value)})")
    elif kind == FieldDescriptor.TYPE_MESSAGE:
        if _is_timestamp(field):
            _check_timestamp(value, path)
        else:
            _check_message(value, path, depth + 1)
    elif kind == FieldDescriptor.TYPE_ENUM:
        enum = _enum_of(field)
        if enum.values_by_number.get(value) is None:
            names = ", ".join(v.name for v in enum.values)
            raise LimitError(path, f"{value} is not a {enum.name} (one of {names})")
    elif kind in _FLOATS:
        if not math.isfinite(value):
            raise LimitError(path, f"must be a finite number (got {value})")
        _check_range(rule, value, path)
    elif kind in _INTEGERS:
        _check_range(rule, value, path)


def _check_range(rule: FieldRule, value: float, path: str) -> None:
    if rule.min is not None and value < rule.min:
        raise LimitError(path, f"at least {rule.min:g} (got {value:g})")
    if rule.max is not None and value > rule.max:
        raise LimitError(path, f"at most {rule.max:g} (got {value:g})")


def _check_timestamp(value: Any, path: str) -> None:
    if (
        not _TIMESTAMP_MIN_SECONDS <= value.seconds <= _TIMESTAMP_MAX_SECONDS
        or not 0 <= value.nanos <= 999_999_999
    ):
        raise LimitError(
            path,
            f"a time from {TIMESTAMP_MIN:%Y-%m-%dT%H:%M:%SZ} to {TIMESTAMP_MAX:%Y-%m-%dT%H:%M:%SZ}",
        )


def _check_string(rule: FieldRule, value: str, path: str) -> None:
    if len(value) > rule.max_length:
        if rule.kind in (TEXT, ID):
            raise LimitError(path, f"at most {rule.max_length} characters (got {len(value)})")
        raise LimitError(path, f"must be {KIND_RULES[rule.kind]}, got {_shown(value)!r}")
    if rule.kind == TEXT:
        _check_text(value, path)
    elif rule.kind == ID:
        if not _ID.fullmatch(value):
            raise LimitError(path, f"must be {KIND_RULES[ID]}, got {_shown(value)!r}")
    elif rule.kind == TIME_ZONE:
        # The shape only: whether the zone exists is the servicer's check (it loads it).
        if not _TIME_ZONE.fullmatch(value):
            raise LimitError(path, f"must be {KIND_RULES[TIME_ZONE]}, got {_shown(value)!r}")
    elif rule.kind == LANGUAGE:
        if not (len(value) <= MAX_LANGUAGE_LENGTH and _LANGUAGE.fullmatch(value)):
            raise LimitError(path, f"must be {KIND_RULES[LANGUAGE]}, got {_shown(value)!r}")
    elif rule.kind == COUNTRY and not _COUNTRY.fullmatch(value):
        raise LimitError(path, f"must be {KIND_RULES[COUNTRY]}, got {_shown(value)!r}")
    if rule.max_nesting:
        depth = nesting(value)
        if depth > rule.max_nesting:
            raise LimitError(path, f"at most {rule.max_nesting} levels of nested parentheses")


def _check_text(value: str, path: str) -> None:
    found = _CONTROL.search(value)
    if found is not None:
        raise LimitError(
            path,
            f"control character U+{ord(found.group()):04X} at position {found.start()} "
            "(only tab, line feed and carriage return are allowed)",
        )


def nesting(text: str) -> int:
    """The deepest level of parentheses in ``text``, outside double-quoted phrases."""
    deepest = depth = 0
    quoted = False
    for character in text:
        if character == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif character == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif character == ")":
            depth = max(0, depth - 1)
    return deepest


# --- the docs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Documented:
    """One field's limits, in words: what the docs list."""

    path: str
    limit: str


def describe(rule: FieldRule) -> str:
    """``rule`` in words, as the docs show it."""
    field = rule.field
    value = _value_type(field)
    parts: list[str] = []
    if _is_map(field):
        parts.append(f"at most {rule.max_items} entries, keys at most {rule.max_key_length} chars")
    elif field.is_repeated:
        parts.append(f"at most {rule.max_items} items")
    if value.type == FieldDescriptor.TYPE_STRING:
        if rule.kind == TEXT:
            parts.append(f"at most {rule.max_length} chars")
        else:
            kind = _KIND_NAMES[rule.kind]
            parts.append(kind.replace("_", " "))
            if rule.max_length < DEFAULT_MAX_LENGTH:
                parts.append(f"at most {rule.max_length} chars")
        if rule.max_nesting:
            parts.append(f"at most {rule.max_nesting} levels of parentheses")
    elif value.type == FieldDescriptor.TYPE_BYTES:
        parts.append(f"at most {rule.max_length} bytes")
    elif value.type in _FLOATS:
        parts.append("finite")
    elif value.type == FieldDescriptor.TYPE_ENUM:
        parts.append(f"a defined {_enum_of(value).name}")
    elif _is_timestamp(value):
        parts.append(f"a time from {TIMESTAMP_MIN:%Y-%m-%d} to {TIMESTAMP_MAX:%Y-%m-%d}")
    if rule.min is not None:
        parts.append(f"≥ {rule.min:g}")
    if rule.max is not None:
        parts.append(f"≤ {rule.max:g}")
    return ", ".join(parts)


def describe_message(message_type: Descriptor, prefix: str = "") -> Iterator[Documented]:
    """Every field path below ``message_type`` with its limits in words (messages are
    expanded; a message met again below itself is not)."""
    yield from _describe(message_type, prefix, ())


def _describe(
    message_type: Descriptor, prefix: str, parents: tuple[str, ...]
) -> Iterator[Documented]:
    for field in message_type.fields:
        rule = rules(message_type)[field.name]
        path = _join(prefix, field.name) + ("[]" if field.is_repeated else "")
        value = _value_type(field)
        nested = value.type == FieldDescriptor.TYPE_MESSAGE and not _is_timestamp(value)
        words = describe(rule)
        if words or not nested:
            yield Documented(path, words or "—")
        if nested and _message_of(value).full_name not in parents:
            yield from _describe(_message_of(value), path, (*parents, message_type.full_name))


def describe_service(full_name: str) -> Iterable[tuple[str, str, list[Documented]]]:
    """(method, request type, its documented fields) for every method of a service."""
    service = descriptor_pool.Default().FindServiceByName(full_name)
    for method in service.methods:
        yield method.name, method.input_type.full_name, list(describe_message(method.input_type))
