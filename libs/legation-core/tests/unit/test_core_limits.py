"""The request-limits walker itself: nesting depth, maps, unknown fields, annotations that do
not fit their field, time zones, timestamps, parentheses (every real request type is covered by
tests/test_request_limits.py)."""

from __future__ import annotations

import itertools

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, struct_pb2
from google.protobuf.message_factory import GetMessageClass

from legation.events.v1 import evaluate_pb2, publish_pb2
from legation.options.v1 import limits_pb2
from legation.publisher.v1.publisher_service_pb2 import ListPostsRequest, ScheduleRequest
from legation_core.limits import (
    MAX_DEPTH,
    LimitError,
    LimitsMisconfigured,
    check_request,
    compile_message,
    nesting,
)

_names = itertools.count()


def nested_struct(levels: int) -> struct_pb2.Struct:
    """A Struct ``levels`` Structs deep: {"a": {"a": ... {"leaf": 1}}}."""
    inner = struct_pb2.Struct()
    inner.fields["leaf"].number_value = 1
    for _ in range(levels - 1):
        outer = struct_pb2.Struct()
        outer.fields["a"].struct_value.CopyFrom(inner)
        inner = outer
    return inner


def test_messages_nested_deeper_than_the_limit_are_refused() -> None:
    # Each Struct level is two message levels (the map's Value, then the Struct).
    check_request(nested_struct(MAX_DEPTH // 2))
    with pytest.raises(LimitError) as raised:
        check_request(nested_struct(MAX_DEPTH))
    assert str(raised.value).endswith(f": at most {MAX_DEPTH} levels of nested messages")
    assert str(raised.value).startswith("fields[a].struct_value.fields[a].struct_value")


def test_numbers_inside_maps_must_be_finite() -> None:
    struct = struct_pb2.Struct()
    struct.fields["score"].number_value = float("nan")
    with pytest.raises(LimitError, match=r"^fields\[score\]\.number_value: must be a finite"):
        check_request(struct)


def test_map_keys_are_text_and_shown_safely() -> None:
    struct = struct_pb2.Struct()
    struct.fields["a\x00b"].bool_value = True
    with pytest.raises(LimitError) as raised:
        check_request(struct)
    assert str(raised.value).startswith("fields[a\\x00b]: control character U+0000")


def test_unknown_fields_are_dropped() -> None:
    known = publish_pb2.Publication(post_id="p-1").SerializeToString()
    unknown = b"\xa2\x06\x03abc"  # field 100, length-delimited "abc"
    request = publish_pb2.Publication.FromString(known + unknown)
    assert request.SerializeToString() != known
    check_request(request)
    assert request.SerializeToString() == known


def test_text_refuses_control_characters_but_tab_and_line_breaks() -> None:
    check_request(publish_pb2.Publication(title="a\tb\r\nc — é 中文 \u202e"))
    with pytest.raises(LimitError, match=r"^title: control character U\+001B at position 1"):
        check_request(publish_pb2.Publication(title="a\x1b[31m"))


def bad_message(limits: limits_pb2.FieldLimits, field_type: int, repeated: bool = False) -> None:
    """Adds a message with one annotated field to the default pool and compiles it."""
    name = f"Bad{next(_names)}"
    file = descriptor_pb2.FileDescriptorProto(
        name=f"legation/test/limits_{name}.proto",
        package="legation.test.limits",
        syntax="proto3",
        dependency=["legation/options/v1/limits.proto"],
    )
    message = file.message_type.add(name=name)
    field = message.field.add(
        name="value",
        number=1,
        type=field_type,
        label=(
            descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
            if repeated
            else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
        ),
    )
    field.options.Extensions[limits_pb2.limits].CopyFrom(limits)
    descriptor_pool.Default().Add(file)
    found = descriptor_pool.Default().FindMessageTypeByName(f"legation.test.limits.{name}")
    GetMessageClass(found)
    compile_message(found)


@pytest.mark.parametrize(
    ("limits", "field_type", "problem"),
    [
        (
            limits_pb2.FieldLimits(max_items=3),
            descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            "max_items",
        ),
        (
            limits_pb2.FieldLimits(max_length=3),
            descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
            "max_length",
        ),
        (
            limits_pb2.FieldLimits(kind=limits_pb2.STRING_KIND_ID),
            descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
            "kind",
        ),
        (
            limits_pb2.FieldLimits(max=3),
            descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            "min or max",
        ),
        (
            limits_pb2.FieldLimits(min=5, max=3),
            descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
            "min above max",
        ),
    ],
)
def test_an_annotation_that_does_not_fit_its_field_is_found_when_compiled(
    limits: limits_pb2.FieldLimits, field_type: int, problem: str
) -> None:
    with pytest.raises(LimitsMisconfigured, match=problem):
        bad_message(limits, field_type)


def test_a_fitting_annotation_compiles() -> None:
    bad_message(
        limits_pb2.FieldLimits(max_items=3, max_length=5),
        descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        repeated=True,
    )


@pytest.mark.parametrize(
    "name", ["UTC", "Africa/Nairobi", "America/Argentina/Buenos_Aires", "Etc/GMT+3", "Mars/Olympus"]
)
def test_time_zone_names_of_the_right_shape_pass(name: str) -> None:
    check_request(ScheduleRequest(time_zone=name))  # whether it exists: the servicer's check


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "/etc/localtime", "Europe/" + "x" * 10_000, "Africa/Nairobi\x00", "A//B"],
)
def test_time_zone_names_of_another_shape_are_refused_without_a_path(name: str) -> None:
    with pytest.raises(LimitError) as raised:
        check_request(ScheduleRequest(time_zone=name))
    message = str(raised.value)
    assert message.startswith("time_zone: must be a time zone name such as Africa/Nairobi")
    assert len(message) < 200 and "/usr" not in message and "zoneinfo" not in message


