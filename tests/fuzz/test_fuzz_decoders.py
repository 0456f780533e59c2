"""Every topic's decoder (legation_core.codec, the first step of every consumer): random
bytes, the catalog's example envelope mutated byte-wise or field-wise, and envelopes
generated from the descriptors either decode into an Envelope or raise InvalidEvent (which
sends the record to the DLQ); never another exception, in bounded time."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from legation.events.v1 import envelope_pb2
from legation_core.catalog import default_catalog
from legation_core.codec import Envelope, EventCodec, InvalidEvent, envelope_from_json
from legation_core.proto_strategies import messages, weighted
from tests.fuzz.budget import Fuzz
from tests.fuzz.properties import PropertyFailed, bounded, failure, internal_text

CATALOG = default_catalog()
CODEC = EventCodec(CATALOG)
TOPICS = sorted(spec.name for spec in CATALOG)


class Record:
    """A record's value, shown short."""

    def __init__(self, value: bytes | None) -> None:
        self.value = value

    def __repr__(self) -> str:
        if self.value is None:
            return "Record(None)"
        more = f"+{len(self.value) - 300:,} bytes" if len(self.value) > 300 else ""
        return f"Record({self.value[:300]!r}{more})"


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _nested(depth: int) -> bytes:
    """A length-delimited field nested ``depth`` times (unknown field 15 of each level),
    built from the inside out in linear time."""
    headers: list[bytes] = []
    length = 0
    for _ in range(depth):
        header = b"\x7a" + _varint(length)
        headers.append(header)
        length += len(header)
    return b"".join(reversed(headers))


def _groups(depth: int) -> bytes:
    """Unknown groups (field 15) nested ``depth`` times: a parser has to descend into them."""
    return b"\x7b" * depth + b"\x7c" * depth


@st.composite
def byte_mutants(draw: st.DrawFn, seed: bytes) -> bytes:
    content = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(content)))
        how = draw(st.sampled_from(["flip", "cut", "insert", "delete", "duplicate"]))
        if how == "flip" and content:
            content[min(at, len(content) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif how == "cut":
            del content[at:]
        elif how == "insert":
            content[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif how == "delete":
            del content[at : at + draw(st.integers(1, 16))]
        else:
            content[at:at] = content[at : at + draw(st.integers(1, 64))]
    return bytes(content)


def records(topic: str) -> st.SearchStrategy[Record]:
    spec = CATALOG.topic(topic)
    example = envelope_from_json(spec.example)
    seed = example.SerializeToString()
    # Envelopes from the descriptor: mutants of the example mostly, any payload too.
    generated = messages(envelope_pb2.Envelope.DESCRIPTOR, seeds=[example], depth=3)
    value = weighted(
        (3, byte_mutants(seed)),
        (3, generated.map(lambda e: e.SerializeToString())),
        (1, st.binary(max_size=256)),
        (1, st.sampled_from([20, 99, 101, 1000, 100_000]).map(_nested)),
        (1, st.sampled_from([20, 99, 101, 1000, 100_000]).map(_groups)),
        (1, st.just(None)),
        (1, st.just(seed + _nested(200))),
    )

    @st.composite
    def record(draw: st.DrawFn) -> Record:  # composite: failures print the short repr
        return Record(draw(value))

    return record()


@pytest.mark.fuzz(weight=0.5)  # twenty topics, one decoder: a small share each
@pytest.mark.parametrize("topic", TOPICS)
def test_every_record_decodes_or_is_invalid(topic: str, fuzz: Fuzz) -> None:
    @fuzz.given(records(topic))
    def decodes(record: Record) -> None:
        try:
            envelope = bounded(lambda: CODEC.decode(topic, record.value), what="decode")
        except InvalidEvent as error:
            # A reason may quote what the record itself carries (an event_type it got
            # wrong): that is the producer's text, as a caller's is in the other targets.
            carried = (record.value or b"").decode("utf-8", "replace")
            leaked = internal_text(str(error), [carried])
            if leaked is not None:
                raise failure("internal text", f"{topic}: {leaked!r}") from None
            return
        except PropertyFailed:
            raise
        except Exception as error:
            kind = f"{type(error).__name__} escaped"
            raise failure(kind, f"{topic}: {str(error)[:300]}") from error
        assert isinstance(envelope, Envelope)

    decodes()
