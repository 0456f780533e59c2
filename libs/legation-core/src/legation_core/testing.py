"""Test doubles for the services' unit tests: a gRPC servicer context that runs a method as
the interceptor would (so a test sees the status and message a caller would see), a
recording producer (what a service would write, checked against the catalog as
:class:`~legation_core.kafka.EventProducer` checks it), and a recording Kafka client to put
under a real :class:`~legation_core.kafka.EventProducer`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import grpc

from legation.events.v1 import envelope_pb2
from legation_core.auth import answer
from legation_core.calls import serving
from legation_core.catalog import Catalog, default_catalog
from legation_core.codec import Envelope, EventCodec

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


Event = tuple[str, str, Envelope]


class RecordingProducer:
    """Stands in for :class:`~legation_core.kafka.EventProducer` as a service's event sink:
    checks each event against the catalog as ``service``'s (the topic must be one it
    produces, the event valid), then raises ``failing`` when set (nothing recorded: Kafka
    did not acknowledge) or records the batch."""

    def __init__(self, service: str, catalog: Catalog | None = None) -> None:
        self.service = service
        self.catalog = catalog or default_catalog()
        self.calls: list[list[Event]] = []
        self.failing: Exception | None = None

    def send_and_wait(self, events: list[Event]) -> None:
        for topic, _key, envelope in events:
            EventCodec.validate(self.catalog.check_produce(self.service, topic), envelope)
        if self.failing is not None:
            raise self.failing
        self.calls.append(list(events))

    @property
    def sent(self) -> list[Event]:
        """Every event recorded, in order."""
        return [event for batch in self.calls for event in batch]

    def on(self, topic: str) -> list[Envelope]:
        """The envelopes recorded on ``topic``, in order."""
        return [envelope for t, _key, envelope in self.sent if t == topic]


class Acknowledgement:
    """A send's future as kafka-python hands it out: ``get`` raises ``error`` (not
    acknowledged) or returns."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error


@dataclass
class RecordingKafka:
    """kafka-python's ``KafkaProducer`` as far as :class:`~legation_core.kafka.EventProducer`
    uses it: records each record's topic, key and decoded envelope; a record for one of
    ``failing_topics`` is not acknowledged."""

    records: list[tuple[str, str, envelope_pb2.Envelope]] = field(default_factory=list)
    failing_topics: set[str] = field(default_factory=set)

    def send(self, topic: str, key: bytes, value: bytes, headers: Any) -> Acknowledgement:
        if topic in self.failing_topics:
            return Acknowledgement(RuntimeError(f"{topic} unavailable"))
        envelope = envelope_pb2.Envelope()
        envelope.ParseFromString(value)
        self.records.append((topic, key.decode(), envelope))
        return Acknowledgement(None)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def on(self, topic: str) -> list[tuple[str, envelope_pb2.Envelope]]:
        """The (key, envelope) of each record on ``topic``, in order."""
        return [(key, envelope) for t, key, envelope in self.records if t == topic]
