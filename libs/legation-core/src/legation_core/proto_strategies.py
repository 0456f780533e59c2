"""Hypothesis strategies for any protobuf message, built from its descriptor alone.

:func:`messages` turns a message descriptor (a gRPC request, an event payload, the
Envelope) into a strategy of hostile instances: every field independently set or not;
strings plain, empty, huge (up to 3 MB), with NUL, RTL overrides, combining marks, paths,
URLs of this machine and the cloud metadata address; integers at and beyond every edge;
floats with NaN, infinities and subnormals; unknown enum numbers; timestamps before year 1
and after 9999; repeated fields with a few items or up to 100,000 distinct ones; maps;
nested messages down to ``depth`` levels; one member of each oneof.

``hints`` maps a field name to a strategy of values that exist in the service under test
(the ids the harness seeded), so requests reach past "not found" into the real work; the
hostile values are still drawn for that field as often.

A testing aid beside :mod:`legation_core.testing`, shared by the fuzz suite (tests/fuzz) and
legation-contracts' tests (the JSON form of every event type against MessageToDict); it
needs Hypothesis, which the development install brings and the services never import.

Huge values are built by repetition (``Huge``), never by Hypothesis drawing millions of
characters, and every drawn message is shown by :func:`describe` with long strings
abbreviated, so a failing example prints in a few lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from google.protobuf import text_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

T = TypeVar("T")
Hints = Mapping[str, st.SearchStrategy[Any]]

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)
# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)
# Sizes of the huge strings and of the long repeated fields.
HUGE_SIZES = (5_000, 70_000, 1_100_000, 3_000_000)
MANY_ITEMS = (101, 1_001, 20_000, 100_000)

# Strings that have broken parsers, logs, file systems and URL fetchers before. Local
# devices and FIFOs (/dev/zero) are left out on purpose: the services under test run inside
# this pytest process, and an unbounded read of one would take the test run down with it.
SPECIAL_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "\t\n\r",
    "\x00",
    "a\x00b",
    "\u202eevil\u202c",
    "\u200f\u200e\u2066x\u2069",
    "\ufeffbom",
    "e\u0301" * 50,
    "\U0010ffff\U0001f600\U0001f3f3\ufe0f\u200d\U0001f308",
    "\u0130\u0131\u017f\u212a",  # case folding changes their length
    "../../../../../../etc/passwd",
    "/etc/passwd",
    "file:///etc/passwd",
    "file://localhost/etc/hostname",
    "/proc/self/environ",
    "http://127.0.0.1:1/feed.xml",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:1/",
    "https://localhost:0/",
    "gopher://127.0.0.1:6379/_INFO",
    "mastodon:http://127.0.0.1:1/tags/x",
    "bluesky:http://127.0.0.1:1/search?q=x",
    "reddit:http://127.0.0.1:1/r/x/new",
    "webhook:fuzz",
    "webhook:",
    "%s%s%s%n%x",
    "{0}{1}{author}{link}{officer}",
    "' OR 1=1 --",
    '"; DROP TABLE x; --',
    "<script>alert(1)</script>",
    "]]><!--",
    '{"a":',
    "(" * 300 + "x" + ")" * 300,
    '"' * 99,
    "NOT NOT NOT x",
    "a NEAR/99999999999999999999 b",
    "NaN",
    "-Infinity",
    "1e309",
    "-1",
    "9" * 400,
    "x\r\nX-Injected: 1",
    "Europe/Paris",
    "Mars/Olympus_Mons",
    "en",
    "zz-Zzzz-ZZ-x-private-tag-that-is-long",
    "2026-13-45T25:61:61Z",
    "0000-00-00",
    "*",
    "?",
    "\\",
    "..",
)


class Huge(str):
    """A string made by repetition whose repr names its size instead of printing it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self):,} chars of {self[:1]!r}>"


