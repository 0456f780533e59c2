"""The gRPC call being served, as far as the code under a servicer needs to know it.

The interceptor (:mod:`legation_core.auth`) marks every call it runs with :func:`serving`;
below it, :func:`ensure_caller_waits` refuses to go on with a call whose caller has gone
(its deadline passed or it cancelled): :class:`~legation_core.kafka.EventProducer` calls it
before every acknowledged write, so a command that took longer than its caller waited is
never applied after the caller was told it failed. Outside a call it does nothing.

**The error vocabulary.** :class:`CallError` and its subclasses are the errors that end a
call with a definite status whatever code they pass through: :class:`InvalidArgument` (the
message starts with the field), :class:`NotFound`, :class:`Conflict` (the entity's state
does not allow the change), :class:`ResourceExhausted`, :class:`Unavailable`,
:class:`AccessDenied` and :class:`CallExpired`. Each service's domain errors subclass them
(plain Python: this module needs no gRPC), servicers let them through, and the interceptor
answers them with the status :data:`STATUS` maps their class to, and their message, which
must be fit for the caller. A dependency that is down (Kafka, the index) raises a
:class:`~legation_core.consumer.TransientError`, or an error type a service declared with
:func:`treat_as_unavailable`: the interceptor answers ``UNAVAILABLE`` with a generic
message (the error's own text may name hosts and ports, so it is only logged); anything
else is ``INTERNAL`` with a generic message, the stack logged (see
:func:`legation_core.auth.answer`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol


class CallError(Exception):
    """Ends a gRPC call with the status :data:`STATUS` gives its class and this message
    (sent to the caller as it is). Servicers let it through; the interceptor maps it."""


class InvalidArgument(CallError, ValueError):
    """A request the call cannot take (``INVALID_ARGUMENT``); the message starts with the
    field's path, and ``field`` holds it where the raiser knows it apart."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class NotFound(CallError):
    """The entity the request names does not exist (``NOT_FOUND``)."""


class Conflict(CallError):
    """The entity's current state does not allow the change (``FAILED_PRECONDITION``)."""


class ResourceExhausted(CallError):
    """The service is at a limit for now; a later retry may pass (``RESOURCE_EXHAUSTED``)."""


class Unavailable(CallError):
    """A dependency is down and the message, fit for the caller, says so (``UNAVAILABLE``);
    a dependency error whose text may hold internals is a
    :class:`~legation_core.consumer.TransientError` instead."""


class AccessDenied(CallError):
    """The caller lacks a role (``PERMISSION_DENIED``); raised by
    :func:`legation_core.auth.require_role` inside a servicer, audited by the interceptor."""


class CallExpired(CallError):
    """The caller no longer waits (deadline passed, or cancelled): nothing more is done for
    the call, and nothing was written."""


# The one table from error class to gRPC status (a ``grpc.StatusCode`` name); a subclass
# takes its nearest listed ancestor's status.
STATUS: dict[type[CallError], str] = {
    InvalidArgument: "INVALID_ARGUMENT",
    NotFound: "NOT_FOUND",
    Conflict: "FAILED_PRECONDITION",
    ResourceExhausted: "RESOURCE_EXHAUSTED",
    Unavailable: "UNAVAILABLE",
    AccessDenied: "PERMISSION_DENIED",
    CallExpired: "DEADLINE_EXCEEDED",
}


def status_of(error: CallError) -> str:
    """The ``grpc.StatusCode`` name that :data:`STATUS` gives ``error``'s class."""
    for cls in type(error).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return "INTERNAL"


def require(**fields: Any) -> None:
    """Raises :class:`InvalidArgument` naming the first of ``fields`` that is empty."""
    for name, value in fields.items():
        if not value:
            raise InvalidArgument(f"{name} is required", name)


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
            "the caller's deadline passed before the change was written: nothing was saved"
        )
