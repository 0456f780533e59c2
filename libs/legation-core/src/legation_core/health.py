"""Liveness that proves work is happening, not just that the process exists.

Each consume loop beats a :class:`Heartbeat` on every poll; :class:`HealthReporter` marks
the service NOT_SERVING on the standard gRPC health service when any beat is older than the
liveness timeout, so Kubernetes' native gRPC probe restarts a stuck pod.
"""

from __future__ import annotations

import threading
import time

from grpc_health.v1 import health, health_pb2


class Heartbeat:
    """The last time a loop showed it was alive."""

    def __init__(self) -> None:
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self._last


class HealthReporter:
    """Keeps the gRPC health status of ``service_names`` (and the server, "") in step with
    the heartbeats."""

    def __init__(
        self, servicer: health.HealthServicer, service_names: list[str], timeout_seconds: float
    ) -> None:
        self.servicer = servicer
        self.service_names = ["", *service_names]
        self.timeout_seconds = timeout_seconds
        self.heartbeats: list[Heartbeat] = []
        self._serving: bool | None = None

    def add(self, heartbeat: Heartbeat) -> None:
        self.heartbeats.append(heartbeat)

    def check(self) -> bool:
        """Publishes and returns the current status."""
        serving = all(beat.age() < self.timeout_seconds for beat in self.heartbeats)
        if serving != self._serving:
            self._set(
                health_pb2.HealthCheckResponse.SERVING
                if serving
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            self._serving = serving
        return serving

    def shut_down(self) -> None:
        """Tells clients and probes this instance is going away."""
        self.servicer.enter_graceful_shutdown()

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        while not stop.wait(interval):
            self.check()

    def _set(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in self.service_names:
            self.servicer.set(name, status)
