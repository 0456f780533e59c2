"""gRPC server bootstrap: authentication, authorization, request limits and error mapping
on every call (see :mod:`legation_core.auth`), optional TLS or mutual TLS, the standard
health service and reflection.

Health checks never wait behind the API: the API server admits at most
``max_workers - HEALTH_RESERVE`` API calls at a time (:class:`ConcurrencyLimit`; beyond that
a call gets RESOURCE_EXHAUSTED at once), so health and reflection always find a free
worker, and probes use a server of their own (:func:`build_health_server`, its own
threads and port, ``LEGATION_GRPC_HEALTH_PORT``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from legation_core.auth import OPEN_SERVICES, AuthInterceptor
from legation_core.auth.server import wrapped_handler

Registrar = Callable[[grpc.Server], None]

# grpc's classes are generic only in its type stubs.
if TYPE_CHECKING:
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.ServerInterceptor

# Worker threads of the API server kept free of API calls, for health and reflection.
HEALTH_RESERVE = 2
DEFAULT_MAX_WORKERS = 10


class ConcurrencyLimit(_ServerInterceptor):
    """Admits at most ``limit`` calls at a time to the API (health and reflection are not
    counted and never refused); a call beyond gets RESOURCE_EXHAUSTED at once instead of
    waiting for a worker, so slow calls can neither starve health checks nor pile up."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a gRPC server needs room for at least one API call")
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        service = handler_call_details.method.lstrip("/").partition("/")[0]
        if handler is None or service in OPEN_SERVICES:
            return handler
        return self._limited(handler)

    def _admit(self, context: grpc.ServicerContext) -> None:
        if not self._slots.acquire(blocking=False):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the server is busy with {self.limit} calls; retry shortly",
            )

    def _limited(self, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        def unary(behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
            def run(request: Any, context: grpc.ServicerContext) -> Any:
                self._admit(context)
                try:
                    return behavior(request, context)
                finally:
                    self._slots.release()

            return run

        def streaming(
            behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
        ) -> Callable[..., Iterator[Any]]:
            def run(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                self._admit(context)
                try:
                    yield from behavior(request, context)
                finally:
                    self._slots.release()

            return run

        return wrapped_handler(handler, unary, streaming)


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
    max_workers: int = DEFAULT_MAX_WORKERS,
    host: str = "0.0.0.0",
    *,
    auth: AuthInterceptor,
    tls: ServerTls | None = None,
) -> tuple[grpc.Server, health.HealthServicer, int]:
    """A started-ready server (call ``start``) serving the given services behind ``auth``,
    plus health and reflection (open to all); returns the server, its health servicer and
    the bound port. ``tls`` serves TLS instead of plaintext. At most ``max_workers -
    HEALTH_RESERVE`` API calls run at a time (:class:`ConcurrencyLimit`)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        interceptors=[auth, ConcurrencyLimit(max(1, max_workers - HEALTH_RESERVE))],
    )
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


def build_health_server(
    port: int, health_servicer: health.HealthServicer, host: str = "0.0.0.0"
) -> tuple[grpc.Server, int]:
    """A plaintext server of the health service alone (the same servicer as the API's), with
    threads of its own: what probes use, so a busy API never makes them time out, and
    plaintext for probes that cannot speak TLS; nothing else is reachable on it."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the gRPC health port {port}")
    return server, bound
