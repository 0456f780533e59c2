"""``python -m legation_devstack bench-auth``: what authentication costs a gRPC call.

Unary calls over loopback to an echo service behind the real interceptor, three ways in one
run: authentication disabled (the floor), a bearer token on a read, and a bearer token on a
command (audited, to an in-memory sink: the Kafka send is asynchronous). Figures are median
and 99th percentile microseconds per call.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import grpc

from legation.events.v1 import publish_pb2
from legation_core.auth import (
    EDITOR,
    AuditEvent,
    AuthInterceptor,
    Directory,
    Policy,
    command,
    load_users,
    reads,
    with_token,
)
from legation_core.grpc_server import build_server
from legation_devstack.users import write_users_file

CALLS = 3_000
WARM_UP = 300
SERVICE = "legation.bench.v1.Echo"
POLICY = Policy(SERVICE, {"Read": reads(), "Write": command(EDITOR)})
Publication = publish_pb2.Publication


def _echo(request: Publication, context: grpc.ServicerContext) -> Publication:
    return request


def _measure(directory: Directory | None, method: str, token: str | None) -> tuple[float, float]:
    audited: list[AuditEvent] = []
    handler = grpc.unary_unary_rpc_method_handler(
        _echo,
        request_deserializer=Publication.FromString,
        response_serializer=Publication.SerializeToString,
    )
    handlers = grpc.method_handlers_generic_handler(SERVICE, {"Read": handler, "Write": handler})
    server, _, port = build_server(
        0,
        [lambda server: server.add_generic_rpc_handlers((handlers,))],
        [],
        host="127.0.0.1",
        auth=AuthInterceptor(directory, [POLICY], audited.append),
    )
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as plain:
            channel = with_token(plain, token) if token else plain
            call = channel.unary_unary(
                f"/{SERVICE}/{method}",
                request_serializer=Publication.SerializeToString,
                response_deserializer=Publication.FromString,
            )
            request = Publication(post_id="p-1", publication_id="pub-1")
            for _ in range(WARM_UP):
                call(request, timeout=5)
            seconds = []
            for _ in range(CALLS):
                started = time.perf_counter()
                call(request, timeout=5)
                seconds.append(time.perf_counter() - started)
    finally:
        server.stop(0).wait(5)
    seconds.sort()
    return statistics.median(seconds) * 1e6, seconds[int(len(seconds) * 0.99)] * 1e6


def main() -> int:
    users = write_users_file(Path(tempfile.mkdtemp(prefix="legation-bench-auth-")) / "users.yaml")
    directory = load_users(users.path)
    runs = [
        ("auth disabled, read", None, "Read", None),
        ("bearer token, read", directory, "Read", users.token("viewer")),
        ("bearer token, command (audited)", directory, "Write", users.token("editor")),
    ]
    print(f"{CALLS} unary calls each over loopback, microseconds per call")
    for label, known, method, token in runs:
        median, p99 = _measure(known, method, token)
        print(f"  {label:<33} median {median:7.1f}  p99 {p99:8.1f}")
    return 0
