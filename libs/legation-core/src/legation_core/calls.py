"""The gRPC call being served, as far as the code under a servicer needs to know it.

The interceptor (:mod:`legation_core.auth`) marks every call it runs with :func:`serving`;
below it, :func:`ensure_caller_waits` refuses to go on with a call whose caller has gone
(its deadline passed or it cancelled): :class:`~legation_core.kafka.EventProducer` calls it
before every acknowledged write, so a command that took longer than its caller waited is
never applied after the caller was told it failed. Outside a call it does nothing.

:class:`CallError` is the family of errors that end a call with a definite status whatever
servicer they pass through; the interceptor answers them with their ``status`` and their
message, which must be fit for the caller. A dependency that is down (Kafka, the index)
raises a :class:`~legation_core.consumer.TransientError`, or an error type a service
declared with :func:`treat_as_unavailable`: the interceptor answers ``UNAVAILABLE`` with a
generic message (the error's own text may name hosts and ports, so it is only logged).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class CallError(Exception):
    """Ends a gRPC call with ``status`` (a ``grpc.StatusCode`` name) and this message.
    Servicers let it through; the interceptor maps it."""

    status = "INTERNAL"


class CallExpired(CallError):
    """The caller no longer waits (deadline passed, or cancelled): nothing more is done for
    the call, and nothing was written."""

    status = "DEADLINE_EXCEEDED"


class Liveness(Protocol):
    """What :func:`ensure_caller_waits` asks of a call (a ``grpc.ServicerContext`` has it)."""

    def is_active(self) -> bool: ...

    def time_remaining(self) -> float | None: ...


_unavailable: tuple[type[BaseException], ...] = ()


def treat_as_unavailable(*error_types: type[BaseException]) -> None:
    """Declares errors of a client library that mean a dependency is down (an index
    client's connection errors, say): a gRPC call they end is answered ``UNAVAILABLE``
    with a generic message. Call it where the client is adapted, at import."""
    global _unavailable
    _unavailable = tuple(dict.fromkeys((*_unavailable, *error_types)))


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """The error types declared with :func:`treat_as_unavailable`."""
    return _unavailable


_current: contextvars.ContextVar[Liveness | None] = contextvars.ContextVar(
    "legation_call", default=None
)


@contextmanager
def serving(call: Liveness) -> Iterator[None]:
    """Marks the code run inside the block as serving ``call``."""
    token = _current.set(call)
    try:
        yield
    finally:
        _current.reset(token)


def ensure_caller_waits() -> None:
    """Raises :class:`CallExpired` when the gRPC call being served has been cancelled or
    its deadline has passed; does nothing outside a call."""
    call = _current.get()
    if call is None:
        return
    remaining = call.time_remaining()
    if not call.is_active() or (remaining is not None and remaining <= 0):
        raise CallExpired(
            "the caller's deadline passed before the change was written; nothing was changed"
        )
