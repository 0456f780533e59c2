"""Test doubles for the services' unit tests: a gRPC servicer context that runs a method as
the interceptor would, so a test sees the status and message a caller would see."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import grpc

from legation_core.auth import answer
from legation_core.calls import serving

Request = TypeVar("Request")
Response = TypeVar("Response")


class Aborted(Exception):
    """The call ended with a status other than OK (see :attr:`FakeContext.code`)."""


class FakeContext:
    """A ``grpc.ServicerContext`` stand-in: ``time_left`` is the caller's deadline (None:
    none), ``active`` false once the caller has gone; ``code`` and ``details`` say how the
    last call ended (None: OK)."""

    def __init__(self, time_left: float | None = None, active: bool = True) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.time_left = time_left
        self.active = active

    def time_remaining(self) -> float | None:
        return self.time_left

    def is_active(self) -> bool:
        return self.active

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise Aborted(details)

    def run(
        self, method: Callable[[Request, grpc.ServicerContext], Response], request: Request
    ) -> Response:
        """Calls ``method`` as the interceptor would: inside the call (so
        :func:`~legation_core.calls.ensure_caller_waits` sees this context), an escaping
        exception answered with :func:`legation_core.auth.answer`; raises :class:`Aborted`
        when the call did not end OK."""
        self.code, self.details = None, ""
        # The servicer reads only what a FakeContext has.
        context = cast(grpc.ServicerContext, self)
        try:
            with serving(self):
                return method(request, context)
        except Aborted:
            raise
        except Exception as error:
            self.abort(*answer(error, getattr(method, "__name__", "?"), "t-test"))
            raise AssertionError("unreachable") from error  # abort raises


def call(
    method: Callable[[Request, grpc.ServicerContext], Response],
    request: Request,
    context: FakeContext | None = None,
) -> tuple[Any, FakeContext]:
    """``method``'s answer and the context saying how the call ended; the answer is None
    when it failed (typed Any: a test reads the answer of a call it expects to succeed)."""
    context = context or FakeContext()
    try:
        return context.run(method, request), context
    except Aborted:
        return None, context
