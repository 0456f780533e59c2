"""The request limits of every gRPC request of every service, generated from the
descriptors: for each field (nested ones too), a value at its limit passes and one beyond
is refused naming that field; a request with every field filled passes; the limits doc is
up to date."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

import gen_limits_doc as tool
from legation_core import limits
from legation_core.limits import (
    COUNTRY,
    ID,
    LANGUAGE,
    TIME_ZONE,
    FieldRule,
    LimitError,
    check_request,
)
from legation_engager.adapters.policy import POLICY as ENGAGER
from legation_evaluator.adapters.policy import POLICY as EVALUATOR
from legation_listener.adapters.policy import POLICY as LISTENER
from legation_publisher.adapters.policy import POLICY as PUBLISHER

SERVICES = [policy.service for policy in (LISTENER, PUBLISHER, ENGAGER, EVALUATOR)]
ROOT = Path(__file__).resolve().parent.parent
TIMESTAMP = "google.protobuf.Timestamp"
# Fields below this many levels are not expanded (none of our requests nests deeper).
EXPAND_DEPTH = 6

Setter = Callable[[Message, FieldDescriptor], None]


def request_types() -> Iterator[tuple[str, Descriptor]]:
    pool = descriptor_pool.Default()
    for service in SERVICES:
        for method in pool.FindServiceByName(service).methods:
            yield f"{method.containing_service.name}.{method.name}", method.input_type


def message_of(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None
    return field.message_type


def is_map(field: FieldDescriptor) -> bool:
    return (
        field.is_repeated
        and field.type == FieldDescriptor.TYPE_MESSAGE
        and bool(message_of(field).GetOptions().map_entry)
    )


def is_timestamp(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and message_of(field).full_name == TIMESTAMP


def chains(message: Descriptor, depth: int = 0) -> Iterator[list[FieldDescriptor]]:
    """Every field path below ``message``, as the chain of field descriptors."""
    for field in message.fields:
        yield [field]
        if (
            field.type == FieldDescriptor.TYPE_MESSAGE
            and not is_map(field)
            and not is_timestamp(field)
            and depth < EXPAND_DEPTH
        ):
            for rest in chains(message_of(field), depth + 1):
                yield [field, *rest]


@dataclass(frozen=True)
class Case:
    """One field of one request type: how to reach it, and its path in error messages."""

    name: str
    request_type: Descriptor
    chain: list[FieldDescriptor]

    @property
    def field(self) -> FieldDescriptor:
        return self.chain[-1]

    @property
    def rule(self) -> FieldRule:
        return limits.rules(self.field.containing_type)[self.field.name]

    def request(self) -> tuple[Message, Message, str]:
        """A fresh request, the message holding the field, and the field's path."""
        request: Message = GetMessageClass(self.request_type)()
        target = request
        parts: list[str] = []
        for field in self.chain[:-1]:
            if field.is_repeated:
                target = getattr(target, field.name).add()
                parts.append(f"{field.name}[0]")
            else:
                target = getattr(target, field.name)
                parts.append(field.name)
        parts.append(self.field.name)
        return request, target, ".".join(parts)


CASES = [
    Case(f"{name}:{'.'.join(f.name for f in chain)}", request_type, chain)
    for name, request_type in request_types()
    for chain in chains(request_type)
]


# --- values ---------------------------------------------------------------------------------


def valid_string(rule: FieldRule, length: int = 2) -> str:
    """A valid string of the rule's kind (of ``length`` characters where it is free text)."""
    if rule.kind == ID:
        return "i" * min(length, 128)
    if rule.kind == TIME_ZONE:
        return "Africa/Nairobi"
    if rule.kind == LANGUAGE:
        return "es-MX"
    if rule.kind == COUNTRY:
        return "MX"
    return "é" * length


def valid_scalar(field: FieldDescriptor, rule: FieldRule) -> Any:
    if field.type == FieldDescriptor.TYPE_STRING:
        return valid_string(rule)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return b"ok"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return field.enum_type.values[-1].number
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rule.max if rule.max is not None else 1.5
    return int(rule.max) if rule.max is not None else 1


def fill(message: Message, depth: int = 0) -> None:
    """Sets every field of ``message`` (one item per list) to a valid value."""
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    rules = limits.rules(descriptor)
    for field in descriptor.fields:
        rule = rules[field.name]
        value = getattr(message, field.name)
        if is_map(field):
            value_field = message_of(field).fields_by_name["value"]
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                fill(value["k"], depth + 1)
            else:
                value["k"] = valid_scalar(value_field, rule)
        elif is_timestamp(field):
            target = value.add() if field.is_repeated else value
            target.FromJsonString("2026-11-20T09:00:00Z")
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth < EXPAND_DEPTH:
                fill(value.add() if field.is_repeated else value, depth + 1)
        elif field.is_repeated:
            value.append(valid_scalar(field, rule))
        elif not field.containing_oneof or not message.WhichOneof(field.containing_oneof.name):
            setattr(message, field.name, valid_scalar(field, rule))


def set_value(target: Message, field: FieldDescriptor, value: Any) -> None:
    if field.is_repeated:
        getattr(target, field.name).append(value)
    else:
        setattr(target, field.name, value)


