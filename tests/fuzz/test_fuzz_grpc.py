"""Every RPC of every service, with requests generated from the proto descriptors, through a
real gRPC server with the real interceptor, as a user with every working role and as a
viewer: each call ends with an allowed status, in time, with a message free of internal
text; the server still answers its health check; and the evaluator's indexer takes every
event the evaluator accepted."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import strategies as st

from legation.engager.v1 import engager_service_pb2
from legation.evaluator.v1 import evaluator_service_pb2
from legation.listener.v1 import listener_service_pb2
from legation.publisher.v1 import publisher_service_pb2
from legation_core.proto_strategies import describe, messages, strings_in
from legation_devstack.users import UsersFile
from legation_listener.config import ListenerSettings
from tests.fuzz.budget import Fuzz
from tests.fuzz.harness import (
    OWNER,
    VIEWER,
    GrpcTarget,
    start_engager,
    start_evaluator,
    start_listener,
    start_publisher,
)
from tests.fuzz.properties import (
    GRPC_LIMIT_SECONDS,
    MemoryBound,
    check_grpc,
    failure,
)

SERVICES = {
    "listener": listener_service_pb2.DESCRIPTOR.services_by_name["ListenerService"],
    "publisher": publisher_service_pb2.DESCRIPTOR.services_by_name["PublisherService"],
    "engager": engager_service_pb2.DESCRIPTOR.services_by_name["EngagerService"],
    "evaluator": evaluator_service_pb2.DESCRIPTOR.services_by_name["EvaluatorService"],
}


# Methods whose every call is slow by design get a smaller share of the budget.
WEIGHTS = {"GetCampaignReport": 0.25}  # renders a report with plots (about 1.5 s)


def _cases() -> Iterator[object]:
    for name, service in SERVICES.items():
        # The evaluator's index and the listener's re-scoring are stand-in servers.
        marks = [pytest.mark.integration] if name in ("evaluator", "listener") else []
        for method in service.methods:
            weight = pytest.mark.fuzz(weight=WEIGHTS.get(method.name, 1))
            yield pytest.param(
                name, method.name, id=f"{name}.{method.name}", marks=[*marks, weight]
            )


class Services:
    """The service under test, served and seeded once for all its methods (its state grows
    with every case, as a running service's does): started at the first of its methods'
    tests, stopped when the next service's begin (the tests run grouped by service).

    Not a parametrized module fixture: pytest sets one of those up again for every
    (service, method) pair, which started the listener afresh for each of its methods."""

    def __init__(self, auth_users: UsersFile) -> None:
        self.auth_users = auth_users
        self.running: GrpcTarget | None = None

    def get(self, name: str, request: pytest.FixtureRequest) -> GrpcTarget:
        if self.running is not None and self.running.name != name:
            self.close()
        if self.running is None:
            self.running = self._start(name, request)
        return self.running

    def _start(self, name: str, request: pytest.FixtureRequest) -> GrpcTarget:
        starters: dict[str, Callable[[], GrpcTarget]] = {
            "listener": lambda: start_listener(
                self.auth_users,
                ListenerSettings(
                    kafka_bootstrap_servers=request.getfixturevalue(
                        "kafka_settings"
                    ).kafka_bootstrap_servers
                ),
            ),
            "publisher": lambda: start_publisher(self.auth_users),
            "engager": lambda: start_engager(self.auth_users),
            "evaluator": lambda: start_evaluator(
                self.auth_users,
                request.getfixturevalue("opensearch_stand_in").url,
                f"fuzz-{uuid.uuid4().hex[:10]}",
            ),
        }
        return starters[name]()

    def close(self) -> None:
        if self.running is not None:
            running, self.running = self.running, None
            running.stop()


@pytest.fixture(scope="module")
def services(auth_users: UsersFile) -> Iterator[Services]:
    """The services the tests of this module call, one at a time."""
    pool = Services(auth_users)
    try:
        yield pool
    finally:
        pool.close()


class Call:
    """A generated request and its caller, shown compactly when a property fails."""

    def __init__(self, request: Message, user: str) -> None:
        self.request = request
        self.user = user

    def __repr__(self) -> str:
        return f"Call(user={self.user!r}, request={describe(self.request)})"


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def invoke(target: GrpcTarget, method: MethodDescriptor, call: Call) -> tuple[grpc.StatusCode, str]:
    """Sends ``call``; the status and details (a stream counts as answered at its first
    message, then is cancelled)."""
    path = f"/{target.service.full_name}/{method.name}"
    response_type = GetMessageClass(method.output_type)
    metadata = target.metadata(call.user)
    try:
        if method.server_streaming:
            stream: Any = target.channel.unary_stream(
                path,
                request_serializer=_serialize,
                response_deserializer=response_type.FromString,
            )(call.request, timeout=GRPC_LIMIT_SECONDS + 1, metadata=metadata)
            next(stream, None)
            stream.cancel()
        else:
            target.channel.unary_unary(
                path,
                request_serializer=_serialize,
                response_deserializer=response_type.FromString,
            )(call.request, timeout=GRPC_LIMIT_SECONDS + 1, metadata=metadata)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def check_health(target: GrpcTarget) -> None:
    """The server answers its health check at once (its workers are not all stuck)."""
    stub = health_pb2_grpc.HealthStub(target.channel)
    try:
        stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
    except grpc.RpcError as error:
        raise failure(
            "health check blocked",
            f"{target.name}: Health/Check -> {error.code().name}",
        ) from None


@pytest.mark.parametrize(("service", "method"), list(_cases()))
def test_every_request_gets_a_clean_answer_in_time(
    service: str, method: str, services: Services, fuzz: Fuzz, request: pytest.FixtureRequest
) -> None:
    target = services.get(service, request)
    descriptor = target.service.methods_by_name[method]
    memory = MemoryBound()
    requests = messages(
        descriptor.input_type, hints=target.hints, seeds=target.examples.get(method, [])
    )

    @st.composite
    def calls(draw: st.DrawFn) -> Call:
        return Call(draw(requests), draw(st.sampled_from([OWNER, VIEWER])))

    @fuzz.given(calls())
    def answers_cleanly(call: Call) -> None:
        problems_before = len(target.problems)
        started = time.perf_counter()
        code, details = invoke(target, descriptor, call)
        elapsed = time.perf_counter() - started
        check_grpc(f"{service}.{method}", code, details, elapsed, strings_in(call.request))
        check_health(target)
        memory.check(f"{service}.{method}")
        if len(target.problems) > problems_before:
            raise failure(
                "accepted but not indexable",
                f"{service}.{method} -> {code.name}; {target.problems[problems_before]}",
            )

    answers_cleanly()
