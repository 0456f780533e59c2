"""The auth interceptor over a real gRPC server: who may call what, and what is audited."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from legation.events.v1 import publish_pb2
from legation_core.auth import (
    ADMIN,
    APPROVER,
    EDITOR,
    AuditEvent,
    AuthInterceptor,
    Outcome,
    Policy,
    command,
    current_caller,
    current_trace_id,
    load_users,
    reads,
    require_role,
    with_token,
)
from legation_core.grpc_server import build_server
from legation_devstack.users import UsersFile, write_users_file

pytestmark = pytest.mark.integration

SERVICE = "legation.test.v1.Probe"
POLICY = Policy(
    SERVICE,
    {
        "Read": reads(),
        "Write": command(EDITOR),
        "Approve": command(EDITOR),
        "Fail": command(EDITOR),
    },
)
Publication = publish_pb2.Publication


def probe_handlers(seen: list[tuple[str, str]]) -> grpc.GenericRpcHandler:
    """A service whose requests and responses are Publications (they have *_id fields)."""

    def echo(name: str) -> Callable[[Publication, grpc.ServicerContext], Publication]:
        def handle(request: Publication, context: grpc.ServicerContext) -> Publication:
            caller = current_caller()
            seen.append((name, caller.user))
            if name == "Approve":
                require_role(caller, APPROVER)
            if name == "Fail":
                context.abort(grpc.StatusCode.NOT_FOUND, "post p-1 not found")
            return Publication(post_id=request.post_id, author=current_trace_id())

        return handle

    methods = {
        name: grpc.unary_unary_rpc_method_handler(
            echo(name),
            request_deserializer=Publication.FromString,
            response_serializer=Publication.SerializeToString,
        )
        for name in ("Read", "Write", "Approve", "Fail", "Secret")
    }
    return grpc.method_handlers_generic_handler(SERVICE, methods)


@dataclass
class Served:
    port: int
    users: UsersFile
    audited: list[AuditEvent]
    seen: list[tuple[str, str]]

    def call(
        self, method: str, token: str | None = None, metadata: tuple[tuple[str, str], ...] = ()
    ) -> Publication:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as plain:
            channel = with_token(plain, token) if token is not None else plain
            stub = channel.unary_unary(
                f"/{SERVICE}/{method}",
                request_serializer=Publication.SerializeToString,
                response_deserializer=Publication.FromString,
            )
            response: Publication = stub(
                Publication(post_id="p-1", channel="site"), metadata=metadata, timeout=5
            )
            return response


def serve(directory: Any, tmp_path: Path) -> Iterator[Served]:
    audited: list[AuditEvent] = []
    seen: list[tuple[str, str]] = []
    users = write_users_file(
        tmp_path / "users.yaml",
        {"viv": frozenset({"viewer"}), "ed": frozenset({EDITOR}), "root": frozenset({ADMIN})},
    )
    resolved = load_users(users.path) if directory == "file" else None
    interceptor = AuthInterceptor(resolved, [POLICY], audited.append)
    server, _, port = build_server(
        0,
        [lambda server: server.add_generic_rpc_handlers((probe_handlers(seen),))],
        [],
        host="127.0.0.1",
        auth=interceptor,
    )
    server.start()
    try:
        yield Served(port, users, audited, seen)
    finally:
        server.stop(0).wait(5)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve("file", tmp_path)


def code_of(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code(), raised.value.details()


def test_no_or_unknown_token_is_unauthenticated_and_audited(served: Served) -> None:
    code, details = code_of(lambda: served.call("Read"))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer" in details
    code, _ = code_of(lambda: served.call("Write", token="not-a-known-token"))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert served.seen == []
    assert [(e.user, e.outcome, e.status) for e in served.audited] == [
        ("", Outcome.DENIED, grpc.StatusCode.UNAUTHENTICATED),
        ("", Outcome.DENIED, grpc.StatusCode.UNAUTHENTICATED),
    ]
    assert served.audited[1].method == f"/{SERVICE}/Write"
    assert served.audited[1].peer.startswith("ipv4:127.0.0.1:")


def test_a_viewer_reads_but_a_command_is_denied_naming_the_role(served: Served) -> None:
    viewer = served.users.token("viv")
    assert served.call("Read", token=viewer).post_id == "p-1"
    assert served.audited == []  # a granted read is not audited
    code, details = code_of(lambda: served.call("Write", token=viewer))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "needs the role editor" in details
    assert served.seen == [("Read", "viv")]
    [event] = served.audited
    assert (event.user, event.roles, event.outcome) == ("viv", {"viewer"}, Outcome.DENIED)
    assert event.status == grpc.StatusCode.PERMISSION_DENIED
    assert event.resource_ids == {"post_id": "p-1"}
    assert event.authenticated_by == "token"


def test_a_granted_command_runs_as_the_caller_and_is_audited(served: Served) -> None:
    response = served.call(
        "Write", token=served.users.token("ed"), metadata=(("x-trace-id", "trace-42"),)
    )
    assert response.author == "trace-42"  # the servicer saw the caller's trace id
    assert served.seen == [("Write", "ed")]
    [event] = served.audited
    assert (event.user, event.outcome, event.status) == ("ed", Outcome.GRANTED, grpc.StatusCode.OK)
    assert event.trace_id == "trace-42"


def test_admin_may_call_anything_with_a_rule_but_nobody_a_method_without_one(
    served: Served,
) -> None:
    root = served.users.token("root")
    served.call("Write", token=root)
    code, details = code_of(lambda: served.call("Secret", token=root))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "has no access rule" in details
    assert served.seen == [("Write", "root")]


def test_require_role_inside_the_servicer_is_permission_denied_and_audited(
    served: Served,
) -> None:
    code, details = code_of(lambda: served.call("Approve", token=served.users.token("ed")))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "ed needs the role approver" in details
    [event] = served.audited
    assert (event.outcome, event.status) == (Outcome.DENIED, grpc.StatusCode.PERMISSION_DENIED)


def test_a_command_that_fails_is_audited_with_its_status(served: Served) -> None:
    code, _ = code_of(lambda: served.call("Fail", token=served.users.token("ed")))
    assert code == grpc.StatusCode.NOT_FOUND
    [event] = served.audited
    assert (event.outcome, event.status) == (Outcome.FAILED, grpc.StatusCode.NOT_FOUND)
    assert event.detail == "post p-1 not found"


def test_health_stays_open(served: Served) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    assert served.audited == []


def test_disabled_auth_runs_every_call_as_anonymous_admin(tmp_path: Path) -> None:
    for served in serve(None, tmp_path):
        served.call("Write")
        assert served.seen == [("Write", "anonymous")]
        [event] = served.audited
        assert (event.user, event.authenticated_by) == ("anonymous", "disabled")
