"""HealthReporter drives a real grpc_health HealthServicer from heartbeats."""

from __future__ import annotations

import threading
import types
from typing import Any, cast

import grpc
import pytest
from grpc_health.v1 import health, health_pb2

import legation_core.health as health_module
from legation_core.health import HealthReporter, Heartbeat

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE = "legation.engage.v1.EngageService"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class FakeContext:
    """Just enough of grpc.ServicerContext for HealthServicer.Check."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected context call {name}")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(health_module, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


def status(servicer: health.HealthServicer, service: str = "") -> int:
    context = FakeContext()
    request = health_pb2.HealthCheckRequest(service=service)
    response = servicer.Check(request, cast(grpc.ServicerContext, context))
    assert context.code is None, f"{service!r}: {context.code}"
    return int(response.status)


def test_heartbeat_age_follows_the_clock(clock: FakeClock) -> None:
    beat = Heartbeat()
    clock.now += 5
    assert beat.age() == 5
    beat.beat()
    assert beat.age() == 0


def test_fresh_heartbeats_are_serving(clock: FakeClock) -> None:
    servicer = health.HealthServicer()
    reporter = HealthReporter(servicer, [SERVICE], timeout_seconds=60)
    reporter.add(Heartbeat())
    reporter.add(Heartbeat())
    clock.now += 59
    assert reporter.check() is True
    assert status(servicer) == SERVING
    assert status(servicer, SERVICE) == SERVING


def test_stale_heartbeat_is_not_serving_and_recovers(clock: FakeClock) -> None:
    servicer = health.HealthServicer()
    reporter = HealthReporter(servicer, [SERVICE], timeout_seconds=60)
    fresh, stuck = Heartbeat(), Heartbeat()
    reporter.add(fresh)
    reporter.add(stuck)
    assert reporter.check() is True
    clock.now += 61
    fresh.beat()  # one live loop is not enough: any stuck loop makes the service unhealthy
    assert reporter.check() is False
    assert status(servicer) == NOT_SERVING
    assert status(servicer, SERVICE) == NOT_SERVING
    stuck.beat()
    assert reporter.check() is True
    assert status(servicer) == SERVING
    assert status(servicer, SERVICE) == SERVING


def test_stale_with_real_clock_and_tiny_timeout() -> None:
    servicer = health.HealthServicer()
    reporter = HealthReporter(servicer, [], timeout_seconds=0.01)
    beat = Heartbeat()
    reporter.add(beat)
    stop = threading.Event()
    stop.wait(0.05)
    assert reporter.check() is False
    assert status(servicer) == NOT_SERVING
    beat.beat()
    assert reporter.check() is True
    assert status(servicer) == SERVING


def test_no_heartbeats_is_serving() -> None:
    servicer = health.HealthServicer()
    assert HealthReporter(servicer, [], timeout_seconds=1).check() is True
    assert status(servicer) == SERVING


def test_status_is_published_only_on_change(clock: FakeClock) -> None:
    calls: list[tuple[str, int]] = []

    class CountingServicer(health.HealthServicer):
        def set(self, service: str, status: int) -> None:
            calls.append((service, status))
            super().set(service, status)

    reporter = HealthReporter(CountingServicer(), [SERVICE], timeout_seconds=10)
    reporter.add(Heartbeat())
    reporter.check()
    reporter.check()
    assert calls == [("", SERVING), (SERVICE, SERVING)]
    clock.now += 11
    reporter.check()
    reporter.check()
    assert calls[2:] == [("", NOT_SERVING), (SERVICE, NOT_SERVING)]


def test_shut_down_reports_not_serving() -> None:
    servicer = health.HealthServicer()
    reporter = HealthReporter(servicer, [SERVICE], timeout_seconds=60)
    reporter.check()
    reporter.shut_down()
    assert status(servicer) == NOT_SERVING
    assert status(servicer, SERVICE) == NOT_SERVING


def test_run_checks_until_stopped() -> None:
    servicer = health.HealthServicer()
    reporter = HealthReporter(servicer, [], timeout_seconds=0.05)
    beat = Heartbeat()
    reporter.add(beat)
    stop = threading.Event()
    thread = threading.Thread(target=reporter.run, args=(stop, 0.01), daemon=True)
    thread.start()
    try:
        stop.wait(0.3)
        assert status(servicer) == NOT_SERVING  # nobody beat for 0.3 s
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