def refused(request: Message) -> str:
    with pytest.raises(LimitError) as raised:
        check_request(request)
    return str(raised.value)


# --- the tests --------------------------------------------------------------------------------


def test_every_service_has_requests_with_fields() -> None:
    assert {name.split(".")[0] for name, _ in request_types()} == {
        "ListenerService",
        "PublisherService",
        "EngagerService",
        "EvaluatorService",
    }
    assert len(CASES) > 250


@pytest.mark.parametrize("request_type", [t for _, t in request_types()], ids=lambda t: t.name)
def test_a_request_with_every_field_filled_passes(request_type: Descriptor) -> None:
    request = GetMessageClass(request_type)()
    fill(request)
    check_request(request)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_field_is_refused_beyond_its_limit_naming_it(case: Case) -> None:
    field, rule = case.field, case.rule
    if is_map(field):
        request, target, path = case.request()
        entries = getattr(target, field.name)
        value_field = message_of(field).fields_by_name["value"]
        for number in range(rule.max_items):
            key = f"k{number}"
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                entries[key].SetInParent()
            else:
                entries[key] = valid_scalar(value_field, rule)
        check_request(request)  # at the limit
        entries["one-more"] = entries["k0"]
        assert (
            refused(request)
            == f"{path}: at most {rule.max_items} entries (got {rule.max_items + 1})"
        )
        request, target, path = case.request()
        key = "k" * (rule.max_key_length + 1)
        entries = getattr(target, field.name)
        if value_field.type == FieldDescriptor.TYPE_STRING:
            entries[key] = "v"
            assert refused(request).startswith(f"{path}: keys of at most {rule.max_key_length}")
            request, target, path = case.request()
            getattr(target, field.name)["k"] = "v" * (rule.max_length + 1)
            assert refused(request).startswith(f"{path}[k]: at most {rule.max_length} characters")
        return
    if field.is_repeated:
        request, target, path = case.request()
        items = getattr(target, field.name)
        for _ in range(rule.max_items):
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                items.add()
            else:
                items.append(valid_scalar(field, rule))
        check_request(request)  # at the limit
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            items.add()
        else:
            items.append(valid_scalar(field, rule))
        assert refused(request) == (
            f"{path}: at most {rule.max_items} items (got {rule.max_items + 1})"
        )
    item = "[0]" if field.is_repeated else ""
    request, target, path = case.request()
    if is_timestamp(field):
        stamp = getattr(target, field.name)
        stamp = stamp.add() if field.is_repeated else stamp
        stamp.seconds = 10**12  # year 33658
        assert refused(request).startswith(f"{path}{item}: a time from 1970-01-01T00:00:00Z")
        request, target, path = case.request()
        stamp = getattr(target, field.name)
        stamp = stamp.add() if field.is_repeated else stamp
        stamp.FromJsonString("2199-12-31T23:59:59Z")
        check_request(request)
    elif field.type == FieldDescriptor.TYPE_STRING:
        if rule.kind in (limits.TEXT, ID):
            at_limit = valid_string(rule, rule.max_length)
            set_value(target, field, at_limit)
            check_request(request)
            request, target, path = case.request()
            set_value(target, field, at_limit + at_limit[0])
            assert refused(request).startswith(
                f"{path}{item}: at most {rule.max_length} characters"
            )
        request, target, path = case.request()
        bad = {
            limits.TEXT: "a\x00b",
            ID: "issue\u202eid",
            TIME_ZONE: "Europe/" + "x" * 10_000,
            LANGUAGE: "en us",
            COUNTRY: "Kenya",
        }[rule.kind]
        set_value(target, field, bad)
        message = refused(request)
        assert message.startswith(f"{path}{item}: "), message
        assert "/" not in message.removeprefix(path) or rule.kind == TIME_ZONE
        assert len(message) < 300
        if rule.max_nesting:
            request, target, path = case.request()
            set_value(target, field, "(" * (rule.max_nesting + 1) + "a" + ")" * 30)
            assert refused(request) == (
                f"{path}{item}: at most {rule.max_nesting} levels of nested parentheses"
            )
    elif field.type == FieldDescriptor.TYPE_BYTES:
        set_value(target, field, b"x" * (rule.max_length + 1))
        assert refused(request).startswith(f"{path}{item}: at most {rule.max_length} bytes")
    elif field.type == FieldDescriptor.TYPE_ENUM:
        set_value(target, field, 999)
        assert refused(request).startswith(f"{path}{item}: 999 is not a ")
    elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        for bad_number in (float("nan"), float("inf"), float("-inf")):
            request, target, path = case.request()
            set_value(target, field, bad_number)
            assert refused(request).startswith(f"{path}{item}: must be a finite number")
    if rule.max is not None:
        request, target, path = case.request()
        set_value(target, field, type(valid_scalar(field, rule))(rule.max + 1))
        assert refused(request).startswith(f"{path}{item}: at most {rule.max:g}")


def test_the_limits_doc_is_up_to_date() -> None:
    assert tool.DOC.read_text(encoding="utf-8") == tool.render(), "stale: run make limits-doc"