def weighted(*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """One of ``choices`` drawn with the given relative weights; shrinks towards the
    first, which should be the plainest."""
    table: list[st.SearchStrategy[T]] = []
    for weight, strategy in choices:
        table.extend([strategy] * weight)
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


def huge_text() -> st.SearchStrategy[str]:
    """A string of one character repeated thousands to millions of times."""
    return st.builds(
        lambda unit, size: Huge(unit * size),
        st.sampled_from(["a", "\x00", "é", "\U0001f600", "\u202e", "(", " ", "/"]),
        st.sampled_from(HUGE_SIZES),
    )


def hostile_text(*, huge: bool = True) -> st.SearchStrategy[str]:
    """Any text a caller could send, the interesting kinds often; ``huge`` adds strings of
    thousands to millions of characters."""
    choices = [
        (4, st.text(max_size=40)),
        (3, st.sampled_from(SPECIAL_STRINGS)),
        (1, st.text(st.characters(codec="utf-8"), max_size=300)),
        (1, st.builds("".join, st.lists(st.sampled_from(SPECIAL_STRINGS), max_size=6))),
    ]
    return weighted(*choices, (1, huge_text())) if huge else weighted(*choices)


def hostile_bytes(*, huge: bool = True) -> st.SearchStrategy[bytes]:
    small = st.binary(max_size=64)
    if not huge:
        return small
    return weighted((4, small), (1, st.sampled_from([b"\x00" * 70_000, b"\xff" * 1_100_000])))


def _integers(bounds: tuple[int, int]) -> st.SearchStrategy[int]:
    low, high = bounds
    return weighted(
        (2, st.integers(max(low, -1000), min(high, 1000))),
        (1, st.sampled_from(sorted({low, low + 1, -1 if low < 0 else 0, 0, 1, high - 1, high}))),
        (1, st.integers(low, high)),
    )


def hostile_floats(width: int = 64) -> st.SearchStrategy[float]:
    edges = [0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 5e-324, 1e-7]
    if width == 32:
        edges = [0.0, -0.0, float("nan"), float("inf"), -float("inf"), 3.4e38, 1e-45]
    return weighted(
        (2, st.floats(-1e6, 1e6, width=width)),  # type: ignore[arg-type]
        (1, st.sampled_from(edges)),
        (1, st.floats(width=width)),  # type: ignore[arg-type]
    )


def enum_numbers(enum: EnumDescriptor) -> st.SearchStrategy[int]:
    """A defined value mostly, else any int32 (proto3 enums are open: unknown numbers
    travel as they are)."""
    defined = [value.number for value in enum.values]
    if getattr(enum, "is_closed", False):
        return st.sampled_from(defined)
    return weighted((3, st.sampled_from(defined)), (1, _integers(INT32)))


def timestamp_fields() -> st.SearchStrategy[dict[str, int]]:
    """Seconds and nanos of a Timestamp or Duration: plausible, at the edges, or outside
    the valid range altogether."""
    low, high = TIMESTAMP_SECONDS
    seconds = weighted(
        (3, st.integers(1_600_000_000, 1_900_000_000)),
        (1, st.sampled_from([0, -1, low, low - 1, high, high + 1, INT64[0], INT64[1]])),
        (1, st.integers(*INT64)),
    )
    nanos = weighted(
        (3, st.just(0)), (1, st.integers(0, 999_999_999)), (1, st.sampled_from([-1, 10**9]))
    )
    return st.fixed_dictionaries({"seconds": seconds, "nanos": nanos})


_SCALARS: dict[int, Callable[[], st.SearchStrategy[Any]]] = {
    FieldDescriptor.TYPE_BOOL: st.booleans,
    FieldDescriptor.TYPE_DOUBLE: hostile_floats,
    FieldDescriptor.TYPE_FLOAT: lambda: hostile_floats(32),
    FieldDescriptor.TYPE_INT32: lambda: _integers(INT32),
    FieldDescriptor.TYPE_SINT32: lambda: _integers(INT32),
    FieldDescriptor.TYPE_SFIXED32: lambda: _integers(INT32),
    FieldDescriptor.TYPE_INT64: lambda: _integers(INT64),
    FieldDescriptor.TYPE_SINT64: lambda: _integers(INT64),
    FieldDescriptor.TYPE_SFIXED64: lambda: _integers(INT64),
    FieldDescriptor.TYPE_UINT32: lambda: _integers(UINT32),
    FieldDescriptor.TYPE_FIXED32: lambda: _integers(UINT32),
    FieldDescriptor.TYPE_UINT64: lambda: _integers(UINT64),
    FieldDescriptor.TYPE_FIXED64: lambda: _integers(UINT64),
}


class _Builder:
    """Builds (and caches) the strategy of each message type at each remaining depth."""

    def __init__(self, hints: Hints, depth: int) -> None:
        self.hints = hints
        # Huge strings and long lists only near the top: a nested list of messages each
        # holding megabytes would take this process's memory, not the server's.
        self.top = depth
        self.cache: dict[tuple[str, int], st.SearchStrategy[Message]] = {}

    def message(self, descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
        key = (descriptor.full_name, depth)
        if key not in self.cache:
            self.cache[key] = st.deferred(lambda: self._message(descriptor, depth))
        return self.cache[key]

    def mutant(self, seed: Message, depth: int) -> st.SearchStrategy[Message]:
        """``seed`` with one to three of its fields (or of its nested messages' fields)
        replaced by drawn values."""
        descriptor = cast(Descriptor, seed.DESCRIPTOR)
        fields: list[FieldDescriptor] = list(descriptor.fields)

        @st.composite
        def mutate(draw: st.DrawFn) -> Message:
            result = type(seed)()
            result.CopyFrom(seed)
            for _ in range(draw(st.integers(1, 3))):
                field = draw(st.sampled_from(fields))
                current = getattr(result, field.name)
                nested = field.type == FieldDescriptor.TYPE_MESSAGE and not _is_map(field)
                single = nested and not field.is_repeated and result.HasField(field.name)
                if single and draw(st.booleans()):
                    current.CopyFrom(draw(self.mutant(current, depth - 1)))
                    continue
                if nested and field.is_repeated and len(current) and draw(st.booleans()):
                    item = current[draw(st.integers(0, len(current) - 1))]
                    item.CopyFrom(draw(self.mutant(item, depth - 1)))
                    continue
                value = draw(self._field(field, descriptor, depth))
                result.ClearField(field.name)
                _set(result, field, value)
            return result

        return mutate()

    def _message(self, descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
        cls = GetMessageClass(descriptor)
        if descriptor.full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
            return timestamp_fields().map(lambda fields: cls(**fields))
        if descriptor.full_name == "google.protobuf.FieldMask":
            return st.just(cls())  # a mask's paths come from its parent (see _field)
        if depth <= 0:
            return st.just(cls())
        optional: dict[str, st.SearchStrategy[Any]] = {}
        for field in descriptor.fields:
            oneof = field.containing_oneof
            if oneof is not None and not _synthetic(field):
                continue
            optional[field.name] = self._field(field, descriptor, depth).map(_setter(field))
        for oneof in descriptor.oneofs:
            members = [f for f in oneof.fields if not _synthetic(f)]
            if members:
                optional[oneof.name] = st.one_of(
                    [self._field(f, descriptor, depth).map(_setter(f)) for f in members]
                )
        return st.fixed_dictionaries({}, optional=optional).map(
            lambda drawn: _assemble(cls, [pair for pairs in drawn.values() for pair in pairs])
        )

    def _field(
        self, field: FieldDescriptor, parent: Descriptor, depth: int
    ) -> st.SearchStrategy[Any]:
        if _is_map(field):
            entry = _message_type(field)
            keys = self._single(entry.fields_by_name["key"], entry, depth)
            values = self._single(entry.fields_by_name["value"], entry, depth - 1)
            few = st.dictionaries(keys, values, max_size=4)
            if entry.fields_by_name["key"].type != FieldDescriptor.TYPE_STRING:
                return few  # many keys are made as strings (_many_keys)
            return weighted(
                (4, few), (1, st.builds(_many_keys, values, st.sampled_from(MANY_ITEMS[:2])))
            )
        single = self._single(field, parent, depth)
        if not field.is_repeated:
            return single
        if depth < self.top:
            return st.lists(single, max_size=3)
        return weighted(
            (4, st.lists(single, max_size=4)),
            (1, st.builds(_many, single, st.sampled_from(MANY_ITEMS))),
        )

    def _single(
        self, field: FieldDescriptor, parent: Descriptor, depth: int
    ) -> st.SearchStrategy[Any]:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            message_type = _message_type(field)
            if message_type.full_name == "google.protobuf.FieldMask":
                names = [f.name for f in parent.fields]
                paths = st.lists(weighted((3, st.sampled_from(names)), (1, hostile_text())))
                cls = GetMessageClass(message_type)
                return paths.map(lambda p: cls(paths=p))
            return self.message(message_type, depth - 1)
        if field.type == FieldDescriptor.TYPE_ENUM:
            assert field.enum_type is not None
            return enum_numbers(field.enum_type)
        generic: st.SearchStrategy[Any]
        if field.type == FieldDescriptor.TYPE_STRING:
            generic = hostile_text(huge=depth >= self.top - 1)
        elif field.type == FieldDescriptor.TYPE_BYTES:
            generic = hostile_bytes(huge=depth >= self.top - 1)
        else:
            generic = _SCALARS[field.type]()
        hint = self.hints.get(field.name)
        if hint is None and field.name.endswith("s"):
            hint = self.hints.get(field.name[:-1])  # issue_ids takes the issue_id hint
        return generic if hint is None else weighted((1, hint), (1, generic))


def _setter(field: FieldDescriptor) -> Callable[[Any], list[tuple[FieldDescriptor, Any]]]:
    """Pairs a drawn value with its field (what _assemble sets)."""
    return lambda value: [(field, value)]


def _message_type(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None
    return field.message_type


def _synthetic(field: FieldDescriptor) -> bool:
    """True for the oneof protoc makes of a proto3 ``optional`` field."""
    oneof = field.containing_oneof
    return oneof is not None and len(oneof.fields) == 1 and oneof.name == f"_{field.name}"


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.is_repeated
        and field.type == FieldDescriptor.TYPE_MESSAGE
        and bool(_message_type(field).GetOptions().map_entry)
    )


# What a long list or a many-keyed map may hold in all: already past gRPC's default 4 MiB
# request limit (the services keep it); a request of gigabytes (1,001 keys of a 3 MB value)
# would measure the fuzzer's own memory, not the service's.
MANY_BYTES = 4_000_000


def _fitting(item: Any, count: int) -> int:
    """How many of ``item`` (at most ``count``) fit in MANY_BYTES."""
    if isinstance(item, Message):
        return min(count, MANY_BYTES // max(1, item.ByteSize()))
    if isinstance(item, str | bytes):
        return min(count, MANY_BYTES // max(1, len(item)))
    return count


def _many(item: Any, count: int) -> list[Any]:
    """``count`` items like ``item`` (at most ~4 MB of them); strings are made distinct,
    so a quadratic de-duplication shows."""
    if isinstance(item, str):
        return [f"{item[:40]}{n}" for n in range(count)]
    return [item] * _fitting(item, count)


def _many_keys(value: Any, count: int) -> dict[str, Any]:
    """``count`` distinct keys, each with ``value`` (at most ~4 MB of them, as _many)."""
    return {f"k{n}": value for n in range(max(1, _fitting(value, count)))}


def _assemble(cls: Callable[[], Message], pairs: Sequence[tuple[FieldDescriptor, Any]]) -> Message:
    message = cls()
    for field, value in pairs:
        _set(message, field, value)
    return message


def _set(message: Message, field: FieldDescriptor, value: Any) -> None:
    """Sets (or adds to) ``field`` of ``message`` from a drawn value."""
    target = getattr(message, field.name)
    if _is_map(field):
        for key, item in value.items():
            if isinstance(item, Message):
                target[key].CopyFrom(item)
            else:
                target[key] = item
    elif field.is_repeated:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value:
                target.add().CopyFrom(item)
        else:
            target.extend(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        target.CopyFrom(value)
    else:
        setattr(message, field.name, value)


def messages(
    descriptor: Descriptor,
    *,
    hints: Hints | None = None,
    depth: int = 4,
    seeds: Sequence[Message] = (),
    huge: bool = True,
) -> st.SearchStrategy[Message]:
    """Hostile instances of the message ``descriptor`` describes (see the module doc);
    without ``huge``, no huge strings or bytes and lists of a few items (a type with dozens
    of repeated fields would otherwise take gigabytes a draw).

    With ``seeds`` (valid instances, such as requests the service accepted), two draws in
    three are a seed with one to three fields replaced by hostile values, at any depth: a
    request that passes most checks and carries one bad value."""
    # Huge values are drawn only within two levels of the builder's top: a top two levels
    # above ``depth`` never reaches them.
    builder = _Builder(hints or {}, depth if huge else depth + 2)
    generic = builder.message(descriptor, depth)
    if not seeds:
        return generic
    mutants = st.sampled_from(list(seeds)).flatmap(lambda seed: builder.mutant(seed, depth))
    return weighted((1, generic), (2, mutants))


def strings_in(message: Message) -> list[str]:
    """Every string value in ``message`` (nested messages and map keys too): what an error
    message may legitimately repeat back to its caller."""
    found: list[str] = []
    for field, value in message.ListFields():
        if _is_map(field):
            values = [*value.keys(), *value.values()]
        else:
            values = value if field.is_repeated else [value]
        for item in values:
            if isinstance(item, Message):
                found.extend(strings_in(item))
            elif isinstance(item, str):
                found.append(item)
    return found


def describe(message: Message, limit: int = 60) -> str:
    """``message`` in text format on one line, long strings and long lists shortened."""
    shown = type(message)()
    shown.CopyFrom(message)
    _shorten(shown, limit)
    text = text_format.MessageToString(shown, as_one_line=True)
    if len(text) > 2000:
        text = f"{text[:2000]}...({len(text):,} chars)"
    return f"{message.DESCRIPTOR.name}({text})"


def _shorten(message: Message, limit: int) -> None:
    for field, value in message.ListFields():
        if _is_map(field):
            if len(value) > 5:
                keys = list(value)[5:]
                for key in keys:
                    del value[key]
            continue
        if field.is_repeated:
            if len(value) > 5:
                count = len(value)
                del value[5:]
                if field.type == FieldDescriptor.TYPE_STRING:
                    value.append(f"...{count - 5:,} more")
            items = list(value)
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in items:
                    _shorten(item, limit)
            elif field.type == FieldDescriptor.TYPE_STRING:
                value[:] = [_short(item, limit) for item in items]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            _shorten(value, limit)
        elif field.type == FieldDescriptor.TYPE_STRING:
            setattr(message, field.name, _short(value, limit))


def _short(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text):,} chars)"