def test_nesting_counts_parentheses_outside_phrases() -> None:
    assert nesting("a AND (b OR (c))") == 2
    assert nesting('"((((" AND (x)') == 1
    assert nesting(")))(((") == 3
    assert nesting("") == 0


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (-62_135_596_801, 0),  # 0000-12-31T23:59:59Z: outside what Timestamp can represent
        (253_402_300_800, 0),  # 10000-01-01: the fuzz suite's UNKNOWN on ListPosts.from
        (-1, 0),  # 1969-12-31T23:59:59Z: before the documented range
        (7_258_118_400, 0),  # 2200-01-01: after it
        (0, -1),
        (0, 1_000_000_000),
    ],
)
def test_timestamps_outside_the_range_are_refused_naming_the_field(
    seconds: int, nanos: int
) -> None:
    # A servicer converting such a Timestamp (ToDatetime) raised, answered as UNKNOWN.
    request = ListPostsRequest()
    getattr(request, "from").seconds = seconds  # "from" is a keyword
    getattr(request, "from").nanos = nanos
    with pytest.raises(LimitError) as refused:
        check_request(request)
    assert str(refused.value) == "from: a time from 1970-01-01T00:00:00Z to 2199-12-31T23:59:59Z"
    campaign = evaluate_pb2.Campaign(campaign_id="c1")
    campaign.objectives.add(objective_id="o1")
    campaign.ends_at.seconds, campaign.ends_at.nanos = seconds, nanos
    with pytest.raises(LimitError, match=r"^ends_at: a time from 1970"):
        check_request(campaign)


def test_timestamps_at_the_ends_of_the_range_pass() -> None:
    for seconds, nanos in ((0, 0), (7_258_118_399, 999_999_999)):
        request = ListPostsRequest()
        getattr(request, "from").seconds = seconds
        getattr(request, "from").nanos = nanos
        check_request(request)
