"""gRPC server bootstrap: authentication and authorization on every call (see
:mod:`legation_core.auth`), optional TLS or mutual TLS, the standard health service and
reflection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from legation_core.auth import AuthInterceptor

Registrar = Callable[[grpc.Server], None]


@dataclass(frozen=True)
class ServerTls:
    """PEM files of the server's certificate chain and key, and optionally the CA that signs
    client certificates: with it every client must present a certificate it signed (mutual
    TLS), and the certificate's identity can stand for a user of the users file."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=self.client_ca.read_bytes() if self.client_ca else None,
            require_client_auth=self.client_ca is not None,
        )


def build_server(
    port: int,
    registrars: Sequence[Registrar],
    service_names: Sequence[str],
    max_workers: int = 8,
    host: str = "0.0.0.0",
    *,
    auth: AuthInterceptor,
    tls: ServerTls | None = None,
) -> tuple[grpc.Server, health.HealthServicer, int]:
    """A started-ready server (call ``start``) serving the given services behind ``auth``,
    plus health and reflection (open to all); returns the server, its health servicer and
    the bound port. ``tls`` serves TLS instead of plaintext."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), interceptors=[auth])
    for register in registrars:
        register(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
    reflection.enable_server_reflection([*names, reflection.SERVICE_NAME], server)
    address = f"{host}:{port}"
    if tls is None:
        bound = server.add_insecure_port(address)
    else:
        bound = server.add_secure_port(address, tls.credentials())
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
