"""build_server: standard health service driven by HealthReporter, and server reflection."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from legation_core.auth import AuthInterceptor, load_users
from legation_core.grpc_server import build_server
from legation_core.health import HealthReporter, Heartbeat
from legation_devstack.users import UsersFile

pytestmark = pytest.mark.integration

HEALTH = "grpc.health.v1.Health"


@pytest.fixture
def served(auth_users: UsersFile) -> Iterator[tuple[health.HealthServicer, grpc.Channel]]:
    auth = AuthInterceptor(load_users(auth_users.path), [])
    server, servicer, port = build_server(0, [], [], host="127.0.0.1", auth=auth)
    assert port > 0
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield servicer, channel
    finally:
        channel.close()
        server.stop(0).wait(5)


def check(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(response.status)


def test_health_check_is_serving_after_the_reporter_checks(
    served: tuple[health.HealthServicer, grpc.Channel],
) -> None:
    servicer, channel = served
    reporter = HealthReporter(servicer, [HEALTH], timeout_seconds=60)
    reporter.add(Heartbeat())
    assert reporter.check() is True
    assert check(channel) == health_pb2.HealthCheckResponse.SERVING
    assert check(channel, HEALTH) == health_pb2.HealthCheckResponse.SERVING

    stale = Heartbeat()
    reporter.add(stale)
    reporter.timeout_seconds = 0.0  # every beat is now too old
    assert reporter.check() is False
    assert check(channel) == health_pb2.HealthCheckResponse.NOT_SERVING

    reporter.timeout_seconds = 60
    assert reporter.check() is True
    reporter.shut_down()
    assert check(channel) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_unknown_service_is_not_found(served: tuple[health.HealthServicer, grpc.Channel]) -> None:
    _, channel = served
    with pytest.raises(grpc.RpcError) as raised:
        check(channel, "legation.nothing.v1.Nothing")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_health_service(
    served: tuple[health.HealthServicer, grpc.Channel],
) -> None:
    _, channel = served
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    assert len(responses) == 1
    names = {service.name for service in responses[0].list_services_response.service}
    assert HEALTH in names
    assert "grpc.reflection.v1alpha.ServerReflection" in names
