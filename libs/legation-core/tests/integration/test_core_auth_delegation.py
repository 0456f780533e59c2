"""A delegate (the console) calling on behalf of a person, over a real gRPC server: the call
runs as the person with the roles the delegate asserts, the audit names both, and the same
metadata from anyone who is not a delegate is refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from legation.events.v1 import publish_pb2
from legation_core.audit import audit_record
from legation_core.auth import (
    ANALYST,
    EDITOR,
    VIEWER,
    AuditEvent,
    AuthInterceptor,
    Caller,
    Outcome,
    Policy,
    command,
    current_caller,
    load_users,
    on_behalf_of,
    reads,
    with_token,
)
from legation_core.grpc_server import build_server
from legation_devstack.users import UsersFile, write_users_file

pytestmark = pytest.mark.integration

SERVICE = "legation.test.v1.Delegated"
POLICY = Policy(SERVICE, {"Read": reads(), "Write": command(EDITOR)})
Publication = publish_pb2.Publication


@dataclass
class Served:
    port: int
    users: UsersFile
    audited: list[AuditEvent]
    seen: list[Caller]

    def call(self, method: str, user: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as plain:
            stub = with_token(plain, self.users.token(user)).unary_unary(
                f"/{SERVICE}/{method}",
                request_serializer=Publication.SerializeToString,
                response_deserializer=Publication.FromString,
            )
            stub(Publication(post_id="p-1"), metadata=metadata, timeout=5)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    audited: list[AuditEvent] = []
    seen: list[Caller] = []

    def handle(request: Publication, context: grpc.ServicerContext) -> Publication:
        seen.append(current_caller())
        return request

    handlers: dict[str, Any] = {
        name: grpc.unary_unary_rpc_method_handler(
            handle,
            request_deserializer=Publication.FromString,
            response_serializer=Publication.SerializeToString,
        )
        for name in ("Read", "Write")
    }
    users = write_users_file(
        tmp_path / "users.yaml",
        {"ed": frozenset({EDITOR}), "viv": frozenset({VIEWER})},
        delegates={"console": frozenset({VIEWER, EDITOR})},
    )
    interceptor = AuthInterceptor(load_users(users.path), [POLICY], audited.append)
    server, _, port = build_server(
        0,
        [
            lambda s: s.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(SERVICE, handlers),)
            )
        ],
        [],
        host="127.0.0.1",
        auth=interceptor,
    )
    server.start()
    try:
        yield Served(port, users, audited, seen)
    finally:
        server.stop(0).wait(5)


def person(name: str, roles: str, units: str = "") -> tuple[tuple[str, str], ...]:
    return (
        ("x-on-behalf-of", name),
        ("x-on-behalf-of-roles", roles),
        ("x-on-behalf-of-units", units),
    )


def test_a_delegate_calls_as_the_person_and_the_audit_names_both(served: Served) -> None:
    served.call("Write", "console", person("ana", "editor,viewer", "embassy-madrid"))
    assert served.seen == [
        Caller("ana", frozenset({EDITOR, VIEWER}), frozenset({"embassy-madrid"}), via="console")
    ]
    (event,) = served.audited
    assert (event.user, event.via, event.outcome) == ("ana", "console", Outcome.GRANTED)
    record = audit_record(event)
    assert (record.user, record.via, list(record.units)) == ("ana", "console", ["embassy-madrid"])
    assert list(record.roles) == ["editor", "viewer"]


def test_the_policy_is_checked_against_the_persons_roles(served: Served) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        served.call("Write", "console", person("viv", "viewer"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "viv has viewer" in str(refused.value.details())
    (event,) = served.audited
    assert (event.user, event.via, event.outcome) == ("viv", "console", Outcome.DENIED)
    served.call("Read", "console", person("viv", "viewer"))
    assert [caller.user for caller in served.seen] == ["viv"]


def test_only_a_delegate_may_name_a_person(served: Served) -> None:
    # An editor forging the metadata is refused, and the audit names the editor.
    with pytest.raises(grpc.RpcError) as refused:
        served.call("Read", "ed", person("ana", "editor"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not call on behalf of others" in str(refused.value.details())
    assert [(e.user, e.via, e.outcome) for e in served.audited] == [("ed", "", Outcome.DENIED)]
    assert served.seen == []


def test_a_delegate_asserts_only_its_delegate_roles(served: Served) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        served.call("Read", "console", person("ana", "admin,viewer"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not assert the roles admin" in str(refused.value.details())
    # Without a person the delegate is itself: a user without roles.
    with pytest.raises(grpc.RpcError) as alone:
        served.call("Read", "console")
    assert alone.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert served.seen == []


def test_on_behalf_of_checks_the_names() -> None:
    console = Caller("console", frozenset())
    allowed = frozenset({ANALYST, VIEWER})
    assert on_behalf_of(console, allowed, [("x-trace-id", "t")]) == (console, "")
    caller, refused = on_behalf_of(console, allowed, person("ana smith", "analyst"))
    assert caller == console
    assert "x-on-behalf-of: expected" in refused
    _, refused = on_behalf_of(console, allowed, person("ana", "analyst", "madrid,<b>"))
    assert refused.startswith("x-on-behalf-of-units")
    assert on_behalf_of(console, allowed, person("ana", " analyst , ", "")) == (
        Caller("ana", frozenset({ANALYST}), frozenset(), via="console"),
        "",
    )
