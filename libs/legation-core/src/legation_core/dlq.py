"""Dead letters: what goes to ``<topic>.dlq`` for a record that cannot be used, and how a
record too large to copy whole still gets there.

Plain functions without I/O; :meth:`legation_core.kafka.EventProducer.dead_letter` sends
what they build. Every dead letter carries the reason and the source coordinates in its
headers (``dlq-reason``, ``dlq-source-topic``, ``dlq-source-partition``,
``dlq-source-offset``, ``dlq-consumer-group``) and keeps the original key and value.

**Size.** A dead letter is the original record plus those headers, so a record that was
just under the producer's limit is over it once dead-lettered (a 1,048,300-byte value is).
:func:`fit_dead_letter` measures the letter as the producer will (``size_of``: the record
batch the record would be sent in, key, value, headers and framing included) against the
producer's configured limit (``LEGATION_KAFKA_MAX_REQUEST_BYTES``, kafka-python's
``max_request_size``). When the letter does not fit, the longest prefix of the value that
fits is kept (then of the key, for a key that alone does not fit) and two more headers say
so: ``dlq-truncated`` (``value`` or ``key,value``) and ``dlq-original-size`` (the value's
length in bytes; ``dlq-original-key-size`` too when the key was cut). The coordinates point
at the whole original, which can be read from the source topic while its retention lasts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Headers = list[tuple[str, bytes]]
SizeOf = Callable[[bytes | None, bytes | None, Headers], int]

# A reason is for people: the first thousand characters say what went wrong.
MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class DeadLetter:
    """A record that cannot be used, where it came from and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str

    @classmethod
    def of(cls, record: Any, reason: str) -> DeadLetter:
        """The dead letter of a consumed record (anything with topic, partition, offset,
        key and value, as kafka-python's ConsumerRecord)."""
        return cls(record.topic, record.partition, record.offset, record.key, record.value, reason)


@dataclass(frozen=True)
class LetterRecord:
    """What is produced to the DLQ for one dead letter."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    truncated: bool


def dead_letter_headers(letter: DeadLetter, group: str) -> Headers:
    """The reason and source coordinates every dead letter carries; ``group`` is the
    consumer group (or the reader, for a state rebuild) that gave up on the record."""
    return [
        ("dlq-reason", letter.reason[:MAX_REASON_CHARS].encode()),
        ("dlq-source-topic", letter.topic.encode()),
        ("dlq-source-partition", str(letter.partition).encode()),
        ("dlq-source-offset", str(letter.offset).encode()),
        ("dlq-consumer-group", group.encode()),
    ]


def fit_dead_letter(
    letter: DeadLetter, dlq: str, group: str, limit: int, size_of: SizeOf
) -> LetterRecord:
    """The record to produce to ``dlq`` for ``letter``: the original key and value when the
    letter fits in ``limit`` bytes as ``size_of`` measures it, else the longest prefixes that
    fit, marked as truncated (see the module docstring). Raises ValueError when not even the
    headers fit (a limit far below any real broker's)."""
    headers = dead_letter_headers(letter, group)
    if size_of(letter.key, letter.value, headers) <= limit:
        return LetterRecord(dlq, letter.key, letter.value, headers, truncated=False)
    value = letter.value or b""
    key = letter.key
    original_size = ("dlq-original-size", str(len(value)).encode())
    marked = [*headers, ("dlq-truncated", b"value"), original_size]
    if size_of(key, b"", marked) > limit and key:
        marked = [
            *headers,
            ("dlq-truncated", b"key,value"),
            original_size,
            ("dlq-original-key-size", str(len(key)).encode()),
        ]
        key = _longest_prefix(key, lambda part: size_of(part, b"", marked) <= limit)
    if size_of(key, b"", marked) > limit:
        raise ValueError(f"a dead letter's headers alone exceed {limit} bytes")
    value = _longest_prefix(value, lambda part: size_of(key, part, marked) <= limit)
    return LetterRecord(dlq, key, value, marked, truncated=True)


def without_value(record: LetterRecord, original_size: int) -> LetterRecord:
    """``record`` with an empty value, for a broker that refused it as too large although it
    fit the producer's limit (the broker's or the topic's own limit is lower)."""
    headers = list(record.headers)
    if not record.truncated:
        headers += [("dlq-truncated", b"value"), ("dlq-original-size", str(original_size).encode())]
    return LetterRecord(record.topic, record.key, b"", headers, truncated=True)


def _longest_prefix(data: bytes, fits: Callable[[bytes], bool]) -> bytes:
    """The longest prefix of ``data`` that ``fits`` (which must hold for b"")."""
    low, high = 0, len(data)  # fits(data[:low]) holds; every length above high does not
    while low < high:
        middle = (low + high + 1) // 2
        if fits(data[:middle]):
            low = middle
        else:
            high = middle - 1
    return data[:low]
