"""What the engager's servicers (:mod:`.grpc_inbox`, :mod:`.grpc_questions`,
:mod:`.grpc_partners`) share: the page limit, finding an entity a call names, and changing
it in its table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from google.protobuf.message import Message

from legation_core.calls import NotFound, require
from legation_core.state import StateTable, Transaction

M = TypeVar("M", bound=Message)

MAX_PAGE = 1000


def existing(table: StateTable[M], what: str, field: str, key: str) -> M:
    """The entity ``key`` of ``table``; INVALID_ARGUMENT naming ``field`` when ``key`` is
    empty, NOT_FOUND saying ``what`` does not exist when there is none."""
    require(**{field: key})
    found = table.get(key)
    if found is None:
        raise NotFound(f"{what} {key} does not exist")
    return found


@contextmanager
def changing(
    table: StateTable[M], what: str, field: str, key: str
) -> Iterator[tuple[Transaction[M], M]]:
    """A transaction on ``table`` with the current version of the entity ``key`` (checked
    as :func:`existing` does, before the write lock is taken)."""
    existing(table, what, field, key)
    with table.transaction() as transaction:
        current = transaction.get(key)
        assert current is not None  # entities are never removed
        yield transaction, current
