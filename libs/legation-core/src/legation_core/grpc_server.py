"""gRPC server bootstrap with the standard health service and reflection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

Registrar = Callable[[grpc.Server], None]


def build_server(
    port: int,
    registrars: Sequence[Registrar],
    service_names: Sequence[str],
    max_workers: int = 8,
    host: str = "0.0.0.0",
) -> tuple[grpc.Server, health.HealthServicer, int]:
    """A started-ready server (call ``start``) serving the given services plus health and
    reflection; returns the server, its health servicer and the bound port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    for register in registrars:
        register(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
    reflection.enable_server_reflection([*names, reflection.SERVICE_NAME], server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the gRPC port {port}")
    return server, health_servicer, bound


def invalid_argument(context: grpc.ServicerContext, message: str) -> NoReturn:
    """Ends the call with INVALID_ARGUMENT and a message that names the field."""
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
    raise AssertionError("unreachable")  # abort raises


def not_found(context: grpc.ServicerContext, message: str) -> NoReturn:
    context.abort(grpc.StatusCode.NOT_FOUND, message)
    raise AssertionError("unreachable")


def require(context: grpc.ServicerContext, **fields: Any) -> None:
    """Aborts with INVALID_ARGUMENT naming the first empty field."""
    for name, value in fields.items():
        if not value:
            invalid_argument(context, f"{name} is required")
